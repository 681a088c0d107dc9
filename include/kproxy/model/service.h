// A core/v1 Service as kproxy sees it: validated, canonical, comparable.
//
// Field meanings follow api/core/v1/types.go and kube-proxy's reading of them in
// pkg/proxy/serviceport.go (newBaseServiceInfo) and pkg/api/v1/service/util.go. Only what a
// service proxy uses is kept; selector, targetPort, appProtocol, loadBalancerClass and the
// like are dropped at the parse boundary (docs/model.md lists every field).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kproxy/ip.h"
#include "kproxy/model/object_meta.h"
#include "kproxy/model/protocol.h"

namespace kproxy::model {

enum class ServiceType : std::uint8_t { kClusterIP, kNodePort, kLoadBalancer, kExternalName };
enum class SessionAffinity : std::uint8_t { kNone, kClientIP };
// spec.externalTrafficPolicy and spec.internalTrafficPolicy share their two values.
enum class TrafficPolicy : std::uint8_t { kCluster, kLocal };
// status.loadBalancer.ingress[].ipMode (KEP-1860). VIP: the node captures traffic to the LB
// IP itself; Proxy: the LB delivers to nodes, so kube-proxy must not short-circuit the IP.
enum class LoadBalancerIPMode : std::uint8_t { kVIP, kProxy };
// spec.trafficDistribution. PreferClose is the older spelling of PreferSameZone.
enum class TrafficDistribution : std::uint8_t { kPreferClose, kPreferSameZone, kPreferSameNode };

// The API spelling of each value ("ClusterIP", "ClientIP", "Local", "VIP", "PreferSameZone").
std::string_view to_string(ServiceType type);
std::string_view to_string(SessionAffinity affinity);
std::string_view to_string(TrafficPolicy policy);
std::string_view to_string(LoadBalancerIPMode mode);
std::string_view to_string(TrafficDistribution distribution);

// sessionAffinityConfig.clientIP.timeoutSeconds: the API default and its valid range
// (pkg/apis/core/v1/defaults.go, pkg/apis/core/validation/validation.go).
inline constexpr std::uint32_t kDefaultSessionAffinityTimeoutSeconds = 10800;
inline constexpr std::uint32_t kMaxSessionAffinityTimeoutSeconds = 86400;

struct ServicePort {
  // "" only when it is the Service's single, unnamed port. Must equal the EndpointSlice
  // port name; together with the protocol it identifies the port (kube-proxy's
  // ServicePortName).
  std::string name;
  Protocol protocol = Protocol::kTcp;
  std::uint16_t port = 0;       // 1..65535
  std::uint16_t node_port = 0;  // 0: none (ClusterIP, or allocateLoadBalancerNodePorts=false)

  bool operator==(const ServicePort&) const = default;
};

struct LoadBalancerIngress {
  IpAddress ip;
  LoadBalancerIPMode ip_mode = LoadBalancerIPMode::kVIP;  // unset in the API means VIP

  bool operator==(const LoadBalancerIngress&) const = default;
};

struct Service {
  ObjectMeta meta;
  ServiceType type = ServiceType::kClusterIP;
  // clusterIP "None". A headless Service has no cluster_ips and is not proxied.
  bool headless = false;
  // clusterIPs, one per family, cluster_ips[0] == spec.clusterIP. Empty for headless and
  // ExternalName Services and for a Service whose IP is not allocated yet (a manifest
  // without clusterIP): kube-proxy proxies none of these (ShouldSkipService).
  std::vector<IpAddress> cluster_ips;
  // spec.ipFamilies; ip_families[i] is the family of cluster_ips[i]. Derived from
  // cluster_ips when the object omits it (objects written before dual-stack).
  std::vector<IpFamily> ip_families;
  std::vector<ServicePort> ports;
  std::vector<IpAddress> external_ips;
  // Hostname-only ingress entries are not kept: kube-proxy programs nothing for them.
  std::vector<LoadBalancerIngress> load_balancer_ingress;
  // Whitespace-trimmed, as kube-proxy trims them (API validation allowed padding).
  std::vector<Cidr> load_balancer_source_ranges;
  // False when some source range was refused. An empty list means "no firewall" (kube-proxy
  // programs KUBE-FW only for a non-empty list), so dropping the bad entries fails open: a
  // list whose every entry was refused would admit every client. Backends must fail closed
  // when this is false (admit only the valid ranges, none if there are none).
  bool load_balancer_source_ranges_complete = true;
  SessionAffinity session_affinity = SessionAffinity::kNone;
  // Meaningful only for ClientIP; kept at the default otherwise so that equal behaviour
  // compares equal.
  std::uint32_t session_affinity_timeout_seconds = kDefaultSessionAffinityTimeoutSeconds;
  TrafficPolicy external_traffic_policy = TrafficPolicy::kCluster;
  TrafficPolicy internal_traffic_policy = TrafficPolicy::kCluster;
  std::uint16_t health_check_node_port = 0;  // 0: none
  std::optional<TrafficDistribution> traffic_distribution;
  std::string external_name;  // ExternalName Services only; never proxied

  bool operator==(const Service&) const = default;
};

}  // namespace kproxy::model
