// The IPVS backend's sync against stateful fakes of IPVS and the links.
#include "kproxy/ipvs/proxier.h"

#include <gtest/gtest.h>

#include "../iptables/service_builder.h"
#include "fake_ipvs.h"

namespace kproxy::ipvs {
namespace {

using iptables::testing::ip;
using iptables::testing::ServiceBuilder;
using iptables::testing::snapshot;
using testing::FakeIpvs;
using testing::FakeLinks;
constexpr auto kTcp = model::Protocol::kTcp;
constexpr auto kUdp = model::Protocol::kUdp;

struct Fixture {
  FakeIpvs ipvs;
  FakeLinks links;
  proxier::NodeFacts node{"node1", ""};
  std::set<proxier::ServicePortName> changed;

  Fixture() {
    links.devices["lo"] = {ip("127.0.0.1")};
    links.devices["eth0"] = {ip("192.168.0.2"), ip("fe80::1")};
  }
  Status sync(IpvsProxier& p, const proxier::Snapshot& s, proxier::SyncKind kind = proxier::SyncKind::kPartial) {
    return p.sync(proxier::SyncRequest{s, changed, kind, node, nullptr});
  }
  std::set<std::string> services() const {
    std::set<std::string> out;
    for (const auto& [k, e] : ipvs.table) {
      std::string t = to_string(e.service);
      for (const auto& d : e.destinations) t += " " + to_string(d) + "/" + std::to_string(d.weight);
      out.insert(t);
    }
    return out;
  }
};

ServiceBuilder web() {
  return ServiceBuilder("ns", "web", "http", kTcp, "10.96.0.10", 80)
      .node_port(30080)
      .endpoint({"10.244.1.5", 8080, "node1"})
      .endpoint({"10.244.2.5", 8080, "node2"});
}

TEST(IpvsProxier, FirstSyncCreatesTheDummyBindsAddressesAndServesNodePortsOnNodeAddresses) {
  Fixture f;
  IpvsProxier p(f.ipvs, f.links, {});
  ASSERT_TRUE(f.sync(p, snapshot({web()})).ok());
  EXPECT_EQ(f.services(), (std::set<std::string>{
                              "TCP 10.96.0.10:80 10.244.1.5:8080/1 10.244.2.5:8080/1",
                              // Not on loopback, not on the IPv6 link-local address.
                              "TCP 192.168.0.2:30080 10.244.1.5:8080/1 10.244.2.5:8080/1",
                          }));
  EXPECT_EQ(f.links.devices.at("kube-ipvs0"), (std::set<IpAddress>{ip("10.96.0.10")}));
  EXPECT_EQ(p.last_sync().changes, 6u);
}

TEST(IpvsProxier, LaterSyncsSendOnlyWhatChangedWithoutReadingTheKernel) {
  Fixture f;
  IpvsProxier p(f.ipvs, f.links, {});
  ASSERT_TRUE(f.sync(p, snapshot({web()})).ok());
  const int lists = f.ipvs.service_lists;
  const int messages = f.ipvs.messages;
  ASSERT_TRUE(f.sync(p, snapshot({web()})).ok());
  EXPECT_EQ(f.ipvs.messages, messages) << "an unchanged snapshot sent changes";
  EXPECT_EQ(f.ipvs.service_lists, lists) << "the kernel was read again";
  // One endpoint more: one destination per virtual service (the cluster IP and the NodePort).
  ASSERT_TRUE(f.sync(p, snapshot({web().endpoint({"10.244.1.6", 8080, "node1"})})).ok());
  EXPECT_EQ(f.ipvs.messages, messages + 2);
  EXPECT_EQ(f.ipvs.service_lists, lists);
}

TEST(IpvsProxier, AFullSyncReadsTheKernelAgainAndPutsRightWhatAnotherProgramChanged) {
  Fixture f;
  IpvsProxier p(f.ipvs, f.links, {});
  ASSERT_TRUE(f.sync(p, snapshot({web()}), proxier::SyncKind::kFull).ok());
  f.ipvs.table.clear();  // ipvsadm -C by someone
  ASSERT_TRUE(f.sync(p, snapshot({web()})).ok());
  EXPECT_TRUE(f.services().empty()) << "a partial sync read the kernel";
  ASSERT_TRUE(f.sync(p, snapshot({web()}), proxier::SyncKind::kFull).ok());
  EXPECT_EQ(f.services().size(), 2u);
}

TEST(IpvsProxier, ARestartRewritesNothingThatIsRightAndRemovesWhatIsStale) {
  Fixture f;
  {
    IpvsProxier first(f.ipvs, f.links, {});
    ASSERT_TRUE(f.sync(first, snapshot({web()})).ok());
  }
  f.ipvs.find("10.96.0.10", 80, "10.244.1.5")->active_connections = 4;
  kernel::IpvsService stale;
  stale.address = ip("10.96.0.99");
  stale.port = 53;
  stale.protocol = kUdp;
  f.ipvs.table[FakeIpvs::key(stale)] = {stale, {}};
  f.links.devices["kube-ipvs0"].insert(ip("10.96.0.99"));
  const int messages = f.ipvs.messages;
  IpvsProxier restarted(f.ipvs, f.links, {});
  ASSERT_TRUE(f.sync(restarted, snapshot({web()})).ok());
  EXPECT_EQ(f.ipvs.messages, messages + 1) << "only the stale service goes";
  EXPECT_EQ(f.services().size(), 2u);
  EXPECT_EQ(f.ipvs.find("10.96.0.10", 80, "10.244.1.5")->active_connections, 4u) << "a right destination was rewritten";
  EXPECT_EQ(f.links.devices.at("kube-ipvs0"), (std::set<IpAddress>{ip("10.96.0.10")}));
}

TEST(IpvsProxier, ARefusedServiceIsReportedWithItsServicePortAndTheOthersAreProgrammed) {
  Fixture f;
  f.ipvs.schedulers = {"wrr"};  // the kernel lacks "rr" (an --ipvs-scheduler it has no module for)
  IpvsProxierOptions o;
  o.scheduler = "rr";
  IpvsProxier p(f.ipvs, f.links, o);
  const Status s = f.sync(p, snapshot({web()}));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("service ns/web:http: IPVS: add service TCP 10.96.0.10:80 (rr): No such file or directory"),
            std::string::npos)
      << s.message();
  EXPECT_EQ(p.last_sync().refused, 6u);  // both services, and so their destinations
  // The kernel gains the scheduler: the next sync reads the kernel again and programs it all.
  f.ipvs.schedulers.insert("rr");
  const int lists = f.ipvs.service_lists;
  ASSERT_TRUE(f.sync(p, snapshot({web()})).ok());
  EXPECT_EQ(f.ipvs.service_lists, lists + 1);
  EXPECT_EQ(f.services().size(), 2u);
}

TEST(IpvsProxier, OneRefusedServiceDoesNotStopTheOthers) {
  Fixture f;
  kernel::IpvsService cluster_ip;
  cluster_ip.address = ip("10.96.0.10");
  cluster_ip.port = 80;
  f.ipvs.refused.insert(FakeIpvs::key(cluster_ip));
  auto dns = ServiceBuilder("ns", "dns", "", kUdp, "10.96.0.11", 53).endpoint({"10.244.1.6", 53, "node1"});
  IpvsProxier p(f.ipvs, f.links, {});
  const Status s = f.sync(p, snapshot({web(), dns}));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("service ns/web:http: IPVS: add service TCP 10.96.0.10:80 (rr): Invalid argument"),
            std::string::npos)
      << s.message();
  EXPECT_EQ(f.services(), (std::set<std::string>{"TCP 192.168.0.2:30080 10.244.1.5:8080/1 10.244.2.5:8080/1",
                                                 "UDP 10.96.0.11:53 10.244.1.6:53/1"}));
}

