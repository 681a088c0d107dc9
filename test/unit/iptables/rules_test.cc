#include "kproxy/iptables/rules.h"

#include <gtest/gtest.h>

namespace kproxy::iptables {
namespace {

TEST(RulesText, MarkIsPrintedAsGoPercentHash08x) {
  EXPECT_EQ(format_mark(0x4000), "0x004000");
  EXPECT_EQ(format_mark(0x1), "0x000001");
  EXPECT_EQ(format_mark(0x80000000), "0x80000000");
}

TEST(RulesText, ProbabilityHasTenDecimals) {
  EXPECT_EQ(format_probability(1.0 / 3), "0.3333333333");
  EXPECT_EQ(format_probability(0.5), "0.5000000000");
  EXPECT_EQ(format_probability(1.0 / 7), "0.1428571429");
}

TEST(RulesText, CommentsWithSpacesAreQuotedOthersAreNot) {
  Rule quoted{{Comment{"ns/svc:p cluster IP"}}, Jump{"X"}};
  Rule bare{{Comment{"ns/svc:p"}}, Jump{"X"}};
  EXPECT_EQ(rule_spec(quoted), R"(-m comment --comment "ns/svc:p cluster IP" -j X)");
  EXPECT_EQ(rule_spec(bare), "-m comment --comment ns/svc:p -j X");
  // rule_args never quotes: each argument is passed to iptables as it is.
  EXPECT_EQ(rule_args(quoted)[3], "ns/svc:p cluster IP");
}

TEST(RulesText, EveryTermAndTarget) {
  const Cidr host = *Cidr::parse("10.0.0.1/32");
  const Cidr net = *Cidr::parse("10.0.0.0/8");
  Rule r{{Protocol{model::Protocol::kSctp}, Address{Address::Direction::kDestination, host, false},
          Address{Address::Direction::kSource, net, true}, DestinationPort{36412}, InInterface{"veth", true, true},
          AddrTypeLocal{true}, Mark{0x4000, 0x4000, true},
          ConntrackState{ConntrackState::kRelated | ConntrackState::kEstablished | ConntrackState::kDnat, true},
          Probability{0.25}, RecentCheck{"KUBE-SEP-X", 10800}, RecentSet{"KUBE-SEP-X"}},
         Dnat{*IpAddress::parse("10.244.1.5"), 36412}};
  EXPECT_EQ(rule_spec(r),
            "-m sctp -p sctp -d 10.0.0.1 ! -s 10.0.0.0/8 --dport 36412 ! -i veth+ -m addrtype --src-type LOCAL "
            "-m mark ! --mark 0x004000/0x004000 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT "
            "-m statistic --mode random --probability 0.2500000000 "
            "-m recent --name KUBE-SEP-X --rcheck --seconds 10800 --reap -m recent --name KUBE-SEP-X --set "
            "-j DNAT --to-destination 10.244.1.5:36412");
  EXPECT_EQ(rule_spec(Rule{{}, Masquerade{true}}), "-j MASQUERADE --random-fully");
  EXPECT_EQ(rule_spec(Rule{{}, SetMark{SetMark::Op::kXor, 0x4000}}), "-j MARK --xor-mark 0x004000");
  EXPECT_EQ(rule_spec(Rule{{Comment{"c d"}}, NoTarget{}}), "-m comment --comment \"c d\"");
  EXPECT_EQ(rule_spec(Rule{{}, Verdict{Verdict::Kind::kReject}}), "-j REJECT");
}

TEST(RulesText, Ipv6DnatUsesBrackets) {
  Rule r{{}, Dnat{*IpAddress::parse("fd00::5"), 8080}};
  EXPECT_EQ(rule_spec(r), "-j DNAT --to-destination [fd00::5]:8080");
  Rule d{{Address{Address::Direction::kDestination, *Cidr::parse("fd00::1/128"), false}}, NoTarget{}};
  EXPECT_EQ(rule_spec(d), "-d fd00::1");
}

TEST(RulesText, RestorePayloadDeclaresChainsThenRulesThenDeletes) {
  Chain a{"KUBE-A", {Rule{{}, Jump{"KUBE-B"}}}};
  Chain b{"KUBE-B", {Rule{{}, Verdict{Verdict::Kind::kAccept}}}};
  const std::string text = restore_payload({TableBlock{Table::kFilter, {&a, &b}, {"KUBE-OLD"}}});
  EXPECT_EQ(text,
            "*filter\n"
            ":KUBE-A - [0:0]\n"
            ":KUBE-B - [0:0]\n"
            ":KUBE-OLD - [0:0]\n"
            "-A KUBE-A -j KUBE-B\n"
            "-A KUBE-B -j ACCEPT\n"
            "-X KUBE-OLD\n"
            "COMMIT\n");
}

}  // namespace
}  // namespace kproxy::iptables
