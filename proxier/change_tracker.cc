#include "kproxy/proxier/change_tracker.h"

#include <algorithm>
#include <utility>

namespace kproxy::proxier {

namespace {

// apiservice.ExternallyAccessible (pkg/api/v1/service/util.go): by type, not by port.
bool externally_accessible_by_type(const model::Service& service) {
  return service.type == model::ServiceType::kLoadBalancer || service.type == model::ServiceType::kNodePort ||
         (service.type == model::ServiceType::kClusterIP && !service.external_ips.empty());
}

bool external_policy_local(const model::Service& service) {
  return externally_accessible_by_type(service) &&
         service.external_traffic_policy == model::TrafficPolicy::kLocal;
}

std::vector<std::string> sorted_unique(std::vector<std::string> values) {
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  return values;
}

model::AddressType address_type_of(IpFamily family) {
  return family == IpFamily::kIPv4 ? model::AddressType::kIPv4 : model::AddressType::kIPv6;
}

}  // namespace

bool should_skip_service(const model::Service& service) {
  return service.headless || service.cluster_ips.empty() || service.type == model::ServiceType::kExternalName;
}

std::vector<ServicePortInfo> service_port_infos(const model::Service& service, IpFamily family) {
  std::vector<ServicePortInfo> out;
  if (should_skip_service(service)) return out;
  auto cluster_ip = std::find_if(service.cluster_ips.begin(), service.cluster_ips.end(),
                                 [&](const IpAddress& ip) { return ip.family() == family; });
  if (cluster_ip == service.cluster_ips.end()) return out;

  ServicePortInfo common;
  common.cluster_ip = *cluster_ip;
  for (const IpAddress& ip : service.external_ips) {
    if (ip.family() == family) common.external_ips.push_back(ip);
  }
  for (const model::LoadBalancerIngress& ingress : service.load_balancer_ingress) {
    // ipMode Proxy: the load balancer delivers to the node, which must not capture the IP.
    if (ingress.ip_mode != model::LoadBalancerIPMode::kVIP) continue;
    if (ingress.ip.family() == family) common.load_balancer_vips.push_back(ingress.ip);
  }
  for (const Cidr& cidr : service.load_balancer_source_ranges) {
    if (cidr.family() == family) common.load_balancer_source_ranges.push_back(cidr);
  }
  common.load_balancer_source_ranges_complete = service.load_balancer_source_ranges_complete;
  common.session_affinity = service.session_affinity;
  if (service.session_affinity == model::SessionAffinity::kClientIP) {
    common.sticky_max_age_seconds = service.session_affinity_timeout_seconds;
  }
  common.external_policy_local = external_policy_local(service);
  common.internal_policy_local = service.internal_traffic_policy == model::TrafficPolicy::kLocal;
  // apiservice.NeedsHealthCheck: LoadBalancer with ExternalPolicyLocal.
  if (service.type == model::ServiceType::kLoadBalancer && common.external_policy_local) {
    common.health_check_node_port = service.health_check_node_port;
  }
  common.traffic_distribution = service.traffic_distribution;

  for (const model::ServicePort& port : service.ports) {
    ServicePortInfo info = common;
    info.name = ServicePortName{service.meta.ns, service.meta.name, port.name, port.protocol};
    info.port = port.port;
    info.node_port = port.node_port;
    out.push_back(std::move(info));
  }
  return out;
}

ChangeTracker::ChangeTracker(ChangeTrackerOptions options)
    : options_(std::move(options)),
      service_handler_(*this, services_synced_),
      slice_handler_(*this, slices_synced_),
      current_(std::make_shared<const Snapshot>(Snapshot{options_.family, {}})) {}

namespace {

// Whether `service` has a cluster IP of `family`: without one it has no service port for this
// tracker (service_port_infos), so its changes need no sync of this family.
bool has_family(const model::Service& service, IpFamily family) {
  return std::any_of(service.cluster_ips.begin(), service.cluster_ips.end(),
                     [&](const IpAddress& ip) { return ip.family() == family; });
}

}  // namespace

void ChangeTracker::set(const ServicePtr& service) {
  ServiceKey key{service->meta.ns, service->meta.name};
  ServicePtr& slot = services_[key];
  // Dirty when this family's view may change: the old or the new version has a cluster IP of
  // the family (an IPv6 Service's events leave the IPv4 proxier idle, and the other way round).
  const bool was = slot && has_family(*slot, options_.family);
  slot = service;
  if (was || has_family(*service, options_.family)) dirty_.insert(std::move(key));
}

void ChangeTracker::remove(const ServicePtr& service) {
  ServiceKey key{service->meta.ns, service->meta.name};
  auto it = services_.find(key);
  if (it == services_.end()) return;
  const bool was = has_family(*it->second, options_.family);
  services_.erase(it);
  if (was) dirty_.insert(std::move(key));
}

void ChangeTracker::set(const SlicePtr& slice) {
  // A slice of the other family (addressType is immutable) never feeds this tracker.
  if (slice->address_type != address_type_of(options_.family)) return;
  ServiceKey key{slice->meta.ns, slice->service_name};
  slices_[key][slice->meta.name] = slice;
  dirty_.insert(std::move(key));
}

void ChangeTracker::remove(const SlicePtr& slice) {
  ServiceKey key{slice->meta.ns, slice->service_name};
  auto it = slices_.find(key);
  if (it == slices_.end() || it->second.erase(slice->meta.name) == 0) return;
  if (it->second.empty()) slices_.erase(it);
  dirty_.insert(std::move(key));
}

std::vector<ServicePortInfo> ChangeTracker::build(const ServiceKey& key) const {
  auto service = services_.find(key);
  if (service == services_.end()) return {};
  std::vector<ServicePortInfo> ports = service_port_infos(*service->second, options_.family);
  auto slices = slices_.find(key);
  if (slices == slices_.end()) return ports;

  for (ServicePortInfo& info : ports) {
    // endpointInfoByServicePort + addEndpoints: one entry per IP:port, a local copy replacing
    // a remote one. Slices are walked in name order so that the result does not depend on
    // arrival order (kube-proxy walks a Go map here).
    std::map<std::string, Endpoint> by_address;
    for (const auto& [slice_name, slice] : slices->second) {
      if (slice->address_type != address_type_of(options_.family)) continue;
      for (const model::EndpointPort& slice_port : slice->ports) {
        if (slice_port.name != info.name.port || slice_port.protocol != info.name.protocol) continue;
        for (const model::Endpoint& in : slice->endpoints) {
          if (in.address.family() != options_.family) continue;
          Endpoint endpoint;
          endpoint.ip = in.address;
          endpoint.port = slice_port.port;
          endpoint.ready = in.ready;
          endpoint.serving = in.serving;
          endpoint.terminating = in.terminating;
          endpoint.node_name = in.node_name.value_or("");
          endpoint.is_local = !options_.node_name.empty() && endpoint.node_name == options_.node_name;
          endpoint.zone = in.zone.value_or("");
          endpoint.zone_hints = sorted_unique(in.zone_hints);
          if (options_.read_node_hints) endpoint.node_hints = sorted_unique(in.node_hints);
          std::string address = endpoint.to_string();
          auto existing = by_address.find(address);
          if (existing == by_address.end()) {
            by_address.emplace(std::move(address), std::move(endpoint));
          } else if (endpoint.is_local) {
            existing->second = std::move(endpoint);
          }
        }
      }
    }
    // std::map orders by the IP:port string, kube-proxy's byEndpoint order.
    info.endpoints.reserve(by_address.size());
    for (auto& [address, endpoint] : by_address) info.endpoints.push_back(std::move(endpoint));
  }
  return ports;
}

ChangeTracker::Checkout ChangeTracker::checkout() {
  Checkout out;
  if (dirty_.empty()) {
    out.snapshot = current_;
    return out;
  }
  auto next = std::make_shared<Snapshot>(*current_);
  for (const ServiceKey& key : dirty_) {
    // The previous ports of this Service: the ServicePortNames from {ns, name, "", TCP} up to
    // the next Service name, which sort together because ns and name lead the comparison.
    std::map<ServicePortName, std::shared_ptr<const ServicePortInfo>> previous;
    for (auto it = next->service_ports.lower_bound(ServicePortName{key.first, key.second, "", model::Protocol::kTcp});
         it != next->service_ports.end() && it->first.ns == key.first && it->first.name == key.second;) {
      previous.insert(*it);
      it = next->service_ports.erase(it);
    }
    for (ServicePortInfo& info : build(key)) {
      ServicePortName name = info.name;
      auto old = previous.find(name);
      if (old != previous.end() && *old->second == info) {
        next->service_ports.emplace(name, old->second);  // unchanged: share it
      } else {
        out.changed.insert(name);
        next->service_ports.emplace(name, std::make_shared<const ServicePortInfo>(std::move(info)));
      }
      if (old != previous.end()) previous.erase(old);
    }
    for (const auto& [name, info] : previous) out.changed.insert(name);  // removed
  }
  dirty_.clear();
  current_ = std::move(next);
  out.snapshot = current_;
  return out;
}

}  // namespace kproxy::proxier