TEST(IpvsProxier, AVanishedDummyIsCreatedAgainWithItsAddresses) {
  Fixture f;
  IpvsProxier p(f.ipvs, f.links, {});
  ASSERT_TRUE(f.sync(p, snapshot({web()})).ok());
  f.links.devices.erase("kube-ipvs0");
  ASSERT_TRUE(f.sync(p, snapshot({web()})).ok());
  EXPECT_EQ(f.links.created, 2);
  EXPECT_EQ(f.links.devices.at("kube-ipvs0"), (std::set<IpAddress>{ip("10.96.0.10")}));
}

TEST(IpvsProxier, ARemovedTcpEndpointDrainsAtWeightZeroUntilItsConnectionsEnd) {
  Fixture f;
  IpvsProxier p(f.ipvs, f.links, {});
  ASSERT_TRUE(f.sync(p, snapshot({web()})).ok());
  f.ipvs.find("10.96.0.10", 80, "10.244.2.5")->active_connections = 2;
  auto one = ServiceBuilder("ns", "web", "http", kTcp, "10.96.0.10", 80).node_port(30080).endpoint({"10.244.1.5", 8080, "node1"});
  ASSERT_TRUE(f.sync(p, snapshot({one})).ok());
  EXPECT_EQ(f.services(), (std::set<std::string>{
                              "TCP 10.96.0.10:80 10.244.1.5:8080/1 10.244.2.5:8080/0",
                              "TCP 192.168.0.2:30080 10.244.1.5:8080/1",  // no connections: deleted
                          }));
  EXPECT_EQ(p.last_sync().draining, 1u);
  ASSERT_TRUE(f.sync(p, snapshot({one})).ok());
  EXPECT_EQ(f.services().size(), 2u);
  EXPECT_EQ(p.last_sync().draining, 1u) << "deleted while connected";
  f.ipvs.find("10.96.0.10", 80, "10.244.2.5")->active_connections = 0;
  ASSERT_TRUE(f.sync(p, snapshot({one})).ok());
  EXPECT_EQ(f.services(), (std::set<std::string>{"TCP 10.96.0.10:80 10.244.1.5:8080/1",
                                                 "TCP 192.168.0.2:30080 10.244.1.5:8080/1"}));
  EXPECT_EQ(p.last_sync().draining, 0u);
}

