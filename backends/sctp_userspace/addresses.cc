#include "kproxy/sctp_userspace/addresses.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/socket.h>

#include <cstring>
#include <memory>

#include "kproxy/kernel/rtnl.h"

namespace kproxy::sctp_userspace {

namespace {

namespace rtnl = kernel::rtnl;

using NlCache = rtnl::Cache;
using RtnlAddr = rtnl::Address;
using NlAddr = rtnl::NlAddr;

Expected<rtnl::Socket> connect_route() { return rtnl::connect(); }

RtnlAddr make_addr(const IpAddress& ip, int ifindex) {
  RtnlAddr a(rtnl_addr_alloc(), &rtnl_addr_put);
  const std::uint32_t n = htonl(ip.v4_host_order());
  NlAddr local(nl_addr_build(AF_INET, &n, 4), &nl_addr_put);
  nl_addr_set_prefixlen(local.get(), 32);
  rtnl_addr_set_ifindex(a.get(), ifindex);
  rtnl_addr_set_family(a.get(), AF_INET);
  rtnl_addr_set_local(a.get(), local.get());
  rtnl_addr_set_prefixlen(a.get(), 32);
  rtnl_addr_set_scope(a.get(), RT_SCOPE_HOST);
  rtnl_addr_set_label(a.get(), kAddressLabel);
  return a;
}

}  // namespace

Expected<std::set<IpAddress>> LoopbackAddresses::list() {
  auto sock = connect_route();
  if (!sock.ok()) return Error(sock.error());
  nl_cache* raw = nullptr;
  if (const int err = rtnl_addr_alloc_cache(sock->get(), &raw); err < 0) {
    return Error(std::string("netlink: list addresses: ") + nl_geterror(err));
  }
  NlCache cache(raw, &nl_cache_free);
  std::set<IpAddress> out;
  for (nl_object* o = nl_cache_get_first(cache.get()); o != nullptr; o = nl_cache_get_next(o)) {
    auto* a = reinterpret_cast<rtnl_addr*>(o);
    const char* label = rtnl_addr_get_label(a);
    if (rtnl_addr_get_family(a) != AF_INET || label == nullptr || std::strcmp(label, kAddressLabel) != 0) continue;
    nl_addr* local = rtnl_addr_get_local(a);
    if (local == nullptr || nl_addr_get_len(local) != 4) continue;
    std::uint32_t n = 0;
    std::memcpy(&n, nl_addr_get_binary_addr(local), 4);
    out.insert(IpAddress::from_v4(ntohl(n)));
  }
  return out;
}

Status LoopbackAddresses::ensure(const std::set<IpAddress>& want) {
  auto present = list();
  if (!present.ok()) return Error(present.error());
  auto sock = connect_route();
  if (!sock.ok()) return Error(sock.error());
  const int lo = static_cast<int>(if_nametoindex("lo"));
  if (lo == 0) return Error("no loopback device");
  std::string errors;
  for (const IpAddress& ip : *present) {
    if (want.contains(ip)) continue;
    if (const int err = rtnl_addr_delete(sock->get(), make_addr(ip, lo).get(), 0); err < 0) {
      errors += (errors.empty() ? "" : "; ") + std::string("delete ") + ip.to_string() + ": " + nl_geterror(err);
    }
  }
  for (const IpAddress& ip : want) {
    if (!ip.is_v4() || present->contains(ip)) continue;
    if (const int err = rtnl_addr_add(sock->get(), make_addr(ip, lo).get(), NLM_F_REPLACE); err < 0) {
      errors += (errors.empty() ? "" : "; ") + std::string("add ") + ip.to_string() + "/32 to lo: " + nl_geterror(err);
    }
  }
  if (!errors.empty()) return Error("service addresses: " + errors);
  return {};
}

}  // namespace kproxy::sctp_userspace
