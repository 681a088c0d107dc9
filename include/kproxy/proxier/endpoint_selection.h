// Endpoint selection: which endpoints of a service port this node sends traffic to, under the
// traffic policies, topology hints and the terminating-endpoint fallback.
//
// A pure function, transcribed from kube-proxy's CategorizeEndpoints and
// topologyModeFromHints (pkg/proxy/topology.go); docs/proxier.md states the rules.
#pragma once

#include <string>
#include <vector>

#include "kproxy/proxier/snapshot.h"

namespace kproxy::proxier {

// What selection needs to know about this node.
struct NodeFacts {
  std::string name;
  // The node's topology.kubernetes.io/zone label; empty when absent.
  std::string zone;

  bool operator==(const NodeFacts&) const = default;
};

// kube-proxy's topology modes: "" (no filtering), PreferSameZone, PreferSameNode.
enum class TopologyMode { kNone, kPreferSameZone, kPreferSameNode };

struct EndpointSelection {
  // Usable endpoints for Cluster policy, topology applied; empty when the port never uses
  // Cluster policy (uses_cluster_endpoints() is false).
  std::vector<const Endpoint*> cluster;
  // Usable local endpoints for Local policy; empty when the port never uses Local policy.
  std::vector<const Endpoint*> local;
  // The union of the two, in the order of port.endpoints (the tracker sorts them by
  // Endpoint::to_string()): every endpoint that needs a KUBE-SEP chain (or an IPVS real
  // server).
  std::vector<const Endpoint*> all_reachable;
  // Some endpoint anywhere in the cluster is usable (Ready, or serving and terminating).
  // Decides REJECT ("has no endpoints") against DROP ("has no local endpoints").
  bool has_any_endpoints = false;
  // The mode chosen for `cluster` (kNone when Cluster policy is not used).
  TopologyMode topology_mode = TopologyMode::kNone;
};

// The pointers in the result point into `port.endpoints`.
EndpointSelection categorize_endpoints(const ServicePortInfo& port, const NodeFacts& node);

// kube-proxy's topologyModeFromHints, exposed for tests and logs.
TopologyMode topology_mode_from_hints(const std::vector<Endpoint>& endpoints, const NodeFacts& node);

}  // namespace kproxy::proxier