TEST(IpvsProxier, CleanupFlushesEveryServiceAndRemovesTheDummy) {
  Fixture f;
  IpvsProxier p(f.ipvs, f.links, {});
  ASSERT_TRUE(f.sync(p, snapshot({web()})).ok());
  ASSERT_TRUE(IpvsProxier::cleanup(f.ipvs, f.links).ok());
  EXPECT_TRUE(f.ipvs.table.empty());
  EXPECT_FALSE(f.links.devices.contains("kube-ipvs0"));
}

// A dual-stack node: two proxiers, one per family, share one IPVS handle and one kube-ipvs0
// (kube-proxy's meta-proxier). Each one's syncs, full ones included (they re-read the kernel),
// add and remove only the virtual services and kube-ipvs0 addresses of its own family.
TEST(IpvsProxier, TwoFamiliesShareOneIpvsAndOneKubeIpvs0WithoutUndoingEachOther) {
  Fixture f;
  f.links.devices["eth0"].insert(ip("fd00:77::11"));
  IpvsProxierOptions o6;
  o6.family = IpFamily::kIPv6;
  IpvsProxier v4(f.ipvs, f.links, {});
  IpvsProxier v6(f.ipvs, f.links, o6);
  auto web6 = [] {
    return ServiceBuilder("ns", "web", "http", kTcp, "fd00:10:96::10", 80)
        .node_port(30080)
        .endpoint({"fd00:10:244:1::5", 8080, "node1"});
  };
  const std::set<std::string> ipv4_services{"TCP 10.96.0.10:80 10.244.1.5:8080/1 10.244.2.5:8080/1",
                                            "TCP 192.168.0.2:30080 10.244.1.5:8080/1 10.244.2.5:8080/1"};
  const std::set<std::string> ipv6_services{"TCP [fd00:10:96::10]:80 [fd00:10:244:1::5]:8080/1",
                                            "TCP [fd00:77::11]:30080 [fd00:10:244:1::5]:8080/1"};
  auto both = ipv4_services;
  both.insert(ipv6_services.begin(), ipv6_services.end());

  ASSERT_TRUE(f.sync(v4, snapshot({web()}), proxier::SyncKind::kFull).ok());
  ASSERT_TRUE(f.sync(v6, snapshot({web6()}), proxier::SyncKind::kFull).ok());
  EXPECT_EQ(f.services(), both);
  EXPECT_EQ(f.links.devices.at("kube-ipvs0"), (std::set<IpAddress>{ip("10.96.0.10"), ip("fd00:10:96::10")}));
  // Full syncs of each, in either order: nothing of the other family is touched.
  const int messages = f.ipvs.messages;
  ASSERT_TRUE(f.sync(v4, snapshot({web()}), proxier::SyncKind::kFull).ok());
  ASSERT_TRUE(f.sync(v6, snapshot({web6()}), proxier::SyncKind::kFull).ok());
  EXPECT_EQ(f.ipvs.messages, messages) << "a full sync rewrote the other family's services";
  EXPECT_EQ(f.services(), both);

  // The IPv4 side loses its Services: only IPv4 services and addresses go.
  ASSERT_TRUE(f.sync(v4, proxier::Snapshot{}, proxier::SyncKind::kFull).ok());
  EXPECT_EQ(f.services(), ipv6_services);
  EXPECT_EQ(f.links.devices.at("kube-ipvs0"), (std::set<IpAddress>{ip("fd00:10:96::10")}));
  // And the other way round.
  ASSERT_TRUE(f.sync(v4, snapshot({web()}), proxier::SyncKind::kFull).ok());
  ASSERT_TRUE(f.sync(v6, proxier::Snapshot{}, proxier::SyncKind::kFull).ok());
  EXPECT_EQ(f.services(), ipv4_services);
  EXPECT_EQ(f.links.devices.at("kube-ipvs0"), (std::set<IpAddress>{ip("10.96.0.10")}));

  // A restarted IPv6 proxier finds its services right and sends nothing.
  ASSERT_TRUE(f.sync(v6, snapshot({web6()})).ok());
  const int before_restart = f.ipvs.messages;
  IpvsProxier v6_again(f.ipvs, f.links, o6);
  ASSERT_TRUE(f.sync(v6_again, snapshot({web6()}), proxier::SyncKind::kFull).ok());
  EXPECT_EQ(f.ipvs.messages, before_restart);
  EXPECT_EQ(f.services(), both);
}

}  // namespace
}  // namespace kproxy::ipvs
