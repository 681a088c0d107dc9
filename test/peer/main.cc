// kproxy-testpeer: a traffic peer for the netns tests and the demo.
//
//   kproxy-testpeer serve --name NAME [--tcp PORT]... [--udp PORT]... [--sctp PORT]... [--bind IP]
//                         [--sctp-streams N]
//   kproxy-testpeer request --proto tcp|udp|sctp --to IP:PORT [--timeout-ms N] [--count N] [--bind IP[:PORT]]
//                           [--echo-check 1] [--hold-ms N] [--abort-at-end 1]
//
// The server answers every request with "NAME <peer-ip>:<peer-port>\n", the source address
// it saw (tests use it to tell whether traffic was masqueraded), and prints "ready" once every
// listener is up. The client prints each reply line and exits 0 (all answered), 2 (refused:
// TCP RST / ICMP port unreachable / SCTP ABORT), 3 (timeout) or 1 (any other error).
//
// Addresses are IPv4 or IPv6 ("IP:PORT", "[IPv6]:PORT"; replies name IPv6 peers as "[IP]:PORT").
// Without --bind the server listens on both families: TCP and UDP on an IPv4 and an IPv6-only
// socket, SCTP on one IPv6 socket that takes IPv4 too (usrsctp refuses the pair on one port).
// The first IPv6 association of a namespace whose link just came up may fail: wait or retry.
//
// SCTP is usrsctp over raw IPv4 and IPv6 (no kernel SCTP module, no UDP encapsulation). Every raw
// SCTP socket of a namespace sees every SCTP packet of that namespace, so the client never
// answers packets of other associations (blackhole 2): a client may share a namespace with
// a server.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <usrsctp.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

enum Exit { kOk = 0, kError = 1, kRefused = 2, kTimeout = 3 };

struct Outcome {
  int code = kOk;
  std::string line;  // the reply, or the error message
  bool printed = false;  // the reply was printed already (--hold-ms)
};

// An IPv4 or IPv6 socket address.
struct SockAddr {
  union {
    sockaddr sa;
    sockaddr_in v4;
    sockaddr_in6 v6;
  } u{};
  int family() const { return u.sa.sa_family; }
  socklen_t len() const { return family() == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in); }
  sockaddr* get() { return &u.sa; }
  const sockaddr* get() const { return &u.sa; }
  void set_port(uint16_t port) {
    if (family() == AF_INET6) {
      u.v6.sin6_port = htons(port);
    } else {
      u.v4.sin_port = htons(port);
    }
  }
  static SockAddr any(int family) {
    SockAddr a;
    a.u.sa.sa_family = static_cast<sa_family_t>(family);
    if (family == AF_INET) a.u.v4.sin_addr.s_addr = htonl(INADDR_ANY);  // (in6addr_any is all zeros)
    return a;
  }
};

// "IP:PORT", "[IPv6]:PORT".
std::string endpoint_text(const sockaddr* a) {
  char ip[INET6_ADDRSTRLEN] = {};
  if (a->sa_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(a);
    if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {  // an IPv4 peer of a dual-stack socket
      inet_ntop(AF_INET, &v6->sin6_addr.s6_addr[12], ip, sizeof ip);
      return std::string(ip) + ":" + std::to_string(ntohs(v6->sin6_port));
    }
    inet_ntop(AF_INET6, &v6->sin6_addr, ip, sizeof ip);
    return "[" + std::string(ip) + "]:" + std::to_string(ntohs(v6->sin6_port));
  }
  const auto* v4 = reinterpret_cast<const sockaddr_in*>(a);
  inet_ntop(AF_INET, &v4->sin_addr, ip, sizeof ip);
  return std::string(ip) + ":" + std::to_string(ntohs(v4->sin_port));
}
std::string endpoint_text(const SockAddr& a) { return endpoint_text(a.get()); }

// "IP", "IP:PORT", "IPv6", "[IPv6]", "[IPv6]:PORT" (and "IPv6:PORT", split at the last colon,
// when a port is required).
std::optional<SockAddr> parse_endpoint(const std::string& text, bool port_required) {
  std::string ip = text;
  std::string port;
  if (!text.empty() && text[0] == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos) return {};
    ip = text.substr(1, close - 1);
    const std::string rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return {};
      port = rest.substr(1);
      if (port.empty()) return {};
    }
  } else {
    const auto colons = std::count(text.begin(), text.end(), ':');
    if (colons == 1 || (colons > 1 && port_required)) {
      const auto colon = text.rfind(':');
      ip = text.substr(0, colon);
      port = text.substr(colon + 1);
      if (port.empty()) return {};
    }
  }
  if (port.empty() && port_required) return {};
  SockAddr a;
  if (inet_pton(AF_INET, ip.c_str(), &a.u.v4.sin_addr) == 1) {
    a.u.v4.sin_family = AF_INET;
  } else if (inet_pton(AF_INET6, ip.c_str(), &a.u.v6.sin6_addr) == 1) {
    a.u.v6.sin6_family = AF_INET6;
  } else {
    return {};
  }
  if (!port.empty()) {
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) return {};
    const long p = std::stol(port);
    if (p < 1 || p > 65535) return {};
    a.set_port(static_cast<uint16_t>(p));
  }
  return a;
}

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

// ---------------------------------------------------------------------------------------
// usrsctp: one init per process, finish at exit.

bool g_sctp_started = false;

