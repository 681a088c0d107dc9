// kube-proxy's per-Service health check servers (pkg/proxy/healthcheck/service_health.go): one
// HTTP listener per Service with a healthCheckNodePort (type LoadBalancer,
// externalTrafficPolicy Local), on every address the node's health checks listen on. Cloud
// load balancers probe it to learn whether this node has ready endpoints of the Service.
//
// Any path and method answers 200 when the Service has local ready endpoints and the proxier is
// healthy (ProxyHealth::healthy, the /livez rule), else 503, with the headers Content-Type
// application/json, X-Content-Type-Options nosniff and X-Load-Balancing-Endpoint-Weight (the
// endpoint count, kube-proxy 1.28+), and service_health_body() as the body.
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kproxy/health/proxy_health.h"
#include "kproxy/ip.h"

namespace kproxy::http {
class HttpListener;
}  // namespace kproxy::http

namespace kproxy::health {

struct NamespacedName {
  std::string ns;
  std::string name;
  auto operator<=>(const NamespacedName&) const = default;
  bool operator==(const NamespacedName&) const = default;
};
std::string to_string(const NamespacedName& name);  // "ns/name"

// A health check port that could not be opened. kube-proxy turns it into the Warning event
// FailedToStartServiceHealthcheck on the Service; the next sync_services tries again.
struct ListenFailure {
  NamespacedName service;
  std::uint16_t port = 0;
  std::string error;  // "listen tcp 0.0.0.0:30001: Address already in use"
};

// The body kube-proxy writes (tab-indented, no trailing newline):
// {\n\t"service": {\n\t\t"namespace": "ns",\n\t\t"name": "web"\n\t},\n\t"localEndpoints": 2,\n\t"serviceProxyHealthy": true\n}
std::string service_health_body(const NamespacedName& service, int local_endpoints, bool proxy_healthy);

class ServiceHealthServer {
 public:
  // Listens on each of `addresses` (the node IPs nodePortAddresses selects), or on every address
  // when it is empty. `proxy_health` must outlive this object.
  ServiceHealthServer(const ProxyHealth& proxy_health, std::vector<IpAddress> addresses);
  ~ServiceHealthServer();  // closes every listener
  ServiceHealthServer(const ServiceHealthServer&) = delete;
  ServiceHealthServer& operator=(const ServiceHealthServer&) = delete;

  // Makes `ports` (Service -> healthCheckNodePort) the set being served: closes the listeners of
  // Services that are gone or whose port changed, opens the new ones, leaves the rest serving.
  // A Service is served on all addresses or none: when one address fails, the others are closed
  // again. Returns what could not be opened (also logged). Call from one thread (the proxier's).
  std::vector<ListenFailure> sync_services(const std::map<NamespacedName, std::uint16_t>& ports);

  // Local ready endpoint counts; a Service not in the map has 0.
  void sync_endpoints(std::map<NamespacedName, int> local_ready_endpoints);

  // The Services with open listeners and their ports.
  std::map<NamespacedName, std::uint16_t> serving() const;

 private:
  struct Instance {
    std::uint16_t port = 0;
    std::vector<std::unique_ptr<http::HttpListener>> listeners;  // one per address
  };

  const ProxyHealth& proxy_health_;
  const std::vector<IpAddress> addresses_;

  mutable std::mutex instances_mu_;  // sync_services vs serving(); never held by request threads
  std::map<NamespacedName, Instance> instances_;

  mutable std::mutex counts_mu_;  // request threads read under it
  std::map<NamespacedName, int> counts_;
};

}  // namespace kproxy::health
