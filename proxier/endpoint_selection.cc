#include "kproxy/proxier/endpoint_selection.h"

#include <algorithm>
#include <functional>
#include <iterator>

namespace kproxy::proxier {

namespace {

bool contains(const std::vector<std::string>& values, const std::string& value) {
  return std::find(values.begin(), values.end(), value) != values.end();
}

bool available_for_topology(const Endpoint& endpoint, TopologyMode mode, const NodeFacts& node) {
  switch (mode) {
    case TopologyMode::kNone:
      return true;
    case TopologyMode::kPreferSameNode:
      return contains(endpoint.node_hints, node.name);
    case TopologyMode::kPreferSameZone:
      return contains(endpoint.zone_hints, node.zone);
  }
  return false;
}

std::vector<const Endpoint*> filter(const std::vector<Endpoint>& endpoints,
                                    const std::function<bool(const Endpoint&)>& keep) {
  std::vector<const Endpoint*> out;
  for (const Endpoint& endpoint : endpoints) {
    if (keep(endpoint)) out.push_back(&endpoint);
  }
  return out;
}

bool serving_terminating(const Endpoint& endpoint) { return endpoint.serving && endpoint.terminating; }

}  // namespace

TopologyMode topology_mode_from_hints(const std::vector<Endpoint>& endpoints, const NodeFacts& node) {
  bool has_ready = false;
  bool has_for_node = false;
  bool all_have_node_hints = true;
  bool has_for_zone = false;
  bool all_have_zone_hints = true;
  for (const Endpoint& endpoint : endpoints) {
    if (!endpoint.ready) continue;
    has_ready = true;
    if (endpoint.node_hints.empty()) {
      all_have_node_hints = false;
    } else if (contains(endpoint.node_hints, node.name)) {
      has_for_node = true;
    }
    if (endpoint.zone_hints.empty()) {
      all_have_zone_hints = false;
    } else if (contains(endpoint.zone_hints, node.zone)) {
      has_for_zone = true;
    }
  }
  if (!has_ready) return TopologyMode::kNone;
  // Node hints are only present when the tracker reads them (the PreferSameTrafficDistribution
  // gate), so the gate is not checked again here.
  if (all_have_node_hints && has_for_node) return TopologyMode::kPreferSameNode;
  if (all_have_zone_hints && has_for_zone) return TopologyMode::kPreferSameZone;
  return TopologyMode::kNone;
}

EndpointSelection categorize_endpoints(const ServicePortInfo& port, const NodeFacts& node) {
  EndpointSelection out;
  const std::vector<Endpoint>& endpoints = port.endpoints;
  if (endpoints.empty()) return out;

  if (port.uses_cluster_endpoints()) {
    out.topology_mode = topology_mode_from_hints(endpoints, node);
    out.cluster = filter(endpoints, [&](const Endpoint& endpoint) {
      return endpoint.ready && available_for_topology(endpoint, out.topology_mode, node);
    });
    // No Ready endpoint for the chosen topology means none anywhere (a mode is only chosen
    // when some Ready endpoint matches it), so fall back to serving-terminating ones,
    // ignoring topology.
    if (out.cluster.empty()) out.cluster = filter(endpoints, serving_terminating);
    if (!out.cluster.empty()) out.has_any_endpoints = true;
  }

  if (!port.uses_local_endpoints()) {
    out.all_reachable = out.cluster;
    return out;
  }

  bool has_local_ready = false;
  bool has_local_serving_terminating = false;
  for (const Endpoint& endpoint : endpoints) {
    if (endpoint.ready) {
      out.has_any_endpoints = true;
      if (endpoint.is_local) has_local_ready = true;
    } else if (serving_terminating(endpoint)) {
      out.has_any_endpoints = true;
      if (endpoint.is_local) has_local_serving_terminating = true;
    }
  }
  bool local_uses_terminating = false;
  if (has_local_ready) {
    out.local = filter(endpoints, [](const Endpoint& endpoint) { return endpoint.is_local && endpoint.ready; });
  } else if (has_local_serving_terminating) {
    local_uses_terminating = true;
    out.local = filter(endpoints,
                       [](const Endpoint& endpoint) { return endpoint.is_local && serving_terminating(endpoint); });
  }

  if (!port.uses_cluster_endpoints()) {
    out.all_reachable = out.local;
    return out;
  }
  if (out.topology_mode == TopologyMode::kNone && !local_uses_terminating) {
    // `cluster` holds every Ready endpoint and `local` only Ready ones: a superset.
    out.all_reachable = out.cluster;
    return out;
  }
  // Both lists are in endpoint order (sorted by IP:port), so their union is too.
  // The pointers point into one vector, so address order is endpoint order.
  const auto by_position = [](const Endpoint* a, const Endpoint* b) { return a < b; };
  std::vector<const Endpoint*> cluster = out.cluster;
  std::vector<const Endpoint*> local = out.local;
  std::sort(cluster.begin(), cluster.end(), by_position);
  std::sort(local.begin(), local.end(), by_position);
  std::set_union(cluster.begin(), cluster.end(), local.begin(), local.end(), std::back_inserter(out.all_reachable),
                 by_position);
  return out;
}

}  // namespace kproxy::proxier
