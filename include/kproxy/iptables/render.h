// The iptables renderer: a pure function from a proxier Snapshot to kube-proxy's rule set.
//
// It follows syncProxyRules in kube-proxy's pkg/proxy/iptables/proxier.go rule by rule
// (chain names, argument order, comments), so an operator's iptables-save looks the same
// under kproxy as under kube-proxy. docs/iptables.md lists every chain and rule it writes.
// Nothing here touches the kernel: the IptablesProxier (proxier.h) applies the result.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "kproxy/ip.h"
#include "kproxy/iptables/rules.h"
#include "kproxy/kernel/ipset_runner.h"
#include "kproxy/proxier/endpoint_selection.h"
#include "kproxy/proxier/snapshot.h"

namespace kproxy::iptables {

// Chain names kube-proxy uses; operators and their tools grep for them.
inline constexpr const char* kServicesChain = "KUBE-SERVICES";
inline constexpr const char* kExternalServicesChain = "KUBE-EXTERNAL-SERVICES";
inline constexpr const char* kNodePortsChain = "KUBE-NODEPORTS";
inline constexpr const char* kPostroutingChain = "KUBE-POSTROUTING";
inline constexpr const char* kMarkMasqChain = "KUBE-MARK-MASQ";
inline constexpr const char* kForwardChain = "KUBE-FORWARD";
inline constexpr const char* kProxyFirewallChain = "KUBE-PROXY-FIREWALL";
inline constexpr const char* kKubeletFirewallChain = "KUBE-FIREWALL";
inline constexpr const char* kCanaryChain = "KUBE-PROXY-CANARY";
// The lean layout's hairpin set (kube-proxy's IPVS mode uses the same name and type for the
// same purpose): "EP_IP,PROTO:PORT,EP_IP" for every endpoint a Service DNATs to. The IPv6
// proxier's set is KUBE-6-LOOP-BACK (family inet6), as kube-proxy names its IPv6 sets.
inline constexpr const char* kLoopBackSet = "KUBE-LOOP-BACK";
inline constexpr const char* kLoopBackSet6 = "KUBE-6-LOOP-BACK";
inline const char* loop_back_set_name(IpFamily family) {
  return family == IpFamily::kIPv6 ? kLoopBackSet6 : kLoopBackSet;
}
inline constexpr const char* kLoopBackSetType = "hash:ip,port,ip";

// How "traffic from inside the cluster" is recognised (--detect-local-mode), as kube-proxy's
// LocalTrafficDetector: by source CIDR (ClusterCIDR, NodeCIDR), by input bridge
// (BridgeInterface) or by input interface name prefix (InterfaceNamePrefix). kNone is
// kube-proxy's no-op detector: no "not local" masquerade rule and no pod short-circuit.
struct LocalDetector {
  enum class Mode { kNone, kCidr, kInterface, kInterfacePrefix };
  Mode mode = Mode::kNone;
  Cidr cidr;              // kCidr
  std::string interface;  // kInterface (a bridge name) or kInterfacePrefix

  bool implemented() const { return mode != Mode::kNone; }
  // The match for local traffic, and its negation. Only meaningful when implemented().
  Term if_local() const;
  Term if_not_local() const;

