// The IPVS backend's sync (include/kproxy/ipvs/proxier.h).
#include "kproxy/ipvs/proxier.h"

#include <algorithm>
#include <map>
#include <tuple>

#include <spdlog/spdlog.h>

#include "kproxy/log.h"

namespace kproxy::ipvs {

using kernel::IpvsChange;
using kernel::IpvsDestination;
using kernel::IpvsService;

namespace {

// The service has TCP destinations the desired state drops: whether they are deleted or
// drain depends on their connection counts, which move without us, so they are read fresh.
bool loses_tcp_destinations(const KernelServer& k, const DesiredState& desired) {
  if (k.service.protocol != model::Protocol::kTcp || k.destinations.empty()) return false;
  const auto vs = std::lower_bound(desired.servers.begin(), desired.servers.end(), k.service,
                                   [](const VirtualServer& v, const IpvsService& s) { return service_key_less(v.service, s); });
  if (vs == desired.servers.end() || !vs->service.same_key(k.service)) return false;  // the whole service goes
  return std::any_of(k.destinations.begin(), k.destinations.end(), [&](const IpvsDestination& d) {
    return std::none_of(vs->destinations.begin(), vs->destinations.end(),
                        [&](const IpvsDestination& w) { return w.same_key(d); });
  });
}

}  // namespace

IpvsProxier::IpvsProxier(kernel::Ipvs& ipvs, kernel::Links& links, IpvsProxierOptions options)
    : ipvs_(ipvs), links_(links), options_(std::move(options)) {}

Expected<std::vector<KernelServer>> IpvsProxier::read_kernel() {
  auto services = ipvs_.services();
  if (!services) return Error(services.error());
  std::vector<KernelServer> out;
  out.reserve(services->size());
  for (IpvsService& s : *services) {
    if (s.address.family() != options_.family) continue;
    auto dests = ipvs_.destinations(s);
    if (!dests) return Error(dests.error());
    out.push_back({std::move(s), std::move(*dests)});
  }
  return out;
}

// Applies the changes the kernel accepted to the remembered state; any refusal makes the
// next sync read the kernel again (what it holds is then not certain).
void IpvsProxier::remember(const std::vector<IpvsChange>& changes, const std::vector<Status>& results) {
  if (!known_) return;
  std::map<ServiceKey, KernelServer> state;
  for (KernelServer& k : *known_) state.emplace(service_key(k.service), std::move(k));
  bool certain = true;
  for (std::size_t i = 0; i < changes.size(); ++i) {
    if (i >= results.size() || !results[i].ok()) {
      certain = false;
      continue;
    }
    const IpvsChange& c = changes[i];
    auto it = state.find(service_key(c.service));
    std::vector<IpvsDestination>* dests = it != state.end() ? &it->second.destinations : nullptr;
    switch (c.kind) {
      case IpvsChange::Kind::kAddService: state[service_key(c.service)] = KernelServer{c.service, {}}; break;
      case IpvsChange::Kind::kUpdateService:
        if (it != state.end()) it->second.service = c.service;
        break;
      case IpvsChange::Kind::kDeleteService:
        if (it != state.end()) state.erase(it);
        break;
      case IpvsChange::Kind::kAddDestination:
        if (dests != nullptr) dests->push_back(c.destination);
        break;
      case IpvsChange::Kind::kUpdateDestination:
        if (dests != nullptr) {
          for (auto& d : *dests) {
            if (!d.same_key(c.destination)) continue;
            const auto active = d.active_connections, inactive = d.inactive_connections;
            d = c.destination;
            d.active_connections = active;
            d.inactive_connections = inactive;
          }
        }
        break;
      case IpvsChange::Kind::kDeleteDestination:
        if (dests != nullptr) {
          std::erase_if(*dests, [&](const IpvsDestination& d) { return d.same_key(c.destination); });
        }
        break;
    }
  }
  if (!certain) {
    known_.reset();
    return;
  }
  known_->clear();
  for (auto& [key, k] : state) known_->push_back(std::move(k));
}

std::vector<IpAddress> IpvsProxier::node_port_addresses(const std::vector<std::pair<std::string, IpAddress>>& all) const {
  std::vector<IpAddress> out;
  for (const auto& entry : all) {
    const std::string& device = entry.first;
    const IpAddress& ip = entry.second;  // plain references: the lambda below captures ip
    if (device == kDummyDevice || ip.family() != options_.family || ip.is_loopback() || ip.is_link_local()) continue;
    if (!options_.node_port_cidrs.empty() &&
        std::none_of(options_.node_port_cidrs.begin(), options_.node_port_cidrs.end(),
                     [&](const Cidr& c) { return c.contains(ip); })) {
      continue;
    }
    out.push_back(ip);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Status IpvsProxier::sync(const proxier::SyncRequest& request) {
  std::vector<std::string> errors;
  auto created = links_.ensure_dummy(kDummyDevice);
  if (!created) errors.push_back(created.error());
  if (created.ok() && *created && known_) {
    spdlog::info("ipvs: {} was missing and is created again", kDummyDevice);
  }

  IpvsOptions desired_options;
  desired_options.family = options_.family;
  desired_options.scheduler = options_.scheduler;
  desired_options.node = request.node;
  desired_options.skip_sctp = options_.skip_sctp;
  // One address dump a sync: the node's addresses (NodePorts) and kube-ipvs0's (bound).
  auto addresses = links_.all_addresses();
  if (addresses) {
    desired_options.node_port_addresses = node_port_addresses(*addresses);
  } else {
    errors.push_back("node addresses: " + addresses.error());
  }
  node_port_addresses_ = desired_options.node_port_addresses;
  desired_ = build_desired(request.snapshot, desired_options);
  const DesiredState& desired = desired_;

  // A full sync (the first, the periodic one, one after a failure) reads the kernel again:
  // what another program changed in IPVS is put right then. Partial syncs trust what the
  // last sync left.
  if (request.kind == proxier::SyncKind::kFull) known_.reset();
  if (!known_) {
    auto read = read_kernel();
    if (!read) return Error("ipvs: reading the kernel's virtual services: " + read.error());
    known_ = std::move(*read);
  } else {
    for (KernelServer& k : *known_) {
      if (!loses_tcp_destinations(k, desired)) continue;
      auto dests = ipvs_.destinations(k.service);
      if (dests) {
        k.destinations = std::move(*dests);
      } else {
        errors.push_back(dests.error());
      }
    }
  }

  PlanOptions plan_options;
  plan_options.family = options_.family;
  plan_options.exclude_cidrs = options_.exclude_cidrs;
  const Plan p = plan(desired, *known_, plan_options);
  std::vector<Status> results;
  if (!p.changes.empty()) results = ipvs_.apply(p.changes);
  stats_ = IpvsSyncStats{p.changes.size(), 0, p.draining, desired.servers.size()};
  std::map<ServiceKey, const VirtualServer*> owners;
  for (const auto& vs : desired.servers) owners.emplace(service_key(vs.service), &vs);
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (results[i].ok()) continue;
    ++stats_.refused;
    auto owner = owners.find(service_key(p.changes[i].service));
    const std::string who = owner != owners.end() ? "service " + proxier::to_string(owner->second->owner) + ": " : "";
    spdlog::error("ipvs: {}{}", who, results[i].message());
    errors.push_back(who + results[i].message());
  }
  remember(p.changes, results);
  if (log::v(2) && !p.changes.empty()) {
    spdlog::info("ipvs: {} virtual services, {} changes sent, {} refused, {} destinations draining",
                 desired.servers.size(), p.changes.size(), stats_.refused, p.draining);
  }

  // The addresses: bound after their services exist, unbound after the services went.
  if (created.ok() && addresses) {
    std::set<IpAddress> bound;
    for (const auto& [device, ip] : *addresses) {
      if (device == kDummyDevice) bound.insert(ip);
    }
    const std::set<IpAddress> want(desired.bound_addresses.begin(), desired.bound_addresses.end());
    for (const IpAddress& ip : want) {
      if (bound.contains(ip)) continue;
      if (Status s = links_.add_address(kDummyDevice, ip); !s.ok()) errors.push_back(s.message());
    }
    for (const IpAddress& ip : bound) {
      if (ip.family() != options_.family || want.contains(ip)) continue;
      if (Status s = links_.delete_address(kDummyDevice, ip); !s.ok()) errors.push_back(s.message());
    }
  }
  if (errors.empty()) return {};
  std::string text = "ipvs: " + errors.front();
  if (errors.size() > 1) text += " (and " + std::to_string(errors.size() - 1) + " more)";
  return Error(text);
}

Status IpvsProxier::cleanup(kernel::Ipvs& ipvs, kernel::Links& links) {
  std::string errors;
  if (Status s = ipvs.flush(); !s.ok()) errors = s.message();
  if (auto deleted = links.delete_link(kDummyDevice); !deleted) {
    errors += (errors.empty() ? "" : "; ") + deleted.error();
  }
  if (!errors.empty()) return Error(errors);
  return {};
}

}  // namespace kproxy::ipvs
