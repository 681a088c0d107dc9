// The userspace SCTP proxy's event loop (include/kproxy/sctp_userspace/proxy.h).
//
// Threading: usrsctp is started with usrsctp_init_nothreads, so it runs only inside calls made
// by the loop thread (conninput, timers, socket calls), and every callback it makes (the
// AF_CONN output function, socket upcalls) runs on the loop thread too. Upcalls only mark a
// socket dirty; the loop does the work after the usrsctp call returns. No usrsctp call is
// ever made from a callback, and sockets are only closed from the loop (usrsctp 0.9.5 frees
// a socket twice when a close races its own receive thread: there is none here).
#include "kproxy/sctp_userspace/proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <usrsctp.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <chrono>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>
#include <vector>

#include "kproxy/log.h"
#include "kproxy/sctp_userspace/crc32c.h"

namespace kproxy::sctp_userspace {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::uint8_t kChunkInit = 1;
constexpr std::uint8_t kChunkAbort = 6;
constexpr std::uint8_t kChunkShutdownComplete = 14;
constexpr std::uint8_t kChunkCookieEcho = 10;
constexpr std::uint64_t kListenerBit = std::uint64_t{1} << 63;

// One (local, remote) address pair, both of one family. Its address is the AF_CONN address
// usrsctp hands back to the output callback, so it never moves or dies while usrsctp may
// still send on it (kept until idle for a while and unused by any relay).
struct Path {
  IpAddress local;
  IpAddress remote;
  int relays = 0;
  Clock::time_point last_used;
};

IpAddress v4(std::uint32_t network_order) { return IpAddress::from_v4(ntohl(network_order)); }
IpAddress v6(const in6_addr& a) {
  std::array<std::uint8_t, 16> b{};
  std::memcpy(b.data(), a.s6_addr, 16);
  return IpAddress::from_v6(b);
}
void to_in6(const IpAddress& ip, in6_addr& out) { std::memcpy(out.s6_addr, ip.bytes().data(), 16); }
std::uint32_t net(const IpAddress& ip) { return htonl(ip.v4_host_order()); }
int fam(IpFamily f) { return f == IpFamily::kIPv6 ? 1 : 0; }  // index of per-family arrays

std::string errno_text(int e) { return std::strerror(e); }

extern "C" int usrsctp_sysctl_set_sctp_debug_on(std::uint32_t);
void debug_printf(const char* format, ...) {
  va_list ap;
  va_start(ap, format);
  std::vfprintf(stderr, format, ap);
  va_end(ap);
}

}  // namespace

struct SctpProxy::Impl {
  // Directions of a relay.
  enum Dir { kToEndpoint = 0, kToClient = 1 };

  struct Message {
    std::vector<std::uint8_t> data;
    sctp_sndinfo info{};
  };

  struct Relay {
    std::uint64_t id = 0;
    struct socket* client = nullptr;
    struct socket* endpoint = nullptr;
    Path* client_path = nullptr;
    Path* endpoint_path = nullptr;
    std::uint16_t endpoint_local_port = 0;
    std::uint16_t listen_port = 0;  // the port the client connected to
    std::uint16_t client_port = 0;
    proxier::ServicePortName service;
    IpAddress client_ip;
    std::optional<Target> target;
    std::set<Target> tried;
    bool up = false;  // the endpoint association is established
    std::uint16_t client_in = 0, client_out = 0;  // streams client->proxy, proxy->client
    // Per direction: the message being reassembled, a complete one waiting for room, and
    // whether the source side ended (SHUTDOWN received: read returned 0).
    Message partial[2];
    std::optional<Message> pending[2];
    bool eof[2] = {false, false};
    bool shut[2] = {false, false};  // usrsctp_shutdown sent toward that direction's sink
    bool nodelay[2] = {true, true};  // SCTP_NODELAY of that direction's sink (see flush)
    bool dead = false;
  };

  ProxyOptions options;
  int raw = -1;   // IPv4: packets come with their IP header
  int raw6 = -1;  // IPv6: packets come without it (the destination from IPV6_PKTINFO); -1 without IPv6
  int wake = -1;
  std::thread thread;
  std::atomic<bool> stopping{false};

  // One table per IP family (indexed by fam()): each family's proxier hands over its own, and
  // the other family's stays.
  std::mutex table_mutex;
  std::shared_ptr<const ProxyTable> incoming[2];  // guarded by table_mutex
  bool incoming_set[2] = {false, false};          // guarded by table_mutex
  std::shared_ptr<const ProxyTable> tables[2];    // the loop's

  const ProxyTable* table(IpFamily f) const { return tables[fam(f)].get(); }

  std::map<std::pair<IpAddress, IpAddress>, std::unique_ptr<Path>> paths;
  std::map<std::uint16_t, struct socket*> listeners;
  std::unordered_map<std::uint64_t, std::unique_ptr<Relay>> relays;
  std::set<std::uint16_t> endpoint_ports;  // bound by endpoint-side sockets
  // The relay each association belongs to, by (path, local port, remote port): every packet
  // fed to usrsctp marks its relay dirty, because usrsctp makes no upcall when a packet ends an
  // association (an ABORT frees it before the upcall point).
  using Flow = std::tuple<const Path*, std::uint16_t, std::uint16_t>;
  std::map<Flow, std::uint64_t> flows;
  std::uint16_t next_port = 0;
  std::uint64_t next_id = 1;
  std::vector<std::uint64_t> dirty;
  // What routing says about a remote address: the node address to send from, and the
  // route's MTU. Cleared with each new table (routes change with the cluster).
  struct Route {
    IpAddress source;
    std::uint32_t mtu = 1500;
  };
  std::map<IpAddress, Route> routes;
  AffinityTable affinity;
  std::mt19937_64 rng{std::random_device{}()};
  std::vector<std::uint8_t> buffer = std::vector<std::uint8_t>(65536 + 256);

  struct Counters {
    std::atomic<std::uint64_t> active{0}, total{0}, msg_out{0}, bytes_out{0}, msg_in{0}, bytes_in{0}, failures{0},
        rejected{0}, packets_in{0}, packets_out{0}, bad_checksums{0};
  } counters;

  static Impl* instance;

