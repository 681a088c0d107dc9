// Owning handles for libnl-route objects and a connected rtnetlink socket: what every adapter
// that keeps addresses or devices (kernel::NetlinkLinks, sctp_userspace::LoopbackAddresses)
// starts from. Header-only; its users link libnl-route-3.
#pragma once

#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/socket.h>

#include <memory>
#include <string>

#include "kproxy/status.h"

namespace kproxy::kernel::rtnl {

using Socket = std::unique_ptr<nl_sock, decltype(&nl_socket_free)>;
using Cache = std::unique_ptr<nl_cache, decltype(&nl_cache_free)>;
using Address = std::unique_ptr<rtnl_addr, decltype(&rtnl_addr_put)>;
using Link = std::unique_ptr<rtnl_link, decltype(&rtnl_link_put)>;
using NlAddr = std::unique_ptr<nl_addr, decltype(&nl_addr_put)>;

// A socket connected to NETLINK_ROUTE in the calling thread's network namespace.
inline Expected<Socket> connect() {
  Socket sock(nl_socket_alloc(), &nl_socket_free);
  if (!sock) return Error("netlink: out of memory");
  if (const int err = nl_connect(sock.get(), NETLINK_ROUTE); err < 0) {
    return Error(std::string("netlink connect: ") + nl_geterror(err));
  }
  return sock;
}

}  // namespace kproxy::kernel::rtnl
