// The userspace SCTP proxy's view of the cluster: which destinations it answers (the SCTP
// Service ports' cluster IPs, external IPs, load-balancer IPs and NodePorts), and for a new
// association from a client, where it may go. Pure logic, built from the proxier's snapshot;
// the same endpoint selection and traffic-policy decisions as the iptables rules make
// (docs/sctp-userspace.md, "Endpoint selection").
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "kproxy/ip.h"
#include "kproxy/proxier/endpoint_selection.h"
#include "kproxy/proxier/snapshot.h"

namespace kproxy::sctp_userspace {

struct Target {
  IpAddress ip;
  std::uint16_t port = 0;
  std::string to_string() const { return join_host_port(ip, port); }
  auto operator<=>(const Target&) const = default;
};

// One SCTP service port, reduced to what a new association needs.
struct PortEntry {
  proxier::ServicePortName name;
  std::vector<Target> cluster;  // usable under Cluster policy (topology and fallback applied)
  std::vector<Target> local;    // usable under Local policy
  bool has_any_endpoints = false;
  bool internal_policy_local = false;
  bool external_policy_local = false;
  std::uint32_t affinity_seconds = 0;  // ClientIP affinity timeout; 0: no affinity
  // loadBalancerSourceRanges; `restricted` when the list is non-empty or some entry was refused
  // (fail closed, as the iptables renderer does).
  std::vector<Cidr> source_ranges;
  bool source_ranges_restricted = false;

  // Every endpoint either policy may use: an association to an endpoint outside this set is
  // aborted when a new table arrives.
  bool serves(const Target& t) const;
};

enum class FrontendKind { kClusterIp, kExternalIp, kLoadBalancer, kNodePort };
std::string_view to_string(FrontendKind kind);

// Everything in the options is of the table's family (the snapshot's); addresses of the other
// family are ignored (a dual-stack node builds one table per family, each from its own options).
struct TableOptions {
  proxier::NodeFacts node;
  // Pod traffic (detect-local by CIDR): external destinations reached from a local pod use
  // Cluster policy, as kube-proxy's KUBE-EXT- chains send them to KUBE-SVC-.
  std::optional<Cidr> local_pod_cidr;
  // The node's own addresses: traffic from them also uses Cluster policy (kube-proxy's
  // "--src-type LOCAL" rule), and a load-balancer source range containing the node's primary
  // address lets the node in (allowFromNode).
  std::vector<IpAddress> node_ips;
  // --nodeport-addresses resolved to local IPs; nullopt: NodePorts answer on every local
  // address that is not a Service address.
  std::optional<std::vector<IpAddress>> node_port_ips;
};

// What to do with a new association.
struct Decision {
  enum class Verdict { kForward, kReject, kDrop, kNotOurs };
  Verdict verdict = Verdict::kNotOurs;
  const PortEntry* port = nullptr;
  const std::vector<Target>* candidates = nullptr;  // non-empty when kForward
  FrontendKind kind = FrontendKind::kClusterIp;
  std::string reason;  // for kReject and kDrop, for logs
};

// One IP family's SCTP frontends (the snapshot's family: a dual-stack Service has one frontend
// in each family's table). An association is single-family end to end: its client, its
// frontend and its endpoint are all of the table's family.
class ProxyTable {
 public:
  static std::shared_ptr<const ProxyTable> build(const proxier::Snapshot& snapshot, const TableOptions& options);

  IpFamily family() const { return family_; }

  // A new association from `client` to `dst`:`dport`.
  Decision decide(const IpAddress& dst, std::uint16_t dport, const IpAddress& client) const;
  // Whether packets to `dst`:`dport` are the proxy's to answer (any frontend, endpoints or not).
  bool answers(const IpAddress& dst, std::uint16_t dport) const;

  const PortEntry* find(const proxier::ServicePortName& name) const;
  // The cluster, external and load-balancer IPs of SCTP ports: the addresses the node must
  // treat as local so that their SCTP packets reach the proxy (docs/sctp-userspace.md).
  const std::set<IpAddress>& service_addresses() const { return service_addresses_; }
  // Every port a client may connect to (service ports and NodePorts) in this family: the proxy
  // listens on the union of both families' ports.
  const std::set<std::uint16_t>& listen_ports() const { return listen_ports_; }
  std::size_t port_count() const { return ports_.size(); }

 private:
  struct Frontend {
    const PortEntry* port = nullptr;
    FrontendKind kind = FrontendKind::kClusterIp;
  };
  bool client_is_local(const IpAddress& client) const;
  bool node_port_address(const IpAddress& dst) const;
  Decision decide_for(const Frontend& f, const IpAddress& client) const;

  IpFamily family_ = IpFamily::kIPv4;
  TableOptions options_;
  std::map<proxier::ServicePortName, std::unique_ptr<PortEntry>> ports_;
  std::map<std::pair<IpAddress, std::uint16_t>, Frontend> by_address_;
  std::map<std::uint16_t, Frontend> by_node_port_;
  std::set<IpAddress> service_addresses_;
  std::set<std::uint16_t> listen_ports_;
};

// ClientIP session affinity, as iptables' "recent" match keeps it: the endpoint a client was
// last sent to, remembered for the port's timeout from that association on.
class AffinityTable {
 public:
  using Clock = std::chrono::steady_clock;

  // An endpoint from `candidates` not in `excluded`: the remembered one when it still
  // qualifies, else a uniformly random one; records the choice. nullopt when none is left.
  std::optional<Target> pick(const PortEntry& port, const IpAddress& client, const std::vector<Target>& candidates,
                             const std::set<Target>& excluded, Clock::time_point now, std::mt19937_64& rng);
  // Drops expired entries (call now and then; bounded by clients seen within a timeout).
  void expire(Clock::time_point now);
  std::size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    Target target;
    Clock::time_point expires;
  };
  std::map<std::pair<proxier::ServicePortName, IpAddress>, Entry> entries_;
};

}  // namespace kproxy::sctp_userspace
