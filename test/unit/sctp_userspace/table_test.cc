#include "kproxy/sctp_userspace/table.h"

#include <gtest/gtest.h>

#include "../iptables/service_builder.h"

namespace kproxy::sctp_userspace {
namespace {

using iptables::testing::ip;
using iptables::testing::ServiceBuilder;
using iptables::testing::snapshot;
using Verdict = Decision::Verdict;
constexpr auto kSctp = model::Protocol::kSctp;
constexpr auto kTcp = model::Protocol::kTcp;

TableOptions options() {
  TableOptions o;
  o.node.name = "node1";
  o.local_pod_cidr = *Cidr::parse("10.244.1.0/24");
  o.node_ips = {ip("192.168.77.11")};
  return o;
}

std::vector<Target> targets(const Decision& d) { return d.candidates ? *d.candidates : std::vector<Target>{}; }
Target t(const std::string& a, std::uint16_t port) { return {ip(a), port}; }

TEST(ProxyTable, TakesOnlySctpPortsAndEveryFrontendOfThem) {
  auto mme = ServiceBuilder("core", "mme", "s1ap", kSctp, "10.96.0.20", 36412)
                 .node_port(30412)
                 .external_ip("203.0.113.20")
                 .lb_ip("203.0.113.21")
                 .endpoint({"10.244.1.10", 36412, "node1"})
                 .endpoint({"10.244.2.10", 36412, "node2"});
  auto web = ServiceBuilder("ns", "web", "http", kTcp, "10.96.0.10", 80).endpoint({"10.244.1.10", 8080, "node1"});
  const auto table = ProxyTable::build(snapshot({mme, web}), options());
  EXPECT_EQ(table->port_count(), 1u);
  EXPECT_EQ(table->service_addresses(), (std::set<IpAddress>{ip("10.96.0.20"), ip("203.0.113.20"), ip("203.0.113.21")}));
  EXPECT_EQ(table->listen_ports(), (std::set<std::uint16_t>{30412, 36412}));
  const std::vector<Target> both = {t("10.244.1.10", 36412), t("10.244.2.10", 36412)};
  for (const auto& [dst, port, kind] : {std::tuple{"10.96.0.20", 36412, FrontendKind::kClusterIp},
                                        std::tuple{"203.0.113.20", 36412, FrontendKind::kExternalIp},
                                        std::tuple{"203.0.113.21", 36412, FrontendKind::kLoadBalancer},
                                        std::tuple{"192.168.77.11", 30412, FrontendKind::kNodePort}}) {
    SCOPED_TRACE(dst);
    const Decision d = table->decide(ip(dst), static_cast<std::uint16_t>(port), ip("10.244.1.11"));
    EXPECT_EQ(d.verdict, Verdict::kForward);
    EXPECT_EQ(d.kind, kind);
    EXPECT_EQ(targets(d), both);
    EXPECT_TRUE(table->answers(ip(dst), static_cast<std::uint16_t>(port)));
  }
  // Not the proxy's: the TCP Service, a port the Service does not have, a NodePort on a
  // Service address.
  EXPECT_FALSE(table->answers(ip("10.96.0.10"), 80));
  EXPECT_FALSE(table->answers(ip("10.96.0.20"), 36413));
  EXPECT_FALSE(table->answers(ip("10.96.0.20"), 30412));
  EXPECT_EQ(table->decide(ip("10.96.0.10"), 80, ip("10.244.1.11")).verdict, Verdict::kNotOurs);
}

TEST(ProxyTable, NodePortsAnswerOnlyOnNodePortAddressesWhenTheyAreGiven) {
  auto svc = ServiceBuilder("core", "amf", "ngap", kSctp, "10.96.0.30", 38412)
                 .node_port(30500)
                 .endpoint({"10.244.2.10", 38412, "node2"});
  auto o = options();
  o.node_port_ips = std::vector<IpAddress>{ip("192.168.77.11")};
  const auto table = ProxyTable::build(snapshot({svc}), o);
  EXPECT_TRUE(table->answers(ip("192.168.77.11"), 30500));
  EXPECT_FALSE(table->answers(ip("10.244.1.1"), 30500));
}

TEST(ProxyTable, NoEndpointsRejectsAndNoLocalEndpointsDrops) {
  auto empty = ServiceBuilder("core", "empty", "p", kSctp, "10.96.0.31", 3868).node_port(30600);
  auto local = ServiceBuilder("core", "local", "p", kSctp, "10.96.0.32", 3868)
                   .node_port(30601)
                   .etp_local()
                   .itp_local()
                   .endpoint({"10.244.2.10", 3868, "node2"});
  const auto table = ProxyTable::build(snapshot({empty, local}), options());
  const IpAddress outside = ip("198.51.100.7");
  EXPECT_EQ(table->decide(ip("10.96.0.31"), 3868, outside).verdict, Verdict::kReject);
  EXPECT_EQ(table->decide(ip("192.168.77.11"), 30600, outside).verdict, Verdict::kReject);
  // Local policies with the only endpoint on another node: dropped, as kube-proxy drops.
  EXPECT_EQ(table->decide(ip("10.96.0.32"), 3868, ip("10.244.1.11")).verdict, Verdict::kDrop);
  EXPECT_EQ(table->decide(ip("192.168.77.11"), 30601, outside).verdict, Verdict::kDrop);
  // External traffic policy Local does not apply to pods of this node or to the node itself
  // (kube-proxy sends them to the cluster-wide chain).
  const Decision from_pod = table->decide(ip("192.168.77.11"), 30601, ip("10.244.1.11"));
  EXPECT_EQ(from_pod.verdict, Verdict::kForward);
  EXPECT_EQ(targets(from_pod), std::vector<Target>{t("10.244.2.10", 3868)});
  EXPECT_EQ(table->decide(ip("192.168.77.11"), 30601, ip("192.168.77.11")).verdict, Verdict::kForward);
}

TEST(ProxyTable, LocalPolicyUsesLocalEndpointsAndTerminatingFallback) {
  auto svc = ServiceBuilder("core", "smf", "p", kSctp, "10.96.0.33", 3868)
                 .itp_local()
                 .endpoint({"10.244.1.10", 3868, "node1", false, true, true})  // terminating, serving
                 .endpoint({"10.244.2.10", 3868, "node2"});
  const auto table = ProxyTable::build(snapshot({svc}), options());
  const Decision d = table->decide(ip("10.96.0.33"), 3868, ip("10.244.1.11"));
  EXPECT_EQ(d.verdict, Verdict::kForward);
  EXPECT_EQ(targets(d), std::vector<Target>{t("10.244.1.10", 3868)});
}

TEST(ProxyTable, SourceRangesAdmitOnlyTheirClientsAndFailClosed) {
  auto allow = ServiceBuilder("core", "lb", "p", kSctp, "10.96.0.34", 3868)
                   .lb_ip("203.0.113.40")
                   .source_range("198.51.100.0/24")
                   .endpoint({"10.244.2.10", 3868, "node2"});
  auto broken = ServiceBuilder("core", "broken", "p", kSctp, "10.96.0.35", 3868)
                    .lb_ip("203.0.113.41")
                    .source_ranges_incomplete()
                    .endpoint({"10.244.2.10", 3868, "node2"});
  const auto table = ProxyTable::build(snapshot({allow, broken}), options());
  EXPECT_EQ(table->decide(ip("203.0.113.40"), 3868, ip("198.51.100.7")).verdict, Verdict::kForward);
  EXPECT_EQ(table->decide(ip("203.0.113.40"), 3868, ip("192.0.2.7")).verdict, Verdict::kDrop);
  // The cluster IP is not filtered by source ranges (as in kube-proxy).
  EXPECT_EQ(table->decide(ip("10.96.0.34"), 3868, ip("192.0.2.7")).verdict, Verdict::kForward);
  // Every range refused: nobody, rather than everybody.
  EXPECT_EQ(table->decide(ip("203.0.113.41"), 3868, ip("198.51.100.7")).verdict, Verdict::kDrop);
}

TEST(ProxyTable, PortEntryServesTheEndpointsOfBothPolicies) {
  auto svc = ServiceBuilder("core", "x", "p", kSctp, "10.96.0.36", 3868)
                 .node_port(30700)
                 .etp_local()
                 .endpoint({"10.244.1.10", 3868, "node1"})
                 .endpoint({"10.244.2.10", 3868, "node2"});
  const auto table = ProxyTable::build(snapshot({svc}), options());
  const PortEntry* p = table->find(svc.info().name);
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(p->serves(t("10.244.1.10", 3868)));
  EXPECT_TRUE(p->serves(t("10.244.2.10", 3868)));
  EXPECT_FALSE(p->serves(t("10.244.3.10", 3868)));
}

TEST(AffinityTable, RandomWithoutAffinityAndStickyWithIt) {
  auto svc = ServiceBuilder("core", "x", "p", kSctp, "10.96.0.37", 3868)
                 .endpoint({"10.244.1.10", 3868, "node1"})
                 .endpoint({"10.244.2.10", 3868, "node2"});
  auto sticky = svc;
  sticky.affinity(60);
  const auto table = ProxyTable::build(snapshot({svc}), options());
  const auto sticky_table = ProxyTable::build(snapshot({sticky}), options());
  const PortEntry& plain = *table->find(svc.info().name);
  const PortEntry& affine = *sticky_table->find(svc.info().name);
  AffinityTable affinity;
  std::mt19937_64 rng(7);
  const auto now = AffinityTable::Clock::now();
  const IpAddress client = ip("10.244.1.11");
  std::set<Target> seen;
  for (int i = 0; i < 64; ++i) seen.insert(*affinity.pick(plain, client, plain.cluster, {}, now, rng));
  EXPECT_EQ(seen.size(), 2u) << "both endpoints are chosen";
  EXPECT_EQ(affinity.size(), 0u);

  const Target first = *affinity.pick(affine, client, affine.cluster, {}, now, rng);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(*affinity.pick(affine, client, affine.cluster, {}, now, rng), first);
  // Another client is placed independently; the remembered one is refreshed on each use.
  EXPECT_EQ(*affinity.pick(affine, client, affine.cluster, {}, now + std::chrono::seconds(59), rng), first);
  EXPECT_EQ(*affinity.pick(affine, client, affine.cluster, {}, now + std::chrono::seconds(118), rng), first);
  // Excluded (it refused the association): another one, which is then remembered.
  const Target other = *affinity.pick(affine, client, affine.cluster, {first}, now, rng);
  EXPECT_NE(other, first);
  EXPECT_EQ(*affinity.pick(affine, client, affine.cluster, {}, now, rng), other);
  // Everything excluded: none.
  EXPECT_FALSE(affinity.pick(affine, client, affine.cluster, {first, other}, now, rng).has_value());
  // Expired after the timeout without use.
  affinity.expire(now + std::chrono::seconds(61));
  EXPECT_EQ(affinity.size(), 0u);
}


// --- IPv6: the table of the IPv6 proxier's snapshot -------------------------------------------

namespace v6 {

proxier::Snapshot snapshot6(const std::vector<ServiceBuilder>& services) {
  proxier::Snapshot s = snapshot(services);
  s.family = IpFamily::kIPv6;
  return s;
}

// The IPv6 side of node1: what the daemon's IPv6 proxier hands over (an IPv4 node IP and pod
// CIDR slipped in are ignored).
TableOptions options6() {
  TableOptions o;
  o.node.name = "node1";
  o.local_pod_cidr = *Cidr::parse("fd00:10:244:1::/64");
  o.node_ips = {ip("fd00:77::11"), ip("192.168.77.11")};
  return o;
}

TEST(ProxyTable6, AnIpv6SnapshotGivesIpv6FrontendsAndEndpoints) {
  auto mme = ServiceBuilder("core", "mme", "s1ap", kSctp, "fd00:96::20", 36412)
                 .node_port(30412)
                 .external_ip("2001:db8:113::20")
                 .external_ip("203.0.113.20")  // the other family's: not this table's
                 .lb_ip("2001:db8:113::21")
                 .endpoint({"fd00:10:244:1::10", 36412, "node1"})
                 .endpoint({"fd00:10:244:2::10", 36412, "node2"});
  const auto table = ProxyTable::build(snapshot6({mme}), options6());
  EXPECT_EQ(table->family(), IpFamily::kIPv6);
  EXPECT_EQ(table->service_addresses(),
            (std::set<IpAddress>{ip("fd00:96::20"), ip("2001:db8:113::20"), ip("2001:db8:113::21")}));
  EXPECT_EQ(table->listen_ports(), (std::set<std::uint16_t>{30412, 36412}));
  const std::vector<Target> both = {t("fd00:10:244:1::10", 36412), t("fd00:10:244:2::10", 36412)};
  for (const auto& [dst, port, kind] : {std::tuple{"fd00:96::20", 36412, FrontendKind::kClusterIp},
                                        std::tuple{"2001:db8:113::20", 36412, FrontendKind::kExternalIp},
                                        std::tuple{"2001:db8:113::21", 36412, FrontendKind::kLoadBalancer},
                                        std::tuple{"fd00:77::11", 30412, FrontendKind::kNodePort}}) {
    SCOPED_TRACE(dst);
    const Decision d = table->decide(ip(dst), static_cast<std::uint16_t>(port), ip("fd00:10:244:1::11"));
    EXPECT_EQ(d.verdict, Verdict::kForward);
    EXPECT_EQ(d.kind, kind);
    EXPECT_EQ(targets(d), both);
    EXPECT_TRUE(table->answers(ip(dst), static_cast<std::uint16_t>(port)));
  }
  EXPECT_FALSE(table->answers(ip("203.0.113.20"), 36412));
  EXPECT_FALSE(table->answers(ip("fd00:96::20"), 30412)) << "a NodePort on a Service address";
  const PortEntry* p = table->find(mme.info().name);
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(p->serves(t("fd00:10:244:2::10", 36412)));
  EXPECT_FALSE(p->serves(t("10.244.2.10", 36412)));
}

TEST(ProxyTable6, EndpointsOfTheOtherFamilyAreNeverCandidates) {
  auto svc = ServiceBuilder("core", "amf", "ngap", kSctp, "fd00:96::30", 38412)
                 .endpoint({"10.244.2.10", 38412, "node2"})
                 .endpoint({"fd00:10:244:2::10", 38412, "node2"});
  const auto table = ProxyTable::build(snapshot6({svc}), options6());
  const Decision d = table->decide(ip("fd00:96::30"), 38412, ip("fd00:77::100"));
  EXPECT_EQ(d.verdict, Verdict::kForward);
  EXPECT_EQ(targets(d), std::vector<Target>{t("fd00:10:244:2::10", 38412)});
}

TEST(ProxyTable6, NodePortAddressesOfTheTablesFamily) {
  auto svc = ServiceBuilder("core", "amf", "ngap", kSctp, "fd00:96::30", 38412)
                 .node_port(30500)
                 .endpoint({"fd00:10:244:2::10", 38412, "node2"});
  auto o = options6();
  o.node_port_ips = std::vector<IpAddress>{ip("fd00:77::11"), ip("192.168.77.11")};
  const auto table = ProxyTable::build(snapshot6({svc}), o);
  EXPECT_TRUE(table->answers(ip("fd00:77::11"), 30500));
  EXPECT_FALSE(table->answers(ip("fd00:10:244:1::1"), 30500));
  EXPECT_FALSE(table->answers(ip("192.168.77.11"), 30500));
  // Without --nodeport-addresses: every local address of the family (the raw IPv6 socket only
  // sees local ones) but the Service addresses.
  const auto any = ProxyTable::build(snapshot6({svc}), options6());
  EXPECT_TRUE(any->answers(ip("fd00:10:244:1::1"), 30500));
  EXPECT_FALSE(any->answers(ip("fd00:96::30"), 30500));
}

TEST(ProxyTable6, LocalPoliciesWithIpv6PodsAndNodeAddresses) {
  auto local = ServiceBuilder("core", "local", "p", kSctp, "fd00:96::32", 3868)
                   .node_port(30601)
                   .etp_local()
                   .endpoint({"fd00:10:244:2::10", 3868, "node2"});
  auto empty = ServiceBuilder("core", "empty", "p", kSctp, "fd00:96::31", 3868).node_port(30600);
  const auto table = ProxyTable::build(snapshot6({local, empty}), options6());
  const IpAddress outside = ip("fd00:77::100");
  EXPECT_EQ(table->decide(ip("fd00:77::11"), 30601, outside).verdict, Verdict::kDrop);
  // A pod of this node (the IPv6 pod CIDR) and the node's own IPv6 address use Cluster policy.
  const Decision from_pod = table->decide(ip("fd00:77::11"), 30601, ip("fd00:10:244:1::11"));
  EXPECT_EQ(from_pod.verdict, Verdict::kForward);
  EXPECT_EQ(targets(from_pod), std::vector<Target>{t("fd00:10:244:2::10", 3868)});
  EXPECT_EQ(table->decide(ip("fd00:77::11"), 30601, ip("fd00:77::11")).verdict, Verdict::kForward);
  // The IPv4 node IP given in the options is no IPv6 client's.
  EXPECT_EQ(table->decide(ip("fd00:96::31"), 3868, outside).verdict, Verdict::kReject);
  EXPECT_EQ(table->decide(ip("fd00:77::11"), 30600, outside).verdict, Verdict::kReject);
}

TEST(ProxyTable6, Ipv6SourceRanges) {
  auto lb = ServiceBuilder("core", "lb", "p", kSctp, "fd00:96::34", 3868)
                .lb_ip("2001:db8:113::40")
                .source_range("2001:db8:51::/48")
                .endpoint({"fd00:10:244:2::10", 3868, "node2"});
  const auto table = ProxyTable::build(snapshot6({lb}), options6());
  EXPECT_EQ(table->decide(ip("2001:db8:113::40"), 3868, ip("2001:db8:51::7")).verdict, Verdict::kForward);
  EXPECT_EQ(table->decide(ip("2001:db8:113::40"), 3868, ip("2001:db8:52::7")).verdict, Verdict::kDrop);
}

TEST(AffinityTable6, ClientIpAffinityForIpv6Clients) {
  auto svc = ServiceBuilder("core", "x", "p", kSctp, "fd00:96::37", 3868)
                 .affinity(60)
                 .endpoint({"fd00:10:244:1::10", 3868, "node1"})
                 .endpoint({"fd00:10:244:2::10", 3868, "node2"});
  const auto table = ProxyTable::build(snapshot6({svc}), options6());
  const PortEntry& p = *table->find(svc.info().name);
  AffinityTable affinity;
  std::mt19937_64 rng(11);
  const auto now = AffinityTable::Clock::now();
  const Target first = *affinity.pick(p, ip("fd00:77::100"), p.cluster, {}, now, rng);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(*affinity.pick(p, ip("fd00:77::100"), p.cluster, {}, now, rng), first);
  EXPECT_EQ(affinity.size(), 1u);
}

}  // namespace v6
}  // namespace
}  // namespace kproxy::sctp_userspace
