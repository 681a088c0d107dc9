// The IPVS generic-netlink messages against byte-level expectations written out from
// include/uapi/linux/ip_vs.h and the kernel's parser (ip_vs_ctl.c), not from the codec.
#include "kproxy/ipvs/genl_codec.h"

#include <gtest/gtest.h>

#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

namespace kproxy::ipvs {
namespace {

using kernel::IpvsChange;
using kernel::IpvsDestination;
using kernel::IpvsService;
using Bytes = std::vector<std::uint8_t>;

// Integers as the kernel reads them: host order (ports and addresses are network order).
Bytes u16(std::uint16_t v) {
  Bytes b(2);
  std::memcpy(b.data(), &v, 2);
  return b;
}
Bytes u32(std::uint32_t v) {
  Bytes b(4);
  std::memcpy(b.data(), &v, 4);
  return b;
}
Bytes be16(std::uint16_t v) { return {static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)}; }
Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}
// One attribute: {u16 length (header + payload), u16 type}, the payload, zeros to 4 bytes.
Bytes attr(std::uint16_t type, const Bytes& payload) {
  Bytes out = cat({u16(static_cast<std::uint16_t>(4 + payload.size())), u16(type), payload});
  out.resize((out.size() + 3) & ~std::size_t{3}, 0);
  return out;
}
// A nest: libnl marks it NLA_F_NESTED; the kernel's IPVS parser accepts either.
Bytes nest(std::uint16_t type, std::initializer_list<Bytes> attrs) { return attr(type | 0x8000, cat(attrs)); }
// nlmsghdr {len, type, flags, seq, port 0} + genlmsghdr {cmd, version 1, 0} + attributes.
Bytes message(std::uint16_t family, std::uint16_t flags, std::uint32_t seq, std::uint8_t cmd, const Bytes& attrs) {
  const auto len = static_cast<std::uint32_t>(16 + 4 + attrs.size());
  return cat({u32(len), u16(family), u16(flags), u32(seq), u32(0), Bytes{cmd, 1, 0, 0}, attrs});
}

constexpr std::uint16_t kFamily = 0x1c;
constexpr std::uint16_t kRequestAck = 0x0001 | 0x0004;  // NLM_F_REQUEST | NLM_F_ACK
constexpr std::uint16_t kDump = 0x0300;                  // NLM_F_DUMP

IpvsService service(std::string ip, model::Protocol proto, std::uint16_t port) {
  IpvsService s;
  s.address = *IpAddress::parse(ip);
  s.protocol = proto;
  s.port = port;
  return s;
}

// The SERVICE nest's key attributes: family, protocol, address, port.
Bytes service_key(std::uint16_t af, std::uint16_t proto, const Bytes& addr, std::uint16_t port) {
  return cat({attr(1, u16(af)), attr(2, u16(proto)), attr(3, addr), attr(4, be16(port))});
}

TEST(IpvsGenl, AddServiceCarriesTheKeyAndEverySetting) {
  IpvsService s = service("10.96.0.1", model::Protocol::kTcp, 443);
  s.scheduler = "rr";
  const Bytes want = message(kFamily, kRequestAck, 7, /*NEW_SERVICE*/ 1,
                             nest(1, {service_key(2, 6, {10, 96, 0, 1}, 443), attr(6, {'r', 'r', 0}),
                                      attr(7, cat({u32(0), u32(0xffffffff)})), attr(8, u32(0)),
                                      attr(9, u32(0xffffffff))}));
  EXPECT_EQ(encode_change(kFamily, 7, {IpvsChange::Kind::kAddService, s, {}}), want);
}

TEST(IpvsGenl, UpdateOfAPersistentSctpServiceSendsItsFlagsTimeoutAndScheduler) {
  IpvsService s = service("192.0.2.7", model::Protocol::kSctp, 38412);
  s.scheduler = "mh";
  s.flags = kernel::kIpvsPersistent | kernel::kIpvsSched2 | kernel::kIpvsHashed;  // HASHED is the kernel's
  s.timeout = 10800;
  const Bytes want = message(kFamily, kRequestAck, 8, /*SET_SERVICE*/ 2,
                             nest(1, {service_key(2, 132, {192, 0, 2, 7}, 38412), attr(6, {'m', 'h', 0}),
                                      attr(7, cat({u32(0x11), u32(0xffffffff)})), attr(8, u32(10800)),
                                      attr(9, u32(0xffffffff))}));
  EXPECT_EQ(encode_change(kFamily, 8, {IpvsChange::Kind::kUpdateService, s, {}}), want);
}