  bool operator==(const LocalDetector&) const = default;
};

struct RenderOptions {
  IpFamily family = IpFamily::kIPv4;
  // Node name and zone, for endpoint selection.
  proxier::NodeFacts node;
  // The node's primary IP of this family: a loadBalancerSourceRange containing it also lets
  // the node reach the LB IPs (kube-proxy's allowFromNode).
  std::optional<IpAddress> node_ip;
  LocalDetector local_detector;
  bool masquerade_all = false;
  // The fwmark bit for SNAT (--iptables-masquerade-bit, 0-31; default 14 -> 0x4000).
  int masquerade_bit = 14;
  // --nodeport-addresses: nullopt accepts NodePorts on every local address (one
  // "-m addrtype --dst-type LOCAL" rule); otherwise the local IPs selected by those CIDRs,
  // resolved by the caller (one "-d IP" rule each).
  std::optional<std::vector<IpAddress>> node_port_ips;
  // iptables.localhostNodePorts (IPv4 only): NodePorts answer on 127.0.0.1 and the
  // CVE-2020-8558 localnet rule is written.
  bool localhost_nodeports = true;
  // MASQUERADE --random-fully (iptables >= 1.6.2; every supported distribution has it).
  bool random_fully = true;
  // Drop conntrack-INVALID forwarded packets; false when nf_conntrack_tcp_be_liberal is set.
  bool drop_invalid = true;
  // Above this many endpoints in total, per-endpoint comments are left out (kube-proxy's
  // largeClusterEndpointsThreshold).
  std::size_t large_cluster_endpoints_threshold = 1000;

  // kKubeProxy: kube-proxy's layout, rule for rule. kKproxy: the same chains per service, but
  // nat KUBE-SERVICES dispatches on the destination address through a tree of KUBE-SVCS-
  // chains, so a new connection is matched against O(log n) rules instead of n
  // (docs/iptables.md, "Dispatch tree").
  enum class Layout { kKubeProxy, kKproxy };
  Layout layout = Layout::kKubeProxy;
  // Dispatch tree levels: each splits on two more low bits of the destination address, so
  // the tree has 4^depth leaves. 6 keeps ~2.5 frontends per leaf at 10,000 Services and the
  // deepest jump path within nf_tables' limit of 15 chains (docs/iptables.md).
  int dispatch_depth = 6;
  // Lean endpoint rules (kKproxy layout only; docs/iptables.md, "Lean endpoint rules"): no
  // KUBE-SEP- chains, one DNAT rule per endpoint in the KUBE-SVC-/KUBE-SVL- chain, and the
  // hairpin masquerade decided once, in KUBE-POSTROUTING, by the KUBE-LOOP-BACK ipset.
  bool lean_endpoints = false;

  // --sctp-userspace-mode: no rule names SCTP (no -p sctp, no -m sctp), so SCTP Service ports
  // get no rules at all until the userspace SCTP proxy takes them (docs/sctp-userspace.md).
  bool sctp_userspace = false;

  bool lean() const { return layout == Layout::kKproxy && lean_endpoints; }

  std::uint32_t masquerade_mark() const { return std::uint32_t{1} << masquerade_bit; }

  bool operator==(const RenderOptions&) const = default;
};

// A rule kube-proxy keeps in a built-in chain (INPUT, FORWARD, OUTPUT, PREROUTING,
// POSTROUTING): ensured with "iptables -C" / "-I CHAIN 1" on full syncs, never restored.
// Facts the renderer learned, for metrics and the health-check servers.
struct RenderStats {
  // Service ports whose internal / external traffic is dropped for want of local endpoints
  // (kubeproxy_sync_proxy_rules_no_local_endpoints_total{traffic_policy=internal|external}).
  int no_local_endpoints_internal = 0;
  int no_local_endpoints_external = 0;
  std::size_t total_endpoints = 0;
  bool large_cluster_mode = false;
  // SCTP Service ports left without rules by RenderOptions::sctp_userspace.
  int sctp_ports_not_proxied = 0;
};

// What one service port contributes to the rule set: its own nat chains, and its rules in the
// shared chains. Rendered from its ServicePortInfo and the RenderOptions alone, so a port that
// did not change keeps its PortRules from one sync to the next (Renderer).
struct PortRules {
  std::vector<Chain> chains;  // KUBE-SVC-, KUBE-SVL-, KUBE-EXT-, KUBE-FW-, KUBE-SEP-
  std::vector<Rule> filter_services, filter_external, filter_nodeports, filter_firewall;
  std::vector<Rule> nat_services, nat_nodeports;
  // For each of nat_services, the IPv4 host address the dispatch tree files it under (none:
  // it stays in KUBE-SERVICES itself); computed once, when the port is rendered.
  std::vector<std::optional<std::uint32_t>> nat_service_addresses;
  std::vector<std::string> loop_back;  // KUBE-LOOP-BACK entries (lean layout), sorted
  int no_local_endpoints_internal = 0;
  int no_local_endpoints_external = 0;
  bool sctp_not_proxied = false;  // RenderOptions::sctp_userspace left it without rules

