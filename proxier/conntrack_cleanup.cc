#include "kproxy/proxier/conntrack_cleanup.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <utility>

namespace kproxy::proxier {
namespace {

using kernel::Flow;
using kernel::FlowProtocol;

// UDP and SCTP are the protocols whose flows outlive a backend: a UDP "connection" never
// ends while packets keep coming, and an SCTP association to a removed pod would hang
// (kube-proxy only cleans UDP; docs/conntrack.md has the history).
std::optional<FlowProtocol> cleaned_protocol(model::Protocol protocol) {
  switch (protocol) {
    case model::Protocol::kUdp:
      return FlowProtocol::kUdp;
    case model::Protocol::kSctp:
      return FlowProtocol::kSctp;
    case model::Protocol::kTcp:
      return std::nullopt;
  }
  return std::nullopt;
}

using Backend = std::pair<IpAddress, std::uint16_t>;
using Backends = std::set<Backend>;
// (protocol, address, port) of a Service frontend: cluster IP, external IP or LB IP.
using Frontend = std::tuple<FlowProtocol, IpAddress, std::uint16_t>;
// (protocol, node port).
using NodePort = std::pair<FlowProtocol, std::uint16_t>;

struct Frontends {
  // Each frontend maps to the serving endpoints behind it. Two service ports can claim one
  // frontend (external IPs are not checked for uniqueness by the API server): their sets are
  // merged, so a flow valid for either one survives.
  std::map<Frontend, Backends> addresses;
  std::map<NodePort, Backends> node_ports;
};

Frontends frontends_of(const Snapshot& snapshot) {
  Frontends out;
  for (const auto& [name, info] : snapshot.service_ports) {
    const auto protocol = cleaned_protocol(name.protocol);
    if (!protocol) continue;
    // kube-proxy's IsServing(): serving, whatever the traffic policies, topology or
    // terminating state say, so that a policy change does not cut flows that are still
    // answered (cleanup.go).
    Backends backends;
    for (const Endpoint& endpoint : info->endpoints) {
      if (endpoint.serving) backends.emplace(endpoint.ip, endpoint.port);
    }
    const std::uint16_t service_port = info->port;  // a lambda may not capture a binding (clang 14)
    auto add = [&](const IpAddress& ip) {
      if (ip.family() != snapshot.family || ip.is_unspecified()) return;
      auto& set = out.addresses[{*protocol, ip, service_port}];
      set.insert(backends.begin(), backends.end());
    };
    add(info->cluster_ip);
    for (const IpAddress& ip : info->external_ips) add(ip);
    for (const IpAddress& ip : info->load_balancer_vips) add(ip);
    if (info->node_port != 0) {
      auto& set = out.node_ports[{*protocol, info->node_port}];
      set.insert(backends.begin(), backends.end());
    }
  }
  return out;
}

}  // namespace

std::vector<Flow> stale_flows(const Snapshot* previous, const Snapshot& current, const std::vector<Flow>& flows,
                              const std::vector<IpAddress>& local_addresses) {
  if (previous != nullptr && previous->family != current.family) previous = nullptr;
  const Frontends now = frontends_of(current);
  Frontends gone;
  if (previous != nullptr) {
    for (auto& [frontend, backends] : frontends_of(*previous).addresses) {
      if (!now.addresses.contains(frontend)) gone.addresses.emplace(frontend, std::move(backends));
    }
    for (auto& [node_port, backends] : frontends_of(*previous).node_ports) {
      if (!now.node_ports.contains(node_port)) gone.node_ports.emplace(node_port, std::move(backends));
    }
  }
  const std::set<IpAddress> local(local_addresses.begin(), local_addresses.end());

  std::vector<Flow> stale;
  for (const Flow& flow : flows) {
    if (flow.protocol == FlowProtocol::kTcp) continue;  // TCP flows end by themselves
    if (flow.family() != current.family) continue;
    const Backend backend{flow.reply.src, flow.reply.src_port};
    bool is_stale = false;

    // As kube-proxy, a flow is checked both as a frontend flow and as a NodePort flow, and
    // either finding it stale is enough.
    const Frontend frontend{flow.protocol, flow.original.dst, flow.original.dst_port};
    if (auto it = now.addresses.find(frontend); it != now.addresses.end()) {
      is_stale = !it->second.contains(backend);
    } else if (gone.addresses.contains(frontend)) {
      is_stale = true;
    }
    if (!is_stale && local.contains(flow.original.dst)) {
      const NodePort node_port{flow.protocol, flow.original.dst_port};
      if (auto it = now.node_ports.find(node_port); it != now.node_ports.end()) {
        is_stale = !it->second.contains(backend);
      } else if (gone.node_ports.contains(node_port)) {
        is_stale = true;
      }
    }
    if (is_stale) stale.push_back(flow);
  }
  return stale;
}

bool conntrack_cleanup_needed(const Snapshot* previous, const Snapshot& current) {
  if (previous == nullptr || previous->family != current.family) return true;
  auto cleaned = [](const auto& entry) { return cleaned_protocol(entry.first.protocol).has_value(); };
  auto a = previous->service_ports.begin();
  auto b = current.service_ports.begin();
  const auto a_end = previous->service_ports.end();
  const auto b_end = current.service_ports.end();
  for (;;) {
    while (a != a_end && !cleaned(*a)) ++a;
    while (b != b_end && !cleaned(*b)) ++b;
    if (a == a_end || b == b_end) return a != a_end || b != b_end;
    if (a->first != b->first) return true;
    // Unchanged entries are shared between snapshots (snapshot.h): compare pointers first.
    if (a->second != b->second && *a->second != *b->second) return true;
    ++a;
    ++b;
  }
}

Expected<std::size_t> cleanup_stale_flows(kernel::ConntrackTable& table, const Snapshot* previous,
                                          const Snapshot& current, const std::vector<IpAddress>& local_addresses) {
  if (!conntrack_cleanup_needed(previous, current)) return std::size_t{0};
  auto flows = table.list(current.family, {FlowProtocol::kUdp, FlowProtocol::kSctp});
  if (!flows.ok()) return Error(flows.error());
  const std::vector<Flow> stale = stale_flows(previous, current, *flows, local_addresses);
  if (stale.empty()) return std::size_t{0};
  return table.remove(stale);
}

}  // namespace kproxy::proxier