TEST(IpvsGenl, DeleteServiceCarriesOnlyTheKeyAndIpv6AddressesAre16Bytes) {
  IpvsService s = service("fd00::a", model::Protocol::kUdp, 53);
  Bytes v6(16, 0);
  v6[0] = 0xfd;
  v6[15] = 0x0a;
  const Bytes want = message(kFamily, kRequestAck, 9, /*DEL_SERVICE*/ 3, nest(1, {service_key(10, 17, v6, 53)}));
  EXPECT_EQ(encode_change(kFamily, 9, {IpvsChange::Kind::kDeleteService, s, {}}), want);
}

TEST(IpvsGenl, AddDestinationCarriesTheServiceKeyAndTheDestination) {
  IpvsService s = service("10.96.0.1", model::Protocol::kTcp, 80);
  IpvsDestination d;
  d.address = *IpAddress::parse("10.244.1.5");
  d.port = 8080;
  d.weight = 1;
  const Bytes want = message(
      kFamily, kRequestAck, 10, /*NEW_DEST*/ 5,
      cat({nest(1, {service_key(2, 6, {10, 96, 0, 1}, 80)}),
           nest(2, {attr(1, {10, 244, 1, 5}), attr(2, be16(8080)), attr(11, u16(2)), attr(3, u32(0)), attr(4, u32(1)),
                    attr(5, u32(0)), attr(6, u32(0))})}));
  EXPECT_EQ(encode_change(kFamily, 10, {IpvsChange::Kind::kAddDestination, s, d}), want);
}

TEST(IpvsGenl, WeightZeroAndDeletionOfADestination) {
  IpvsService s = service("10.96.0.1", model::Protocol::kTcp, 80);
  IpvsDestination d;
  d.address = *IpAddress::parse("10.244.1.5");
  d.port = 8080;
  d.weight = 0;
  const Bytes key = nest(1, {service_key(2, 6, {10, 96, 0, 1}, 80)});
  const Bytes dest_key = cat({attr(1, {10, 244, 1, 5}), attr(2, be16(8080)), attr(11, u16(2))});
  EXPECT_EQ(encode_change(kFamily, 11, {IpvsChange::Kind::kUpdateDestination, s, d}),
            message(kFamily, kRequestAck, 11, /*SET_DEST*/ 6,
                    cat({key, nest(2, {dest_key, attr(3, u32(0)), attr(4, u32(0)), attr(5, u32(0)), attr(6, u32(0))})})));
  EXPECT_EQ(encode_change(kFamily, 12, {IpvsChange::Kind::kDeleteDestination, s, d}),
            message(kFamily, kRequestAck, 12, /*DEL_DEST*/ 7, cat({key, nest(2, {dest_key})})));
}

TEST(IpvsGenl, ListingsAreDumpsAndTheDestinationDumpNamesItsService) {
  EXPECT_EQ(encode_list_services(kFamily, 3), message(kFamily, kRequestAck | kDump, 3, /*GET_SERVICE*/ 4, {}));
  IpvsService s = service("10.96.0.1", model::Protocol::kUdp, 53);
  EXPECT_EQ(encode_list_destinations(kFamily, 4, s),
            message(kFamily, kRequestAck | kDump, 4, /*GET_DEST*/ 8, nest(1, {service_key(2, 17, {10, 96, 0, 1}, 53)})));
  EXPECT_EQ(encode_flush(kFamily, 5), message(kFamily, kRequestAck, 5, /*FLUSH*/ 17, {}));
}

TEST(IpvsGenl, TimeoutsAreSetAndReadAsThreeTopLevelAttributes) {
  EXPECT_EQ(encode_set_timeouts(kFamily, 6, {900, 120, 300}),
            message(kFamily, kRequestAck, 6, /*SET_CONFIG*/ 12,
                    cat({attr(4, u32(900)), attr(5, u32(120)), attr(6, u32(300))})));
  EXPECT_EQ(encode_get_timeouts(kFamily, 7), message(kFamily, kRequestAck, 7, /*GET_CONFIG*/ 13, {}));
  const auto t = decode_timeouts(cat({attr(4, u32(900)), attr(5, u32(120)), attr(6, u32(300))}));
  ASSERT_TRUE(t.ok()) << t.error();
  EXPECT_EQ(*t, (kernel::IpvsTimeouts{900, 120, 300}));
}

// A service as the kernel dumps it (ip_vs_genl_fill_service): IPv4 in 16 address bytes,
// HASHED in the flags, statistics nests.
Bytes dumped_service(std::uint16_t proto, const Bytes& port) {
  Bytes addr(16, 0);
  addr[0] = 10;
  addr[1] = 96;
  addr[3] = 10;
  return nest(1, {attr(1, u16(2)), attr(2, u16(proto)), attr(3, addr), attr(4, port), attr(6, {'w', 'r', 'r', 0}),
                  attr(11, {0}), attr(7, cat({u32(0x3), u32(0xffffffff)})), attr(8, u32(10800)),
                  attr(9, u32(0xffffffff)), nest(10, {attr(1, u32(5))}), nest(12, {attr(1, cat({u32(5), u32(0)}))})});
}