  bool operator==(const PortRules&) const = default;
};

struct RenderedRules {
  // Chains rewritten on every sync, in the order kube-proxy declares them.
  std::vector<Chain> filter;  // KUBE-SERVICES, KUBE-EXTERNAL-SERVICES, KUBE-FORWARD, KUBE-NODEPORTS,
                              // KUBE-PROXY-FIREWALL [, KUBE-FIREWALL]
  std::vector<Chain> nat;     // KUBE-SERVICES, KUBE-NODEPORTS, KUBE-POSTROUTING, KUBE-MARK-MASQ
  // Every service port's rules; its nat chains are what a partial sync writes for the ports
  // that changed. Shared with the Renderer's cache, and between successive syncs for ports
  // that did not change.
  std::map<proxier::ServicePortName, std::shared_ptr<const PortRules>> ports;
  // The dispatch tree under nat KUBE-SERVICES (kKproxy layout, IPv4; empty otherwise),
  // ordered by name. A chain whose rules did not change since the last render is the same
  // object, so a sync finds the chains to write by comparing pointers.
  std::vector<std::shared_ptr<const Chain>> nat_dispatch;
  // The ipsets the rules reference (the lean layout's KUBE-LOOP-BACK; empty otherwise), to be
  // applied before the rules. Shared with the Renderer, which updates a set in place when
  // nothing else holds it (so drop a result before rendering the next one).
  std::vector<std::shared_ptr<const kernel::IpsetSpec>> ipsets;
  // For each of `ipsets`, the entries added and removed since the result of the same Renderer
  // numbered `since` (its previous one); since == 0: no previous result to compare with.
  struct IpsetChange {
    std::uint64_t since = 0;
    std::vector<std::string> added, removed;
  };
  std::vector<IpsetChange> ipset_changes;
  // Numbers a Renderer's results 1, 2, ... (0: rendered without a Renderer's history).
  std::uint64_t generation = 0;
  RenderStats stats;

  // Every chain of `table` (top-level, dispatch and per-service), or nullptr.
  const Chain* find(Table table, const std::string& name) const;
  // The nat chains of one service port (empty when it has none).
  const std::vector<Chain>& service_chains(const proxier::ServicePortName& name) const;
  // Rules in every chain of each table.
  std::size_t filter_rule_count() const;
  std::size_t nat_rule_count() const;
};

// Renders snapshots, remembering each service port's PortRules and the dispatch tree between
// calls: a port whose ServicePortInfo did not change (the same object, or an equal one) under
// the same options is not rendered again, and only the dispatch leaves whose rules changed are
// rebuilt. So a sync after one endpoint changed costs in proportion to that change plus a walk
// over the ports, not a render of the whole cluster. The result is always what a fresh
// render() of the snapshot gives.
//
// The dispatch tree (kKproxy layout, IPv4): nat KUBE-SERVICES's rules that match one
// destination host address ("-d IP") move into a fixed-shape 4-ary trie keyed on the
// address's LOW bits: level L (root = 0) jumps by "-d V/M" (M selecting the low 2(L+1) bits)
// to at most four children; the rules sit in the chains of level `dispatch_depth`, in their
// original order. Low bits, because cluster IPs are allocated at random within the service
// CIDR, so the low bits spread evenly whatever its size, and the shape depends only on which
// keys are present: adding a frontend writes its leaf and at most one new chain per level.
// Rules without a host destination stay in KUBE-SERVICES after the tree's jumps.
class Renderer {
 public:
  RenderedRules render(const proxier::Snapshot& snapshot, const RenderOptions& options);