void sctp_start(bool client) {
  if (g_sctp_started) return;
  usrsctp_init(0, nullptr, nullptr);  // no UDP encapsulation, no debug printer
#ifdef SCTP_DEBUG
  usrsctp_sysctl_set_sctp_debug_on(SCTP_DEBUG_NONE);
#endif
  // A client must not ABORT the associations of other processes in its namespace.
  if (client) usrsctp_sysctl_set_sctp_blackhole(2);
  g_sctp_started = true;
}

// Exits through here once usrsctp was started: usrsctp_finish fails while associations are
// still shutting down, so give them a while; if the stack will not stop, its threads may still
// call back into us, so leave without running destructors.
int sctp_stop_and_exit_code(int code) {
  if (!g_sctp_started) return code;
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  for (;;) {
    if (usrsctp_finish() == 0) break;
    if (Clock::now() >= deadline) {
      std::fprintf(stderr, "usrsctp did not stop within 5 s\n");
      std::fflush(stdout);
      std::fflush(stderr);
      _exit(code);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  g_sctp_started = false;
  return code;
}

void sctp_subscribe_assoc_change(struct socket* s) {
  sctp_event ev{};
  ev.se_assoc_id = SCTP_ALL_ASSOC;
  ev.se_type = SCTP_ASSOC_CHANGE;
  ev.se_on = 1;
  usrsctp_setsockopt(s, IPPROTO_SCTP, SCTP_EVENT, &ev, sizeof ev);
  const int on = 1;
  usrsctp_setsockopt(s, IPPROTO_SCTP, SCTP_RECVRCVINFO, &on, sizeof on);
}

// ---------------------------------------------------------------------------------------
// serve

struct ServeOptions {
  std::string name;
  std::vector<int> tcp, udp, sctp;
  int sctp_streams = 64;  // offered both ways
  std::optional<SockAddr> bind;  // none: the wildcard of both families
};

std::string g_name;  // read by the usrsctp receive callback

// What the receive callbacks share. The state of an SCTP_ASSOC_CHANGE notification, or
// nothing for any other delivery.
std::optional<uint16_t> assoc_change_state(const void* data, size_t len, int flags) {
  if ((flags & MSG_NOTIFICATION) == 0 || len < sizeof(sctp_assoc_change)) return std::nullopt;
  const auto* n = static_cast<const sctp_notification*>(data);
  if (n->sn_header.sn_type != SCTP_ASSOC_CHANGE) return std::nullopt;
  return n->sn_assoc_change.sac_state;
}

// Appends a delivery to the message being reassembled (usrsctp delivers a message in parts
// above its partial-delivery point); true once it is whole.
bool append_part(std::string& message, const void* data, size_t len, int flags) {
  message.append(static_cast<const char*>(data), len);
  return (flags & MSG_EOR) != 0;
}

// Messages being reassembled, by association; only the receive thread touches it.
std::map<sctp_assoc_t, std::string> g_partial;

// A message starting with "ECHO" comes back whole, on its stream, with its PPID and its
// unordered flag; any other gets the "NAME peer" line.
int sctp_server_receive(struct socket* s, union sctp_sockstore addr, void* data, size_t len, sctp_rcvinfo rcv, int flags,
                        void* /*ulp_info*/) {
  if (data == nullptr) return 1;
  if (assoc_change_state(data, len, flags) == SCTP_COMM_LOST) {
    // An association the peer aborted (or that timed out): tests watch for this line.
    std::printf("sctp association lost\n");
    std::fflush(stdout);
  }
  if ((flags & MSG_NOTIFICATION) == 0 && len > 0) {
    std::string& message = g_partial[rcv.rcv_assoc_id];
    if (append_part(message, data, len, flags)) {
      const bool echo = message.rfind("ECHO", 0) == 0;
      const std::string reply = echo ? message : g_name + " " + endpoint_text(&addr.sa) + "\n";
      sctp_sndinfo snd{};
      snd.snd_assoc_id = rcv.rcv_assoc_id;
      snd.snd_sid = rcv.rcv_sid;
      if (echo) {
        snd.snd_ppid = rcv.rcv_ppid;
        snd.snd_flags = rcv.rcv_flags & SCTP_UNORDERED;
      }
      if (usrsctp_sendv(s, reply.data(), reply.size(), nullptr, 0, &snd, sizeof snd, SCTP_SENDV_SNDINFO, 0) < 0) {
        std::fprintf(stderr, "sctp: send to %s: %s\n", endpoint_text(&addr.sa).c_str(), std::strerror(errno));
      }
      g_partial.erase(rcv.rcv_assoc_id);
    }
  }
  free(data);  // usrsctp hands the buffer over to the callback
  return 1;
}

// Streams both ways: the echo check uses 16 of them.
void sctp_streams(struct socket* s, uint16_t streams) {
  sctp_initmsg init{};
  init.sinit_num_ostreams = streams;
  init.sinit_max_instreams = streams;
  usrsctp_setsockopt(s, IPPROTO_SCTP, SCTP_INITMSG, &init, sizeof init);
}

int open_listener(int type, const SockAddr& bind_to, int port, std::string& error) {
  const int fd = ::socket(bind_to.family(), type | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::strerror(errno);
    return -1;
  }
  const int on = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  // IPv4 peers come to the IPv4 socket (and are named as IPv4 addresses).
  if (bind_to.family() == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
  SockAddr a = bind_to;
  a.set_port(static_cast<uint16_t>(port));
  if (::bind(fd, a.get(), a.len()) != 0 || (type == SOCK_STREAM && ::listen(fd, 64) != 0)) {
    error = std::strerror(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

// One TCP connection: read one line (or up to EOF, or 1 s), answer, close.
void serve_tcp_connection(int fd, const sockaddr* peer) {
  const auto deadline = Clock::now() + std::chrono::seconds(1);
  char buf[512];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    const int ms = remaining_ms(deadline);
    if (ms == 0 || ::poll(&p, 1, ms) <= 0) break;
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0 || std::memchr(buf, '\n', static_cast<size_t>(n)) != nullptr) break;
  }
  const std::string reply = g_name + " " + endpoint_text(peer) + "\n";
  if (::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL) < 0) {
    std::fprintf(stderr, "tcp: send to %s: %s\n", endpoint_text(peer).c_str(), std::strerror(errno));
  }
  ::close(fd);
}

int serve(const ServeOptions& o) {
  g_name = o.name;
  struct Listener {
    int fd;
    bool tcp;
  };
  std::vector<Listener> listeners;
  auto fail = [&](const char* proto, int port, const std::string& why) {
    std::fprintf(stderr, "serve: %s port %d: %s\n", proto, port, why.c_str());
    for (auto& l : listeners) ::close(l.fd);
    return kError;
  };
  // The addresses to listen on: --bind's, or both families' wildcards (a namespace without
  // IPv6 still serves IPv4: the IPv6 wildcard may fail there).
  std::vector<SockAddr> binds;
  if (o.bind) {
    binds.push_back(*o.bind);
  } else {
    binds.push_back(SockAddr::any(AF_INET));
    binds.push_back(SockAddr::any(AF_INET6));
  }
  auto optional_family = [&](const SockAddr& b) { return !o.bind && b.family() == AF_INET6; };
  for (int port : o.tcp) {
    for (const auto& b : binds) {
      std::string error;
      const int fd = open_listener(SOCK_STREAM, b, port, error);
      if (fd < 0 && optional_family(b)) continue;
      if (fd < 0) return fail("tcp", port, error);
      listeners.push_back({fd, true});
    }
  }
  for (int port : o.udp) {
    for (const auto& b : binds) {
      std::string error;
      const int fd = open_listener(SOCK_DGRAM, b, port, error);
      if (fd < 0 && optional_family(b)) continue;
      if (fd < 0) return fail("udp", port, error);
      listeners.push_back({fd, false});
    }
  }
  // SCTP: usrsctp refuses an IPv4 and an IPv6-only socket on one port, so without --bind one
  // IPv6 socket serves both families (IPv4 peers named as IPv4 addresses all the same).
  std::vector<SockAddr> sctp_binds = binds;
  if (!o.bind) sctp_binds = {SockAddr::any(AF_INET6)};
  std::vector<struct socket*> sctp_sockets;
  if (!o.sctp.empty()) {
    sctp_start(false);
    for (int port : o.sctp) {
      for (const auto& b : sctp_binds) {
        struct socket* s =
            usrsctp_socket(b.family(), SOCK_SEQPACKET, IPPROTO_SCTP, sctp_server_receive, nullptr, 0, nullptr);
        if (s != nullptr) sctp_streams(s, static_cast<uint16_t>(o.sctp_streams));
        if (s != nullptr && b.family() == AF_INET6) {
          const int v6only = o.bind ? 1 : 0;
          usrsctp_setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
        }
        SockAddr a = b;
        a.set_port(static_cast<uint16_t>(port));
        if (s == nullptr || usrsctp_bind(s, a.get(), a.len()) != 0 || usrsctp_listen(s, 1) != 0) {
          const std::string why = std::strerror(errno);
          if (s != nullptr) usrsctp_close(s);
          for (auto* open : sctp_sockets) usrsctp_close(open);
          return sctp_stop_and_exit_code(fail("sctp", port, why));
        }
        sctp_subscribe_assoc_change(s);
        sctp_sockets.push_back(s);
      }
    }
  }

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  const int sigfd = signalfd(-1, &stop_signals, SFD_CLOEXEC);

  std::printf("ready\n");
  std::fflush(stdout);

  std::vector<pollfd> fds;
  fds.push_back({sigfd, POLLIN, 0});
  for (const auto& l : listeners) fds.push_back({l.fd, POLLIN, 0});
  bool running = true;
  while (running) {
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      std::fprintf(stderr, "serve: poll: %s\n", std::strerror(errno));
      break;
    }
    if (fds[0].revents != 0) running = false;
    for (size_t i = 1; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      const Listener& l = listeners[i - 1];
      SockAddr peer;
      socklen_t len = sizeof peer.u;
      if (l.tcp) {
        const int conn = ::accept4(l.fd, peer.get(), &len, SOCK_CLOEXEC);
        if (conn >= 0) serve_tcp_connection(conn, peer.get());
      } else {
        char buf[2048];
        const ssize_t n = ::recvfrom(l.fd, buf, sizeof buf, 0, peer.get(), &len);
        if (n < 0) continue;
        const std::string reply = g_name + " " + endpoint_text(peer) + "\n";
        ::sendto(l.fd, reply.data(), reply.size(), 0, peer.get(), len);
      }
    }
  }
  for (auto& l : listeners) ::close(l.fd);
  for (auto* s : sctp_sockets) usrsctp_close(s);
  ::close(sigfd);
  return sctp_stop_and_exit_code(kOk);
}

// ---------------------------------------------------------------------------------------
// request

const char kRequest[] = "hello\n";

struct RequestOptions {
  std::string proto;
  SockAddr to;
  std::optional<SockAddr> bind;
  int timeout_ms = 2000;
  int count = 1;
  // SCTP: before the request, send messages of 1 B to 64 KiB on 16 streams with distinct
  // PPIDs, half of them unordered, and check that each comes back identical (exit 1 if not).
  bool echo_check = false;
  // SCTP: after the reply (printed at once), keep the association for this long; exit 2 if
  // the peer aborts it meanwhile.
  int hold_ms = 0;
  // SCTP: end each association with an ABORT instead of a SHUTDOWN.
  bool abort_at_end = false;
};

Outcome errno_outcome(const char* what, int err) {
  if (err == ECONNREFUSED) return {kRefused, std::string(what) + ": connection refused"};
  if (err == ETIMEDOUT) return {kTimeout, std::string(what) + ": timed out"};
  return {kError, std::string(what) + ": " + std::strerror(err)};
}

int client_socket(int type, const RequestOptions& o, Outcome& out) {
  const int fd = ::socket(o.to.family(), type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    out = errno_outcome("socket", errno);
    return -1;
  }
  if (o.bind) {
    if (o.bind->family() != o.to.family()) {
      out = {kError, "bind: --bind and --to are of different families"};
      ::close(fd);
      return -1;
    }
    if (::bind(fd, o.bind->get(), o.bind->len()) != 0) {
      out = errno_outcome("bind", errno);
      ::close(fd);
      return -1;
    }
  }
  return fd;
}

// Reads until a full line arrives (or EOF for a stream socket) or the deadline passes.
Outcome read_line(int fd, Clock::time_point deadline, bool stream) {
  std::string got;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    const int ms = remaining_ms(deadline);
    const int r = ms == 0 ? 0 : ::poll(&p, 1, ms);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return {kTimeout, "no reply before the timeout"};
    char buf[2048];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return errno_outcome("receive", errno);
    }
    if (n == 0) break;
    got.append(buf, static_cast<size_t>(n));
    if (!stream || got.find('\n') != std::string::npos) break;
  }
  const auto nl = got.find('\n');
  if (nl != std::string::npos) got.resize(nl);
  if (got.empty()) return {kError, "empty reply"};
  return {kOk, got};
}

