#include "kproxy/sctp_userspace/table.h"

#include <algorithm>

namespace kproxy::sctp_userspace {

namespace {

// Endpoints of the table's family only (the proxier's snapshot holds no other; a stray one
// could never be reached from a single-family association).
std::vector<Target> targets(const std::vector<const proxier::Endpoint*>& endpoints, IpFamily family) {
  std::vector<Target> out;
  out.reserve(endpoints.size());
  for (const auto* e : endpoints) {
    if (e->ip.family() == family) out.push_back({e->ip, e->port});
  }
  return out;
}

template <typename T>
void keep_family(std::vector<T>& list, IpFamily family) {
  std::erase_if(list, [&](const T& x) { return x.family() != family; });
}

bool contains(const std::vector<Target>& list, const Target& t) {
  return std::find(list.begin(), list.end(), t) != list.end();
}

}  // namespace

bool PortEntry::serves(const Target& t) const { return contains(cluster, t) || contains(local, t); }

std::string_view to_string(FrontendKind kind) {
  switch (kind) {
    case FrontendKind::kClusterIp: return "cluster IP";
    case FrontendKind::kExternalIp: return "external IP";
    case FrontendKind::kLoadBalancer: return "load-balancer IP";
    case FrontendKind::kNodePort: return "NodePort";
  }
  return "?";
}

std::shared_ptr<const ProxyTable> ProxyTable::build(const proxier::Snapshot& snapshot, const TableOptions& options) {
  auto table = std::make_shared<ProxyTable>();
  table->family_ = snapshot.family;
  table->options_ = options;
  TableOptions& o = table->options_;
  keep_family(o.node_ips, snapshot.family);
  if (o.local_pod_cidr && o.local_pod_cidr->family() != snapshot.family) o.local_pod_cidr.reset();
  if (o.node_port_ips) keep_family(*o.node_port_ips, snapshot.family);
  for (const auto& [name, info_ptr] : snapshot.service_ports) {
    if (name.protocol != model::Protocol::kSctp) continue;
    const proxier::ServicePortInfo* info = info_ptr.get();
    const proxier::EndpointSelection sel = proxier::categorize_endpoints(*info, options.node);
    auto entry = std::make_unique<PortEntry>();
    entry->name = name;
    entry->cluster = targets(sel.cluster, snapshot.family);
    entry->local = targets(sel.local, snapshot.family);
    entry->has_any_endpoints = sel.has_any_endpoints;
    entry->internal_policy_local = info->internal_policy_local;
    entry->external_policy_local = info->external_policy_local;
    entry->affinity_seconds =
        info->session_affinity == model::SessionAffinity::kClientIP ? info->sticky_max_age_seconds : 0;
    entry->source_ranges = info->load_balancer_source_ranges;  // (as the proxier split them by family)
    entry->source_ranges_restricted =
        !info->load_balancer_source_ranges.empty() || !info->load_balancer_source_ranges_complete;
    const PortEntry* p = entry.get();
    auto add = [&](const IpAddress& ip, FrontendKind kind) {
      if (ip.family() != snapshot.family || ip.is_unspecified()) return;
      table->by_address_.try_emplace({ip, info->port}, Frontend{p, kind});
      table->service_addresses_.insert(ip);
    };
    add(info->cluster_ip, FrontendKind::kClusterIp);
    for (const auto& ip : info->external_ips) add(ip, FrontendKind::kExternalIp);
    for (const auto& ip : info->load_balancer_vips) add(ip, FrontendKind::kLoadBalancer);
    table->listen_ports_.insert(info->port);
    if (info->node_port != 0) {
      table->by_node_port_.try_emplace(info->node_port, Frontend{p, FrontendKind::kNodePort});
      table->listen_ports_.insert(info->node_port);
    }
    table->ports_.emplace(name, std::move(entry));
  }
  return table;
}

const PortEntry* ProxyTable::find(const proxier::ServicePortName& name) const {
  auto it = ports_.find(name);
  return it == ports_.end() ? nullptr : it->second.get();
}

bool ProxyTable::client_is_local(const IpAddress& client) const {
  if (options_.local_pod_cidr && options_.local_pod_cidr->contains(client)) return true;
  return std::find(options_.node_ips.begin(), options_.node_ips.end(), client) != options_.node_ips.end();
}

bool ProxyTable::node_port_address(const IpAddress& dst) const {
  if (service_addresses_.contains(dst)) return false;
  if (!options_.node_port_ips) return true;  // every local address (the raw socket only sees local ones)
  return std::find(options_.node_port_ips->begin(), options_.node_port_ips->end(), dst) != options_.node_port_ips->end();
}

bool ProxyTable::answers(const IpAddress& dst, std::uint16_t dport) const {
  if (by_address_.contains({dst, dport})) return true;
  return by_node_port_.contains(dport) && node_port_address(dst);
}

Decision ProxyTable::decide(const IpAddress& dst, std::uint16_t dport, const IpAddress& client) const {
  if (auto it = by_address_.find({dst, dport}); it != by_address_.end()) return decide_for(it->second, client);
  if (auto it = by_node_port_.find(dport); it != by_node_port_.end() && node_port_address(dst)) {
    return decide_for(it->second, client);
  }
  return {};
}

Decision ProxyTable::decide_for(const Frontend& f, const IpAddress& client) const {
  const PortEntry& p = *f.port;
  Decision d;
  d.port = &p;
  d.kind = f.kind;
  auto refuse = [&](Decision::Verdict v, std::string why) {
    d.verdict = v;
    d.reason = std::move(why);
    return d;
  };
  if (f.kind == FrontendKind::kLoadBalancer && p.source_ranges_restricted) {
    // (kube-proxy's allowFromNode, a range holding the node's IP letting the node in, is
    // this same test: the node's associations come from that IP.)
    const bool allowed =
        std::any_of(p.source_ranges.begin(), p.source_ranges.end(), [&](const Cidr& c) { return c.contains(client); });
    if (!allowed) return refuse(Decision::Verdict::kDrop, "client not in loadBalancerSourceRanges");
  }
  bool use_local = false;
  if (f.kind == FrontendKind::kClusterIp) {
    use_local = p.internal_policy_local;
  } else {
    use_local = p.external_policy_local && !client_is_local(client);
  }
  d.candidates = use_local ? &p.local : &p.cluster;
  if (!d.candidates->empty()) {
    d.verdict = Decision::Verdict::kForward;
    return d;
  }
  if (!p.has_any_endpoints) return refuse(Decision::Verdict::kReject, "service has no endpoints");
  return refuse(use_local ? Decision::Verdict::kDrop : Decision::Verdict::kReject,
                use_local ? "no local endpoints" : "no usable endpoints");
}

std::optional<Target> AffinityTable::pick(const PortEntry& port, const IpAddress& client,
                                          const std::vector<Target>& candidates, const std::set<Target>& excluded,
                                          Clock::time_point now, std::mt19937_64& rng) {
  std::vector<const Target*> usable;
  usable.reserve(candidates.size());
  for (const auto& t : candidates) {
    if (!excluded.contains(t)) usable.push_back(&t);
  }
  if (usable.empty()) return std::nullopt;
  const auto key = std::make_pair(port.name, client);
  if (port.affinity_seconds != 0) {
    if (auto it = entries_.find(key); it != entries_.end() && it->second.expires > now) {
      const Target remembered = it->second.target;
      if (std::any_of(usable.begin(), usable.end(), [&](const Target* t) { return *t == remembered; })) {
        it->second.expires = now + std::chrono::seconds(port.affinity_seconds);
        return remembered;
      }
    }
  }
  std::uniform_int_distribution<std::size_t> dist(0, usable.size() - 1);
  const Target chosen = *usable[dist(rng)];
  if (port.affinity_seconds != 0) entries_[key] = {chosen, now + std::chrono::seconds(port.affinity_seconds)};
  return chosen;
}

void AffinityTable::expire(Clock::time_point now) {
  std::erase_if(entries_, [&](const auto& kv) { return kv.second.expires <= now; });
}

}  // namespace kproxy::sctp_userspace
