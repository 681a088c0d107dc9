// The binary rule encoding of the libiptc applier, checked byte by byte against the kernel's
// structures (what iptables-legacy writes for the same arguments is checked on the kernel by
// test/netns/libiptc_applier_test.cc).
#include "kproxy/iptables/iptc_entry.h"

#include <gtest/gtest.h>
#include <libiptc/ipt_kernel_headers.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/xt_set.h>
#include <linux/netfilter/xt_statistic.h>
#include <linux/netfilter/xt_tcpudp.h>
#include <linux/netfilter_ipv4/ip_tables.h>

#include <cstring>

#include "service_builder.h"

namespace kproxy::iptables {
namespace {

using testing::cidr;
using testing::ip;

Expected<std::uint16_t> set_index(std::string_view name) {
  if (name == "KUBE-LOOP-BACK") return std::uint16_t{7};
  return Error("no such set");
}

struct View {
  std::vector<std::uint8_t> bytes;
  const ipt_entry& entry() const { return *reinterpret_cast<const ipt_entry*>(bytes.data()); }
  const xt_entry_match& match(std::size_t offset) const {
    return *reinterpret_cast<const xt_entry_match*>(bytes.data() + offset);
  }
  const xt_entry_target& target() const {
    return *reinterpret_cast<const xt_entry_target*>(bytes.data() + entry().target_offset);
  }
};

View encode(const Rule& rule) {
  auto e = encode_ipv4_entry(rule, set_index);
  EXPECT_TRUE(e.ok()) << e.error();
  return View{e.ok() ? *e : std::vector<std::uint8_t>(sizeof(ipt_entry) + 64, 0)};
}

TEST(IptcEntry, DnatRuleCarriesItsAddressPortAndProtocol) {
  const View v = encode(Rule{{Address{Address::Direction::kDestination, cidr("10.96.0.10/32")},
                              Protocol{model::Protocol::kTcp}, DestinationPort{80}},
                             Dnat{ip("10.180.0.1"), 8080}});
  EXPECT_EQ(v.entry().ip.proto, IPPROTO_TCP);
  EXPECT_EQ(v.entry().ip.dst.s_addr, htonl(0x0A60000A));
  EXPECT_EQ(v.entry().ip.dmsk.s_addr, 0xFFFFFFFFu);
  const xt_entry_match& tcp = v.match(sizeof(ipt_entry));
  EXPECT_STREQ(tcp.u.user.name, "tcp");
  xt_tcp info{};
  std::memcpy(&info, tcp.data, sizeof info);
  EXPECT_EQ(info.dpts[0], 80);  // host order, as libxt_tcp keeps it
  EXPECT_EQ(info.dpts[1], 80);
  EXPECT_EQ(info.spts[1], 0xFFFF);
  EXPECT_EQ(v.entry().target_offset, sizeof(ipt_entry) + tcp.u.match_size);
  EXPECT_STREQ(v.target().u.user.name, "DNAT");
  EXPECT_EQ(v.target().u.user.revision, 2);
  nf_nat_range2 nat{};
  std::memcpy(&nat, v.target().data, sizeof nat);
  EXPECT_EQ(nat.flags, NF_NAT_RANGE_MAP_IPS | NF_NAT_RANGE_PROTO_SPECIFIED);
  EXPECT_EQ(nat.min_addr.ip, htonl(0x0AB40001));
  EXPECT_EQ(nat.min_proto.all, htons(8080));
  EXPECT_EQ(v.entry().next_offset, v.bytes.size());
}

TEST(IptcEntry, SetMatchDimensionsAndProbabilityAsIptablesParsesThem) {
  const View v = encode(Rule{{SetMatch{"KUBE-LOOP-BACK", "dst,dst,src"}, Probability{0.5}}, Masquerade{}});
  const xt_entry_match& set = v.match(sizeof(ipt_entry));
  EXPECT_STREQ(set.u.user.name, "set");
  EXPECT_EQ(set.u.user.revision, 4);
  xt_set_info_match_v4 info{};
  std::memcpy(&info, set.data, sizeof info);
  EXPECT_EQ(info.match_set.index, 7);
  EXPECT_EQ(info.match_set.dim, 3);
  EXPECT_EQ(info.match_set.flags, 1 << 3);  // the third dimension is the source
  const xt_entry_match& stat = v.match(sizeof(ipt_entry) + set.u.match_size);
  xt_statistic_info p{};
  std::memcpy(&p, stat.data, sizeof p);
  EXPECT_EQ(p.u.random.probability, 0x40000000u);
}

TEST(IptcEntry, AJumpIsAStandardTargetNamedAfterTheChain) {
  const View v = encode(Rule{{}, Jump{"KUBE-SVC-XPGD46QRK7WJZT7O"}});
  EXPECT_STREQ(v.target().u.user.name, "KUBE-SVC-XPGD46QRK7WJZT7O");
  EXPECT_EQ(v.target().u.target_size, XT_ALIGN(sizeof(xt_standard_target)));
  const View none = encode(Rule{{Comment{"counts only"}}, NoTarget{}});
  EXPECT_STREQ(none.target().u.user.name, "");
}

TEST(IptcEntry, WhatCannotBeEncodedIsAnErrorNamingIt) {
  auto no_proto = encode_ipv4_entry(Rule{{DestinationPort{80}}, NoTarget{}}, set_index);
  ASSERT_FALSE(no_proto.ok());
  EXPECT_NE(no_proto.error().find("--dport 80"), std::string::npos) << no_proto.error();
  auto v6 = encode_ipv4_entry(Rule{{Address{Address::Direction::kSource, cidr("fd00::/64")}}, NoTarget{}}, set_index);
  ASSERT_FALSE(v6.ok());
  EXPECT_NE(v6.error().find("fd00::/64"), std::string::npos) << v6.error();
  auto set = encode_ipv4_entry(Rule{{SetMatch{"KUBE-NOPE", "dst"}}, NoTarget{}}, set_index);
  ASSERT_FALSE(set.ok());
  EXPECT_NE(set.error().find("KUBE-NOPE"), std::string::npos) << set.error();
  auto flags = encode_ipv4_entry(Rule{{SetMatch{"KUBE-LOOP-BACK", "dst,port"}}, NoTarget{}}, set_index);
  ASSERT_FALSE(flags.ok());
  EXPECT_NE(flags.error().find("port"), std::string::npos) << flags.error();
}

}  // namespace
}  // namespace kproxy::iptables
