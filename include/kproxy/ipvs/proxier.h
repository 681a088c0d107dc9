// IpvsProxier: the IPVS backend's sync (docs/ipvs.md, "Syncs"). Each sync:
//   1. ensures the dummy device kube-ipvs0 (recreated if it vanished);
//   2. computes the desired state (plan.h) from the snapshot and the node's addresses;
//   3. compares it with the kernel's state, read from IPVS at the first sync, after any
//      failure, and for the services whose TCP destinations still drain; otherwise the state
//      the last sync left, so a sync costs what changed, not a dump of every service;
//   4. sends the plan as one batch; a change the kernel refuses is logged and counted with
//      its Service port and the netlink error, and the others still apply;
//   5. binds the virtual service addresses to kube-ipvs0 and unbinds the ones no longer used.
// Nothing here knows sockets: the Ipvs and Links adapters are passed in (fakes in unit tests,
// the real ones in the vm tests).
#pragma once

#include <cstddef>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "kproxy/ipvs/plan.h"
#include "kproxy/kernel/ipvs.h"
#include "kproxy/kernel/links.h"
#include "kproxy/proxier/proxier_loop.h"

namespace kproxy::ipvs {

inline constexpr const char* kDummyDevice = "kube-ipvs0";

struct IpvsProxierOptions {
  std::string scheduler = "rr";
  IpFamily family = IpFamily::kIPv4;
  bool skip_sctp = false;  // --sctp-userspace-mode
  // --nodeport-addresses: NodePorts are served on the node's addresses inside these; empty:
  // on every address of the family (loopback and IPv6 link-local excluded, as kube-proxy).
  std::vector<Cidr> node_port_cidrs;
  std::vector<Cidr> exclude_cidrs;  // --ipvs-exclude-cidrs
};

struct IpvsSyncStats {
  std::size_t changes = 0;   // sent in the last sync
  std::size_t refused = 0;   // of those, refused by the kernel
  std::size_t draining = 0;  // TCP destinations at weight 0 waiting for their connections
  std::size_t services = 0;  // virtual services wanted
};

class IpvsProxier final : public proxier::ProxierBackend {
 public:
  IpvsProxier(kernel::Ipvs& ipvs, kernel::Links& links, IpvsProxierOptions options);

  Status sync(const proxier::SyncRequest& request) override;
  const IpvsSyncStats& last_sync() const { return stats_; }
  // What the last sync wanted, and the node addresses it served NodePorts on (the IPVS mode's
  // sets are built from them).
  const DesiredState& last_desired() const { return desired_; }
  const std::vector<IpAddress>& last_node_port_addresses() const { return node_port_addresses_; }

  // --cleanup: every IPVS virtual service (kproxy's or not, as kube-proxy) and kube-ipvs0.
  static Status cleanup(kernel::Ipvs& ipvs, kernel::Links& links);

 private:
  Expected<std::vector<KernelServer>> read_kernel();
  void remember(const std::vector<kernel::IpvsChange>& changes, const std::vector<Status>& results);
  // The addresses of `all` NodePorts are served on.
  std::vector<IpAddress> node_port_addresses(const std::vector<std::pair<std::string, IpAddress>>& all) const;

  kernel::Ipvs& ipvs_;
  kernel::Links& links_;
  IpvsProxierOptions options_;
  // The kernel's state as the last sync left it; nullopt: read it again.
  std::optional<std::vector<KernelServer>> known_;
  IpvsSyncStats stats_;
  DesiredState desired_;
  std::vector<IpAddress> node_port_addresses_;
};

}  // namespace kproxy::ipvs
