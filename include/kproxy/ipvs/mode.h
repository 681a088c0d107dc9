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
  // The family this instance serves; it overrides proxier.family and layout.family. A
  // dual-stack node runs two IpvsMode instances, one per family (kube-proxy's meta-proxier),
  // sharing one Ipvs handle, one Links (one kube-ipvs0) and one IpsetRunner, each with the
  // IptablesRunner of its family (ip6tables for IPv6). Each one only adds and removes the
  // virtual services, kube-ipvs0 addresses, sets (KUBE-6-... for IPv6) and rules of its
  // family, so neither undoes the other's.
  IpFamily family = IpFamily::kIPv4;
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
  // Both work on the tables of `iptables`'s family, and cleanup() destroys that family's sets
  // (KUBE-... for IPv4, KUBE-6-... for IPv6): --cleanup calls each once per family, with the
  // iptables and then the ip6tables runner (IPVS flushed and kube-ipvs0 deleted twice is
  // harmless). Both report what could not be removed.
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
