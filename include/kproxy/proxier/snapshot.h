// Snapshot: what the proxier hands to a backend for one sync. An immutable value, built by
// the ChangeTracker from the Services and EndpointSlices it has seen, for one IP family.
//
// Field meanings follow kube-proxy's BaseServicePortInfo (pkg/proxy/serviceport.go,
// newBaseServiceInfo) and BaseEndpointInfo (pkg/proxy/endpoint.go,
// endpointslicecache.go addEndpoints). docs/proxier.md describes every field.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kproxy/ip.h"
#include "kproxy/model/service.h"
#include "kproxy/proxier/service_port_name.h"

namespace kproxy::proxier {

struct Endpoint {
  IpAddress ip;
  std::uint16_t port = 0;  // the EndpointSlice port's number (the target port)
  bool ready = false;
  bool serving = false;
  bool terminating = false;
  // nodeName equals this node's name (and that name is not empty).
  bool is_local = false;
  std::string node_name;
  std::string zone;
  // Sorted, without repeats. Node hints are only read when the tracker is told to
  // (kube-proxy's PreferSameTrafficDistribution feature gate).
  std::vector<std::string> zone_hints;
  std::vector<std::string> node_hints;

  // "IP:port" ("[IP]:port" for IPv6): kube-proxy's Endpoint.String(), the key for
  // de-duplication and the sort order.
  std::string to_string() const { return join_host_port(ip, port); }

  bool operator==(const Endpoint&) const = default;
};

struct ServicePortInfo {
  ServicePortName name;  // carries the protocol
  IpAddress cluster_ip;  // of the snapshot's family
  std::uint16_t port = 0;
  std::uint16_t node_port = 0;  // 0: none
  // External IPs and load-balancer source ranges of the snapshot's family; others are
  // ignored, as kube-proxy does.
  std::vector<IpAddress> external_ips;
  // status.loadBalancer.ingress IPs with ipMode VIP, of the snapshot's family. Entries with
  // ipMode Proxy are left out: kube-proxy does not capture them, the load balancer delivers
  // to the node instead (newBaseServiceInfo, proxyutil.IsVIPMode).
  std::vector<IpAddress> load_balancer_vips;
  std::vector<Cidr> load_balancer_source_ranges;
  // model::Service::load_balancer_source_ranges_complete: false when some range was refused,
  // and the renderer must then fail closed rather than read a short list as "no firewall".
  bool load_balancer_source_ranges_complete = true;
  model::SessionAffinity session_affinity = model::SessionAffinity::kNone;
  // The ClientIP affinity timeout; 0 unless affinity is ClientIP (stickyMaxAgeSeconds).
  std::uint32_t sticky_max_age_seconds = 0;
  // apiservice.ExternalPolicyLocal: externalTrafficPolicy Local on a Service that is
  // externally accessible by type (NodePort, LoadBalancer, or ClusterIP with external IPs).
  bool external_policy_local = false;
  // apiservice.InternalPolicyLocal: internalTrafficPolicy Local.
  bool internal_policy_local = false;
  // Set only when the Service needs one (LoadBalancer with ExternalPolicyLocal), as
  // kube-proxy's NeedsHealthCheck; 0 otherwise.
  std::uint16_t health_check_node_port = 0;
  // Recorded for backends and logs; endpoint selection reads the hints, never this field,
  // as kube-proxy does (pkg/proxy/topology.go).
  std::optional<model::TrafficDistribution> traffic_distribution;
  // Merged from every slice of the Service, de-duplicated by IP:port (the local copy wins),
  // sorted by Endpoint::to_string() as kube-proxy sorts them (byEndpoint).
  std::vector<Endpoint> endpoints;

  // The port is reachable other than by its cluster IP (BaseServicePortInfo.ExternallyAccessible).
  bool externally_accessible() const {
    return node_port != 0 || !load_balancer_vips.empty() || !external_ips.empty();
  }
  // Whether traffic to this port is ever routed by Cluster or by Local policy
  // (UsesClusterEndpoints, UsesLocalEndpoints).
  bool uses_cluster_endpoints() const { return !internal_policy_local || externally_accessible(); }
  bool uses_local_endpoints() const {
    return internal_policy_local || (external_policy_local && externally_accessible());
  }

  bool operator==(const ServicePortInfo&) const = default;
};

struct Snapshot {
  IpFamily family = IpFamily::kIPv4;
  // Every proxied service port. Entries are shared between successive snapshots when they
  // did not change, so taking a snapshot costs one map copy, not a copy of every endpoint.
  std::map<ServicePortName, std::shared_ptr<const ServicePortInfo>> service_ports;

  const ServicePortInfo* find(const ServicePortName& name) const {
    auto it = service_ports.find(name);
    return it == service_ports.end() ? nullptr : it->second.get();
  }
};

}  // namespace kproxy::proxier
