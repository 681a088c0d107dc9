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
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "kproxy/ip.h"
#include "kproxy/iptables/rules.h"
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

  std::uint32_t masquerade_mark() const { return std::uint32_t{1} << masquerade_bit; }
};

// A rule kube-proxy keeps in a built-in chain (INPUT, FORWARD, OUTPUT, PREROUTING,
// POSTROUTING): ensured with "iptables -C" / "-I CHAIN 1" on full syncs, never restored.
struct BuiltinJump {
  Table table = Table::kFilter;
  std::string chain;  // the built-in chain
  Rule rule;
};

// Facts the renderer learned, for metrics and the health-check servers.
struct RenderStats {
  // Service ports whose internal / external traffic is dropped for want of local endpoints
  // (kubeproxy_sync_proxy_rules_no_local_endpoints_total{traffic_policy=internal|external}).
  int no_local_endpoints_internal = 0;
  int no_local_endpoints_external = 0;
  std::size_t total_endpoints = 0;
  bool large_cluster_mode = false;
};

struct RenderedRules {
  // Chains rewritten on every sync, in the order kube-proxy declares them.
  std::vector<Chain> filter;  // KUBE-SERVICES, KUBE-EXTERNAL-SERVICES, KUBE-FORWARD, KUBE-NODEPORTS,
                              // KUBE-PROXY-FIREWALL [, KUBE-FIREWALL]
  std::vector<Chain> nat;     // KUBE-SERVICES, KUBE-NODEPORTS, KUBE-POSTROUTING, KUBE-MARK-MASQ
  // The nat chains of each service port (KUBE-SVC-, KUBE-SVL-, KUBE-EXT-, KUBE-FW-,
  // KUBE-SEP-), which a partial sync writes only for the ports that changed.
  std::map<proxier::ServicePortName, std::vector<Chain>> service_chains;
  RenderStats stats;

  // Every chain of `table` (top-level and per-service), or nullptr.
  const Chain* find(Table table, const std::string& name) const;
};

RenderedRules render(const proxier::Snapshot& snapshot, const RenderOptions& options);

// The iptables-restore blocks of one sync (filter, then nat): every top-level chain, the
// service chains of the ports in `write` (of every port when `write` is nullptr: a full
// sync), and "-X" for each of `stale_chains`. Pointers point into `rules`.
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

// Whether `chain` is a per-service chain name kube-proxy (and kproxy) owns in nat: the
// prefixes KUBE-SVC-, KUBE-SVL-, KUBE-EXT-, KUBE-FW-, KUBE-SEP-.
bool is_service_chain(std::string_view chain);

}  // namespace kproxy::iptables
