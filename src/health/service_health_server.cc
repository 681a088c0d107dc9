#include "kproxy/health/service_health_server.h"

#include <utility>

#include "http/http_listener.h"
#include "http/http_util.h"
#include "kproxy/log.h"

namespace kproxy::health {
namespace {

// One listener per Service and address, so few threads each: load balancers probe every few
// seconds, and httplib's default (at least 8 per server) would be hundreds of idle threads.
constexpr std::size_t kWorkers = 2;

}  // namespace

std::string to_string(const NamespacedName& name) { return name.ns + "/" + name.name; }

std::string service_health_body(const NamespacedName& service, int local_endpoints, bool proxy_healthy) {
  // kube-proxy writes a tab-indented template through dedent and trims the newlines around it.
  return "{\n"
         "\t\"service\": {\n"
         "\t\t\"namespace\": " + go_quote(service.ns) + ",\n"
         "\t\t\"name\": " + go_quote(service.name) + "\n"
         "\t},\n"
         "\t\"localEndpoints\": " + std::to_string(local_endpoints) + ",\n"
         "\t\"serviceProxyHealthy\": " + (proxy_healthy ? "true" : "false") + "\n"
         "}";
}

ServiceHealthServer::ServiceHealthServer(const ProxyHealth& proxy_health, std::vector<IpAddress> addresses)
    : proxy_health_(proxy_health),
      addresses_(addresses.empty() ? std::vector<IpAddress>{IpAddress()} : std::move(addresses)) {}

ServiceHealthServer::~ServiceHealthServer() {
  std::lock_guard lock(instances_mu_);
  for (auto& [name, instance] : instances_) {
    for (auto& listener : instance.listeners) listener->stop();
  }
  instances_.clear();  // joins
}

std::vector<ListenFailure> ServiceHealthServer::sync_services(const std::map<NamespacedName, std::uint16_t>& ports) {
  std::lock_guard lock(instances_mu_);

  // Close first, so that a port moving from one Service to another can be reopened below.
  std::vector<std::unique_ptr<http::HttpListener>> closing;
  for (auto it = instances_.begin(); it != instances_.end();) {
    const auto wanted = ports.find(it->first);
    if (wanted != ports.end() && wanted->second == it->second.port) {
      ++it;
      continue;
    }
    if (log::v(2)) spdlog::info("Closing healthcheck for service {} on port {}", to_string(it->first), it->second.port);
    for (auto& listener : it->second.listeners) {
      listener->stop();  // all stop at once; the joins below then overlap
      closing.push_back(std::move(listener));
    }
    it = instances_.erase(it);
  }
  closing.clear();

  std::vector<ListenFailure> failures;
  for (const auto& [service, service_port] : ports) {
    // Copies: lambdas below capture them (C++20 does not let clang 14 capture bindings).
    const NamespacedName name = service;
    const std::uint16_t port = service_port;
    if (instances_.contains(name)) continue;
    if (log::v(2)) spdlog::info("Opening healthcheck for service {} on port {}", to_string(name), port);
    Instance instance{port, {}};
    for (const IpAddress& address : addresses_) {
      auto listener = http::HttpListener::open(address, port, kWorkers, [this, name](httplib::Server& http) {
        http::route_all_methods(http, ".*", [this, name](const httplib::Request&, httplib::Response& res) {
          int count = 0;
          {
            std::lock_guard counts_lock(counts_mu_);
            const auto it = counts_.find(name);
            if (it != counts_.end()) count = it->second;
          }
          const bool proxy_healthy = proxy_health_.healthy();
          res.set_header("X-Load-Balancing-Endpoint-Weight", std::to_string(count));
          http::set_json_body(res, count != 0 && proxy_healthy ? 200 : 503, service_health_body(name, count, proxy_healthy));
        });
      });
      if (!listener) {
        // All or nothing, as kube-proxy: the listeners already open for this Service close (on
        // scope exit) and the next sync tries again.
        spdlog::error("Failed to start healthcheck for service {} on port {}: {}; retrying at the next sync",
                      to_string(name), port, listener.error());
        failures.push_back(ListenFailure{name, port, listener.error()});
        instance.listeners.clear();
        break;
      }
      instance.listeners.push_back(std::move(*listener));
    }
    if (!instance.listeners.empty()) instances_.emplace(name, std::move(instance));
  }
  return failures;
}

void ServiceHealthServer::sync_endpoints(std::map<NamespacedName, int> local_ready_endpoints) {
  std::lock_guard lock(counts_mu_);
  counts_ = std::move(local_ready_endpoints);
}

std::map<NamespacedName, std::uint16_t> ServiceHealthServer::serving() const {
  std::lock_guard lock(instances_mu_);
  std::map<NamespacedName, std::uint16_t> out;
  for (const auto& [name, instance] : instances_) out.emplace(name, instance.port);
  return out;
}

}  // namespace kproxy::health
