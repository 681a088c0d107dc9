// IpvsMode: the whole --proxy-mode=ipvs backend (docs/ipvs.md). Each sync runs the IPVS
// proxier (virtual services and kube-ipvs0), then brings kube-proxy's IPVS-mode sets to this
// snapshot's entries and writes the layout's iptables rules (one iptables-restore --noflush of
// the KUBE- chains, only when they changed, and the jumps from the built-in chains, ensured
// at the first sync and after any failure). cleanup() is --cleanup's IPVS part.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "kproxy/ipvs/layout.h"
#include "kproxy/ipvs/proxier.h"
#include "kproxy/kernel/ipset_runner.h"
#include "kproxy/kernel/iptables_runner.h"

namespace kproxy::ipvs {

struct IpvsModeOptions {
  IpvsProxierOptions proxier;
  LayoutOptions layout;  // node_port_addresses is filled at each sync
};

class IpvsMode final : public proxier::ProxierBackend {
 public:
  IpvsMode(kernel::Ipvs& ipvs, kernel::Links& links, kernel::IpsetRunner& ipsets, kernel::IptablesRunner& iptables,
           IpvsModeOptions options);

  Status sync(const proxier::SyncRequest& request) override;
  const IpvsSyncStats& last_sync() const { return proxier_.last_sync(); }

  // --cleanup, in two steps around the iptables backend's own cleanup (both modes share chain
  // names such as KUBE-SERVICES and KUBE-MARK-MASQ): release_rules() deletes the layout's jumps
  // and empties its chains, so that none of them holds a chain or set the other cleanup
  // deletes; cleanup() then removes every virtual service and kube-ipvs0, the layout's chains
  // that are left, and its sets (a set still referenced by a rule cannot be destroyed).
  // Both report what could not be removed.
  static Status release_rules(kernel::IptablesRunner& iptables);
  static Status cleanup(kernel::Ipvs* ipvs, kernel::Links& links, kernel::IpsetRunner& ipsets,
                        kernel::IptablesRunner& iptables);

 private:
  kernel::IpsetRunner& ipsets_;
  kernel::IptablesRunner& iptables_;
  IpvsModeOptions options_;
  IpvsProxier proxier_;
  std::map<std::string, kernel::IpsetSpec> applied_sets_;
  std::optional<std::string> applied_rules_;
  bool jumps_ensured_ = false;
};

}  // namespace kproxy::ipvs