Outcome request_tcp(const RequestOptions& o) {
  Outcome out;
  const int fd = client_socket(SOCK_STREAM, o, out);
  if (fd < 0) return out;
  const auto deadline = Clock::now() + std::chrono::milliseconds(o.timeout_ms);
  if (::connect(fd, o.to.get(), o.to.len()) != 0 && errno != EINPROGRESS) {
    out = errno_outcome("connect", errno);
  } else {
    pollfd p{fd, POLLOUT, 0};
    const int ms = remaining_ms(deadline);
    if (ms == 0 || ::poll(&p, 1, ms) <= 0) {
      out = {kTimeout, "connect: timed out"};
    } else {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        out = errno_outcome("connect", err);
      } else if (::send(fd, kRequest, sizeof kRequest - 1, MSG_NOSIGNAL) < 0) {
        out = errno_outcome("send", errno);
      } else {
        out = read_line(fd, deadline, true);
      }
    }
  }
  ::close(fd);
  return out;
}

Outcome request_udp(const RequestOptions& o) {
  Outcome out;
  const int fd = client_socket(SOCK_DGRAM, o, out);
  if (fd < 0) return out;
  const auto deadline = Clock::now() + std::chrono::milliseconds(o.timeout_ms);
  // Connected, so that an ICMP port unreachable comes back as ECONNREFUSED.
  if (::connect(fd, o.to.get(), o.to.len()) != 0) {
    out = errno_outcome("connect", errno);
  } else if (::send(fd, kRequest, sizeof kRequest - 1, 0) < 0) {
    out = errno_outcome("send", errno);
  } else {
    out = read_line(fd, deadline, false);
  }
  ::close(fd);
  return out;
}

