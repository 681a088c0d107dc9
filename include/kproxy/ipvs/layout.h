// The IPVS mode's ipsets and iptables rules (docs/ipvs.md, "Sets and rules"). Pure.
//
// IPVS does the DNAT; iptables still decides what is masqueraded, accepts Service traffic that
// other rules might drop, and refuses connections to a Service address on a port no Service
// has (k8s#72236). kube-proxy's IPVS mode keeps one set per purpose and a fixed rule set that
// matches them (pkg/proxy/ipvs/proxier.go: ipsetInfo, ipsetWithIptablesChain,
// writeIptablesRules); the names, types, entries and rules here are its, so an operator's
// `ipset list` and `iptables-save` read the same. Not yet: the external-IP ACCEPT rules that
// need `-m physdev` and a negated `-m addrtype`, and KUBE-IPVS-OUT-FILTER's `-m ipvs` drops.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "kproxy/iptables/render.h"
#include "kproxy/iptables/rules.h"
#include "kproxy/ipvs/plan.h"
#include "kproxy/kernel/ipset_runner.h"
#include "kproxy/proxier/snapshot.h"

namespace kproxy::ipvs {

struct LayoutOptions {
  IpFamily family = IpFamily::kIPv4;
  proxier::NodeFacts node;
  // The node's primary address: a load-balancer source range holding it lets the node reach
  // the load-balancer IP (KUBE-LOAD-BALANCER-SOURCE-IP).
  std::optional<IpAddress> node_ip;
  // The node addresses NodePorts are served on (plan.h's IpvsOptions::node_port_addresses).
  std::vector<IpAddress> node_port_addresses;
  bool skip_sctp = false;  // --sctp-userspace-mode
  bool masquerade_all = false;
  int masquerade_bit = 14;
  iptables::LocalDetector local_detector;
  bool random_fully = true;
};

struct Layout {
  // Every set kube-proxy's IPVS mode keeps, in its order, with this snapshot's entries
  // (possibly none).
  std::vector<kernel::IpsetSpec> sets;
  // The KUBE- chains of nat and filter (declared, hence flushed, by each restore) and the
  // jumps from the built-in chains.
  std::vector<iptables::Chain> nat;
  std::vector<iptables::Chain> filter;
  std::vector<iptables::BuiltinJump> jumps;

  const kernel::IpsetSpec* set(const std::string& name) const;
  // The iptables-restore payload of both tables (for --noflush).
  std::string restore_payload() const;
};

// `bound` is the desired state's addresses on kube-ipvs0 (KUBE-IPVS-IPS).
Layout build_layout(const proxier::Snapshot& snapshot, const DesiredState& desired, const LayoutOptions& options);

// The set names of the layout (for --cleanup, which destroys them after the rules are gone).
std::vector<std::string> layout_set_names(IpFamily family);
// The chains of the layout, per table (for --cleanup).
std::vector<std::string> layout_chain_names(kernel::Table table);

}  // namespace kproxy::ipvs
