#include "http/http_listener.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace kproxy::http {
namespace {

// Go sets SO_REUSEADDR on listeners (so a restarted kproxy can bind while old connections sit
// in TIME_WAIT) and clears IPV6_V6ONLY on a wildcard IPv6 listener. httplib's own default sets
// only SO_REUSEADDR, and these options replace it. On an IPv4 socket the IPv6 option fails
// harmlessly.
void set_listener_options(socket_t sock) {
  int yes = 1;
  setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  int no = 0;
  setsockopt(sock, IPPROTO_IPV6, IPV6_V6ONLY, &no, sizeof no);
}

// Short timeouts bound how long stop() + join waits for a silent or idle client: sync_services
// runs on the proxier's thread. Health check requests are a few hundred bytes.
constexpr time_t kReadWriteTimeoutSeconds = 2;
constexpr time_t kKeepAliveTimeoutSeconds = 1;

}  // namespace

Expected<std::unique_ptr<HttpListener>> HttpListener::open(const IpAddress& ip, std::uint16_t port,
                                                           std::size_t workers, const Routes& routes) {
  std::unique_ptr<HttpListener> listener(new HttpListener());
  httplib::Server& server = listener->server_;
  server.new_task_queue = [workers] { return new httplib::ThreadPool(workers); };
  server.set_socket_options(set_listener_options);
  server.set_read_timeout(kReadWriteTimeoutSeconds);
  server.set_write_timeout(kReadWriteTimeoutSeconds);
  server.set_keep_alive_timeout(kKeepAliveTimeoutSeconds);
  routes(server);

  auto bind = [&](const std::string& host) -> int {
    errno = 0;
    if (port == 0) return server.bind_to_any_port(host);
    return server.bind_to_port(host, port) ? port : -1;
  };
  int bound = -1;
  int bind_errno = 0;
  if (ip.is_unspecified()) {
    bound = bind("::");
    // EAFNOSUPPORT / EADDRNOTAVAIL: no IPv6 on this node. Anything else (EADDRINUSE) is final.
    if (bound < 0 && (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL)) bound = bind("0.0.0.0");
  } else {
    bound = bind(ip.to_string());
  }
  bind_errno = errno;
  if (bound <= 0) {
    // httplib reports failure without a reason; errno is what its failed bind() or listen() left.
    return Error("listen tcp " + join_host_port(ip, port) + ": " +
                 (bind_errno != 0 ? std::strerror(bind_errno) : "cannot bind"));
  }
  listener->port_ = static_cast<std::uint16_t>(bound);

  HttpListener* self = listener.get();
  listener->thread_ = std::jthread([self] {
    self->server_.listen_after_bind();
    self->finished_ = true;
  });
  // httplib's stop() does nothing until the accept loop has started; wait for it (bounded).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!server.is_running() && !listener->finished_ && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  if (!server.is_running()) {
    return Error("listen tcp " + join_host_port(ip, port) + ": the HTTP server did not start");
  }
  return listener;
}

// httplib 0.11's stop() asserts that the socket is still open while the accept loop winds
// down, so a second call could abort: stop at most once.
void HttpListener::stop() {
  if (!stopped_.exchange(true)) server_.stop();
}

HttpListener::~HttpListener() {
  if (thread_.joinable()) {
    stop();
    thread_.join();
  }
}

}  // namespace kproxy::http
