// The IPVS state a snapshot asks for, and the plan that reaches it (include/kproxy/ipvs/plan.h).
#include "kproxy/ipvs/plan.h"

#include <algorithm>
#include <map>
#include <tuple>

namespace kproxy::ipvs {

using kernel::IpvsChange;
using kernel::IpvsDestination;
using kernel::IpvsService;

namespace {

bool destination_less(const IpvsDestination& a, const IpvsDestination& b) {
  return std::tie(a.address, a.port) < std::tie(b.address, b.port);
}

std::vector<IpvsDestination> destinations_of(const std::vector<const proxier::Endpoint*>& endpoints, IpFamily family) {
  std::vector<IpvsDestination> out;
  out.reserve(endpoints.size());
  for (const proxier::Endpoint* e : endpoints) {
    if (e->ip.family() != family) continue;
    IpvsDestination d;
    d.address = e->ip;
    d.port = e->port;
    d.weight = 1;
    out.push_back(d);
  }
  std::sort(out.begin(), out.end(), destination_less);
  out.erase(std::unique(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.same_key(b); }), out.end());
  return out;
}

}  // namespace

bool service_key_less(const IpvsService& a, const IpvsService& b) { return service_key(a) < service_key(b); }

DesiredState build_desired(const proxier::Snapshot& snapshot, const IpvsOptions& options) {
  DesiredState out;
  std::map<ServiceKey, VirtualServer> servers;
  for (const auto& entry : snapshot.service_ports) {
    const proxier::ServicePortName& name = entry.first;  // a plain reference: lambdas capture it
    const proxier::ServicePortInfo& port = *entry.second;
    if (options.skip_sctp && name.protocol == model::Protocol::kSctp) continue;
    const proxier::EndpointSelection selection = proxier::categorize_endpoints(port, options.node);
    const auto internal = destinations_of(port.internal_policy_local ? selection.local : selection.cluster, options.family);
    const auto external = destinations_of(port.external_policy_local ? selection.local : selection.cluster, options.family);
    // Returns whether the frontend is this proxier's family (only those are bound).
    auto add = [&](const IpAddress& address, std::uint16_t number, const std::vector<IpvsDestination>& dests) {
      if (address.family() != options.family) return false;
      VirtualServer vs;
      vs.owner = name;
      vs.service.address = address;
      vs.service.protocol = name.protocol;
      vs.service.port = number;
      vs.service.scheduler = options.scheduler;
      vs.service.netmask = address.is_v4() ? 0xffffffff : 128;
      if (options.scheduler == "mh") vs.service.flags |= kernel::kIpvsSched2;  // hash the source port too
      if (port.session_affinity == model::SessionAffinity::kClientIP) {
        vs.service.flags |= kernel::kIpvsPersistent;
        vs.service.timeout = port.sticky_max_age_seconds;
      }
      vs.destinations = dests;
      // Two service ports on one frontend (a Service's port colliding with another's external
      // IP): the first, in snapshot order, keeps it, as the kernel would refuse the second.
      servers.try_emplace(service_key(vs.service), std::move(vs));
      return true;
    };
    if (!port.cluster_ip.is_unspecified() && add(port.cluster_ip, port.port, internal)) {
      out.bound_addresses.push_back(port.cluster_ip);
    }
    for (const IpAddress& ip : port.external_ips) {
      if (add(ip, port.port, external)) out.bound_addresses.push_back(ip);
    }
    for (const IpAddress& ip : port.load_balancer_vips) {
      if (add(ip, port.port, external)) out.bound_addresses.push_back(ip);
    }
    if (port.node_port != 0) {
      for (const IpAddress& ip : options.node_port_addresses) add(ip, port.node_port, external);
    }
  }
  out.servers.reserve(servers.size());
  for (auto& [key, vs] : servers) out.servers.push_back(std::move(vs));
  std::sort(out.bound_addresses.begin(), out.bound_addresses.end());
  out.bound_addresses.erase(std::unique(out.bound_addresses.begin(), out.bound_addresses.end()),
                            out.bound_addresses.end());
  return out;
}

Plan plan(const DesiredState& desired, const std::vector<KernelServer>& actual, const PlanOptions& options) {
  Plan out;
  std::vector<IpvsChange> destination_changes;
  std::vector<IpvsChange> deletions;
  std::map<ServiceKey, const KernelServer*> have;
  for (const KernelServer& k : actual) have.emplace(service_key(k.service), &k);

  for (const VirtualServer& vs : desired.servers) {
    auto it = have.find(service_key(vs.service));
    const KernelServer* k = it == have.end() ? nullptr : it->second;
    if (k == nullptr) {
      out.changes.push_back({IpvsChange::Kind::kAddService, vs.service, {}});
    } else if (!(k->service == vs.service)) {
      out.changes.push_back({IpvsChange::Kind::kUpdateService, vs.service, {}});
    }
    if (it != have.end()) have.erase(it);
    // Destinations: both lists sorted by key, merged.
    std::vector<IpvsDestination> current = k != nullptr ? k->destinations : std::vector<IpvsDestination>{};
    std::sort(current.begin(), current.end(), destination_less);
    std::size_t i = 0, j = 0;
    while (i < vs.destinations.size() || j < current.size()) {
      const bool take_wanted =
          j == current.size() || (i < vs.destinations.size() && destination_less(vs.destinations[i], current[j]));
      const bool take_current =
          i == vs.destinations.size() || (j < current.size() && destination_less(current[j], vs.destinations[i]));
      if (take_wanted) {
        destination_changes.push_back({IpvsChange::Kind::kAddDestination, vs.service, vs.destinations[i++]});
      } else if (take_current) {
        const IpvsDestination& gone = current[j++];
        if (vs.service.protocol != model::Protocol::kTcp) {
          destination_changes.push_back({IpvsChange::Kind::kDeleteDestination, vs.service, gone});
        } else if (gone.active_connections + gone.inactive_connections == 0) {
          destination_changes.push_back({IpvsChange::Kind::kDeleteDestination, vs.service, gone});
        } else {
          ++out.draining;
          if (gone.weight != 0) {
            IpvsDestination drained = gone;
            drained.weight = 0;
            destination_changes.push_back({IpvsChange::Kind::kUpdateDestination, vs.service, drained});
          }
        }
      } else {
        // Wanted and present: rewritten only when a setting differs (an endpoint that came
        // back while it drained at weight 0).
        if (!current[j].same_settings(vs.destinations[i])) {
          destination_changes.push_back({IpvsChange::Kind::kUpdateDestination, vs.service, vs.destinations[i]});
        }
        ++i;
        ++j;
      }
    }
  }
  // Services the kernel holds and this snapshot does not ask for.
  for (const auto& entry : have) {
    const KernelServer* k = entry.second;
    if (k->service.address.family() != options.family) continue;
    const bool excluded = std::any_of(options.exclude_cidrs.begin(), options.exclude_cidrs.end(),
                                      [&](const Cidr& c) { return c.contains(k->service.address); });
    if (excluded) continue;
    deletions.push_back({IpvsChange::Kind::kDeleteService, k->service, {}});
  }
  out.changes.insert(out.changes.end(), destination_changes.begin(), destination_changes.end());
  out.changes.insert(out.changes.end(), deletions.begin(), deletions.end());
  return out;
}

}  // namespace kproxy::ipvs