// The source address the kernel would pick for `to`: the SCTP client binds to it, so that its
// INIT lists no other local addresses (NAT in between would not rewrite them).
std::optional<SockAddr> kernel_source_for(const SockAddr& to) {
  const int fd = ::socket(to.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return {};
  std::optional<SockAddr> result;
  SockAddr a;
  socklen_t len = sizeof a.u;
  if (::connect(fd, to.get(), to.len()) == 0 && ::getsockname(fd, a.get(), &len) == 0) {
    a.set_port(0);
    result = a;
  }
  ::close(fd);
  return result;
}

// The client's view of one association, filled by the usrsctp receive callback.
struct SctpClientState {
  std::mutex mu;
  std::condition_variable cv;
  bool up = false;
  bool failed = false;  // CANT_STR_ASSOC or COMM_LOST: the peer refused or aborted
  bool closed = false;  // SHUTDOWN_COMP, COMM_LOST or CANT_STR_ASSOC: nothing more will come
  std::string reply;
  bool replied = false;
  // Echo check: whole messages received so far, with what came with them.
  struct Message {
    std::string data;
    uint16_t sid = 0;
    uint32_t ppid = 0;
    bool unordered = false;
  };
  std::string partial;
  std::vector<Message> messages;
};

int sctp_client_receive(struct socket* /*s*/, union sctp_sockstore /*addr*/, void* data, size_t len, sctp_rcvinfo rcv,
                        int flags, void* ulp_info) {
  auto* st = static_cast<SctpClientState*>(ulp_info);
  if (data == nullptr) return 1;
  {
    std::lock_guard lock(st->mu);
    if ((flags & MSG_NOTIFICATION) != 0) {
      if (const auto state = assoc_change_state(data, len, flags)) {
        if (*state == SCTP_COMM_UP || *state == SCTP_RESTART) st->up = true;
        if (*state == SCTP_CANT_STR_ASSOC || *state == SCTP_COMM_LOST) st->failed = true;
        if (*state == SCTP_SHUTDOWN_COMP || *state == SCTP_CANT_STR_ASSOC || *state == SCTP_COMM_LOST) st->closed = true;
      }
    } else {
      if (append_part(st->partial, data, len, flags)) {
        if (st->partial.rfind("ECHO", 0) == 0) {
          st->messages.push_back({std::move(st->partial), rcv.rcv_sid, rcv.rcv_ppid, (rcv.rcv_flags & SCTP_UNORDERED) != 0});
        } else {
          st->reply = std::move(st->partial);
          st->replied = true;
        }
        st->partial.clear();
      }
    }
  }
  st->cv.notify_all();
  free(data);
  return 1;
}

std::vector<std::unique_ptr<SctpClientState>> g_client_states;

// The echo check (RequestOptions::echo_check): "" when every message came back identical.
std::string sctp_echo_check(struct socket* s, SctpClientState& st, Clock::time_point deadline) {
  const size_t sizes[] = {1, 100, 1000, 4096, 16384, 65536, 20000, 7};
  size_t i = 0;
  for (size_t size : sizes) {
    std::string data = "ECHO" + std::to_string(i) + ":";
    while (data.size() < size + 4) data.push_back(static_cast<char>('a' + (data.size() * 7 + i) % 26));
    sctp_sndinfo snd{};
    snd.snd_sid = static_cast<uint16_t>((i * 5) % 16);
    snd.snd_ppid = htonl(static_cast<uint32_t>(1000 + i));
    snd.snd_flags = (i % 2 == 1) ? SCTP_UNORDERED : 0;
    if (usrsctp_sendv(s, data.data(), data.size(), nullptr, 0, &snd, sizeof snd, SCTP_SENDV_SNDINFO, 0) < 0) {
      return "send of " + std::to_string(data.size()) + " bytes: " + std::strerror(errno);
    }
    std::unique_lock lock(st.mu);
    if (!st.cv.wait_until(lock, deadline, [&] { return st.messages.size() > i || st.failed; }) || st.failed) {
      return "message " + std::to_string(i) + " (" + std::to_string(data.size()) + " bytes) did not come back";
    }
    const auto& m = st.messages[i];
    if (m.data != data) {
      return "message " + std::to_string(i) + ": " + std::to_string(m.data.size()) + " bytes came back for " +
             std::to_string(data.size()) + (m.data.size() == data.size() ? " (different content)" : "");
    }
    if (m.sid != snd.snd_sid || m.ppid != snd.snd_ppid || m.unordered != (snd.snd_flags == SCTP_UNORDERED)) {
      return "message " + std::to_string(i) + ": sid/ppid/unordered " + std::to_string(m.sid) + "/" +
             std::to_string(ntohl(m.ppid)) + "/" + std::to_string(m.unordered) + ", sent " + std::to_string(snd.snd_sid) +
             "/" + std::to_string(ntohl(snd.snd_ppid)) + "/" + std::to_string(snd.snd_flags == SCTP_UNORDERED);
    }
    ++i;
  }
  return "";
}

Outcome request_sctp(const RequestOptions& o) {
  sctp_start(true);
  auto st = std::make_unique<SctpClientState>();
  struct socket* s = usrsctp_socket(o.to.family(), SOCK_STREAM, IPPROTO_SCTP, sctp_client_receive, nullptr, 0, st.get());
  if (s == nullptr) return errno_outcome("sctp socket", errno);
  sctp_subscribe_assoc_change(s);
  const int on = 1;
  usrsctp_setsockopt(s, IPPROTO_SCTP, SCTP_NODELAY, &on, sizeof on);
  usrsctp_setsockopt(s, IPPROTO_SCTP, SCTP_RECVRCVINFO, &on, sizeof on);
  if (o.echo_check) sctp_streams(s, 16);
  Outcome out;
  const auto deadline = Clock::now() + std::chrono::milliseconds(o.timeout_ms);
  std::optional<SockAddr> local = o.bind ? o.bind : kernel_source_for(o.to);
  if (local && usrsctp_bind(s, local->get(), local->len()) != 0) {
    out = errno_outcome("sctp bind", errno);
  } else {
    usrsctp_set_non_blocking(s, 1);
    SockAddr to = o.to;
    if (usrsctp_connect(s, to.get(), to.len()) != 0 && errno != EINPROGRESS) {
      out = errno_outcome("sctp connect", errno);
    } else {
      std::unique_lock lock(st->mu);
      if (!st->cv.wait_until(lock, deadline, [&] { return st->up || st->failed; })) {
        out = {kTimeout, "sctp connect: timed out"};
      } else if (st->failed) {
        out = {kRefused, "sctp connect: refused (ABORT)"};
      } else {
        lock.unlock();
        if (o.echo_check) {
          std::string why = sctp_echo_check(s, *st, deadline);
          if (!why.empty()) out = {kError, "echo check: " + why};
        }
        const ssize_t n = out.code != kOk ? 0
                                          : usrsctp_sendv(s, kRequest, sizeof kRequest - 1, nullptr, 0, nullptr, 0,
                                                          SCTP_SENDV_NOINFO, 0);
        lock.lock();
        if (out.code != kOk) {
        } else if (n < 0) {
          out = errno_outcome("sctp send", errno);
        } else if (!st->cv.wait_until(lock, deadline, [&] { return st->replied || st->failed; })) {
          out = {kTimeout, "no reply before the timeout"};
        } else if (!st->replied) {
          out = {kRefused, "sctp: association aborted"};
        } else {
          std::string line = st->reply;
          const auto nl = line.find('\n');
          if (nl != std::string::npos) line.resize(nl);
          out = {kOk, line};
          if (o.hold_ms > 0) {
            std::printf("%s\n", line.c_str());
            std::fflush(stdout);
            out.printed = true;
            if (st->cv.wait_until(lock, Clock::now() + std::chrono::milliseconds(o.hold_ms), [&] { return st->failed; })) {
              out = {kRefused, "association aborted while held", true};
            }
          }
        }
      }
    }
  }
  // The socket is never closed: usrsctp 0.9.5 frees a socket twice when usrsctp_close races
  // its receive thread tearing the association down (the server ends it with SHUTDOWN right
  // after its reply; seen under ASan as a double free in sofree). Without a close the socket
  // is never marked free-able, so only the process exit ends it. The association itself is
  // still ended properly: gracefully after a reply, with an ABORT after a failure.
  if (out.code == kOk && !o.abort_at_end) {
    usrsctp_shutdown(s, SHUT_WR);
  } else if (st->up) {
    sctp_sndinfo abort_info{};
    abort_info.snd_flags = SCTP_ABORT;
    // usrsctp_sendv refuses a null buffer (EFAULT) even for an ABORT without a reason.
    usrsctp_sendv(s, kRequest, 0, nullptr, 0, &abort_info, sizeof abort_info, SCTP_SENDV_SNDINFO, 0);
  }
  if (out.code != kOk || o.abort_at_end) {
    std::lock_guard lock(st->mu);
    st->closed = true;  // nothing graceful to wait for at exit
  }
  g_client_states.push_back(std::move(st));
  return out;
}

// A client leaves without usrsctp_finish: tearing the stack down while its timer thread
// still runs crashed now and then in usrsctp 0.9.5 ("double free or corruption" under load).
// It waits (bounded) for its associations to finish their graceful shutdown, so that the
// server and conntrack see a normal close, then exits without running destructors.
int sctp_client_exit(int code) {
  if (!g_sctp_started) return code;
  const auto deadline = Clock::now() + std::chrono::seconds(1);
  for (auto& st : g_client_states) {
    std::unique_lock lock(st->mu);
    st->cv.wait_until(lock, deadline, [&] { return st->closed; });
  }
  std::fflush(stdout);
  std::fflush(stderr);
  _exit(code);
}

int request(const RequestOptions& o) {
  for (int i = 0; i < o.count; ++i) {
    Outcome r;
    if (o.proto == "tcp") {
      r = request_tcp(o);
    } else if (o.proto == "udp") {
      r = request_udp(o);
    } else {
      r = request_sctp(o);
    }
    if (r.code != kOk) {
      std::fprintf(stderr, "request %d/%d to %s over %s: %s\n", i + 1, o.count, endpoint_text(o.to).c_str(),
                   o.proto.c_str(), r.line.c_str());
      return sctp_client_exit(r.code);
    }
    if (!r.printed) std::printf("%s\n", r.line.c_str());
    std::fflush(stdout);
  }
  return sctp_client_exit(kOk);
}


// ---------------------------------------------------------------------------------------
// bench: what bench/sctp_proxy_bench.sh measures, from the client's side.
//
//   kproxy-testpeer bench --to IP:PORT --size N --messages M --window W
//     one association; M messages of N bytes ("ECHO..."), at most W unanswered at a time;
//     prints "messages M bytes B seconds S msgs_per_s X mb_per_s Y p50_us P p99_us Q"
//     (B counts both directions; the percentiles are per-message round trips)
//   kproxy-testpeer bench --to IP:PORT --associations N --hold-ms T
//     N associations at once, each answered once; prints "up N" and holds them T ms

struct BenchState {
  std::mutex mu;
  std::condition_variable cv;
  size_t echoed = 0;
  size_t up = 0, failed = 0, replied = 0;
  std::string partial;
  std::vector<Clock::time_point> sent_at;
  std::vector<double> rtt_us;
};

int bench_receive(struct socket*, union sctp_sockstore, void* data, size_t len, sctp_rcvinfo, int flags, void* ulp) {
  auto* st = static_cast<BenchState*>(ulp);
  if (data == nullptr) return 1;
  {
    std::lock_guard lock(st->mu);
    if ((flags & MSG_NOTIFICATION) != 0) {
      if (const auto state = assoc_change_state(data, len, flags)) {
        if (*state == SCTP_COMM_UP) ++st->up;
        if (*state == SCTP_CANT_STR_ASSOC || *state == SCTP_COMM_LOST) ++st->failed;
      }
    } else {
      if (append_part(st->partial, data, len, flags)) {
        if (st->partial.rfind("ECHO", 0) == 0) {
          if (st->echoed < st->sent_at.size()) {
            st->rtt_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - st->sent_at[st->echoed]).count());
          }
          ++st->echoed;
        } else {
          ++st->replied;
        }
        st->partial.clear();
      }
    }
  }
  st->cv.notify_all();
  free(data);
  return 1;
}

