#include "kproxy/metrics/metrics_server.h"

#include <string>
#include <utility>

#include "http/http_listener.h"
#include "http/http_util.h"
#include "kproxy/log.h"

namespace kproxy::metrics {
namespace {

// Scrapes are rare (every 15-60 s) and cheap; two workers let a slow client not block a scrape.
constexpr std::size_t kWorkers = 2;

constexpr const char* kPlainText = "text/plain; charset=utf-8";

void set_plain(httplib::Response& res, std::string body) {
  res.status = 200;
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_content(std::move(body), kPlainText);
}

}  // namespace

MetricsServer::MetricsServer(const Registry& registry, MetricsServerOptions options)
    : registry_(registry), options_(std::move(options)) {}

Expected<std::unique_ptr<MetricsServer>> MetricsServer::start(const Registry& registry, const IpAddress& ip,
                                                              std::uint16_t port, MetricsServerOptions options) {
  std::unique_ptr<MetricsServer> server(new MetricsServer(registry, std::move(options)));
  MetricsServer* self = server.get();
  auto listener = http::HttpListener::open(ip, port, kWorkers, [self](httplib::Server& http) {
    http::route_all_methods(http, "/metrics", [self](const httplib::Request&, httplib::Response& res) {
      res.status = 200;
      res.set_content(self->registry_.render(), std::string(kTextFormatContentType).c_str());
    });
    // component-base's healthz.InstallHandler with its default check, "ping", which always
    // passes: "ok", or the per-check list with ?verbose.
    const auto healthz = [](const httplib::Request& req, httplib::Response& res) {
      set_plain(res, req.has_param("verbose") ? "[+]ping ok\nhealthz check passed\n" : "ok");
    };
    http::route_all_methods(http, "/healthz", healthz);
    http::route_all_methods(http, "/healthz/ping",
                      [](const httplib::Request&, httplib::Response& res) { set_plain(res, "ok"); });
    http::route_all_methods(http, "/proxyMode", [self](const httplib::Request&, httplib::Response& res) {
      set_plain(res, self->options_.proxy_mode);
    });
    if (self->options_.configz) {
      http::route_all_methods(http, "/configz", [self](const httplib::Request&, httplib::Response& res) {
        res.status = 200;
        res.set_content(*self->options_.configz, "application/json");
      });
    }
    http.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
      if (res.status != 404) return httplib::Server::HandlerResponse::Unhandled;
      res.set_header("X-Content-Type-Options", "nosniff");
      res.set_content("404 page not found\n", kPlainText);
      return httplib::Server::HandlerResponse::Handled;
    }));
  });
  if (!listener) return Error("metrics server: " + listener.error());
  server->listener_ = std::move(*listener);
  if (log::v(3)) spdlog::info("Serving /metrics on {}", join_host_port(ip, server->port()));
  return server;
}

MetricsServer::~MetricsServer() = default;

std::uint16_t MetricsServer::port() const { return listener_->port(); }

}  // namespace kproxy::metrics
