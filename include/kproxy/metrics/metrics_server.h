// kube-proxy's metrics server (metricsBindAddress, default 127.0.0.1:10249).
//
// kube-proxy's mux (cmd/kube-proxy/app/server.go, serveMetrics) serves:
//   /metrics       the registry, text format 0.0.4       served
//   /healthz       "ok" (component-base healthz, ping)   served, with /healthz/ping and ?verbose
//   /proxyMode     the proxy mode as plain text          served
//   /configz       the configuration as JSON             served when the caller gives the body
//   /metrics/slis  component SLI metrics                 not served
//   /debug/pprof/*, /debug/flags/v (enableProfiling)     not served: Go-runtime specific
// Anything else is Go's "404 page not found". Every path answers any method, as Go's mux does.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "kproxy/ip.h"
#include "kproxy/metrics/registry.h"
#include "kproxy/status.h"

namespace kproxy::http {
class HttpListener;
}  // namespace kproxy::http

namespace kproxy::metrics {

struct MetricsServerOptions {
  std::string proxy_mode = "iptables";  // the /proxyMode body
  // The /configz body, {"kubeproxy.config.k8s.io": {...}}, rendered by the caller; absent: 404.
  std::optional<std::string> configz;
};

class MetricsServer {
 public:
  // Binds ip:port (port 0: an ephemeral port, for tests) and serves on its own threads until
  // destroyed. An unspecified ip listens on both families, as Go does. `registry` must outlive
  // the server. The error names the address and the errno: "listen tcp 127.0.0.1:10249: ...".
  static Expected<std::unique_ptr<MetricsServer>> start(const Registry& registry, const IpAddress& ip,
                                                        std::uint16_t port, MetricsServerOptions options = {});
  ~MetricsServer();  // stops accepting, finishes requests in flight, joins its threads
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  std::uint16_t port() const;  // the bound port

 private:
  MetricsServer(const Registry& registry, MetricsServerOptions options);

  const Registry& registry_;
  const MetricsServerOptions options_;
  std::unique_ptr<http::HttpListener> listener_;  // last: destroyed (joined) first
};

// The Content-Type of /metrics: Prometheus' text format 0.0.4.
inline constexpr std::string_view kTextFormatContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace kproxy::metrics