int fail_text(const char* what, const std::string& why) {
  std::fprintf(stderr, "%s: %s\n", what, why.c_str());
  std::fflush(stderr);
  _exit(kError);
}

struct socket* bench_connect(const SockAddr& to, BenchState* st) {
  struct socket* s = usrsctp_socket(to.family(), SOCK_STREAM, IPPROTO_SCTP, bench_receive, nullptr, 0, st);
  if (s == nullptr) return nullptr;
  sctp_subscribe_assoc_change(s);
  const int on = 1;
  usrsctp_setsockopt(s, IPPROTO_SCTP, SCTP_NODELAY, &on, sizeof on);
  std::optional<SockAddr> local = kernel_source_for(to);
  if (local) usrsctp_bind(s, local->get(), local->len());
  usrsctp_set_non_blocking(s, 1);
  SockAddr t = to;
  if (usrsctp_connect(s, t.get(), t.len()) != 0 && errno != EINPROGRESS) return nullptr;
  return s;
}

int bench(const SockAddr& to, size_t size, size_t messages, size_t window, int associations, int hold_ms) {
  sctp_start(true);
  auto st = std::make_unique<BenchState>();
  const auto deadline = Clock::now() + std::chrono::seconds(120);
  if (associations > 0) {
    std::vector<struct socket*> socks;
    for (int i = 0; i < associations; ++i) {
      struct socket* s = bench_connect(to, st.get());
      if (s == nullptr) return fail_text("bench connect", std::strerror(errno));
      socks.push_back(s);
    }
    std::unique_lock lock(st->mu);
    st->cv.wait_until(lock, deadline, [&] { return st->up + st->failed >= socks.size(); });
    lock.unlock();
    for (auto* s : socks) usrsctp_sendv(s, kRequest, sizeof kRequest - 1, nullptr, 0, nullptr, 0, SCTP_SENDV_NOINFO, 0);
    lock.lock();
    st->cv.wait_until(lock, deadline, [&] { return st->replied + st->failed >= socks.size(); });
    std::printf("up %zu replied %zu failed %zu\n", st->up, st->replied, st->failed);
    std::fflush(stdout);
    lock.unlock();
    std::this_thread::sleep_for(std::chrono::milliseconds(hold_ms));
    std::fflush(stdout);
    _exit(st->replied == socks.size() ? kOk : kError);
  }
  struct socket* s = bench_connect(to, st.get());
  if (s == nullptr) return fail_text("bench connect", std::strerror(errno));
  {
    std::unique_lock lock(st->mu);
    if (!st->cv.wait_until(lock, deadline, [&] { return st->up > 0 || st->failed > 0; }) || st->failed > 0) {
      return fail_text("bench connect", "no association");
    }
  }
  usrsctp_set_non_blocking(s, 0);
  std::string data = "ECHO";
  data.resize(std::max<size_t>(size, 4), 'x');
  st->sent_at.resize(messages);
  const auto start = Clock::now();
  for (size_t i = 0; i < messages; ++i) {
    {
      std::unique_lock lock(st->mu);
      if (!st->cv.wait_until(lock, deadline, [&] { return i - st->echoed < window || st->failed > 0; }) || st->failed) {
        return fail_text("bench", "echoes stopped");
      }
      st->sent_at[i] = Clock::now();
    }
    if (usrsctp_sendv(s, data.data(), data.size(), nullptr, 0, nullptr, 0, SCTP_SENDV_NOINFO, 0) < 0) {
      return fail_text("bench send", std::strerror(errno));
    }
  }
  std::unique_lock lock(st->mu);
  if (!st->cv.wait_until(lock, deadline, [&] { return st->echoed >= messages || st->failed > 0; }) || st->failed) {
    return fail_text("bench", "not every echo came back");
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> rtt = st->rtt_us;
  std::sort(rtt.begin(), rtt.end());
  const double p50 = rtt.empty() ? 0 : rtt[rtt.size() / 2];
  const double p99 = rtt.empty() ? 0 : rtt[std::min(rtt.size() - 1, rtt.size() * 99 / 100)];
  const double bytes = 2.0 * static_cast<double>(messages * data.size());
  // The client's SCTP view of the run: data chunks it retransmitted (and how many of those after a
  // T3 timeout), and duplicates it received (the peer's retransmissions that were not needed).
  sctpstat stat{};
  usrsctp_get_stat(&stat);
  std::printf(
      "messages %zu bytes %.0f seconds %.4f msgs_per_s %.1f mb_per_s %.2f p50_us %.1f p99_us %.1f retransmitted %u "
      "t3_timeouts %u duplicates_received %u\n",
      messages, bytes, seconds, static_cast<double>(messages) / seconds, bytes / seconds / 1e6, p50, p99,
      stat.sctps_sendretransdata, stat.sctps_timodata, stat.sctps_recvdupdata);
  std::fflush(stdout);
  lock.unlock();
  usrsctp_shutdown(s, SHUT_WR);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  _exit(kOk);
}

// ---------------------------------------------------------------------------------------

int usage(const char* why) {
  std::fprintf(stderr,
               "kproxy-testpeer: %s\n"
               "usage: kproxy-testpeer serve --name NAME [--tcp PORT]... [--udp PORT]... [--sctp PORT]... [--bind IP]\n"
               "       kproxy-testpeer request --proto tcp|udp|sctp --to IP:PORT [--timeout-ms N] [--count N] "
               "[--bind IP] [--echo-check 1] [--hold-ms N] [--abort-at-end 1]\n",
               why);
  return kError;
}

std::optional<int> parse_int(const std::string& s, int min, int max) {
  if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos) return {};
  const int v = std::stoi(s);
  if (v < min || v > max) return {};
  return v;
}

