// kube-proxy's /healthz and /livez server (healthzBindAddress, default 0.0.0.0:10256).
//
// Exactly the paths /healthz and /livez, any method; anything else is Go's ServeMux 404
// ("404 page not found"). Responses come from healthz_response / livez_response. Requests are
// counted per status code for proxy_healthz_total{code} and proxy_livez_total{code}.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>

#include "kproxy/health/proxy_health.h"
#include "kproxy/ip.h"
#include "kproxy/status.h"

namespace kproxy::http {
class HttpListener;
}  // namespace kproxy::http

namespace kproxy::health {

struct HealthRequestCounts {
  std::uint64_t healthz_200 = 0, healthz_503 = 0;
  std::uint64_t livez_200 = 0, livez_503 = 0;
  bool operator==(const HealthRequestCounts&) const = default;
};

class ProxyHealthServer {
 public:
  // Binds ip:port (port 0: an ephemeral port, for tests) and serves on its own thread until
  // destroyed. An unspecified ip (0.0.0.0 or ::) listens on both families, as Go does.
  // `health` must outlive the server. The error names the address and the errno.
  // Called after each /healthz (healthz true) or /livez answer with its status code, on the
  // server's thread: the proxy_healthz_total / proxy_livez_total counters.
  using Observer = std::function<void(bool healthz, int code)>;

  static Expected<std::unique_ptr<ProxyHealthServer>> start(const ProxyHealth& health, const IpAddress& ip,
                                                            std::uint16_t port,
                                                            HealthzFormat format = HealthzFormat::kJson,
                                                            Observer observer = nullptr);
  ~ProxyHealthServer();  // stops accepting, finishes requests in flight, joins its threads
  ProxyHealthServer(const ProxyHealthServer&) = delete;
  ProxyHealthServer& operator=(const ProxyHealthServer&) = delete;

  std::uint16_t port() const;  // the bound port
  HealthRequestCounts counts() const;

 private:
  ProxyHealthServer(const ProxyHealth& health, HealthzFormat format, Observer observer);

  const ProxyHealth& health_;
  const HealthzFormat format_;
  const Observer observer_;
  std::atomic<std::uint64_t> healthz_200_{0}, healthz_503_{0}, livez_200_{0}, livez_503_{0};
  std::unique_ptr<http::HttpListener> listener_;  // last: destroyed (joined) before the counters
};

}  // namespace kproxy::health
