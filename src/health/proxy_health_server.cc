#include "kproxy/health/proxy_health_server.h"

#include "http/http_listener.h"
#include "http/http_util.h"
#include "kproxy/log.h"

namespace kproxy::health {
namespace {

// Few requests (kubelet probes, load balancers), all cheap.
constexpr std::size_t kWorkers = 4;

}  // namespace

ProxyHealthServer::ProxyHealthServer(const ProxyHealth& health, HealthzFormat format, Observer observer)
    : health_(health), format_(format), observer_(std::move(observer)) {}

Expected<std::unique_ptr<ProxyHealthServer>> ProxyHealthServer::start(const ProxyHealth& health, const IpAddress& ip,
                                                                      std::uint16_t port, HealthzFormat format,
                                                                      Observer observer) {
  std::unique_ptr<ProxyHealthServer> server(new ProxyHealthServer(health, format, std::move(observer)));
  ProxyHealthServer* self = server.get();
  auto listener = http::HttpListener::open(ip, port, kWorkers, [self](httplib::Server& http) {
    http::route_all_methods(http, "/healthz", [self](const httplib::Request&, httplib::Response& res) {
      const HealthResponse response =
          healthz_response(self->health_.health(), self->health_.node_eligible(), self->format_);
      (response.status == 200 ? self->healthz_200_ : self->healthz_503_)++;
      if (self->observer_) self->observer_(true, response.status);
      http::set_json_body(res, response.status, response.body);
    });
    http::route_all_methods(http, "/livez", [self](const httplib::Request&, httplib::Response& res) {
      const HealthResponse response = livez_response(self->health_.health(), self->format_);
      (response.status == 200 ? self->livez_200_ : self->livez_503_)++;
      if (self->observer_) self->observer_(false, response.status);
      http::set_json_body(res, response.status, response.body);
    });
    // Go's ServeMux answers other paths with http.NotFound. httplib calls the error handler for
    // every status >= 400, so it leaves our own 503s alone.
    http.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
      if (res.status != 404) return httplib::Server::HandlerResponse::Unhandled;
      res.set_header("X-Content-Type-Options", "nosniff");
      res.set_content("404 page not found\n", "text/plain; charset=utf-8");
      return httplib::Server::HandlerResponse::Handled;
    }));
  });
  if (!listener) return Error("proxy health server: " + listener.error());
  server->listener_ = std::move(*listener);
  if (log::v(3)) spdlog::info("Serving /healthz and /livez on {}", join_host_port(ip, server->port()));
  return server;
}

ProxyHealthServer::~ProxyHealthServer() = default;

std::uint16_t ProxyHealthServer::port() const { return listener_->port(); }

HealthRequestCounts ProxyHealthServer::counts() const {
  return HealthRequestCounts{healthz_200_.load(), healthz_503_.load(), livez_200_.load(), livez_503_.load()};
}

}  // namespace kproxy::health
