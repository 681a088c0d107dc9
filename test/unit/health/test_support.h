// A settable clock and loopback helpers for the health tests.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "kproxy/health/proxy_health.h"

namespace kproxy::health::testing {

// Safe to read from server threads while the test thread sets it.
class FakeClock {
 public:
  explicit FakeClock(Time start) : nanos_(start.time_since_epoch().count()) {}
  Time now() const { return Time(std::chrono::nanoseconds(nanos_.load())); }
  void set(Time t) { nanos_ = t.time_since_epoch().count(); }
  void advance(std::chrono::nanoseconds d) { nanos_ += d.count(); }
  Clock clock() const {
    return [this] { return now(); };
  }

 private:
  std::atomic<std::int64_t> nanos_;
};

// 2026-11-25 12:00:00.123456789 UTC
inline Time example_time() {
  using namespace std::chrono;
  return Time(sys_days(year(2026) / November / 25) + hours(12) + nanoseconds(123456789));
}

// A TCP socket bound (and, with `listen_too`, listening) on 127.0.0.1, closed on destruction.
class LoopbackSocket {
 public:
  explicit LoopbackSocket(bool listen_too, std::uint16_t port = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return;
    if (listen_too && ::listen(fd_, 4) != 0) return;
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~LoopbackSocket() { ::close(fd_); }
  LoopbackSocket(const LoopbackSocket&) = delete;
  LoopbackSocket& operator=(const LoopbackSocket&) = delete;
  std::uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

// A port that was free a moment ago (the kernel hands out ephemeral ports in turn, so it is not
// reused at once).
inline std::uint16_t free_port() { return LoopbackSocket(false).port(); }

}  // namespace kproxy::health::testing
