// One httplib server on one address, serving on its own thread: the only code in kproxy_health and kproxy_metrics
// that touches sockets. Private to the library (httplib stays out of public headers).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <httplib.h>

#include "kproxy/ip.h"
#include "kproxy/status.h"

namespace kproxy::http {

class HttpListener {
 public:
  using Routes = std::function<void(httplib::Server&)>;

  // Binds ip:port (0: ephemeral) and starts serving with `routes` installed and `workers`
  // request threads. An unspecified ip listens on [::] with IPV6_V6ONLY off, as Go's
  // net.Listen("tcp", "0.0.0.0:port") does, or on 0.0.0.0 where the node has no IPv6.
  // The error reads like Go's: "listen tcp 0.0.0.0:10256: Address already in use".
  static Expected<std::unique_ptr<HttpListener>> open(const IpAddress& ip, std::uint16_t port, std::size_t workers,
                                                      const Routes& routes);

  ~HttpListener();  // stop(), then join
  HttpListener(const HttpListener&) = delete;
  HttpListener& operator=(const HttpListener&) = delete;

  std::uint16_t port() const { return port_; }
  // Closes the listening socket; requests in flight finish. Returns at once, so that many
  // listeners can be stopped before any is joined.
  void stop();

 private:
  HttpListener() = default;

  httplib::Server server_;
  std::uint16_t port_ = 0;
  std::atomic<bool> finished_{false};
  std::atomic<bool> stopped_{false};
  std::jthread thread_;  // last: joined before server_ is destroyed
};

}  // namespace kproxy::http
