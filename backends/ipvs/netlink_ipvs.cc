// kernel::Ipvs over generic netlink (include/kproxy/ipvs/netlink_ipvs.h).
#include "kproxy/ipvs/netlink_ipvs.h"

#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "kproxy/ipvs/genl_codec.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

namespace kproxy::ipvs {

using kernel::IpvsChange;
using kernel::IpvsDestination;
using kernel::IpvsService;
using kernel::IpvsTimeouts;

namespace {

constexpr std::size_t kWindow = 512;  // requests in flight before their answers are read

std::string errno_text(int e) { return std::strerror(e); }

}  // namespace

struct NetlinkIpvs::Impl {
  nl_sock* sock = nullptr;
  std::uint16_t family = 0;
  std::uint32_t seq = 0;
  std::atomic<std::uint64_t> sent{0};

  ~Impl() {
    if (sock != nullptr) nl_socket_free(sock);
  }

  using OnReply = std::function<void(std::uint32_t seq, std::span<const std::uint8_t> attributes)>;

  // Sends the requests (their sequence numbers are seqs[i]) and reads until each one is
  // answered: by an ACK or an error, or by NLMSG_DONE for a dump. Replies carrying data go to
  // on_reply. Returns one Status per request.
  std::vector<Status> transact(const std::vector<std::vector<std::uint8_t>>& requests,
                               const std::vector<std::uint32_t>& seqs, const OnReply& on_reply) {
    std::vector<Status> results(requests.size());
    std::map<std::uint32_t, std::size_t> waiting;
    std::size_t next = 0;
    while (next < requests.size() || !waiting.empty()) {
      while (next < requests.size() && waiting.size() < kWindow) {
        const auto& r = requests[next];
        const int n = nl_sendto(sock, const_cast<std::uint8_t*>(r.data()), r.size());
        if (n < 0) {
          results[next] = Error(std::string("IPVS netlink send: ") + nl_geterror(n));
        } else {
          waiting.emplace(seqs[next], next);
          sent.fetch_add(1, std::memory_order_relaxed);
        }
        ++next;
      }
      if (waiting.empty()) continue;
      sockaddr_nl peer{};
      unsigned char* buf = nullptr;
      const int len = nl_recv(sock, &peer, &buf, nullptr);
      if (len <= 0) {
        const std::string why = len == 0 ? "connection closed" : nl_geterror(len);
        for (const auto& [s, i] : waiting) results[i] = Error("IPVS netlink receive: " + why);
        std::free(buf);
        break;
      }
      int rem = len;
      for (auto* h = reinterpret_cast<nlmsghdr*>(buf); nlmsg_ok(h, rem); h = nlmsg_next(h, &rem)) {
        auto it = waiting.find(h->nlmsg_seq);
        if (it == waiting.end()) continue;  // an answer to nothing we wait for
        if (h->nlmsg_type == NLMSG_ERROR) {
          const auto* e = static_cast<const nlmsgerr*>(nlmsg_data(h));
          if (e->error != 0) results[it->second] = Error(errno_text(-e->error));
          waiting.erase(it);
        } else if (h->nlmsg_type == NLMSG_DONE) {
          waiting.erase(it);
        } else if (h->nlmsg_type == family) {
          const auto* data = static_cast<const std::uint8_t*>(nlmsg_data(h)) + GENL_HDRLEN;
          const int attr_len = nlmsg_datalen(h) - GENL_HDRLEN;
          if (attr_len >= 0 && on_reply) on_reply(h->nlmsg_seq, {data, static_cast<std::size_t>(attr_len)});
        }
      }
      std::free(buf);
    }
    return results;
  }