  // Ports rendered (not taken from the cache) by the last render(), for tests and logs.
  std::size_t last_rendered_ports() const { return last_rendered_ports_; }

 private:
  struct CachedPort {
    std::shared_ptr<const proxier::ServicePortInfo> info;
    std::shared_ptr<const PortRules> rules;
  };
  void reset(const RenderOptions& options, bool large_cluster);
  void rebuild_dispatch(const std::set<std::uint32_t>& dirty_leaves);
  // KUBE-LOOP-BACK after this render; `touched` holds the entries whose count went through 0
  // (with whether they were in the set before), `change` gets the difference.
  std::shared_ptr<const kernel::IpsetSpec> loop_back_set(const std::map<std::string, bool>& touched, bool ipv6,
                                                         RenderedRules::IpsetChange& change);

  std::optional<RenderOptions> options_;
  bool large_cluster_ = false;
  std::map<proxier::ServicePortName, CachedPort> ports_;
  // The tree: which ports have rules in each leaf (keyed by the leaf's low address bits), the
  // non-port rules of each leaf (the NodePort tail with --nodeport-addresses), and every
  // dispatch chain by name.
  std::map<std::uint32_t, std::set<proxier::ServicePortName>> leaf_ports_;
  std::map<std::uint32_t, std::vector<Rule>> leaf_tail_;
  std::map<std::string, std::shared_ptr<const Chain>> dispatch_;
  // KUBE-LOOP-BACK entries with the number of ports that need each, the set as last
  // returned, and the results numbered so far.
  std::map<std::string, int> loop_back_;
  std::shared_ptr<kernel::IpsetSpec> loop_back_spec_;
  std::uint64_t generation_ = 0;
  std::size_t last_rendered_ports_ = 0;
};

// A fresh render of `snapshot` (a Renderer with nothing cached).
RenderedRules render(const proxier::Snapshot& snapshot, const RenderOptions& options);

// The iptables-restore blocks of one sync (filter, then nat): every top-level chain and
// dispatch chain, the service chains of the ports in `write` (of every port when `write` is
// nullptr: a full sync), and "-X" for each of `stale_chains`. Pointers point into `rules`.
std::vector<TableBlock> sync_blocks(const RenderedRules& rules, const std::set<proxier::ServicePortName>* write,
                                    const std::vector<std::string>& stale_chains);

// The jumps from built-in chains, in the order kube-proxy ensures them (each one is
// inserted at position 1, so a fresh table holds them in reverse order).
std::vector<BuiltinJump> builtin_jumps(const RenderOptions& options);

// KUBE-SVC-<hash> etc.: kube-proxy's chain names for a service port and an endpoint.
std::string service_chain_name(const proxier::ServicePortName& name);          // KUBE-SVC-
std::string local_service_chain_name(const proxier::ServicePortName& name);    // KUBE-SVL-
std::string external_chain_name(const proxier::ServicePortName& name);         // KUBE-EXT-
std::string firewall_chain_name(const proxier::ServicePortName& name);         // KUBE-FW-
std::string endpoint_chain_name(const proxier::ServicePortName& name, const proxier::Endpoint& endpoint);  // KUBE-SEP-

// Whether `chain` is a chain kproxy (or kube-proxy) creates per service or per dispatch node
// in nat, and deletes when no longer used: the prefixes KUBE-SVC-, KUBE-SVL-, KUBE-EXT-,
// KUBE-FW-, KUBE-SEP- and KUBE-SVCS- (dispatch tree).
bool is_service_chain(std::string_view chain);

// The prefix of dispatch tree chains: "KUBE-SVCS-" + the level + "-" + the value of the
// address's low 2*level bits in hex ("KUBE-SVCS-3-02A").
inline constexpr const char* kDispatchChainPrefix = "KUBE-SVCS-";


}  // namespace kproxy::iptables
