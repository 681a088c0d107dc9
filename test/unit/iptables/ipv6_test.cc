// The IPv6 proxier's rules (issue 10): the whole ip6tables-restore payload of an IPv6 snapshot
// in the layout the daemon uses (kKproxy, lean endpoint rules), held to a golden file, and the
// IPv4-only parts kube-proxy leaves out of ip6tables. Regenerate the golden file with
// KPROXY_UPDATE_GOLDEN=1 and review the difference.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>

#include "kproxy/iptables/render.h"
#include "service_builder.h"

namespace kproxy::iptables {
namespace {

using testing::cidr;
using testing::ip;
using testing::ServiceBuilder;
constexpr auto kTcp = model::Protocol::kTcp;
constexpr auto kUdp = model::Protocol::kUdp;
constexpr auto kSctp = model::Protocol::kSctp;

RenderOptions ipv6_options() {
  RenderOptions o;
  o.family = IpFamily::kIPv6;
  o.node = {"node1", ""};
  o.node_ip = ip("fd00:77::11");
  o.local_detector = {LocalDetector::Mode::kCidr, cidr("fd00:10:244::/48"), ""};
  o.layout = RenderOptions::Layout::kKproxy;
  o.lean_endpoints = true;
  o.localhost_nodeports = true;  // the daemon's default; IPv4 only, so ignored here
  return o;
}

proxier::Snapshot ipv6_snapshot() {
  std::vector<ServiceBuilder> services;
  services.push_back(ServiceBuilder("default", "web", "http", kTcp, "fd00:96::10", 80)
                         .node_port(30080)
                         .endpoint({"fd00:10:244:1::10", 8080, "node1"})
                         .endpoint({"fd00:10:244:2::10", 8080, "node2"}));
  services.push_back(ServiceBuilder("default", "local", "dns", kUdp, "fd00:96::11", 53)
                         .node_port(30181)
                         .lb_ip("2001:db8:113::30")
                         .source_range("fd00:77::/64")
                         .etp_local()
                         .endpoint({"fd00:10:244:1::11", 5353, "node1"})
                         .endpoint({"fd00:10:244:2::11", 5353, "node2"}));
  services.push_back(ServiceBuilder("core", "mme", "s1ap", kSctp, "fd00:96::12", 36412)
                         .external_ip("2001:db8:113::10")
                         .affinity(300)
                         .endpoint({"fd00:10:244:2::12", 36412, "node2"}));
  services.push_back(ServiceBuilder("default", "empty", "http", kTcp, "fd00:96::13", 80));
  services.push_back(ServiceBuilder("default", "itp", "http", kTcp, "fd00:96::14", 80)
                         .itp_local()
                         .endpoint({"fd00:10:244:2::14", 8080, "node2"}));
  proxier::Snapshot s = testing::snapshot(services);
  s.family = IpFamily::kIPv6;
  return s;
}

std::string payload(const RenderedRules& rules) { return restore_payload(sync_blocks(rules, nullptr, {})); }

TEST(Ipv6Rules, WholePayloadMatchesTheGoldenFile) {
  const std::string text = payload(render(ipv6_snapshot(), ipv6_options()));
  const std::string path = std::string(KPROXY_FIXTURES_DIR) + "/iptables/ipv6-lean.rules";
  if (const char* update = std::getenv("KPROXY_UPDATE_GOLDEN"); update != nullptr && *update == '1') {
    std::ofstream(path, std::ios::trunc) << text;
  }
  std::ifstream in(path);
  ASSERT_TRUE(in) << "missing " << path << " (run with KPROXY_UPDATE_GOLDEN=1)";
  std::stringstream golden;
  golden << in.rdbuf();
  EXPECT_EQ(text, golden.str());
}

TEST(Ipv6Rules, NoIpv4AddressAndNoLocalhostNodePorts) {
  const RenderedRules rules = render(ipv6_snapshot(), ipv6_options());
  const std::string text = payload(rules);
  // No dotted quad anywhere: not 127.0.0.0/8, not a node IP of the other family.
  EXPECT_FALSE(std::regex_search(text, std::regex(R"(\b\d+\.\d+\.\d+\.\d+\b)"))) << text;
  // route_localnet is IPv4's: no KUBE-FIREWALL chain, and the NodePort tail skips ::1.
  EXPECT_EQ(rules.find(Table::kFilter, kKubeletFirewallChain), nullptr);
  EXPECT_NE(text.find("-m addrtype --dst-type LOCAL ! -d ::1/128 -j KUBE-NODEPORTS"), std::string::npos);
  // DNAT to "[IP]:port", as ip6tables wants it.
  EXPECT_NE(text.find("--to-destination [fd00:10:244:1::10]:8080"), std::string::npos);
  // The NodePort and REJECT rules are the same as IPv4's.
  EXPECT_NE(text.find("-j REJECT"), std::string::npos);
}

TEST(Ipv6Rules, HairpinSetIsTheIpv6One) {
  const RenderedRules rules = render(ipv6_snapshot(), ipv6_options());
  ASSERT_EQ(rules.ipsets.size(), 1u);
  EXPECT_EQ(rules.ipsets[0]->name, "KUBE-6-LOOP-BACK");
  EXPECT_EQ(rules.ipsets[0]->family, kernel::IpFamily::kIPv6);
  EXPECT_EQ(rules.ipsets[0]->entries.front(), "fd00:10:244:1::10,tcp:8080,fd00:10:244:1::10");
  EXPECT_NE(payload(rules).find("--match-set KUBE-6-LOOP-BACK dst,dst,src"), std::string::npos);
  EXPECT_EQ(payload(rules).find("KUBE-LOOP-BACK "), std::string::npos);
}

TEST(Ipv6Rules, BuiltinJumpsLeaveOutTheKubeletFirewall) {
  for (const BuiltinJump& j : builtin_jumps(ipv6_options())) {
    EXPECT_NE(std::get<Jump>(j.rule.target).chain, kKubeletFirewallChain) << j.chain;
  }
}

}  // namespace
}  // namespace kproxy::iptables
