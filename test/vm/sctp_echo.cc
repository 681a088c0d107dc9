// kproxy-vm-sctp: a kernel-SCTP client and server (plain one-to-one sockets,
// socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP)) for the vm tier, where the kernel has an sctp
// module to load. Unlike kproxy-testpeer (usrsctp over raw IP), opening its socket makes the
// kernel load `sctp` on demand, as a workload on a kernel-SCTP node does.
//
//   kproxy-vm-sctp serve --name NAME --port PORT [--bind IP]
//   kproxy-vm-sctp request --to IP:PORT [--count N] [--timeout-ms N]
//
// IPv6 works the same way: --bind :: (or an IPv6 address) serves IPv6 (and, on ::, IPv4 peers
// as v4-mapped addresses), --to [IPv6]:PORT connects over IPv6; replies name IPv6 peers as
// "[IP]:PORT".
// The server prints "ready" once listening and answers every message M of an association
// with "NAME <peer-ip>:<peer-port> M" (the source address it saw tells whether the traffic
// was masqueraded). The client sends "message-1" .. "message-N" on one association, one at a
// time, prints each reply, and exits 0 (all answered), 2 (refused: ABORT in answer to INIT),
// 3 (timeout) or 1 (any other error).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <thread>

namespace {

enum Exit { kOk = 0, kError = 1, kRefused = 2, kTimeout = 3 };
using Clock = std::chrono::steady_clock;

// An IPv4 or IPv6 socket address (sockaddr_storage keeps either).
struct Endpoint {
  sockaddr_storage addr{};
  socklen_t len = 0;
  int family() const { return addr.ss_family; }
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&addr); }
};

std::string endpoint_text(const sockaddr_storage& a) {
  char ip[INET6_ADDRSTRLEN] = {};
  if (a.ss_family == AF_INET6) {
    const auto& a6 = reinterpret_cast<const sockaddr_in6&>(a);
    inet_ntop(AF_INET6, &a6.sin6_addr, ip, sizeof ip);
    return "[" + std::string(ip) + "]:" + std::to_string(ntohs(a6.sin6_port));
  }
  const auto& a4 = reinterpret_cast<const sockaddr_in&>(a);
  inet_ntop(AF_INET, &a4.sin_addr, ip, sizeof ip);
  return std::string(ip) + ":" + std::to_string(ntohs(a4.sin_port));
}

// "IP" (IPv4 or IPv6) and a port.
std::optional<Endpoint> make_endpoint(const std::string& ip, long port) {
  Endpoint e;
  if (in6_addr a6{}; inet_pton(AF_INET6, ip.c_str(), &a6) == 1) {
    auto& s6 = reinterpret_cast<sockaddr_in6&>(e.addr);
    s6.sin6_family = AF_INET6;
    s6.sin6_port = htons(static_cast<uint16_t>(port));
    s6.sin6_addr = a6;
    e.len = sizeof(sockaddr_in6);
    return e;
  }
  auto& s4 = reinterpret_cast<sockaddr_in&>(e.addr);
  s4.sin_family = AF_INET;
  s4.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, ip.c_str(), &s4.sin_addr) != 1) return {};
  e.len = sizeof(sockaddr_in);
  return e;
}

// "IP:PORT" or "[IPv6]:PORT".
std::optional<Endpoint> parse_endpoint(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) return {};
  const std::string port = text.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) return {};
  const long p = std::stol(port);
  if (p < 1 || p > 65535) return {};
  std::string ip = text.substr(0, colon);
  if (ip.size() >= 2 && ip.front() == '[' && ip.back() == ']') ip = ip.substr(1, ip.size() - 2);
  return make_endpoint(ip, p);
}

int usage() {
  std::fprintf(stderr,
               "usage: kproxy-vm-sctp serve --name NAME --port PORT [--bind IP]\n"
               "       kproxy-vm-sctp request --to IP:PORT [--count N] [--timeout-ms N]\n");
  return kError;
}

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

