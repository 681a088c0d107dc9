// IpvsMode on a dual-stack node: one instance per family (kube-proxy's meta-proxier) sharing
// one IPVS handle, one kube-ipvs0 and one ipset runner, each with the iptables runner of its
// family; against stateful fakes of all of them.
#include "kproxy/ipvs/mode.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "../iptables/service_builder.h"
#include "fake_ipset.h"
#include "fake_iptables.h"
#include "fake_ipvs.h"

namespace kproxy::ipvs {
namespace {

using iptables::testing::cidr;
using iptables::testing::ip;
using iptables::testing::ServiceBuilder;
using iptables::testing::snapshot;
using testing::FakeIpvs;
using testing::FakeLinks;
constexpr auto kTcp = model::Protocol::kTcp;

struct DualStack {
  FakeIpvs ipvs;
  FakeLinks links;
  kernel::FakeIpset ipsets;
  kernel::FakeIptables iptables{kernel::IptablesFlavour::kNft, kernel::IpFamily::kIPv4};
  kernel::FakeIptables ip6tables{kernel::IptablesFlavour::kNft, kernel::IpFamily::kIPv6};
  proxier::NodeFacts node{"node1", ""};
  std::set<proxier::ServicePortName> changed;

  DualStack() { links.devices["eth0"] = {ip("192.168.0.2"), ip("fd00:77::11"), ip("fe80::1")}; }