TEST(IpvsGenl, DecodesADumpedServiceWithoutTheHashedFlag) {
  const auto s = decode_service(dumped_service(132, be16(3868)));
  ASSERT_TRUE(s.ok()) << s.error();
  EXPECT_EQ(s->address.to_string(), "10.96.0.10");
  EXPECT_EQ(s->protocol, model::Protocol::kSctp);
  EXPECT_EQ(s->port, 3868);
  EXPECT_EQ(s->scheduler, "wrr");
  EXPECT_EQ(s->flags, kernel::kIpvsPersistent);
  EXPECT_EQ(s->timeout, 10800u);
  EXPECT_EQ(s->netmask, 0xffffffffu);
  EXPECT_EQ(to_string(*s), "SCTP 10.96.0.10:3868");
}

TEST(IpvsGenl, RefusesServicesItCannotDescribeNamingTheAttribute) {
  const auto no_port = decode_service(dumped_service(6, {}));
  ASSERT_FALSE(no_port.ok());
  EXPECT_NE(no_port.error().find("service port"), std::string::npos) << no_port.error();
  const auto icmp = decode_service(dumped_service(1, be16(0)));
  ASSERT_FALSE(icmp.ok());
  EXPECT_NE(icmp.error().find("protocol 1"), std::string::npos) << icmp.error();
  const auto fwmark = decode_service(nest(1, {attr(1, u16(2)), attr(5, u32(7))}));
  ASSERT_FALSE(fwmark.ok());
  EXPECT_NE(fwmark.error().find("firewall-mark"), std::string::npos) << fwmark.error();
  EXPECT_FALSE(decode_service({}).ok());
}

TEST(IpvsGenl, DecodesADumpedDestinationWithItsConnectionCounts) {
  Bytes addr(16, 0);
  addr[0] = 10;
  addr[1] = 244;
  addr[2] = 2;
  addr[3] = 9;
  const Bytes dest = nest(2, {attr(1, addr), attr(2, be16(8080)), attr(3, u32(0)), attr(4, u32(0)), attr(5, u32(0)),
                              attr(6, u32(0)), attr(7, u32(3)), attr(8, u32(2)), attr(9, u32(1)),
                              nest(10, {attr(1, u32(9))}), attr(11, u16(2))});
  const auto d = decode_destination(dest);
  ASSERT_TRUE(d.ok()) << d.error();
  EXPECT_EQ(to_string(*d), "10.244.2.9:8080");
  EXPECT_EQ(d->weight, 0u);
  EXPECT_EQ(d->forward, kernel::kIpvsMasquerade);
  EXPECT_EQ(d->active_connections, 3u);
  EXPECT_EQ(d->inactive_connections, 2u);
  EXPECT_EQ(d->persistent_connections, 1u);
  // Kernels before 3.18 send no family: 16 bytes with 12 trailing zeros are IPv4.
  const auto old = decode_destination(nest(2, {attr(1, addr), attr(2, be16(8080))}));
  ASSERT_TRUE(old.ok()) << old.error();
  EXPECT_EQ(old->address.to_string(), "10.244.2.9");
}

// fd00:10:96::a and fd00:10:244:1::5, network order.
Bytes v6_service_address() {
  return {0xfd, 0x00, 0x00, 0x10, 0x00, 0x96, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x0a};
}
Bytes v6_pod_address() {
  return {0xfd, 0x00, 0x00, 0x10, 0x02, 0x44, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0x00, 0x05};
}

TEST(IpvsGenl, AnIpv6ServiceIsFamilyInet6With16AddressBytesAndAPrefixLengthNetmask) {
  // sessionAffinity ClientIP on an IPv6 Service: the netmask is a prefix length (128), as
  // kube-proxy and ipvsadm send it for AF_INET6, not the IPv4 mask.
  IpvsService s = service("fd00:10:96::a", model::Protocol::kTcp, 443);
  s.flags = kernel::kIpvsPersistent;
  s.timeout = 10800;
  s.netmask = 128;
  const Bytes want = message(kFamily, kRequestAck, 21, /*NEW_SERVICE*/ 1,
                             nest(1, {service_key(10, 6, v6_service_address(), 443), attr(6, {'r', 'r', 0}),
                                      attr(7, cat({u32(0x1), u32(0xffffffff)})), attr(8, u32(10800)),
                                      attr(9, u32(128))}));
  EXPECT_EQ(encode_change(kFamily, 21, {IpvsChange::Kind::kAddService, s, {}}), want);
}