// One message (the whole of it: SCTP keeps message boundaries), or nullopt at EOF / error.
std::optional<std::string> receive_message(int fd) {
  std::string message;
  char buf[4096];
  for (;;) {
    iovec iov{buf, sizeof buf};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    const ssize_t n = recvmsg(fd, &msg, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::nullopt;
    message.append(buf, static_cast<size_t>(n));
    if (msg.msg_flags & MSG_EOR) return message;
  }
}

bool send_message(int fd, const std::string& m) {
  for (;;) {
    const ssize_t n = send(fd, m.data(), m.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    return n == static_cast<ssize_t>(m.size());
  }
}

void serve_association(int fd, std::string name, sockaddr_storage peer) {
  const std::string prefix = name + " " + endpoint_text(peer) + " ";
  while (auto m = receive_message(fd)) {
    if (!send_message(fd, prefix + *m)) break;
  }
  close(fd);
}

int serve(const std::string& name, int port, const std::string& bind_ip) {
  const auto a = make_endpoint(bind_ip, port);
  if (!a) return usage();
  const int fd = socket(a->family(), SOCK_STREAM, IPPROTO_SCTP);
  if (fd < 0) {
    std::fprintf(stderr, "kproxy-vm-sctp: socket(IPPROTO_SCTP): %s\n", std::strerror(errno));
    return kError;
  }
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, a->get(), a->len) != 0 || listen(fd, 64) != 0) {
    std::fprintf(stderr, "kproxy-vm-sctp: bind/listen %s:%d: %s\n", bind_ip.c_str(), port, std::strerror(errno));
    return kError;
  }
  std::printf("ready\n");
  std::fflush(stdout);
  for (;;) {
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    const int c = accept(fd, reinterpret_cast<sockaddr*>(&peer), &len);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      std::fprintf(stderr, "kproxy-vm-sctp: accept: %s\n", std::strerror(errno));
      return kError;
    }
    std::thread(serve_association, c, name, peer).detach();
  }
}

int request(const Endpoint& to, int count, int timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  const int fd = socket(to.family(), SOCK_STREAM, IPPROTO_SCTP);
  if (fd < 0) {
    std::fprintf(stderr, "kproxy-vm-sctp: socket(IPPROTO_SCTP): %s\n", std::strerror(errno));
    return kError;
  }
  const int flags = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  if (connect(fd, to.get(), to.len) != 0 && errno != EINPROGRESS) {
    std::fprintf(stderr, "kproxy-vm-sctp: connect %s: %s\n", endpoint_text(to.addr).c_str(), std::strerror(errno));
    return errno == ECONNREFUSED ? kRefused : kError;
  }
  pollfd p{fd, POLLOUT, 0};
  if (poll(&p, 1, remaining_ms(deadline)) <= 0) {
    std::fprintf(stderr, "kproxy-vm-sctp: connect %s: timeout\n", endpoint_text(to.addr).c_str());
    return kTimeout;
  }
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) {
    std::fprintf(stderr, "kproxy-vm-sctp: connect %s: %s\n", endpoint_text(to.addr).c_str(), std::strerror(err));
    return err == ECONNREFUSED ? kRefused : err == ETIMEDOUT ? kTimeout : kError;
  }
  fcntl(fd, F_SETFL, flags);
  for (int i = 1; i <= count; ++i) {
    if (!send_message(fd, "message-" + std::to_string(i))) {
      std::fprintf(stderr, "kproxy-vm-sctp: send: %s\n", std::strerror(errno));
      return kError;
    }
    pollfd r{fd, POLLIN, 0};
    if (poll(&r, 1, remaining_ms(deadline)) <= 0) {
      std::fprintf(stderr, "kproxy-vm-sctp: no reply to message-%d: timeout\n", i);
      return kTimeout;
    }
    auto reply = receive_message(fd);
    if (!reply) {
      std::fprintf(stderr, "kproxy-vm-sctp: no reply to message-%d: %s\n", i,
                   errno ? std::strerror(errno) : "association closed");
      return errno == ECONNREFUSED || errno == ECONNRESET ? kRefused : kError;
    }
    std::printf("%s\n", reply->c_str());
    std::fflush(stdout);
  }
  close(fd);
  return kOk;
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc < 2) return usage();
  const std::string mode = argv[1];
  std::string name, bind_ip = "0.0.0.0", to;
  int port = 0, count = 1, timeout_ms = 2000;
  for (int i = 2; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) return usage();
    const std::string value = argv[++i];
    if (flag == "--name") name = value;
    else if (flag == "--port") port = std::atoi(value.c_str());
    else if (flag == "--bind") bind_ip = value;
    else if (flag == "--to") to = value;
    else if (flag == "--count") count = std::atoi(value.c_str());
    else if (flag == "--timeout-ms") timeout_ms = std::atoi(value.c_str());
    else return usage();
  }
  if (mode == "serve") {
    if (name.empty() || port < 1 || port > 65535) return usage();
    return serve(name, port, bind_ip);
  }
  if (mode == "request") {
    const auto endpoint = parse_endpoint(to);
    if (!endpoint || count < 1 || timeout_ms < 1) return usage();
    return request(*endpoint, count, timeout_ms);
  }
  return usage();
}
