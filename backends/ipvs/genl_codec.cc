// IPVS generic-netlink messages with libnl (include/kproxy/ipvs/genl_codec.h).
#include "kproxy/ipvs/genl_codec.h"

#include <arpa/inet.h>
#include <linux/ip_vs.h>
#include <netlink/attr.h>
#include <netlink/genl/genl.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <string>

namespace kproxy::ipvs {
namespace {

using kernel::IpvsChange;
using kernel::IpvsDestination;
using kernel::IpvsService;
using kernel::IpvsTimeouts;
using NlMsg = std::unique_ptr<nl_msg, decltype(&nlmsg_free)>;

std::uint16_t protocol_number(model::Protocol p) {
  switch (p) {
    case model::Protocol::kTcp: return IPPROTO_TCP;
    case model::Protocol::kUdp: return IPPROTO_UDP;
    case model::Protocol::kSctp: return IPPROTO_SCTP;
  }
  return 0;
}

std::uint16_t af_of(const IpAddress& ip) { return ip.is_v4() ? AF_INET : AF_INET6; }

// The address as IPVS wants it: 4 bytes for IPv4, 16 for IPv6, network order.
void put_address(nl_msg* m, int type, const IpAddress& ip) {
  nla_put(m, type, ip.is_v4() ? 4 : 16, ip.bytes().data());
}

NlMsg request(std::uint16_t family_id, std::uint32_t seq, std::uint8_t cmd, int flags) {
  NlMsg m(nlmsg_alloc(), &nlmsg_free);
  genlmsg_put(m.get(), 0, seq, family_id, 0, NLM_F_REQUEST | NLM_F_ACK | flags, cmd, IPVS_GENL_VERSION);
  return m;
}

std::vector<std::uint8_t> bytes_of(const NlMsg& m) {
  const nlmsghdr* h = nlmsg_hdr(m.get());
  const auto* b = reinterpret_cast<const std::uint8_t*>(h);
  return {b, b + h->nlmsg_len};
}

// The SERVICE nest: the key always, the settings for an add or an update.
void put_service(nl_msg* m, const IpvsService& s, bool settings) {
  nlattr* nest = nla_nest_start(m, IPVS_CMD_ATTR_SERVICE);
  nla_put_u16(m, IPVS_SVC_ATTR_AF, af_of(s.address));
  nla_put_u16(m, IPVS_SVC_ATTR_PROTOCOL, protocol_number(s.protocol));
  put_address(m, IPVS_SVC_ATTR_ADDR, s.address);
  nla_put_u16(m, IPVS_SVC_ATTR_PORT, htons(s.port));
  if (settings) {
    nla_put_string(m, IPVS_SVC_ATTR_SCHED_NAME, s.scheduler.c_str());
    const ip_vs_flags flags{s.flags & ~kernel::kIpvsHashed, 0xffffffff};
    nla_put(m, IPVS_SVC_ATTR_FLAGS, sizeof flags, &flags);
    nla_put_u32(m, IPVS_SVC_ATTR_TIMEOUT, s.timeout);
    nla_put_u32(m, IPVS_SVC_ATTR_NETMASK, s.netmask);
  }
  nla_nest_end(m, nest);
}

void put_destination(nl_msg* m, const IpvsDestination& d, bool settings) {
  nlattr* nest = nla_nest_start(m, IPVS_CMD_ATTR_DEST);
  put_address(m, IPVS_DEST_ATTR_ADDR, d.address);
  nla_put_u16(m, IPVS_DEST_ATTR_PORT, htons(d.port));
  nla_put_u16(m, IPVS_DEST_ATTR_ADDR_FAMILY, af_of(d.address));
  if (settings) {
    nla_put_u32(m, IPVS_DEST_ATTR_FWD_METHOD, d.forward);
    nla_put_u32(m, IPVS_DEST_ATTR_WEIGHT, d.weight);
    nla_put_u32(m, IPVS_DEST_ATTR_U_THRESH, d.upper_threshold);
    nla_put_u32(m, IPVS_DEST_ATTR_L_THRESH, d.lower_threshold);
  }
  nla_nest_end(m, nest);
}

// Attributes of a span, by type (the last of a type wins); absent ones are null.
template <std::size_t N>
std::array<const nlattr*, N> index(std::span<const std::uint8_t> attributes) {
  std::array<const nlattr*, N> out{};
  const auto* head = reinterpret_cast<const nlattr*>(attributes.data());
  int rem = static_cast<int>(attributes.size());
  for (const nlattr* a = head; nla_ok(a, rem); a = nla_next(a, &rem)) {
    const int type = nla_type(a);
    if (type > 0 && static_cast<std::size_t>(type) < N) out[static_cast<std::size_t>(type)] = a;
  }
  return out;
}

std::span<const std::uint8_t> payload(const nlattr* a) {
  return {static_cast<const std::uint8_t*>(nla_data(a)), static_cast<std::size_t>(nla_len(a))};
}

Expected<std::uint32_t> u32_of(const nlattr* a, const char* name) {
  if (a == nullptr || nla_len(a) < 4) return Error(std::string("IPVS reply: ") + name + " missing or short");
  std::uint32_t v = 0;
  std::memcpy(&v, nla_data(a), 4);
  return v;
}

Expected<std::uint16_t> u16_of(const nlattr* a, const char* name) {
  if (a == nullptr || nla_len(a) < 2) return Error(std::string("IPVS reply: ") + name + " missing or short");
  std::uint16_t v = 0;
  std::memcpy(&v, nla_data(a), 2);
  return v;
}

// An address attribute of family af: IPv4 comes back in the first 4 of 16 bytes.
Expected<IpAddress> address_of(const nlattr* a, std::uint16_t af, const char* name) {
  if (a == nullptr) return Error(std::string("IPVS reply: ") + name + " missing");
  const auto* b = static_cast<const std::uint8_t*>(nla_data(a));
  const int len = nla_len(a);
  if (af == AF_INET && len >= 4) {
    return IpAddress::from_v4(std::uint32_t{b[0]} << 24 | std::uint32_t{b[1]} << 16 | std::uint32_t{b[2]} << 8 | b[3]);
  }
  if (af == AF_INET6 && len >= 16) {
    std::array<std::uint8_t, 16> v6{};
    std::memcpy(v6.data(), b, 16);
    return IpAddress::from_v6(v6);
  }
  return Error(std::string("IPVS reply: ") + name + ": " + std::to_string(len) + " bytes for family " +
               std::to_string(af));
}

}  // namespace

std::uint8_t command_of(IpvsChange::Kind kind) {
  switch (kind) {
    case IpvsChange::Kind::kAddService: return IPVS_CMD_NEW_SERVICE;
    case IpvsChange::Kind::kUpdateService: return IPVS_CMD_SET_SERVICE;
    case IpvsChange::Kind::kDeleteService: return IPVS_CMD_DEL_SERVICE;
    case IpvsChange::Kind::kAddDestination: return IPVS_CMD_NEW_DEST;
    case IpvsChange::Kind::kUpdateDestination: return IPVS_CMD_SET_DEST;
    case IpvsChange::Kind::kDeleteDestination: return IPVS_CMD_DEL_DEST;
  }
  return IPVS_CMD_UNSPEC;
}

std::vector<std::uint8_t> encode_change(std::uint16_t family_id, std::uint32_t seq, const IpvsChange& change) {
  NlMsg m = request(family_id, seq, command_of(change.kind), 0);
  switch (change.kind) {
    case IpvsChange::Kind::kAddService:
    case IpvsChange::Kind::kUpdateService:
      put_service(m.get(), change.service, true);
      break;
    case IpvsChange::Kind::kDeleteService:
      put_service(m.get(), change.service, false);
      break;
    case IpvsChange::Kind::kAddDestination:
    case IpvsChange::Kind::kUpdateDestination:
      put_service(m.get(), change.service, false);
      put_destination(m.get(), change.destination, true);
      break;
    case IpvsChange::Kind::kDeleteDestination:
      put_service(m.get(), change.service, false);
      put_destination(m.get(), change.destination, false);
      break;
  }
  return bytes_of(m);
}

std::vector<std::uint8_t> encode_list_services(std::uint16_t family_id, std::uint32_t seq) {
  return bytes_of(request(family_id, seq, IPVS_CMD_GET_SERVICE, NLM_F_DUMP));
}

std::vector<std::uint8_t> encode_list_destinations(std::uint16_t family_id, std::uint32_t seq,
                                                   const IpvsService& service) {
  NlMsg m = request(family_id, seq, IPVS_CMD_GET_DEST, NLM_F_DUMP);
  put_service(m.get(), service, false);
  return bytes_of(m);
}

std::vector<std::uint8_t> encode_flush(std::uint16_t family_id, std::uint32_t seq) {
  return bytes_of(request(family_id, seq, IPVS_CMD_FLUSH, 0));
}

std::vector<std::uint8_t> encode_get_timeouts(std::uint16_t family_id, std::uint32_t seq) {
  return bytes_of(request(family_id, seq, IPVS_CMD_GET_CONFIG, 0));
}

std::vector<std::uint8_t> encode_set_timeouts(std::uint16_t family_id, std::uint32_t seq, const IpvsTimeouts& t) {
  NlMsg m = request(family_id, seq, IPVS_CMD_SET_CONFIG, 0);
  nla_put_u32(m.get(), IPVS_CMD_ATTR_TIMEOUT_TCP, t.tcp);
  nla_put_u32(m.get(), IPVS_CMD_ATTR_TIMEOUT_TCP_FIN, t.tcp_fin);
  nla_put_u32(m.get(), IPVS_CMD_ATTR_TIMEOUT_UDP, t.udp);
  return bytes_of(m);
}

Expected<IpvsService> decode_service(std::span<const std::uint8_t> attributes) {
  const auto top = index<IPVS_CMD_ATTR_MAX + 1>(attributes);
  if (top[IPVS_CMD_ATTR_SERVICE] == nullptr) return Error("IPVS reply: no service attribute");
  const auto a = index<IPVS_SVC_ATTR_MAX + 1>(payload(top[IPVS_CMD_ATTR_SERVICE]));
  if (a[IPVS_SVC_ATTR_FWMARK] != nullptr && a[IPVS_SVC_ATTR_ADDR] == nullptr) {
    return Error("IPVS reply: a firewall-mark service");
  }
  auto af = u16_of(a[IPVS_SVC_ATTR_AF], "service family");
  if (!af) return Error(af.error());
  auto proto = u16_of(a[IPVS_SVC_ATTR_PROTOCOL], "service protocol");
  if (!proto) return Error(proto.error());
  auto addr = address_of(a[IPVS_SVC_ATTR_ADDR], *af, "service address");
  if (!addr) return Error(addr.error());
  auto port = u16_of(a[IPVS_SVC_ATTR_PORT], "service port");
  if (!port) return Error(port.error());
  IpvsService s;
  s.address = *addr;
  s.port = ntohs(*port);
  switch (*proto) {
    case IPPROTO_TCP: s.protocol = model::Protocol::kTcp; break;
    case IPPROTO_UDP: s.protocol = model::Protocol::kUdp; break;
    case IPPROTO_SCTP: s.protocol = model::Protocol::kSctp; break;
    default: return Error("IPVS reply: service protocol " + std::to_string(*proto));
  }
  if (const nlattr* sched = a[IPVS_SVC_ATTR_SCHED_NAME]; sched != nullptr) {
    const auto* text = static_cast<const char*>(nla_data(sched));
    s.scheduler.assign(text, strnlen(text, static_cast<std::size_t>(nla_len(sched))));
  }
  if (const nlattr* f = a[IPVS_SVC_ATTR_FLAGS]; f != nullptr && nla_len(f) >= static_cast<int>(sizeof(ip_vs_flags))) {
    ip_vs_flags flags{};
    std::memcpy(&flags, nla_data(f), sizeof flags);
    s.flags = flags.flags & ~kernel::kIpvsHashed;
  }
  if (a[IPVS_SVC_ATTR_TIMEOUT] != nullptr) {
    auto timeout = u32_of(a[IPVS_SVC_ATTR_TIMEOUT], "timeout");
    if (!timeout) return Error(timeout.error());
    s.timeout = *timeout;
  }
  if (a[IPVS_SVC_ATTR_NETMASK] != nullptr) {
    auto mask = u32_of(a[IPVS_SVC_ATTR_NETMASK], "netmask");
    if (!mask) return Error(mask.error());
    s.netmask = *mask;
  }
  return s;
}

Expected<IpvsDestination> decode_destination(std::span<const std::uint8_t> attributes) {
  const auto top = index<IPVS_CMD_ATTR_MAX + 1>(attributes);
  if (top[IPVS_CMD_ATTR_DEST] == nullptr) return Error("IPVS reply: no destination attribute");
  const auto a = index<IPVS_DEST_ATTR_MAX + 1>(payload(top[IPVS_CMD_ATTR_DEST]));
  // Kernels before 3.18 send no family: it is then the address's length.
  std::uint16_t af = AF_INET;
  if (a[IPVS_DEST_ATTR_ADDR_FAMILY] != nullptr) {
    auto family = u16_of(a[IPVS_DEST_ATTR_ADDR_FAMILY], "destination family");
    if (!family) return Error(family.error());
    af = *family;
  } else if (a[IPVS_DEST_ATTR_ADDR] != nullptr && nla_len(a[IPVS_DEST_ATTR_ADDR]) == 16) {
    // 16 bytes either way: IPv4 leaves the last 12 zero.
    const auto* b = static_cast<const std::uint8_t*>(nla_data(a[IPVS_DEST_ATTR_ADDR]));
    af = std::all_of(b + 4, b + 16, [](std::uint8_t x) { return x == 0; }) ? AF_INET : AF_INET6;
  }
  auto addr = address_of(a[IPVS_DEST_ATTR_ADDR], af, "destination address");
  if (!addr) return Error(addr.error());
  auto port = u16_of(a[IPVS_DEST_ATTR_PORT], "destination port");
  if (!port) return Error(port.error());
  IpvsDestination d;
  d.address = *addr;
  d.port = ntohs(*port);
  auto optional_u32 = [&](int type, std::uint32_t& out) {
    if (a[static_cast<std::size_t>(type)] != nullptr && nla_len(a[static_cast<std::size_t>(type)]) >= 4) {
      std::memcpy(&out, nla_data(a[static_cast<std::size_t>(type)]), 4);
    }
  };
  optional_u32(IPVS_DEST_ATTR_FWD_METHOD, d.forward);
  d.forward &= IP_VS_CONN_F_FWD_MASK;
  optional_u32(IPVS_DEST_ATTR_WEIGHT, d.weight);
  optional_u32(IPVS_DEST_ATTR_U_THRESH, d.upper_threshold);
  optional_u32(IPVS_DEST_ATTR_L_THRESH, d.lower_threshold);
  optional_u32(IPVS_DEST_ATTR_ACTIVE_CONNS, d.active_connections);
  optional_u32(IPVS_DEST_ATTR_INACT_CONNS, d.inactive_connections);
  optional_u32(IPVS_DEST_ATTR_PERSIST_CONNS, d.persistent_connections);
  return d;
}

Expected<IpvsTimeouts> decode_timeouts(std::span<const std::uint8_t> attributes) {
  const auto top = index<IPVS_CMD_ATTR_MAX + 1>(attributes);
  IpvsTimeouts t;
  auto tcp = u32_of(top[IPVS_CMD_ATTR_TIMEOUT_TCP], "TCP timeout");
  if (!tcp) return Error(tcp.error());
  auto fin = u32_of(top[IPVS_CMD_ATTR_TIMEOUT_TCP_FIN], "TCP FIN timeout");
  if (!fin) return Error(fin.error());
  auto udp = u32_of(top[IPVS_CMD_ATTR_TIMEOUT_UDP], "UDP timeout");
  if (!udp) return Error(udp.error());
  t.tcp = *tcp;
  t.tcp_fin = *fin;
  t.udp = *udp;
  return t;
}

}  // namespace kproxy::ipvs
