#include "kproxy/sctp_userspace/addresses.h"

#include <arpa/inet.h>
#include <linux/if_addr.h>
#include <net/if.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/socket.h>

#include <array>
#include <cstring>
#include <memory>
#include <optional>

#include "kproxy/kernel/rtnl.h"

namespace kproxy::sctp_userspace {

namespace {

namespace rtnl = kernel::rtnl;

using NlCache = rtnl::Cache;
using RtnlAddr = rtnl::Address;
using NlAddr = rtnl::NlAddr;

// IPv6: what marks an address as kproxy's (addresses.h).
constexpr unsigned kIpv6Flags = IFA_F_NODAD | IFA_F_NOPREFIXROUTE;
constexpr std::uint32_t kForever = 0xffffffffu;

Expected<rtnl::Socket> connect_route() { return rtnl::connect(); }

int af(IpFamily family) { return family == IpFamily::kIPv6 ? AF_INET6 : AF_INET; }
int prefix(IpFamily family) { return family == IpFamily::kIPv6 ? 128 : 32; }

RtnlAddr make_addr(const IpAddress& ip, int ifindex) {
  RtnlAddr a(rtnl_addr_alloc(), &rtnl_addr_put);
  const int family = af(ip.family());
  const int plen = prefix(ip.family());
  NlAddr local(nl_addr_build(family, ip.bytes().data(), ip.is_v6() ? 16 : 4), &nl_addr_put);
  nl_addr_set_prefixlen(local.get(), plen);
  rtnl_addr_set_ifindex(a.get(), ifindex);
  rtnl_addr_set_family(a.get(), family);
  rtnl_addr_set_local(a.get(), local.get());
  rtnl_addr_set_prefixlen(a.get(), plen);
  if (ip.is_v4()) {
    rtnl_addr_set_scope(a.get(), RT_SCOPE_HOST);
    rtnl_addr_set_label(a.get(), kAddressLabel);
  } else {
    rtnl_addr_set_flags(a.get(), kIpv6Flags);
    rtnl_addr_set_valid_lifetime(a.get(), kForever);
    rtnl_addr_set_preferred_lifetime(a.get(), 0);
  }
  return a;
}

// Whether a dumped address is one of kproxy's; its address when it is.
std::optional<IpAddress> ours(rtnl_addr* a, int lo) {
  nl_addr* local = rtnl_addr_get_local(a);
  if (local == nullptr) return std::nullopt;
  if (rtnl_addr_get_family(a) == AF_INET) {
    const char* label = rtnl_addr_get_label(a);
    if (label == nullptr || std::strcmp(label, kAddressLabel) != 0 || nl_addr_get_len(local) != 4) return std::nullopt;
    std::uint32_t n = 0;
    std::memcpy(&n, nl_addr_get_binary_addr(local), 4);
    return IpAddress::from_v4(ntohl(n));
  }
  if (rtnl_addr_get_family(a) != AF_INET6 || rtnl_addr_get_ifindex(a) != lo || rtnl_addr_get_prefixlen(a) != 128 ||
      nl_addr_get_len(local) != 16) {
    return std::nullopt;
  }
  const unsigned flags = rtnl_addr_get_flags(a);
  if ((flags & kIpv6Flags) != kIpv6Flags || rtnl_addr_get_preferred_lifetime(a) != 0) return std::nullopt;
  std::array<std::uint8_t, 16> bytes{};
  std::memcpy(bytes.data(), nl_addr_get_binary_addr(local), 16);
  const IpAddress ip = IpAddress::from_v6(bytes);
  if (ip.is_loopback()) return std::nullopt;
  return ip;
}

}  // namespace

Status ServiceAddresses::ensure(const std::set<IpAddress>& want) {
  const Status v4 = ensure(IpFamily::kIPv4, want);
  const Status v6 = ensure(IpFamily::kIPv6, want);
  if (!v4.ok() && !v6.ok()) return Error(v4.message() + "; " + v6.message());
  return v4.ok() ? v6 : v4;
}

Expected<std::set<IpAddress>> LoopbackAddresses::list() {
  auto sock = connect_route();
  if (!sock.ok()) return Error(sock.error());
  nl_cache* raw = nullptr;
  if (const int err = rtnl_addr_alloc_cache(sock->get(), &raw); err < 0) {
    return Error(std::string("netlink: list addresses: ") + nl_geterror(err));
  }
  NlCache cache(raw, &nl_cache_free);
  const int lo = static_cast<int>(if_nametoindex("lo"));
  std::set<IpAddress> out;
  for (nl_object* o = nl_cache_get_first(cache.get()); o != nullptr; o = nl_cache_get_next(o)) {
    if (auto ip = ours(reinterpret_cast<rtnl_addr*>(o), lo)) out.insert(*ip);
  }
  return out;
}

Status LoopbackAddresses::ensure(IpFamily family, const std::set<IpAddress>& want) {
  auto present = list();
  if (!present.ok()) return Error(present.error());
  auto sock = connect_route();
  if (!sock.ok()) return Error(sock.error());
  const int lo = static_cast<int>(if_nametoindex("lo"));
  if (lo == 0) return Error("no loopback device");
  std::string errors;
  for (const IpAddress& ip : *present) {
    if (ip.family() != family || want.contains(ip)) continue;
    if (const int err = rtnl_addr_delete(sock->get(), make_addr(ip, lo).get(), 0); err < 0) {
      errors += (errors.empty() ? "" : "; ") + std::string("delete ") + ip.to_string() + ": " + nl_geterror(err);
    }
  }
  for (const IpAddress& ip : want) {
    if (ip.family() != family || present->contains(ip) || ip.is_unspecified()) continue;
    if (const int err = rtnl_addr_add(sock->get(), make_addr(ip, lo).get(), NLM_F_REPLACE); err < 0) {
      errors += (errors.empty() ? "" : "; ") + std::string("add ") + ip.to_string() + "/" +
                std::to_string(prefix(family)) + " to lo: " + nl_geterror(err);
    }
  }
  if (!errors.empty()) return Error("service addresses: " + errors);
  return {};
}

}  // namespace kproxy::sctp_userspace