  // --- lower layer ---------------------------------------------------------------------------

  // Packets usrsctp emitted during one turn of the loop, sent together by flush_output() with
  // one sendmmsg per family's raw socket (the slots keep their buffers between turns).
  struct OutPacket {
    union {
      sockaddr_in v4;
      sockaddr_in6 v6;
    } to{};
    socklen_t to_len = 0;
    IpAddress remote;  // for logs
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(in6_pktinfo))] = {};
    std::size_t control_len = 0;
    std::vector<std::uint8_t> data;
  };
  static constexpr std::size_t kOutSlots = 64;
  struct OutQueue {
    std::vector<OutPacket> slots = std::vector<OutPacket>(kOutSlots);
    std::size_t count = 0;
  };
  OutQueue out[2];  // by fam()

  static int output(void* addr, void* data, std::size_t length, std::uint8_t /*tos*/, std::uint8_t /*set_df*/) {
    Impl* self = instance;
    auto* path = static_cast<Path*>(addr);
    if (self == nullptr || path == nullptr) return -1;
    path->last_used = Clock::now();
    const bool is6 = path->remote.is_v6();
    if (is6 && self->raw6 < 0) return -1;
    OutQueue& q = self->out[is6 ? 1 : 0];
    if (q.count == kOutSlots) self->flush_queue(is6 ? 1 : 0);
    OutPacket& o = q.slots[q.count++];
    o.remote = path->remote;
    // The source is the path's local address: a Service address (local on lo) toward clients,
    // the node's address toward endpoints. (The IPv6 raw socket builds the IPv6 header; SCTP's
    // checksum covers no pseudo-header, so the packet is the same for both families.)
    msghdr m{};
    m.msg_control = o.control;
    m.msg_controllen = sizeof o.control;
    cmsghdr* c = CMSG_FIRSTHDR(&m);
    if (is6) {
      o.to.v6 = sockaddr_in6{};
      o.to.v6.sin6_family = AF_INET6;
      to_in6(path->remote, o.to.v6.sin6_addr);
      o.to_len = sizeof o.to.v6;
      c->cmsg_level = IPPROTO_IPV6;
      c->cmsg_type = IPV6_PKTINFO;
      c->cmsg_len = CMSG_LEN(sizeof(in6_pktinfo));
      in6_pktinfo info{};
      to_in6(path->local, info.ipi6_addr);
      std::memcpy(CMSG_DATA(c), &info, sizeof info);
      o.control_len = CMSG_SPACE(sizeof(in6_pktinfo));
    } else {
      o.to.v4 = sockaddr_in{};
      o.to.v4.sin_family = AF_INET;
      o.to.v4.sin_addr.s_addr = net(path->remote);
      o.to_len = sizeof o.to.v4;
      c->cmsg_level = IPPROTO_IP;
      c->cmsg_type = IP_PKTINFO;
      c->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
      in_pktinfo info{};
      info.ipi_spec_dst.s_addr = net(path->local);
      std::memcpy(CMSG_DATA(c), &info, sizeof info);
      o.control_len = CMSG_SPACE(sizeof(in_pktinfo));
    }
    const auto* bytes = static_cast<const std::uint8_t*>(data);
    o.data.assign(bytes, bytes + length);
    set_sctp_checksum(o.data.data(), o.data.size());  // usrsctp leaves it to us (offload)
    return 0;
  }

  void flush_output() {
    flush_queue(0);
    flush_queue(1);
  }

  void flush_queue(int family_index) {
    OutQueue& q = out[family_index];
    const int fd = family_index == 1 ? raw6 : raw;
    if (q.count == 0) return;
    mmsghdr msgs[kOutSlots] = {};
    iovec iov[kOutSlots];
    for (std::size_t i = 0; i < q.count; ++i) {
      OutPacket& o = q.slots[i];
      iov[i] = {o.data.data(), o.data.size()};
      msghdr& m = msgs[i].msg_hdr;
      m.msg_name = &o.to;
      m.msg_namelen = o.to_len;
      m.msg_iov = &iov[i];
      m.msg_iovlen = 1;
      m.msg_control = o.control;
      m.msg_controllen = o.control_len;
    }
    std::size_t sent = 0;
    while (sent < q.count) {
      const int n = sendmmsg(fd, msgs + sent, static_cast<unsigned>(q.count - sent), MSG_DONTWAIT);
      if (n <= 0) {
        // This packet is lost (SCTP retransmits); the rest still go.
        if (log::v(4)) spdlog::debug("sctp proxy: send to {}: {}", q.slots[sent].remote.to_string(), errno_text(errno));
        ++sent;
        continue;
      }
      sent += static_cast<std::size_t>(n);
      counters.packets_out.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
    }
    q.count = 0;
  }

  static void upcall(struct socket* /*s*/, void* arg, int /*flags*/) {
    if (instance != nullptr) instance->dirty.push_back(reinterpret_cast<std::uintptr_t>(arg));
  }

  Path* path(const IpAddress& local, const IpAddress& remote) {
    auto& slot = paths[{local, remote}];
    if (!slot) {
      slot = std::make_unique<Path>();
      slot->local = local;
      slot->remote = remote;
      // usrsctp looks associations of bound-all sockets up only by local addresses it knows.
      usrsctp_register_address(slot.get());
    }
    slot->last_used = Clock::now();
    return slot.get();
  }

  // An ABORT answering an INIT (its initiate tag becomes the verification tag).
  // An ABORT answering a packet: for an INIT, with its initiate tag as the verification tag;
  // for anything else out of the blue (RFC 4960 8.4), with the packet's own tag reflected (T
  // bit set).
  void send_abort(const IpAddress& local, const IpAddress& remote, const std::uint8_t* sctp, std::size_t len) {
    const bool init = len >= 12 + 20 && sctp[12] == kChunkInit;
    if (!init && len < 12 + 4) return;
    std::uint8_t abort[16] = {};
    std::memcpy(abort, sctp + 2, 2);  // source port: the packet's destination
    std::memcpy(abort + 2, sctp, 2);  // destination port: the packet's source
    std::memcpy(abort + 4, init ? sctp + 12 + 4 : sctp + 4, 4);
    abort[12] = kChunkAbort;
    abort[13] = init ? 0 : 1;  // T bit
    abort[15] = 4;             // chunk length
    Path p{local, remote, 0, Clock::now()};
    output(&p, abort, sizeof abort, 0, 0);
  }

  // Raw packets are read in batches (recvmmsg): a system call costs more than the packet's
  // own processing here.
  static constexpr std::size_t kInSlots = 32;
  static constexpr std::size_t kInSlotBytes = 65536 + 256;
  std::vector<std::uint8_t> in_buffers = std::vector<std::uint8_t>(kInSlots * kInSlotBytes);
  // IPv6: each packet's source (msg_name) and destination (IPV6_PKTINFO).
  sockaddr_in6 in_names[kInSlots];
  struct alignas(cmsghdr) InControl {
    char bytes[CMSG_SPACE(sizeof(in6_pktinfo)) + 64];
  };
  InControl in_controls[kInSlots];

  void receive_packets() {
    mmsghdr msgs[kInSlots];
    iovec iov[kInSlots];
    for (int round = 0; round < 8; ++round) {
      for (std::size_t i = 0; i < kInSlots; ++i) {
        iov[i] = {in_buffers.data() + i * kInSlotBytes, kInSlotBytes};
        msgs[i] = mmsghdr{};
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
      }
      const int n = recvmmsg(raw, msgs, kInSlots, MSG_DONTWAIT, nullptr);
      if (n <= 0) return;
      for (int i = 0; i < n; ++i) handle_packet4(in_buffers.data() + i * kInSlotBytes, msgs[i].msg_len);
      if (static_cast<std::size_t>(n) < kInSlots) return;
    }
  }

  void receive_packets6() {
    mmsghdr msgs[kInSlots];
    iovec iov[kInSlots];
    for (int round = 0; round < 8; ++round) {
      for (std::size_t i = 0; i < kInSlots; ++i) {
        iov[i] = {in_buffers.data() + i * kInSlotBytes, kInSlotBytes};
        msgs[i] = mmsghdr{};
        msghdr& m = msgs[i].msg_hdr;
        m.msg_iov = &iov[i];
        m.msg_iovlen = 1;
        m.msg_name = &in_names[i];
        m.msg_namelen = sizeof in_names[i];
        m.msg_control = in_controls[i].bytes;
        m.msg_controllen = sizeof in_controls[i].bytes;
      }
      const int n = recvmmsg(raw6, msgs, kInSlots, MSG_DONTWAIT, nullptr);
      if (n <= 0) return;
      for (int i = 0; i < n; ++i) {
        counters.packets_in.fetch_add(1, std::memory_order_relaxed);
        msghdr& m = msgs[i].msg_hdr;
        std::optional<IpAddress> dst;
        for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c)) {
          if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
            in6_pktinfo info{};
            std::memcpy(&info, CMSG_DATA(c), sizeof info);
            dst = v6(info.ipi6_addr);
          }
        }
        if (!dst || m.msg_namelen < sizeof(sockaddr_in6) || in_names[i].sin6_family != AF_INET6) continue;
        handle_packet(*dst, v6(in_names[i].sin6_addr), in_buffers.data() + i * kInSlotBytes, msgs[i].msg_len);
      }
      if (static_cast<std::size_t>(n) < kInSlots) return;
    }
  }

  // IPv4: the raw socket delivers the IP header.
  void handle_packet4(std::uint8_t* b, std::size_t n) {
    counters.packets_in.fetch_add(1, std::memory_order_relaxed);
    if (n < 20 || (b[0] >> 4) != 4) return;
    const std::size_t ihl = (b[0] & 0x0f) * 4u;
    if (static_cast<std::size_t>(n) < ihl + 12) return;
    std::uint32_t src = 0, dst = 0;
    std::memcpy(&src, b + 12, 4);
    std::memcpy(&dst, b + 16, 4);
    handle_packet(v4(dst), v4(src), b + ihl, static_cast<std::size_t>(n) - ihl);
  }

  // One SCTP packet (common header first) from `src` to the local address `dst`.
  void handle_packet(const IpAddress& dst, const IpAddress& src, std::uint8_t* sctp, std::size_t len) {
    if (len < 12) return;
    const std::uint16_t dport = static_cast<std::uint16_t>(sctp[2] << 8 | sctp[3]);
    const bool ours_as_client = endpoint_ports.contains(dport);
    const ProxyTable* tbl = table(dst.family());
    if (!ours_as_client && (tbl == nullptr || !tbl->answers(dst, dport))) return;  // another stack's packet
    // usrsctp is told the checksum is offloaded: it is checked here, before anything else.
    if (!sctp_checksum_ok(sctp, len)) {
      counters.bad_checksums.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    const bool is_init = len >= 16 && sctp[12] == kChunkInit;
    auto known = paths.find({dst, src});
    if (!ours_as_client && !is_init && known == paths.end()) {
      // Out of the blue: no association of the proxy's can exist without its path (e.g. a
      // client still talking to a proxy that restarted). Answered as RFC 4960 8.4 says,
      // without creating state, so stray or spoofed packets cost no memory.
      if (len >= 16 && sctp[12] != kChunkAbort && sctp[12] != kChunkShutdownComplete) send_abort(dst, src, sctp, len);
      return;
    }
    if (!ours_as_client) {
      if (is_init) {
        const Decision d = tbl->decide(dst, dport, src);
        // Paths outlive their associations by minutes: bound them too (an INIT flood from
        // many sources), not only the relays.
        const bool full = relays.size() >= options.max_associations ||
                          (known == paths.end() && paths.size() >= 2 * options.max_associations + 1024);
        if (d.verdict == Decision::Verdict::kDrop) {
          if (log::v(4)) {
            spdlog::debug("sctp proxy: INIT from {} to {} dropped: {}", src.to_string(), join_host_port(dst, dport),
                          d.reason);
          }
          return;
        }
        if (d.verdict != Decision::Verdict::kForward || full) {
          if (log::v(2)) {
            spdlog::info("sctp proxy: INIT from {} to {} refused: {}", src.to_string(), join_host_port(dst, dport),
                         full ? "too many associations" : d.reason);
          }
          counters.rejected.fetch_add(1, std::memory_order_relaxed);
          send_abort(dst, src, sctp, len);
          return;
        }
      }
    }
    Path* p = known != paths.end() ? known->second.get() : path(dst, src);
    p->last_used = Clock::now();
    if (!ours_as_client && len >= 16 && sctp[12] == kChunkCookieEcho) {
      // The association is created from this packet: with this client's path MTU.
      if (auto it = listeners.find(dport); it != listeners.end()) set_path_mtu(it->second, src);
    }
    usrsctp_conninput(p, sctp, len, 0);
    const auto sport = static_cast<std::uint16_t>(sctp[0] << 8 | sctp[1]);
    if (auto it = flows.find(Flow{p, dport, sport}); it != flows.end()) dirty.push_back(it->second);
  }

  // --- sockets ---------------------------------------------------------------------------

  void configure(struct socket* s, std::uint16_t ostreams, std::uint16_t instreams, std::uint64_t id) {
    usrsctp_set_non_blocking(s, 1);
    const int on = 1;
    usrsctp_setsockopt(s, IPPROTO_SCTP, SCTP_NODELAY, &on, sizeof on);
    usrsctp_setsockopt(s, IPPROTO_SCTP, SCTP_RECVRCVINFO, &on, sizeof on);
    const int buf = options.socket_buffer_bytes;
    usrsctp_setsockopt(s, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    usrsctp_setsockopt(s, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    sctp_event ev{};
    ev.se_assoc_id = SCTP_ALL_ASSOC;
    ev.se_type = SCTP_ASSOC_CHANGE;
    ev.se_on = 1;
    usrsctp_setsockopt(s, IPPROTO_SCTP, SCTP_EVENT, &ev, sizeof ev);
    sctp_initmsg init{};
    init.sinit_num_ostreams = ostreams;
    init.sinit_max_instreams = instreams;
    init.sinit_max_attempts = options.init_attempts;
    init.sinit_max_init_timeo = options.init_timeout_ms;
    usrsctp_setsockopt(s, IPPROTO_SCTP, SCTP_INITMSG, &init, sizeof init);
    usrsctp_set_upcall(s, &Impl::upcall, reinterpret_cast<void*>(static_cast<std::uintptr_t>(id)));
  }

  // Every port either family's table listens on (a listener serves both: its AF_CONN
  // addresses are paths of either family).
  bool listen_port(std::uint16_t port) const {
    for (const auto& t : tables) {
      if (t && t->listen_ports().contains(port)) return true;
    }
    return false;
  }

  void sync_listeners() {
    std::set<std::uint16_t> want;
    for (const auto& t : tables) {
      if (t) want.insert(t->listen_ports().begin(), t->listen_ports().end());
    }
    for (auto it = listeners.begin(); it != listeners.end();) {
      if (want.contains(it->first)) {
        ++it;
        continue;
      }
      usrsctp_set_upcall(it->second, nullptr, nullptr);
      usrsctp_close(it->second);
      it = listeners.erase(it);
    }
    for (std::uint16_t port : want) {
      if (listeners.contains(port)) continue;
      struct socket* s = usrsctp_socket(AF_CONN, SOCK_STREAM, IPPROTO_SCTP, nullptr, nullptr, 0, nullptr);
      if (s == nullptr) {
        spdlog::error("sctp proxy: socket for port {}: {}", port, errno_text(errno));
        continue;
      }
      configure(s, options.streams, options.streams, kListenerBit | port);
      sockaddr_conn a{};
      a.sconn_family = AF_CONN;
      a.sconn_port = htons(port);
      a.sconn_addr = nullptr;  // every AF_CONN address
      if (usrsctp_bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || usrsctp_listen(s, 1024) != 0) {
        spdlog::error("sctp proxy: listen on port {}: {}", port, errno_text(errno));
        usrsctp_set_upcall(s, nullptr, nullptr);
        usrsctp_close(s);
        continue;
      }
      listeners.emplace(port, s);
    }
  }

  // The kernel's answer for `remote` (a connected UDP socket sends nothing): the source address
  // and the route's MTU, cached.
  std::optional<Route> route(const IpAddress& remote) {
    if (auto it = routes.find(remote); it != routes.end()) return it->second;
    const bool is6 = remote.is_v6();
    const int fd = socket(is6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return std::nullopt;
    union {
      sockaddr sa;
      sockaddr_in v4;
      sockaddr_in6 v6;
    } to{}, me{};
    socklen_t to_len = 0;
    if (is6) {
      to.v6.sin6_family = AF_INET6;
      to.v6.sin6_port = htons(9);
      to_in6(remote, to.v6.sin6_addr);
      to_len = sizeof to.v6;
    } else {
      to.v4.sin_family = AF_INET;
      to.v4.sin_port = htons(9);
      to.v4.sin_addr.s_addr = net(remote);
      to_len = sizeof to.v4;
    }
    socklen_t len = sizeof me;
    std::optional<Route> out;
    if (connect(fd, &to.sa, to_len) == 0 && getsockname(fd, &me.sa, &len) == 0) {
      Route r;
      r.source = is6 ? v6(me.v6.sin6_addr) : v4(me.v4.sin_addr.s_addr);
      r.mtu = is6 ? 1280 : 1500;
      int mtu = 0;
      socklen_t mtu_len = sizeof mtu;
      if (is6) {
        if (getsockopt(fd, IPPROTO_IPV6, IPV6_MTU, &mtu, &mtu_len) == 0 && mtu >= 1280) r.mtu = static_cast<std::uint32_t>(mtu);
      } else if (getsockopt(fd, IPPROTO_IP, IP_MTU, &mtu, &mtu_len) == 0 && mtu >= 576) {
        r.mtu = static_cast<std::uint32_t>(mtu);
      }
      out = r;
      routes[remote] = r;
    }
    close(fd);
    return out;
  }

  // usrsctp gives AF_CONN paths an MTU of 1280; the route's saves packets. Path MTU discovery
  // stays off: the route's MTU is what the kernel will send. For AF_CONN, usrsctp's path MTU
  // counts what follows the SCTP common header, and it adds the header itself: 1,500 on the
  // route is 1,468 here (one more byte and every full packet leaves the node in two IP fragments);
  // over IPv6 the header is 40 bytes: 1,500 is 1,448.
  // It applies to associations made after the call: an accepted association takes its
  // listener's, so the listener is set for each client just before its COOKIE ECHO is fed in.
  void set_path_mtu(struct socket* s, const IpAddress& remote) {
    const auto r = route(remote);
    if (!r) return;
    sctp_paddrparams p{};
    p.spp_assoc_id = SCTP_FUTURE_ASSOC;
    p.spp_flags = SPP_PMTUD_DISABLE;
    p.spp_pathmtu = r->mtu - (remote.is_v6() ? 40 : 20) - 12;
    usrsctp_setsockopt(s, IPPROTO_SCTP, SCTP_PEER_ADDR_PARAMS, &p, sizeof p);
  }

  std::optional<std::uint16_t> allocate_port() {
    const std::uint32_t first = options.local_port_first, last = options.local_port_last;
    const std::uint32_t span = last - first + 1;
    for (std::uint32_t i = 0; i < span; ++i) {
      const std::uint16_t p = static_cast<std::uint16_t>(first + (next_port + i) % span);
      if (endpoint_ports.contains(p) || listen_port(p)) continue;
      next_port = static_cast<std::uint16_t>((next_port + i + 1) % span);
      return p;
    }
    return std::nullopt;
  }

  void close_socket(struct socket*& s, bool abort) {
    if (s == nullptr) return;
    usrsctp_set_upcall(s, nullptr, nullptr);
    if (abort) {
      linger l{1, 0};
      usrsctp_setsockopt(s, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    usrsctp_close(s);
    s = nullptr;
  }

  void release_endpoint_side(Relay& r, bool abort) {
    if (r.endpoint_path != nullptr && r.target) flows.erase(Flow{r.endpoint_path, r.endpoint_local_port, r.target->port});
    close_socket(r.endpoint, abort);
    if (r.endpoint_local_port != 0) endpoint_ports.erase(r.endpoint_local_port);
    r.endpoint_local_port = 0;
    if (r.endpoint_path != nullptr) --r.endpoint_path->relays;
    r.endpoint_path = nullptr;
    r.up = false;
    r.nodelay[kToEndpoint] = true;  // a new endpoint socket starts with SCTP_NODELAY on
  }

  void finish(Relay& r, bool abort, std::string_view why) {
    if (r.dead) return;
    if (log::v(3)) {
      spdlog::info("sctp proxy: association {} from {} for {} ended{}: {}", r.id, r.client_ip.to_string(),
                   proxier::to_string(r.service), abort ? " (aborted)" : "", why);
    }
    release_endpoint_side(r, abort);
    close_socket(r.client, abort);
    if (r.client_path != nullptr) flows.erase(Flow{r.client_path, r.listen_port, r.client_port});
    if (r.client_path != nullptr) --r.client_path->relays;
    r.client_path = nullptr;
    r.dead = true;
    counters.active.fetch_sub(1, std::memory_order_relaxed);
  }

  // Opens the endpoint side to the next endpoint, or aborts the client when none is left.
  void connect_next(Relay& r) {
    while (static_cast<int>(r.tried.size()) < options.endpoint_attempts) {
      const ProxyTable* tbl = table(r.client_path->local.family());
      const PortEntry* port = tbl != nullptr ? tbl->find(r.service) : nullptr;
      if (port == nullptr) return finish(r, true, "service port removed");
      const Decision d = tbl->decide(r.client_path->local, r.listen_port, r.client_ip);
      if (d.verdict != Decision::Verdict::kForward) return finish(r, true, d.reason);
      auto target = affinity.pick(*d.port, r.client_ip, *d.candidates, r.tried, Clock::now(), rng);
      if (!target) break;
      r.tried.insert(*target);
      r.target = target;
      if (start_endpoint(r, *target)) return;
      counters.failures.fetch_add(1, std::memory_order_relaxed);
    }
    finish(r, true, "no endpoint accepted the association");
  }

  bool start_endpoint(Relay& r, const Target& t) {
    const IpAddress& ep = t.ip;
    // Single-family end to end: the client's family is the table's, and so the endpoint's.
    if (ep.family() != r.client_ip.family() || (ep.is_v6() && raw6 < 0)) {
      spdlog::warn("sctp proxy: endpoint {} is not of the client's family", t.to_string());
      return false;
    }
    const auto rt = route(ep);
    const std::optional<IpAddress> src = rt ? std::optional<IpAddress>(rt->source) : std::nullopt;
    const auto port = allocate_port();
    if (!src || !port) {
      spdlog::warn("sctp proxy: no {} toward endpoint {}", !src ? "route" : "free local port", t.to_string());
      return false;
    }
    struct socket* s = usrsctp_socket(AF_CONN, SOCK_STREAM, IPPROTO_SCTP, nullptr, nullptr, 0, nullptr);
    if (s == nullptr) return false;
    configure(s, r.client_in, r.client_out, r.id);
    set_path_mtu(s, ep);
    // A silent endpoint is given up after init_attempts INITs init_timeout_ms apart (the
    // default initial RTO of 3 s would keep the client waiting before the next endpoint).
    sctp_rtoinfo rto{};
    rto.srto_assoc_id = SCTP_FUTURE_ASSOC;
    rto.srto_initial = options.init_timeout_ms;
    usrsctp_setsockopt(s, IPPROTO_SCTP, SCTP_RTOINFO, &rto, sizeof rto);
    Path* p = path(*src, ep);
    sockaddr_conn local{};
    local.sconn_family = AF_CONN;
    local.sconn_port = htons(*port);
    local.sconn_addr = nullptr;
    if (usrsctp_bind(s, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
      spdlog::warn("sctp proxy: bind port {}: {}", *port, errno_text(errno));
      close_socket(s, true);
      return false;
    }
    endpoint_ports.insert(*port);
    r.endpoint = s;
    r.endpoint_local_port = *port;
    r.endpoint_path = p;
    ++p->relays;
    flows[Flow{p, *port, t.port}] = r.id;
    sockaddr_conn to{};
    to.sconn_family = AF_CONN;
    to.sconn_port = htons(t.port);
    to.sconn_addr = p;
    if (usrsctp_connect(s, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0 && errno != EINPROGRESS) {
      spdlog::warn("sctp proxy: connect to {}: {}", t.to_string(), errno_text(errno));
      release_endpoint_side(r, true);
      return false;
    }
    if (log::v(4)) {
      spdlog::debug("sctp proxy: association {} from {}: connecting to {} from port {}", r.id, r.client_ip.to_string(),
                    t.to_string(), *port);
    }
    return true;
  }

  void accept_on(std::uint16_t port, struct socket* listener) {
    for (;;) {
      sockaddr_conn from{};
      socklen_t len = sizeof from;
      struct socket* c = usrsctp_accept(listener, reinterpret_cast<sockaddr*>(&from), &len);
      if (c == nullptr) return;
      auto* p = static_cast<Path*>(from.sconn_addr);
      auto relay = std::make_unique<Relay>();
      Relay& r = *relay;
      r.id = next_id++;
      r.client = c;
      r.client_path = p;
      r.listen_port = port;
      r.client_port = ntohs(from.sconn_port);
      if (p != nullptr) ++p->relays;
      if (p != nullptr) flows[Flow{p, port, r.client_port}] = r.id;
      r.client_ip = p != nullptr ? p->remote : IpAddress();
      relays.emplace(r.id, std::move(relay));
      counters.active.fetch_add(1, std::memory_order_relaxed);
      counters.total.fetch_add(1, std::memory_order_relaxed);
      configure(c, options.streams, options.streams, r.id);
      const ProxyTable* tbl = p != nullptr ? table(p->local.family()) : nullptr;
      if (p == nullptr || tbl == nullptr) {
        finish(r, true, "no path");
        continue;
      }
      sctp_status st{};
      socklen_t st_len = sizeof st;
      if (usrsctp_getsockopt(c, IPPROTO_SCTP, SCTP_STATUS, &st, &st_len) != 0) {
        finish(r, true, "no status");
        continue;
      }
      r.client_in = st.sstat_instrms;
      r.client_out = st.sstat_outstrms;
      const Decision d = tbl->decide(p->local, port, r.client_ip);
      if (d.verdict != Decision::Verdict::kForward) {
        finish(r, true, d.reason);
        continue;
      }
      r.service = d.port->name;
      connect_next(r);
    }
  }

  // --- relaying --------------------------------------------------------------------------

  struct socket* source(Relay& r, Dir d) { return d == kToEndpoint ? r.client : r.endpoint; }
  struct socket* sink(Relay& r, Dir d) { return d == kToEndpoint ? r.endpoint : r.client; }

  // Sends the pending message of direction d; false while the sink has no room.
  //
  // Messages read in one turn are bundled: while the source has more to read, the sink queues
  // them (Nagle on: usrsctp sends nothing with data in flight until an MTU's worth is queued);
  // the last message of the turn goes with Nagle off, which sends everything queued at once.
  // Unbundled, every relayed message costs the peers a packet (and a wake-up) of its own.
  bool flush(Relay& r, Dir d) {
    if (!r.pending[d]) return true;
    Message& m = *r.pending[d];
    struct socket* from = source(r, d);
    const bool more = !r.eof[d] && from != nullptr && (usrsctp_get_events(from) & SCTP_EVENT_READ) != 0;
    if (more == r.nodelay[d]) {
      const int on = more ? 0 : 1;
      usrsctp_setsockopt(sink(r, d), IPPROTO_SCTP, SCTP_NODELAY, &on, sizeof on);
      r.nodelay[d] = !more;
    }
    const ssize_t n = usrsctp_sendv(sink(r, d), m.data.data(), m.data.size(), nullptr, 0, &m.info, sizeof m.info,
                                    SCTP_SENDV_SNDINFO, 0);
    if (n < 0) {
      if (errno == EWOULDBLOCK || errno == EAGAIN) return false;
      // The sink is gone or shutting down: the message has nowhere to go.
      if (log::v(4)) spdlog::debug("sctp proxy: association {}: send: {}", r.id, errno_text(errno));
      r.pending[d].reset();
      return true;
    }
    auto& msgs = d == kToEndpoint ? counters.msg_out : counters.msg_in;
    auto& bytes = d == kToEndpoint ? counters.bytes_out : counters.bytes_in;
    msgs.fetch_add(1, std::memory_order_relaxed);
    bytes.fetch_add(m.data.size(), std::memory_order_relaxed);
    r.pending[d].reset();
    return true;
  }

  // Handles a notification read from side `from`; false when the relay ended.
  bool notification(Relay& r, Dir from, const std::uint8_t* data, std::size_t len) {
    const auto* n = reinterpret_cast<const sctp_notification*>(data);
    if (len < sizeof(sctp_assoc_change) || n->sn_header.sn_type != SCTP_ASSOC_CHANGE) return true;
    const sctp_assoc_change& ac = n->sn_assoc_change;
    const bool endpoint_side = from == kToClient;
    if (endpoint_side && !r.up) {
      if (ac.sac_state == SCTP_COMM_UP) {
        if (ac.sac_outbound_streams < r.client_in) {
          spdlog::warn("sctp proxy: endpoint {} granted {} streams, the client uses {}: association {} aborted",
                       r.target ? r.target->to_string() : "?", ac.sac_outbound_streams, r.client_in, r.id);
          finish(r, true, "endpoint granted fewer streams");
          return false;
        }
        r.up = true;
        return true;
      }
      if (ac.sac_state == SCTP_CANT_STR_ASSOC || ac.sac_state == SCTP_COMM_LOST) {
        counters.failures.fetch_add(1, std::memory_order_relaxed);
        if (log::v(2)) {
          spdlog::info("sctp proxy: endpoint {} did not accept association {} (state {}, error {}), trying another",
                       r.target ? r.target->to_string() : "?", r.id, ac.sac_state, ac.sac_error);
        }
        release_endpoint_side(r, true);
        connect_next(r);  // a new endpoint association, or the end of the relay
        return false;
      }
      return true;
    }
    if (ac.sac_state == SCTP_COMM_LOST || ac.sac_state == SCTP_CANT_STR_ASSOC) {
      finish(r, true, endpoint_side ? "endpoint association lost" : "client association lost");
      return false;
    }
    if (ac.sac_state == SCTP_SHUTDOWN_COMP) r.eof[from] = true;
    return true;
  }

  // Moves messages from direction d's source to its sink until one side has to wait.
  // False when the relay ended.
  bool pump(Relay& r, Dir d) {
    for (;;) {
      if (!flush(r, d)) return true;  // the sink's WRITE upcall brings us back
      if (r.eof[d]) break;
      struct socket* from = source(r, d);
      if (from == nullptr) return true;
      sctp_rcvinfo info{};
      socklen_t info_len = sizeof info;
      unsigned int info_type = 0;
      int flags = 0;
      sockaddr_conn addr{};
      socklen_t addr_len = sizeof addr;
      // Into the loop's buffer, then appended to the message being reassembled: an idle
      // relay holds no buffer of its own.
      const ssize_t n = usrsctp_recvv(from, buffer.data(), buffer.size(), reinterpret_cast<sockaddr*>(&addr), &addr_len,
                                      &info, &info_len, &info_type, &flags);
      if (n < 0) {
        if (errno == EWOULDBLOCK || errno == EAGAIN) return true;
        finish(r, true, std::string(d == kToEndpoint ? "client" : "endpoint") + " read: " + errno_text(errno));
        return false;
      }
      if (n == 0) {
        r.eof[d] = true;
        break;
      }
      if (flags & MSG_NOTIFICATION) {
        if (!notification(r, d, buffer.data(), static_cast<std::size_t>(n))) return false;
        if (d == kToClient && !r.up) return true;  // still connecting (or a new endpoint is)
        continue;
      }
      Message& m = r.partial[d];
      if (m.data.size() + static_cast<std::size_t>(n) > options.max_message_bytes) {
        spdlog::warn("sctp proxy: association {}: a message exceeds {} bytes; aborted", r.id, options.max_message_bytes);
        finish(r, true, "message too large");
        return false;
      }
      m.data.insert(m.data.end(), buffer.begin(), buffer.begin() + n);
      if (info_type == SCTP_RECVV_RCVINFO) {
        m.info.snd_sid = info.rcv_sid;
        m.info.snd_ppid = info.rcv_ppid;
        m.info.snd_flags = static_cast<std::uint16_t>(info.rcv_flags & SCTP_UNORDERED);
      }
      if (flags & MSG_EOR) {
        r.pending[d] = std::move(m);
        m = Message{};
      }
    }
    // The source ended: once everything read was passed on, end the sink's side too.
    if (!r.pending[d] && !r.shut[d] && sink(r, d) != nullptr) {
      usrsctp_shutdown(sink(r, d), SHUT_WR);
      r.shut[d] = true;
    }
    if (r.eof[kToEndpoint] && r.eof[kToClient]) {
      finish(r, false, "shut down");
      return false;
    }
    return true;
  }

  void process(Relay& r) {
    if (r.dead) return;
    if (!r.up) {
      // Only the endpoint side is read while it connects; the client's data waits in its
      // socket (its receive window is the back-pressure).
      pump(r, kToClient);
      if (r.dead || !r.up) return;
    }
    if (!pump(r, kToEndpoint) || r.dead) return;
    pump(r, kToClient);
  }

  void run_dirty() {
    for (int round = 0; round < 64 && !dirty.empty(); ++round) {
      std::vector<std::uint64_t> work;
      work.swap(dirty);
      std::sort(work.begin(), work.end());
      work.erase(std::unique(work.begin(), work.end()), work.end());
      for (std::uint64_t id : work) {
        if (id & kListenerBit) {
          const auto port = static_cast<std::uint16_t>(id & 0xffff);
          if (auto it = listeners.find(port); it != listeners.end()) accept_on(port, it->second);
          continue;
        }
        if (auto it = relays.find(id); it != relays.end()) process(*it->second);
      }
    }
    std::erase_if(relays, [](const auto& kv) { return kv.second->dead; });
  }

  // --- configuration ---------------------------------------------------------------------

  void apply_table() {
    bool changed[2] = {false, false};
    {
      std::lock_guard lock(table_mutex);
      for (int f = 0; f < 2; ++f) {
        if (!incoming_set[f]) continue;
        tables[f] = std::move(incoming[f]);
        incoming[f].reset();
        incoming_set[f] = false;
        changed[f] = true;
      }
    }
    if (!changed[0] && !changed[1]) return;
    routes.clear();
    sync_listeners();
    // Associations whose service port or endpoint left their family's table end on both sides.
    for (auto& [id, r] : relays) {
      if (r->dead || !r->target || !changed[fam(r->client_ip.family())]) continue;
      const ProxyTable* tbl = table(r->client_ip.family());
      const PortEntry* port = tbl != nullptr ? tbl->find(r->service) : nullptr;
      if (port == nullptr || !port->serves(*r->target)) {
        if (log::v(2)) {
          spdlog::info("sctp proxy: endpoint {} of {} removed: association {} aborted", r->target->to_string(),
                       proxier::to_string(r->service), id);
        }
        finish(*r, true, "endpoint removed");
      }
    }
    std::erase_if(relays, [](const auto& kv) { return kv.second->dead; });
  }

  void collect_paths(Clock::time_point now) {
    std::erase_if(paths, [&](const auto& kv) {
      if (kv.second->relays != 0 || now - kv.second->last_used <= std::chrono::minutes(5)) return false;
      usrsctp_deregister_address(kv.second.get());
      return true;
    });
    affinity.expire(now);
  }

  void loop() {
    auto last_timer = Clock::now();
    auto last_collect = last_timer;
    auto last_sweep = last_timer;
    while (!stopping.load()) {
      pollfd fds[3] = {{raw, POLLIN, 0}, {wake, POLLIN, 0}, {raw6, POLLIN, 0}};  // (a negative fd is skipped)
      poll(fds, 3, relays.empty() ? 100 : 10);
      const auto now = Clock::now();
      const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(now - last_timer).count();
      if (elapsed > 0) {
        usrsctp_handle_timers(static_cast<std::uint32_t>(elapsed));
        last_timer += std::chrono::milliseconds(elapsed);
      }
      if (fds[1].revents & POLLIN) {
        std::uint64_t v = 0;
        (void)!read(wake, &v, sizeof v);
        apply_table();
      }
      if (fds[0].revents & POLLIN) receive_packets();
      if (fds[2].revents & POLLIN) receive_packets6();
      run_dirty();
      flush_output();
      if (now - last_sweep > std::chrono::seconds(1)) {
        // Timer-driven ends (heartbeats unanswered, retransmissions exhausted) may also come
        // without an upcall: look at every relay once a second.
        for (const auto& [id, r] : relays) {
          for (struct socket* s : {r->client, r->endpoint}) {
            if (s != nullptr && (usrsctp_get_events(s) & (SCTP_EVENT_READ | SCTP_EVENT_ERROR)) != 0) dirty.push_back(id);
          }
        }
        run_dirty();
        flush_output();
        last_sweep = now;
      }
      if (now - last_collect > std::chrono::seconds(10)) {
        collect_paths(now);
        last_collect = now;
      }
    }
    for (auto& [id, r] : relays) finish(*r, true, "proxy stopping");
    relays.clear();
    for (auto& [port, s] : listeners) {
      usrsctp_set_upcall(s, nullptr, nullptr);
      usrsctp_close(s);
    }
    listeners.clear();
    // Let usrsctp send the ABORTs and free what it holds before the paths go.
    flush_output();
    for (int i = 0; i < 50 && usrsctp_finish() != 0; ++i) {
      usrsctp_handle_timers(100);
      flush_output();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
};

SctpProxy::Impl* SctpProxy::Impl::instance = nullptr;

Expected<std::unique_ptr<SctpProxy>> SctpProxy::start(const ProxyOptions& options) {
  if (Impl::instance != nullptr) return Error("the userspace SCTP proxy is already running in this process");
  const int raw = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_SCTP);
  if (raw < 0) {
    const int e = errno;
    if (e == EPERM || e == EACCES) {
      return Error(
          "--sctp-userspace-mode needs CAP_NET_RAW to receive and send SCTP packets on a raw socket "
          "(add NET_RAW to the container's capabilities, or run privileged): " +
          errno_text(e));
    }
    return Error("raw SCTP socket: " + errno_text(e));
  }
  // IPv6: its own raw socket (an IPv6 raw socket delivers no IP header: the destination comes
  // from IPV6_PKTINFO, and the source of what is sent is set the same way). A kernel without
  // IPv6 leaves the proxy IPv4-only.
  int raw6 = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_SCTP);
  if (raw6 < 0) {
    const int e = errno;
    if (e != EAFNOSUPPORT) {
      close(raw);
      return Error("raw IPv6 SCTP socket: " + errno_text(e));
    }
    spdlog::warn("sctp proxy: no IPv6 on this node ({}): SCTP Services are served over IPv4 only", errno_text(e));
  } else {
    const int on = 1;
    if (setsockopt(raw6, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof on) != 0) {
      const int e = errno;
      close(raw);
      close(raw6);
      return Error("raw IPv6 SCTP socket: IPV6_RECVPKTINFO: " + errno_text(e));
    }
  }
  const int big = 4 << 20;
  for (int fd : {raw, raw6}) {
    if (fd < 0) continue;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  }
  const int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    close(raw);
    if (raw6 >= 0) close(raw6);
    return Error("eventfd: " + errno_text(errno));
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->raw = raw;
  impl->raw6 = raw6;
  impl->wake = wake;
  Impl::instance = impl.get();
  usrsctp_init_nothreads(0, &Impl::output, getenv("KPROXY_USRSCTP_DEBUG") ? &debug_printf : nullptr);
  if (getenv("KPROXY_USRSCTP_DEBUG")) usrsctp_sysctl_set_sctp_debug_on(0xffffffff);
  usrsctp_sysctl_set_sctp_heartbeat_interval_default(options.heartbeat_interval_ms);
  usrsctp_sysctl_set_sctp_ecn_enable(0);
  usrsctp_enable_crc32c_offload();
  if (log::v(2)) spdlog::info("sctp proxy: CRC32c {}", crc32c_hardware() ? "by the CPU (SSE 4.2)" : "by table");
  Impl* p = impl.get();
  impl->thread = std::thread([p] { p->loop(); });
  return std::unique_ptr<SctpProxy>(new SctpProxy(std::move(impl)));
}

SctpProxy::SctpProxy(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SctpProxy::~SctpProxy() {
  impl_->stopping.store(true);
  const std::uint64_t one = 1;
  (void)!write(impl_->wake, &one, sizeof one);
  if (impl_->thread.joinable()) impl_->thread.join();
  close(impl_->raw);
  if (impl_->raw6 >= 0) close(impl_->raw6);
  close(impl_->wake);
  Impl::instance = nullptr;
}

void SctpProxy::update(std::shared_ptr<const ProxyTable> table) {
  if (!table) return;
  const IpFamily family = table->family();
  update(family, std::move(table));
}

void SctpProxy::update(IpFamily family, std::shared_ptr<const ProxyTable> table) {
  if (table && table->family() != family) {
    spdlog::error("sctp proxy: a table of {} handed over as {}'s; ignored", to_string(table->family()),
                  to_string(family));
    return;
  }
  {
    std::lock_guard lock(impl_->table_mutex);
    impl_->incoming[fam(family)] = std::move(table);
    impl_->incoming_set[fam(family)] = true;
  }
  const std::uint64_t one = 1;
  (void)!write(impl_->wake, &one, sizeof one);
}

ProxyStats SctpProxy::stats() const {
  const auto& c = impl_->counters;
  ProxyStats s;
  s.associations_active = c.active.load();
  s.associations_total = c.total.load();
  s.messages_to_endpoint = c.msg_out.load();
  s.bytes_to_endpoint = c.bytes_out.load();
  s.messages_to_client = c.msg_in.load();
  s.bytes_to_client = c.bytes_in.load();
  s.endpoint_connect_failures = c.failures.load();
  s.rejected = c.rejected.load();
  s.packets_in = c.packets_in.load();
  s.packets_out = c.packets_out.load();
  s.bad_checksums = c.bad_checksums.load();
  return s;
}

}  // namespace kproxy::sctp_userspace
