// kernel::NetlinkLinks: devices and host addresses over rtnetlink with libnl-route
// (include/kproxy/kernel/links.h).
#include <linux/if_addr.h>
#include <net/if.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/socket.h>
#include <sys/socket.h>

#include <array>
#include <cstring>
#include <memory>

#include "kproxy/kernel/rtnl.h"

#include "kproxy/kernel/links.h"

namespace kproxy::kernel {

namespace {

using NlCache = rtnl::Cache;
using RtnlAddr = rtnl::Address;
using RtnlLink = rtnl::Link;
using NlAddr = rtnl::NlAddr;

Expected<rtnl::Socket> connect_route() { return rtnl::connect(); }

// The device's index, 0 when there is none.
int index_of(const std::string& name) { return static_cast<int>(if_nametoindex(name.c_str())); }

RtnlAddr host_address(const IpAddress& ip, int ifindex) {
  RtnlAddr a(rtnl_addr_alloc(), &rtnl_addr_put);
  const int af = ip.is_v4() ? AF_INET : AF_INET6;
  const int bits = ip.is_v4() ? 32 : 128;
  NlAddr local(nl_addr_build(af, ip.bytes().data(), ip.is_v4() ? 4 : 16), &nl_addr_put);
  nl_addr_set_prefixlen(local.get(), bits);
  rtnl_addr_set_ifindex(a.get(), ifindex);
  rtnl_addr_set_family(a.get(), af);
  rtnl_addr_set_local(a.get(), local.get());
  rtnl_addr_set_prefixlen(a.get(), bits);
  // IPv6: no duplicate address detection. kube-ipvs0 is a NOARP dummy, where the kernel skips
  // DAD anyway; nodad says so, so a Service address is never left tentative (unusable).
  if (!ip.is_v4()) rtnl_addr_set_flags(a.get(), IFA_F_NODAD);
  return a;
}

std::string text(int err) { return nl_geterror(err); }

}  // namespace

Expected<bool> NetlinkLinks::ensure_dummy(const std::string& name) {
  if (index_of(name) != 0) return false;
  auto sock = connect_route();
  if (!sock.ok()) return Error(sock.error());
  RtnlLink link(rtnl_link_alloc(), &rtnl_link_put);
  rtnl_link_set_name(link.get(), name.c_str());
  if (const int err = rtnl_link_set_type(link.get(), "dummy"); err < 0) {
    return Error("link " + name + ": type dummy: " + text(err));
  }
  if (const int err = rtnl_link_add(sock->get(), link.get(), NLM_F_CREATE | NLM_F_EXCL); err < 0) {
    if (err == -NLE_EXIST) return false;  // created meanwhile
    return Error("create dummy link " + name + ": " + text(err));
  }
  return true;
}

Expected<bool> NetlinkLinks::delete_link(const std::string& name) {
  const int index = index_of(name);
  if (index == 0) return false;
  auto sock = connect_route();
  if (!sock.ok()) return Error(sock.error());
  RtnlLink link(rtnl_link_alloc(), &rtnl_link_put);
  rtnl_link_set_ifindex(link.get(), index);
  if (const int err = rtnl_link_delete(sock->get(), link.get()); err < 0) {
    if (err == -NLE_NODEV || err == -NLE_OBJ_NOTFOUND) return false;
    return Error("delete link " + name + ": " + text(err));
  }
  return true;
}

Expected<std::vector<std::pair<std::string, IpAddress>>> NetlinkLinks::all_addresses() {
  auto sock = connect_route();
  if (!sock.ok()) return Error(sock.error());
  nl_cache* raw = nullptr;
  if (const int err = rtnl_addr_alloc_cache(sock->get(), &raw); err < 0) {
    return Error("list addresses: " + text(err));
  }
  NlCache cache(raw, &nl_cache_free);
  std::vector<std::pair<std::string, IpAddress>> out;
  for (nl_object* o = nl_cache_get_first(cache.get()); o != nullptr; o = nl_cache_get_next(o)) {
    auto* a = reinterpret_cast<rtnl_addr*>(o);
    nl_addr* local = rtnl_addr_get_local(a);
    if (local == nullptr) continue;
    char name[IF_NAMESIZE] = {};
    if (if_indextoname(static_cast<unsigned>(rtnl_addr_get_ifindex(a)), name) == nullptr) continue;
    const auto* b = static_cast<const std::uint8_t*>(nl_addr_get_binary_addr(local));
    if (rtnl_addr_get_family(a) == AF_INET && nl_addr_get_len(local) == 4) {
      out.emplace_back(name, IpAddress::from_v4(std::uint32_t{b[0]} << 24 | std::uint32_t{b[1]} << 16 |
                                                std::uint32_t{b[2]} << 8 | b[3]));
    } else if (rtnl_addr_get_family(a) == AF_INET6 && nl_addr_get_len(local) == 16) {
      std::array<std::uint8_t, 16> v6{};
      std::memcpy(v6.data(), b, 16);
      out.emplace_back(name, IpAddress::from_v6(v6));
    }
  }
  return out;
}

Expected<std::set<IpAddress>> NetlinkLinks::addresses(const std::string& name) {
  if (index_of(name) == 0) return Error("no link " + name);
  auto all = all_addresses();
  if (!all.ok()) return Error(all.error());
  std::set<IpAddress> out;
  for (const auto& [device, ip] : *all) {
    if (device == name) out.insert(ip);
  }
  return out;
}

Status NetlinkLinks::add_address(const std::string& name, const IpAddress& ip) {
  const int index = index_of(name);
  if (index == 0) return Error("add " + ip.to_string() + " to " + name + ": no such link");
  auto sock = connect_route();
  if (!sock.ok()) return Error(sock.error());
  if (const int err = rtnl_addr_add(sock->get(), host_address(ip, index).get(), NLM_F_REPLACE); err < 0) {
    if (err == -NLE_EXIST) return {};
    return Error("add " + ip.to_string() + " to " + name + ": " + text(err));
  }
  return {};
}

Status NetlinkLinks::delete_address(const std::string& name, const IpAddress& ip) {
  const int index = index_of(name);
  if (index == 0) return {};  // no link, no address
  auto sock = connect_route();
  if (!sock.ok()) return Error(sock.error());
  if (const int err = rtnl_addr_delete(sock->get(), host_address(ip, index).get(), 0); err < 0) {
    if (err == -NLE_NOADDR || err == -NLE_OBJ_NOTFOUND || err == -NLE_NODEV) return {};
    return Error("delete " + ip.to_string() + " from " + name + ": " + text(err));
  }
  return {};
}

}  // namespace kproxy::kernel