  // What the daemon builds per family: the same options but the family and its own
  // family-specific facts (node IP, cluster CIDR).
  IpvsModeOptions options(IpFamily family) const {
    IpvsModeOptions o;
    o.family = family;
    const bool v4 = family == IpFamily::kIPv4;
    o.layout.node_ip = ip(v4 ? "192.168.0.2" : "fd00:77::11");
    o.layout.local_detector = {iptables::LocalDetector::Mode::kCidr, cidr(v4 ? "10.244.0.0/16" : "fd00:10:244::/48"), ""};
    return o;
  }
  Status sync(IpvsMode& m, const proxier::Snapshot& s, proxier::SyncKind kind = proxier::SyncKind::kFull) {
    return m.sync(proxier::SyncRequest{s, changed, kind, node, nullptr});
  }
  const kernel::IpsetSpec* set(const std::string& name) const {
    auto it = ipsets.sets().find(name);
    return it == ipsets.sets().end() ? nullptr : &it->second;
  }
  static std::string rules(const kernel::FakeIptables& t, kernel::Table table, const std::string& chain) {
    const auto* c = t.chain(table, chain);
    if (c == nullptr) return "(no chain " + chain + ")";
    std::string out;
    for (const auto& r : c->rules) out += r + "\n";
    return out;
  }
};

ServiceBuilder web4() {
  return ServiceBuilder("ns", "web", "http", kTcp, "10.96.0.10", 80).node_port(30080).endpoint({"10.244.1.5", 8080, "node1"});
}
ServiceBuilder web6() {
  return ServiceBuilder("ns", "web", "http", kTcp, "fd00:10:96::10", 80)
      .node_port(30080)
      .endpoint({"fd00:10:244:1::5", 8080, "node1"});
}

TEST(IpvsModeDualStack, EachFamilyProgramsItsServicesSetsAndRulesAndLeavesTheOthers) {
  DualStack n;
  IpvsMode v4(n.ipvs, n.links, n.ipsets, n.iptables, n.options(IpFamily::kIPv4));
  IpvsMode v6(n.ipvs, n.links, n.ipsets, n.ip6tables, n.options(IpFamily::kIPv6));
  Status s = n.sync(v4, snapshot({web4()}));
  ASSERT_TRUE(s.ok()) << s.message();
  s = n.sync(v6, snapshot({web6()}));
  ASSERT_TRUE(s.ok()) << s.message();

  // IPVS and kube-ipvs0: both families'.
  EXPECT_EQ(n.ipvs.table.size(), 4u);  // cluster IP and NodePort, per family
  EXPECT_EQ(n.links.devices.at("kube-ipvs0"), (std::set<IpAddress>{ip("10.96.0.10"), ip("fd00:10:96::10")}));
  // Sets: KUBE-... of family inet, KUBE-6-... of family inet6, each with its family's entries.
  ASSERT_NE(n.set("KUBE-CLUSTER-IP"), nullptr);
  ASSERT_NE(n.set("KUBE-6-CLUSTER-IP"), nullptr);
  EXPECT_EQ(n.set("KUBE-CLUSTER-IP")->family, kernel::IpFamily::kIPv4);
  EXPECT_EQ(n.set("KUBE-CLUSTER-IP")->entries, (std::vector<std::string>{"10.96.0.10,tcp:80"}));
  EXPECT_EQ(n.set("KUBE-6-CLUSTER-IP")->family, kernel::IpFamily::kIPv6);
  EXPECT_EQ(n.set("KUBE-6-CLUSTER-IP")->entries, (std::vector<std::string>{"fd00:10:96::10,tcp:80"}));
  EXPECT_EQ(n.set("KUBE-6-IPVS-IPS")->entries, (std::vector<std::string>{"fd00:10:96::10"}));
  EXPECT_EQ(n.set("KUBE-IPVS-IPS")->entries, (std::vector<std::string>{"10.96.0.10"}));
  EXPECT_EQ(n.set("KUBE-6-NODE-PORT-TCP")->entries, (std::vector<std::string>{"30080"}));
  EXPECT_EQ(n.ipsets.sets().size(), 34u);  // seventeen per family
  // Rules: iptables names the IPv4 sets, ip6tables the IPv6 ones.
  const std::string nat4 = DualStack::rules(n.iptables, kernel::Table::kNat, "KUBE-SERVICES");
  const std::string nat6 = DualStack::rules(n.ip6tables, kernel::Table::kNat, "KUBE-SERVICES");
  EXPECT_NE(nat4.find("-s 127.0.0.0/8 -j RETURN"), std::string::npos) << nat4;
  EXPECT_NE(nat4.find("--match-set KUBE-CLUSTER-IP dst,dst ! -s 10.244.0.0/16"), std::string::npos) << nat4;
  EXPECT_EQ(nat4.find("KUBE-6-"), std::string::npos) << nat4;
  EXPECT_NE(nat6.find("-s ::1/128 -j RETURN"), std::string::npos) << nat6;
  EXPECT_NE(nat6.find("--match-set KUBE-6-CLUSTER-IP dst,dst ! -s fd00:10:244::/48"), std::string::npos) << nat6;
  EXPECT_EQ(nat6.find("--match-set KUBE-CLUSTER-IP"), std::string::npos) << nat6;
  EXPECT_NE(DualStack::rules(n.ip6tables, kernel::Table::kNat, "PREROUTING").find("-j KUBE-SERVICES"),
            std::string::npos);
  EXPECT_NE(DualStack::rules(n.ip6tables, kernel::Table::kFilter, "INPUT").find("-j KUBE-IPVS-FILTER"),
            std::string::npos);

  // The IPv6 side loses its Service (full sync: the kernel is read again): the IPv4 side's
  // virtual services, address and set entries stay.
  s = n.sync(v6, proxier::Snapshot{});
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(n.ipvs.table.size(), 2u);
  for (const auto& entry : n.ipvs.table) EXPECT_TRUE(entry.second.service.address.is_v4()) << to_string(entry.second.service);
  EXPECT_EQ(n.links.devices.at("kube-ipvs0"), (std::set<IpAddress>{ip("10.96.0.10")}));
  EXPECT_EQ(n.set("KUBE-CLUSTER-IP")->entries, (std::vector<std::string>{"10.96.0.10,tcp:80"}));
  EXPECT_TRUE(n.set("KUBE-6-CLUSTER-IP")->entries.empty());
  // And the IPv4 side's next full sync leaves the IPv6 side's alone.
  s = n.sync(v6, snapshot({web6()}));
  ASSERT_TRUE(s.ok()) << s.message();
  s = n.sync(v4, proxier::Snapshot{});
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(n.ipvs.table.size(), 2u);
  for (const auto& entry : n.ipvs.table) EXPECT_TRUE(entry.second.service.address.is_v6()) << to_string(entry.second.service);
  EXPECT_EQ(n.links.devices.at("kube-ipvs0"), (std::set<IpAddress>{ip("fd00:10:96::10")}));
}

TEST(IpvsModeDualStack, TheFamilyOptionDecidesTheProxiersAndTheLayoutsFamily) {
  DualStack n;
  IpvsModeOptions o = n.options(IpFamily::kIPv6);
  o.proxier.family = IpFamily::kIPv4;  // overridden by o.family
  o.layout.family = IpFamily::kIPv4;
  IpvsMode v6(n.ipvs, n.links, n.ipsets, n.ip6tables, o);
  const Status s = n.sync(v6, snapshot({web6()}));
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(n.ipvs.table.size(), 2u);
  ASSERT_NE(n.set("KUBE-6-CLUSTER-IP"), nullptr);
  EXPECT_EQ(n.set("KUBE-CLUSTER-IP"), nullptr);
}

TEST(IpvsModeDualStack, CleanupPerFamilyRemovesThatFamilysRulesAndSets) {
  DualStack n;
  {
    IpvsMode v4(n.ipvs, n.links, n.ipsets, n.iptables, n.options(IpFamily::kIPv4));
    IpvsMode v6(n.ipvs, n.links, n.ipsets, n.ip6tables, n.options(IpFamily::kIPv6));
    ASSERT_TRUE(n.sync(v4, snapshot({web4()})).ok());
    ASSERT_TRUE(n.sync(v6, snapshot({web6()})).ok());
  }
  // --cleanup: release both families' rules, then remove the rest family by family.
  ASSERT_TRUE(IpvsMode::release_rules(n.iptables).ok());
  ASSERT_TRUE(IpvsMode::release_rules(n.ip6tables).ok());
  Status s = IpvsMode::cleanup(&n.ipvs, n.links, n.ipsets, n.ip6tables);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_TRUE(n.ipvs.table.empty());
  EXPECT_FALSE(n.links.devices.contains("kube-ipvs0"));
  EXPECT_EQ(n.ip6tables.chain(kernel::Table::kNat, "KUBE-SERVICES"), nullptr);
  EXPECT_NE(n.iptables.chain(kernel::Table::kNat, "KUBE-SERVICES"), nullptr) << "the IPv6 cleanup touched iptables";
  for (const auto& entry : n.ipsets.sets()) {
    EXPECT_EQ(entry.first.rfind("KUBE-6-", 0), std::string::npos) << entry.first << " is left";
  }
  EXPECT_EQ(n.ipsets.sets().size(), 17u);
  s = IpvsMode::cleanup(&n.ipvs, n.links, n.ipsets, n.iptables);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_TRUE(n.ipsets.sets().empty());
  EXPECT_EQ(n.iptables.chain(kernel::Table::kNat, "KUBE-SERVICES"), nullptr);
  for (const char* chain : {"PREROUTING", "OUTPUT", "POSTROUTING"}) {
    EXPECT_EQ(DualStack::rules(n.iptables, kernel::Table::kNat, chain).find("KUBE-"), std::string::npos) << chain;
    EXPECT_EQ(DualStack::rules(n.ip6tables, kernel::Table::kNat, chain).find("KUBE-"), std::string::npos) << chain;
  }
}

}  // namespace
}  // namespace kproxy::ipvs