int run(int argc, char** argv) {
  if (argc < 2) return usage("missing command");
  const std::string cmd = argv[1];
  std::vector<std::pair<std::string, std::string>> flags;
  for (int i = 2; i < argc; ++i) {
    const std::string f = argv[i];
    if (f.rfind("--", 0) != 0 || i + 1 >= argc) return usage(("bad argument " + f).c_str());
    flags.emplace_back(f, argv[++i]);
  }
  if (cmd == "serve") {
    ServeOptions o;
    for (const auto& [f, v] : flags) {
      if (f == "--name") {
        o.name = v;
      } else if (f == "--tcp" || f == "--udp" || f == "--sctp") {
        auto port = parse_int(v, 1, 65535);
        if (!port) return usage(("bad port " + v).c_str());
        (f == "--tcp" ? o.tcp : f == "--udp" ? o.udp : o.sctp).push_back(*port);
      } else if (f == "--sctp-streams") {
        auto n = parse_int(v, 1, 65535);
        if (!n) return usage(("bad stream count " + v).c_str());
        o.sctp_streams = *n;
      } else if (f == "--bind") {
        auto a = parse_endpoint(v, false);
        if (!a) return usage(("bad address " + v).c_str());
        a->set_port(0);
        o.bind = *a;
      } else {
        return usage(("unknown flag " + f).c_str());
      }
    }
    if (o.name.empty()) return usage("serve needs --name");
    if (o.tcp.empty() && o.udp.empty() && o.sctp.empty()) return usage("serve needs at least one port");
    return serve(o);
  }
  if (cmd == "bench") {
    SockAddr to;
    long size = 100, messages = 10000, window = 1, associations = 0, hold_ms = 0;
    bool have_to = false;
    for (const auto& [f, v] : flags) {
      if (f == "--to") {
        auto a = parse_endpoint(v, true);
        if (!a) return usage(("bad endpoint " + v).c_str());
        to = *a;
        have_to = true;
        continue;
      }
      auto n = parse_int(v, 0, 100000000);
      if (!n) return usage(("bad number " + v).c_str());
      if (f == "--size") size = *n;
      else if (f == "--messages") messages = *n;
      else if (f == "--window") window = std::max(1, *n);
      else if (f == "--associations") associations = *n;
      else if (f == "--hold-ms") hold_ms = *n;
      else return usage(("unknown flag " + f).c_str());
    }
    if (!have_to) return usage("bench needs --to");
    return bench(to, static_cast<size_t>(size), static_cast<size_t>(messages), static_cast<size_t>(window),
                 static_cast<int>(associations), static_cast<int>(hold_ms));
  }
  if (cmd == "request") {
    RequestOptions o;
    bool have_to = false;
    for (const auto& [f, v] : flags) {
      if (f == "--proto") {
        if (v != "tcp" && v != "udp" && v != "sctp") return usage(("bad protocol " + v).c_str());
        o.proto = v;
      } else if (f == "--to") {
        auto a = parse_endpoint(v, true);
        if (!a) return usage(("bad endpoint " + v).c_str());
        o.to = *a;
        have_to = true;
      } else if (f == "--timeout-ms") {
        auto n = parse_int(v, 1, 600000);
        if (!n) return usage(("bad timeout " + v).c_str());
        o.timeout_ms = *n;
      } else if (f == "--echo-check") {
        if (v != "1" && v != "0") return usage(("bad --echo-check " + v).c_str());
        o.echo_check = v == "1";
      } else if (f == "--abort-at-end") {
        if (v != "1" && v != "0") return usage(("bad --abort-at-end " + v).c_str());
        o.abort_at_end = v == "1";
      } else if (f == "--hold-ms") {
        auto n = parse_int(v, 0, 600000);
        if (!n) return usage(("bad hold " + v).c_str());
        o.hold_ms = *n;
      } else if (f == "--count") {
        auto n = parse_int(v, 1, 100000);
        if (!n) return usage(("bad count " + v).c_str());
        o.count = *n;
      } else if (f == "--bind") {
        // IP, or IP:PORT to send from a fixed port (the same conntrack entry every time).
        auto a = parse_endpoint(v, false);
        if (!a) return usage(("bad address " + v).c_str());
        o.bind = a;
      } else {
        return usage(("unknown flag " + f).c_str());
      }
    }
    if (o.proto.empty() || !have_to) return usage("request needs --proto and --to");
    return request(o);
  }
  return usage(("unknown command " + cmd).c_str());
}

}  // namespace

int main(int argc, char** argv) {
  // Block the stop signals before any thread (usrsctp's) exists; serve reads them from a
  // signalfd. A request is short and keeps the default (terminate) behaviour.
  if (argc >= 2 && std::string(argv[1]) == "serve") {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGTERM);
    sigaddset(&s, SIGINT);
    pthread_sigmask(SIG_BLOCK, &s, nullptr);
  }
  signal(SIGPIPE, SIG_IGN);
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kproxy-testpeer: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "kproxy-testpeer: unknown error\n");
  }
  return kError;
}