  Status one(std::vector<std::uint8_t> request, std::uint32_t s, const OnReply& on_reply = nullptr) {
    return transact({std::move(request)}, {s}, on_reply).front();
  }
};

Expected<std::unique_ptr<NetlinkIpvs>> NetlinkIpvs::open() {
  auto impl = std::make_unique<Impl>();
  impl->sock = nl_socket_alloc();
  if (impl->sock == nullptr) return Error("IPVS netlink: out of memory");
  if (const int err = genl_connect(impl->sock); err < 0) {
    return Error(std::string("IPVS netlink: connect: ") + nl_geterror(err));
  }
  // Sequence numbers are ours (set in each request); acks are asked for in each request.
  nl_socket_disable_auto_ack(impl->sock);
  nl_socket_disable_seq_check(impl->sock);
  nl_socket_set_buffer_size(impl->sock, 4 << 20, 4 << 20);
  nl_socket_enable_msg_peek(impl->sock);  // dumps of many services come in large datagrams
  const int one = 1;
  // An error answer without a copy of the request: a window of refusals stays small.
  setsockopt(nl_socket_get_fd(impl->sock), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  const int family = genl_ctrl_resolve(impl->sock, "IPVS");
  if (family < 0) {
    return Error(std::string("IPVS netlink: the kernel has no IPVS family (is the ip_vs module available?): ") +
                 nl_geterror(family));
  }
  impl->family = static_cast<std::uint16_t>(family);
  impl->seq = static_cast<std::uint32_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
  return std::unique_ptr<NetlinkIpvs>(new NetlinkIpvs(std::move(impl)));
}

NetlinkIpvs::NetlinkIpvs(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
NetlinkIpvs::~NetlinkIpvs() = default;

std::uint64_t NetlinkIpvs::messages_sent() const { return impl_->sent.load(); }

Expected<std::vector<IpvsService>> NetlinkIpvs::services() {
  std::vector<IpvsService> out;
  const std::uint32_t s = ++impl_->seq;
  Status st = impl_->one(encode_list_services(impl_->family, s), s, [&](std::uint32_t, auto attrs) {
    // Services kproxy cannot describe (firewall-mark ones, other protocols) are never its own.
    if (auto service = decode_service(attrs)) out.push_back(std::move(*service));
  });
  if (!st) return Error("IPVS: listing services: " + st.message());
  return out;
}

Expected<std::vector<IpvsDestination>> NetlinkIpvs::destinations(const IpvsService& service) {
  std::vector<IpvsDestination> out;
  std::string bad;
  const std::uint32_t s = ++impl_->seq;
  Status st = impl_->one(encode_list_destinations(impl_->family, s, service), s, [&](std::uint32_t, auto attrs) {
    auto d = decode_destination(attrs);
    if (d) {
      out.push_back(std::move(*d));
    } else if (bad.empty()) {
      bad = d.error();
    }
  });
  if (!st) return Error("IPVS: listing the destinations of " + to_string(service) + ": " + st.message());
  if (!bad.empty()) return Error("IPVS: the destinations of " + to_string(service) + ": " + bad);
  return out;
}

std::vector<Status> NetlinkIpvs::apply(const std::vector<IpvsChange>& changes) {
  std::vector<std::vector<std::uint8_t>> requests;
  std::vector<std::uint32_t> seqs;
  requests.reserve(changes.size());
  seqs.reserve(changes.size());
  for (const IpvsChange& c : changes) {
    seqs.push_back(++impl_->seq);
    requests.push_back(encode_change(impl_->family, seqs.back(), c));
  }
  std::vector<Status> results = impl_->transact(requests, seqs, nullptr);
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (!results[i]) results[i] = Error("IPVS: " + to_string(changes[i]) + ": " + results[i].message());
  }
  return results;
}

Status NetlinkIpvs::flush() {
  const std::uint32_t s = ++impl_->seq;
  Status st = impl_->one(encode_flush(impl_->family, s), s);
  if (!st) return Error("IPVS: flush: " + st.message());
  return st;
}

Expected<IpvsTimeouts> NetlinkIpvs::timeouts() {
  std::optional<Expected<IpvsTimeouts>> got;
  const std::uint32_t s = ++impl_->seq;
  Status st = impl_->one(encode_get_timeouts(impl_->family, s), s,
                         [&](std::uint32_t, auto attrs) { got.emplace(decode_timeouts(attrs)); });
  if (!st) return Error("IPVS: reading the timeouts: " + st.message());
  if (!got) return Error("IPVS: reading the timeouts: no answer");
  return *got;
}

Status NetlinkIpvs::set_timeouts(const IpvsTimeouts& timeouts) {
  const std::uint32_t s = ++impl_->seq;
  Status st = impl_->one(encode_set_timeouts(impl_->family, s, timeouts), s);
  if (!st) return Error("IPVS: setting the timeouts: " + st.message());
  return st;
}

}  // namespace kproxy::ipvs
