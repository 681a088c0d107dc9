// The IPVS mode's sets and rules: kube-proxy's names, types, entries and rule lines.
#include "kproxy/ipvs/layout.h"

#include <gtest/gtest.h>

#include "../iptables/service_builder.h"

namespace kproxy::ipvs {
namespace {

using iptables::testing::cidr;
using iptables::testing::ip;
using iptables::testing::ServiceBuilder;
using iptables::testing::snapshot;
constexpr auto kTcp = model::Protocol::kTcp;
constexpr auto kUdp = model::Protocol::kUdp;
constexpr auto kSctp = model::Protocol::kSctp;

LayoutOptions options() {
  LayoutOptions o;
  o.node = {"node1", ""};
  o.node_ip = ip("192.168.0.2");
  o.node_port_addresses = {ip("192.168.0.2")};
  o.local_detector = {iptables::LocalDetector::Mode::kCidr, cidr("10.244.0.0/16"), ""};
  return o;
}

Layout layout_of(const std::vector<ServiceBuilder>& services, LayoutOptions o = options()) {
  const auto snap = snapshot(services);
  IpvsOptions d;
  d.family = o.family;
  d.node = o.node;
  d.node_port_addresses = o.node_port_addresses;
  d.skip_sctp = o.skip_sctp;
  return build_layout(snap, build_desired(snap, d), o);
}

std::vector<std::string> entries(const Layout& l, const std::string& set) {
  const auto* s = l.set(set);
  return s != nullptr ? s->entries : std::vector<std::string>{"(no such set)"};
}

TEST(IpvsLayout, EveryKubeProxySetWithTheEntriesOfEachFrontend) {
  auto web = ServiceBuilder("ns", "web", "http", kTcp, "10.96.0.10", 80)
                 .node_port(30080)
                 .external_ip("203.0.113.10")
                 .lb_ip("203.0.113.11")
                 .source_range("198.51.100.0/24")
                 .source_range("192.168.0.0/24")  // holds the node: the node may reach the LB IP
                 .endpoint({"10.244.1.5", 8080, "node1"})
                 .endpoint({"10.244.2.5", 8080, "node2"});
  auto dns = ServiceBuilder("kube-system", "dns", "dns", kUdp, "10.96.0.53", 53)
                 .node_port(30053)
                 .etp_local()
                 .health_check_node_port(32000)
                 .external_ip("203.0.113.53")
                 .endpoint({"10.244.1.9", 53, "node1"});
  auto amf = ServiceBuilder("core", "amf", "ngap", kSctp, "10.96.0.60", 38412).node_port(30412);
  const Layout l = layout_of({web, dns, amf});
  std::vector<std::string> names;
  for (const auto& s : l.sets) names.push_back(s.name + " " + s.type);
  EXPECT_EQ(names, (std::vector<std::string>{
                       "KUBE-LOOP-BACK hash:ip,port,ip", "KUBE-CLUSTER-IP hash:ip,port", "KUBE-EXTERNAL-IP hash:ip,port",
                       "KUBE-EXTERNAL-IP-LOCAL hash:ip,port", "KUBE-LOAD-BALANCER hash:ip,port",
                       "KUBE-LOAD-BALANCER-FW hash:ip,port", "KUBE-LOAD-BALANCER-LOCAL hash:ip,port",
                       "KUBE-LOAD-BALANCER-SOURCE-IP hash:ip,port,ip", "KUBE-LOAD-BALANCER-SOURCE-CIDR hash:ip,port,net",
                       "KUBE-NODE-PORT-TCP bitmap:port", "KUBE-NODE-PORT-LOCAL-TCP bitmap:port",
                       "KUBE-NODE-PORT-UDP bitmap:port", "KUBE-NODE-PORT-LOCAL-UDP bitmap:port",
                       "KUBE-NODE-PORT-SCTP-HASH hash:ip,port", "KUBE-NODE-PORT-LOCAL-SCTP-HASH hash:ip,port",
                       "KUBE-HEALTH-CHECK-NODE-PORT bitmap:port", "KUBE-IPVS-IPS hash:ip"}));
  EXPECT_EQ(entries(l, "KUBE-LOOP-BACK"),
            (std::vector<std::string>{"10.244.1.5,tcp:8080,10.244.1.5", "10.244.1.9,udp:53,10.244.1.9"}));
  EXPECT_EQ(entries(l, "KUBE-CLUSTER-IP"),
            (std::vector<std::string>{"10.96.0.10,tcp:80", "10.96.0.53,udp:53", "10.96.0.60,sctp:38412"}));
  EXPECT_EQ(entries(l, "KUBE-EXTERNAL-IP"), (std::vector<std::string>{"203.0.113.10,tcp:80"}));
  EXPECT_EQ(entries(l, "KUBE-EXTERNAL-IP-LOCAL"), (std::vector<std::string>{"203.0.113.53,udp:53"}));
  EXPECT_EQ(entries(l, "KUBE-LOAD-BALANCER"), (std::vector<std::string>{"203.0.113.11,tcp:80"}));
  EXPECT_EQ(entries(l, "KUBE-LOAD-BALANCER-FW"), (std::vector<std::string>{"203.0.113.11,tcp:80"}));
  EXPECT_EQ(entries(l, "KUBE-LOAD-BALANCER-SOURCE-CIDR"),
            (std::vector<std::string>{"203.0.113.11,tcp:80,192.168.0.0/24", "203.0.113.11,tcp:80,198.51.100.0/24"}));
  EXPECT_EQ(entries(l, "KUBE-LOAD-BALANCER-SOURCE-IP"), (std::vector<std::string>{"203.0.113.11,tcp:80,203.0.113.11"}));
  EXPECT_EQ(entries(l, "KUBE-NODE-PORT-TCP"), (std::vector<std::string>{"30080"}));
  EXPECT_EQ(entries(l, "KUBE-NODE-PORT-UDP"), (std::vector<std::string>{"30053"}));
  EXPECT_EQ(entries(l, "KUBE-NODE-PORT-LOCAL-UDP"), (std::vector<std::string>{"30053"}));
  EXPECT_EQ(entries(l, "KUBE-NODE-PORT-SCTP-HASH"), (std::vector<std::string>{"192.168.0.2,sctp:30412"}));
  EXPECT_EQ(entries(l, "KUBE-HEALTH-CHECK-NODE-PORT"), (std::vector<std::string>{"32000"}));
  EXPECT_EQ(entries(l, "KUBE-IPVS-IPS"),
            (std::vector<std::string>{"10.96.0.10", "10.96.0.53", "10.96.0.60", "203.0.113.10", "203.0.113.11",
                                      "203.0.113.53"}));
  ASSERT_TRUE(l.set("KUBE-NODE-PORT-TCP")->port_range.has_value());
  EXPECT_EQ(*l.set("KUBE-NODE-PORT-TCP")->port_range, (std::pair<std::uint16_t, std::uint16_t>{0, 65535}));
}

TEST(IpvsLayout, TheRulesAreKubeProxysForTheSetsThatHaveEntries) {
  auto web = ServiceBuilder("ns", "web", "http", kTcp, "10.96.0.10", 80)
                 .node_port(30080)
                 .endpoint({"10.244.1.5", 8080, "node1"});
  const std::string payload = layout_of({web}).restore_payload();
  EXPECT_EQ(payload,
            "*nat\n"
            ":KUBE-SERVICES - [0:0]\n"
            ":KUBE-POSTROUTING - [0:0]\n"
            ":KUBE-NODE-PORT - [0:0]\n"
            ":KUBE-LOAD-BALANCER - [0:0]\n"
            ":KUBE-MARK-MASQ - [0:0]\n"
            "-A KUBE-SERVICES -s 127.0.0.0/8 -j RETURN\n"
            "-A KUBE-SERVICES -m comment --comment \"Kubernetes service cluster ip + port for masquerade purpose\" "
            "-m set --match-set KUBE-CLUSTER-IP dst,dst ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ\n"
            "-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT\n"
            "-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT\n"
            "-A KUBE-POSTROUTING -m comment --comment \"Kubernetes endpoints dst ip:port, source ip for solving "
            "hairpin purpose\" -m set --match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE\n"
            "-A KUBE-POSTROUTING -m mark ! --mark 0x004000/0x004000 -j RETURN\n"
            "-A KUBE-POSTROUTING -j MARK --xor-mark 0x004000\n"
            "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE "
            "--random-fully\n"
            "-A KUBE-NODE-PORT -p tcp -m comment --comment \"Kubernetes nodeport TCP port for masquerade purpose\" "
            "-m set --match-set KUBE-NODE-PORT-TCP dst -j KUBE-MARK-MASQ\n"
            "-A KUBE-LOAD-BALANCER -j KUBE-MARK-MASQ\n"
            "-A KUBE-MARK-MASQ -j MARK --or-mark 0x004000\n"
            "COMMIT\n"
            "*filter\n"
            ":KUBE-FORWARD - [0:0]\n"
            ":KUBE-NODE-PORT - [0:0]\n"
            ":KUBE-PROXY-FIREWALL - [0:0]\n"
            ":KUBE-SOURCE-RANGES-FIREWALL - [0:0]\n"
            ":KUBE-IPVS-FILTER - [0:0]\n"
            ":KUBE-IPVS-OUT-FILTER - [0:0]\n"
            "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark --mark 0x004000/0x004000 -j ACCEPT\n"
            "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate "
            "RELATED,ESTABLISHED -j ACCEPT\n"
            "-A KUBE-NODE-PORT -m comment --comment \"Kubernetes health check node port\" -m set --match-set "
            "KUBE-HEALTH-CHECK-NODE-PORT dst -j ACCEPT\n"
            "-A KUBE-SOURCE-RANGES-FIREWALL -j DROP\n"
            "-A KUBE-IPVS-FILTER -m set --match-set KUBE-LOAD-BALANCER dst,dst -j RETURN\n"
            "-A KUBE-IPVS-FILTER -m set --match-set KUBE-CLUSTER-IP dst,dst -j RETURN\n"
            "-A KUBE-IPVS-FILTER -m set --match-set KUBE-EXTERNAL-IP dst,dst -j RETURN\n"
            "-A KUBE-IPVS-FILTER -m set --match-set KUBE-EXTERNAL-IP-LOCAL dst,dst -j RETURN\n"
            "-A KUBE-IPVS-FILTER -m set --match-set KUBE-HEALTH-CHECK-NODE-PORT dst -j RETURN\n"
            "-A KUBE-IPVS-FILTER -m conntrack --ctstate NEW -m set --match-set KUBE-IPVS-IPS dst -j REJECT\n"
            "COMMIT\n");
}

TEST(IpvsLayout, SctpUserspaceModeNamesNoSctpAndIpv6SetsAreKube6) {
  auto amf = ServiceBuilder("core", "amf", "ngap", kSctp, "10.96.0.60", 38412)
                 .node_port(30412)
                 .endpoint({"10.244.1.7", 38412, "node1"});
  LayoutOptions o = options();
  o.skip_sctp = true;
  const Layout l = layout_of({amf}, o);
  for (const auto& s : l.sets) EXPECT_TRUE(s.entries.empty()) << s.name;
  const std::string payload = l.restore_payload();
  EXPECT_EQ(payload.find("sctp"), std::string::npos) << payload;
  EXPECT_EQ(layout_set_names(IpFamily::kIPv6)[0], "KUBE-6-LOOP-BACK");
  // 31 characters at most.
  EXPECT_EQ(layout_set_names(IpFamily::kIPv6)[14], "KUBE-6-NODE-PORT-LOCAL-SCTP-HAS");
}

TEST(IpvsLayout, WithoutALocalDetectorTheNodesOwnVipSourcedTrafficIsMasqueraded) {
  auto web = ServiceBuilder("ns", "web", "http", kTcp, "10.96.0.10", 80);
  LayoutOptions o = options();
  o.local_detector = {};
  EXPECT_NE(layout_of({web}, o).restore_payload().find("-m set --match-set KUBE-CLUSTER-IP src,dst -j KUBE-MARK-MASQ"),
            std::string::npos);
  o.masquerade_all = true;
  EXPECT_NE(layout_of({web}, o).restore_payload().find("-m set --match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ"),
            std::string::npos);
}

LayoutOptions options6() {
  LayoutOptions o;
  o.family = IpFamily::kIPv6;
  o.node = {"node1", ""};
  o.node_ip = ip("fd00:77::11");
  o.node_port_addresses = {ip("fd00:77::11")};
  o.local_detector = {iptables::LocalDetector::Mode::kCidr, cidr("fd00:10:244::/48"), ""};
  return o;
}

TEST(IpvsLayout, Ipv6SetsAreKube6OfFamilyInet6WithIpv6Entries) {
  auto web = ServiceBuilder("ns", "web", "http", kTcp, "fd00:10:96::10", 80)
                 .node_port(30080)
                 .external_ip("2001:db8:113::10")
                 .external_ip("203.0.113.10")  // IPv4: the IPv4 layout's, never in an inet6 set
                 .lb_ip("2001:db8:113::11")
                 .source_range("2001:db8:1::/64")
                 .source_range("198.51.100.0/24")
                 .endpoint({"fd00:10:244:1::5", 8080, "node1"})
                 .endpoint({"10.244.1.5", 8080, "node1"});
  auto amf = ServiceBuilder("core", "amf", "ngap", kSctp, "fd00:10:96::60", 38412).node_port(30412);
  const Layout l = layout_of({web, amf}, options6());
  ASSERT_EQ(l.sets.size(), 17u);
  for (const auto& spec : l.sets) {
    EXPECT_EQ(spec.name.rfind("KUBE-6-", 0), 0u) << spec.name;
    EXPECT_LE(spec.name.size(), 31u) << spec.name;
    EXPECT_EQ(spec.family, kernel::IpFamily::kIPv6) << spec.name;
    for (const auto& e : spec.entries) EXPECT_EQ(e.find("203.0.113"), std::string::npos) << spec.name << " " << e;
  }
  EXPECT_EQ(entries(l, "KUBE-6-LOOP-BACK"),
            (std::vector<std::string>{"fd00:10:244:1::5,tcp:8080,fd00:10:244:1::5"}));
  EXPECT_EQ(entries(l, "KUBE-6-CLUSTER-IP"),
            (std::vector<std::string>{"fd00:10:96::10,tcp:80", "fd00:10:96::60,sctp:38412"}));
  EXPECT_EQ(entries(l, "KUBE-6-EXTERNAL-IP"), (std::vector<std::string>{"2001:db8:113::10,tcp:80"}));
  EXPECT_EQ(entries(l, "KUBE-6-LOAD-BALANCER"), (std::vector<std::string>{"2001:db8:113::11,tcp:80"}));
  // KUBE-6-LOAD-BALANCER-SOURCE-CIDR is 32 characters: cut to 31, as kube-proxy cuts it.
  EXPECT_EQ(entries(l, "KUBE-6-LOAD-BALANCER-SOURCE-CID"),
            (std::vector<std::string>{"2001:db8:113::11,tcp:80,2001:db8:1::/64"}));
  EXPECT_EQ(entries(l, "KUBE-6-NODE-PORT-TCP"), (std::vector<std::string>{"30080"}));
  EXPECT_EQ(entries(l, "KUBE-6-NODE-PORT-SCTP-HASH"), (std::vector<std::string>{"fd00:77::11,sctp:30412"}));
  EXPECT_EQ(entries(l, "KUBE-6-IPVS-IPS"),
            (std::vector<std::string>{"2001:db8:113::10", "2001:db8:113::11", "fd00:10:96::10", "fd00:10:96::60"}));
  // bitmap:port sets have a range and no family of their own (one set type for both families).
  ASSERT_NE(l.set("KUBE-6-NODE-PORT-TCP"), nullptr);
  EXPECT_TRUE(l.set("KUBE-6-NODE-PORT-TCP")->port_range.has_value());
}

TEST(IpvsLayout, Ipv6RulesAreTheSameLayoutOverKube6SetsWithLoopbackAsColonColonOne) {
  auto web = ServiceBuilder("ns", "web", "http", kTcp, "fd00:10:96::10", 80)
                 .node_port(30080)
                 .endpoint({"fd00:10:244:1::5", 8080, "node1"});
  const std::string payload = layout_of({web}, options6()).restore_payload();
  // ip6tables: ::1 instead of 127.0.0.0/8 (no route_localnet, no localhost Service traffic to
  // skip), the cluster CIDR of the family, KUBE-6- sets, and the same REJECT (ip6tables'
  // default answer is icmp6-port-unreachable).
  for (const char* line : {
           "-A KUBE-SERVICES -s ::1/128 -j RETURN\n",
           "-A KUBE-SERVICES -m comment --comment \"Kubernetes service cluster ip + port for masquerade purpose\" "
           "-m set --match-set KUBE-6-CLUSTER-IP dst,dst ! -s fd00:10:244::/48 -j KUBE-MARK-MASQ\n",
           "-A KUBE-SERVICES -m set --match-set KUBE-6-CLUSTER-IP dst,dst -j ACCEPT\n",
           "-m set --match-set KUBE-6-LOOP-BACK dst,dst,src -j MASQUERADE\n",
           "-A KUBE-NODE-PORT -p tcp -m comment --comment \"Kubernetes nodeport TCP port for masquerade purpose\" "
           "-m set --match-set KUBE-6-NODE-PORT-TCP dst -j KUBE-MARK-MASQ\n",
           "-A KUBE-IPVS-FILTER -m set --match-set KUBE-6-HEALTH-CHECK-NODE-PORT dst -j RETURN\n",
           "-A KUBE-IPVS-FILTER -m conntrack --ctstate NEW -m set --match-set KUBE-6-IPVS-IPS dst -j REJECT\n",
       }) {
    EXPECT_NE(payload.find(line), std::string::npos) << "missing: " << line << "\n" << payload;
  }
  EXPECT_EQ(payload.find("127.0.0.0/8"), std::string::npos) << payload;
  EXPECT_EQ(payload.find("--match-set KUBE-C"), std::string::npos) << "an IPv4 set name in the IPv6 rules\n" << payload;
  // The same chains and jumps as IPv4's: --cleanup removes them with the same names.
  const Layout v4 = layout_of({}, options());
  const Layout v6 = layout_of({}, options6());
  ASSERT_EQ(v4.nat.size(), v6.nat.size());
  for (std::size_t i = 0; i < v4.nat.size(); ++i) EXPECT_EQ(v4.nat[i].name, v6.nat[i].name);
  ASSERT_EQ(v4.jumps.size(), v6.jumps.size());
}

}  // namespace
}  // namespace kproxy::ipvs