TEST(IpvsGenl, AnIpv6DestinationCarriesFamilyInet6And16AddressBytes) {
  IpvsService s = service("fd00:10:96::a", model::Protocol::kSctp, 38412);
  IpvsDestination d;
  d.address = *IpAddress::parse("fd00:10:244:1::5");
  d.port = 38412;
  d.weight = 1;
  const Bytes key = nest(1, {service_key(10, 132, v6_service_address(), 38412)});
  const Bytes dest_key = cat({attr(1, v6_pod_address()), attr(2, be16(38412)), attr(11, u16(10))});
  EXPECT_EQ(encode_change(kFamily, 22, {IpvsChange::Kind::kAddDestination, s, d}),
            message(kFamily, kRequestAck, 22, /*NEW_DEST*/ 5,
                    cat({key, nest(2, {dest_key, attr(3, u32(0)), attr(4, u32(1)), attr(5, u32(0)), attr(6, u32(0))})})));
  EXPECT_EQ(encode_change(kFamily, 23, {IpvsChange::Kind::kDeleteDestination, s, d}),
            message(kFamily, kRequestAck, 23, /*DEL_DEST*/ 7, cat({key, nest(2, {dest_key})})));
  EXPECT_EQ(encode_list_destinations(kFamily, 24, s),
            message(kFamily, kRequestAck | kDump, 24, /*GET_DEST*/ 8, key));
}

TEST(IpvsGenl, DecodesADumpedIpv6ServiceAndDestination) {
  // As ip_vs_genl_fill_service sends an AF_INET6 service: the family, the 16 bytes, netmask 128.
  const Bytes svc = nest(1, {attr(1, u16(10)), attr(2, u16(17)), attr(3, v6_service_address()), attr(4, be16(53)),
                             attr(6, {'r', 'r', 0}), attr(7, cat({u32(0x2), u32(0xffffffff)})), attr(8, u32(0)),
                             attr(9, u32(128)), nest(10, {attr(1, u32(0))})});
  const auto s = decode_service(svc);
  ASSERT_TRUE(s.ok()) << s.error();
  EXPECT_EQ(s->address.to_string(), "fd00:10:96::a");
  EXPECT_TRUE(s->address.is_v6());
  EXPECT_EQ(s->protocol, model::Protocol::kUdp);
  EXPECT_EQ(s->port, 53);
  EXPECT_EQ(s->flags, 0u);  // HASHED masked out
  EXPECT_EQ(s->netmask, 128u);
  EXPECT_EQ(to_string(*s), "UDP [fd00:10:96::a]:53");

  const Bytes dest = nest(2, {attr(1, v6_pod_address()), attr(2, be16(5353)), attr(3, u32(0)), attr(4, u32(1)),
                              attr(5, u32(0)), attr(6, u32(0)), attr(7, u32(1)), attr(8, u32(0)), attr(9, u32(0)),
                              attr(11, u16(10))});
  const auto d = decode_destination(dest);
  ASSERT_TRUE(d.ok()) << d.error();
  EXPECT_EQ(d->address.to_string(), "fd00:10:244:1::5");
  EXPECT_EQ(d->port, 5353);
  EXPECT_EQ(d->weight, 1u);
  EXPECT_EQ(d->active_connections, 1u);
  EXPECT_EQ(to_string(*d), "[fd00:10:244:1::5]:5353");
  // Kernels before 3.18 send no destination family: 16 bytes that are not IPv4's are IPv6.
  const auto old = decode_destination(nest(2, {attr(1, v6_pod_address()), attr(2, be16(5353))}));
  ASSERT_TRUE(old.ok()) << old.error();
  EXPECT_EQ(old->address.to_string(), "fd00:10:244:1::5");
  // An AF_INET6 service whose address is short is refused, naming the attribute.
  const auto short_v6 = decode_service(nest(1, {attr(1, u16(10)), attr(2, u16(6)), attr(3, {10, 96, 0, 1}),
                                                attr(4, be16(80))}));
  ASSERT_FALSE(short_v6.ok());
  EXPECT_NE(short_v6.error().find("service address: 4 bytes for family 10"), std::string::npos) << short_v6.error();
}

TEST(IpvsGenl, ChangesReadAsIpvsadmWouldSayThem) {
  IpvsService s = service("10.96.0.1", model::Protocol::kTcp, 80);
  IpvsDestination d;
  d.address = *IpAddress::parse("10.244.1.5");
  d.port = 8080;
  d.weight = 0;
  EXPECT_EQ(to_string(IpvsChange{IpvsChange::Kind::kUpdateDestination, s, d}),
            "set 10.244.1.5:8080 of TCP 10.96.0.1:80 to weight 0");
  EXPECT_EQ(to_string(IpvsChange{IpvsChange::Kind::kAddService, s, {}}), "add service TCP 10.96.0.1:80 (rr)");
}

}  // namespace
}  // namespace kproxy::ipvs
