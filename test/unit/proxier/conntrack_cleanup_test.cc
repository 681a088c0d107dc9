// Conntrack cleanup: which flows go after a snapshot change (docs/conntrack.md, one test per
// rule), and cleanup_stale_flows against the stateful fake table.
#include "kproxy/proxier/conntrack_cleanup.h"

#include <gtest/gtest.h>

#include <memory>

#include "fake_conntrack.h"

namespace kproxy::proxier {
namespace {

using kernel::FakeConntrack;
using kernel::Flow;
using kernel::FlowProtocol;
using model::Protocol;

IpAddress ip(const char* text) { return IpAddress::parse(text).value(); }

constexpr const char* kClient = "10.244.2.10";
constexpr const char* kNodeIp = "192.168.77.11";
const std::vector<IpAddress> kLocal = {ip("127.0.0.1"), ip(kNodeIp), ip("10.244.1.1")};

Endpoint endpoint(const char* address, std::uint16_t port, bool serving = true) {
  Endpoint e;
  e.ip = ip(address);
  e.port = port;
  e.ready = serving;
  e.serving = serving;
  return e;
}

struct PortSpec {
  const char* name = "dns";
  Protocol protocol = Protocol::kUdp;
  const char* cluster_ip = "10.96.0.53";
  std::uint16_t port = 53;
  std::uint16_t node_port = 0;
  std::vector<const char*> external_ips = {};
  std::vector<const char*> lb_ips = {};
  std::vector<Endpoint> endpoints = {};
};

class SnapshotBuilder {
 public:
  explicit SnapshotBuilder(IpFamily family = IpFamily::kIPv4) { snapshot_.family = family; }
  explicit SnapshotBuilder(const Snapshot& from) : snapshot_(from) {}
  SnapshotBuilder& add(const PortSpec& spec) {
    auto info = std::make_shared<ServicePortInfo>();
    info->name = {"default", spec.name, "p", spec.protocol};
    info->cluster_ip = ip(spec.cluster_ip);
    info->port = spec.port;
    info->node_port = spec.node_port;
    for (const char* e : spec.external_ips) info->external_ips.push_back(ip(e));
    for (const char* l : spec.lb_ips) info->load_balancer_vips.push_back(ip(l));
    info->endpoints = spec.endpoints;
    snapshot_.service_ports[info->name] = info;
    return *this;
  }
  Snapshot build() const { return snapshot_; }

 private:
  Snapshot snapshot_;
};

// A flow from kClient:client_port to service:service_port, answered by backend.
Flow flow(FlowProtocol protocol, const char* service, std::uint16_t service_port, const char* backend,
          std::uint16_t backend_port, std::uint16_t client_port = 40000, const char* client = kClient) {
  Flow f;
  f.protocol = protocol;
  f.original = {ip(client), ip(service), client_port, service_port};
  f.reply = {ip(backend), ip(client), backend_port, client_port};
  return f;
}
Flow udp(const char* service, std::uint16_t service_port, const char* backend, std::uint16_t backend_port,
         std::uint16_t client_port = 40000) {
  return flow(FlowProtocol::kUdp, service, service_port, backend, backend_port, client_port);
}

std::vector<std::string> names(const std::vector<Flow>& flows) {
  std::vector<std::string> out;
  for (const Flow& f : flows) out.push_back(kernel::to_string(f));
  return out;
}

// ---- rule 1: flows to a current frontend whose backend is not a serving endpoint ----

TEST(StaleFlows, UdpFlowToARemovedEndpointIsStaleAndOneToAServingEndpointIsNot) {
  const Snapshot before =
      SnapshotBuilder().add({.endpoints = {endpoint("10.244.1.11", 8053), endpoint("10.244.1.12", 8053)}}).build();
  const Snapshot after = SnapshotBuilder().add({.endpoints = {endpoint("10.244.1.12", 8053)}}).build();
  const Flow to_removed = udp("10.96.0.53", 53, "10.244.1.11", 8053, 40000);
  const Flow to_kept = udp("10.96.0.53", 53, "10.244.1.12", 8053, 40001);
  EXPECT_EQ(names(stale_flows(&before, after, {to_removed, to_kept}, kLocal)), names({to_removed}));
}

TEST(StaleFlows, SctpFlowsAreCleanedLikeUdp) {
  const PortSpec old_port{.name = "diameter",
                          .protocol = Protocol::kSctp,
                          .port = 3868,
                          .endpoints = {endpoint("10.244.1.11", 3868), endpoint("10.244.1.12", 3868)}};
  PortSpec new_port = old_port;
  new_port.endpoints = {endpoint("10.244.1.12", 3868)};
  const Snapshot before = SnapshotBuilder().add(old_port).build();
  const Snapshot after = SnapshotBuilder().add(new_port).build();
  const Flow to_removed = flow(FlowProtocol::kSctp, "10.96.0.53", 3868, "10.244.1.11", 3868, 40000);
  const Flow to_kept = flow(FlowProtocol::kSctp, "10.96.0.53", 3868, "10.244.1.12", 3868, 40001);
  EXPECT_EQ(names(stale_flows(&before, after, {to_removed, to_kept}, kLocal)), names({to_removed}));
}

TEST(StaleFlows, TcpFlowsAreNeverStale) {
  const PortSpec tcp{.name = "web",
                     .protocol = Protocol::kTcp,
                     .port = 80,
                     .node_port = 30080,
                     .endpoints = {endpoint("10.244.1.11", 8080)}};
  const Snapshot before =
      SnapshotBuilder()
          .add(tcp)
          .add({.name = "gone-tcp", .protocol = Protocol::kTcp, .cluster_ip = "10.96.0.99", .port = 80})
          .build();
  PortSpec tcp_now = tcp;
  tcp_now.endpoints = {};  // no endpoints at all now
  const Snapshot after = SnapshotBuilder().add(tcp_now).build();
  const std::vector<Flow> flows = {
      flow(FlowProtocol::kTcp, "10.96.0.53", 80, "10.244.1.11", 8080),         // removed endpoint
      flow(FlowProtocol::kTcp, kNodeIp, 30080, "10.244.1.11", 8080, 40001),    // NodePort
      flow(FlowProtocol::kTcp, "10.96.0.99", 80, "10.244.1.20", 8080, 40002),  // deleted Service
  };
  EXPECT_TRUE(stale_flows(&before, after, flows, kLocal).empty());
  EXPECT_TRUE(stale_flows(nullptr, after, flows, kLocal).empty());
}

TEST(StaleFlows, TheEndpointPortCountsNotOnlyItsAddress) {
  // Same pod, new target port: kube-proxy compares the reply source IP only and would keep
  // the flow to the old port; kproxy compares IP and port.
  const Snapshot after = SnapshotBuilder().add({.endpoints = {endpoint("10.244.1.11", 9053)}}).build();
  const Flow old_port = udp("10.96.0.53", 53, "10.244.1.11", 8053, 40000);
  const Flow new_port = udp("10.96.0.53", 53, "10.244.1.11", 9053, 40001);
  EXPECT_EQ(names(stale_flows(nullptr, after, {old_port, new_port}, kLocal)), names({old_port}));
}

TEST(StaleFlows, OnlyServingEndpointsKeepFlowsWhateverTheirOtherConditions) {
  Endpoint not_serving = endpoint("10.244.1.11", 8053, false);
  Endpoint terminating = endpoint("10.244.1.12", 8053);
  terminating.ready = false;
  terminating.terminating = true;  // serving and terminating: still answers, flows stay
  Endpoint remote = endpoint("10.244.2.13", 8053);
  remote.zone = "elsewhere";  // topology and traffic policy do not matter either
  PortSpec spec{.endpoints = {not_serving, terminating, remote}};
  const Snapshot after = SnapshotBuilder().add(spec).build();
  const Flow a = udp("10.96.0.53", 53, "10.244.1.11", 8053, 40000);
  const Flow b = udp("10.96.0.53", 53, "10.244.1.12", 8053, 40001);
  const Flow c = udp("10.96.0.53", 53, "10.244.2.13", 8053, 40002);
  EXPECT_EQ(names(stale_flows(nullptr, after, {a, b, c}, kLocal)), names({a}));
}

TEST(StaleFlows, ExternalAndLoadBalancerIpFlowsAreJudgedLikeClusterIpFlows) {
  const Snapshot after = SnapshotBuilder()
                             .add({.external_ips = {"203.0.113.10"},
                                   .lb_ips = {"198.51.100.7"},
                                   .endpoints = {endpoint("10.244.1.12", 8053)}})
                             .build();
  const Flow external_stale = udp("203.0.113.10", 53, "10.244.1.11", 8053, 40000);
  const Flow external_ok = udp("203.0.113.10", 53, "10.244.1.12", 8053, 40001);
  const Flow lb_stale = udp("198.51.100.7", 53, "10.244.1.11", 8053, 40002);
  const Flow lb_ok = udp("198.51.100.7", 53, "10.244.1.12", 8053, 40003);
  const Flow other_port = udp("203.0.113.10", 54, "10.244.1.11", 8053, 40004);  // not a service port
  EXPECT_EQ(names(stale_flows(nullptr, after, {external_stale, external_ok, lb_stale, lb_ok, other_port}, kLocal)),
            names({external_stale, lb_stale}));
}

TEST(StaleFlows, NodePortFlowsCountOnLocalAddressesOnly) {
  const Snapshot after =
      SnapshotBuilder().add({.node_port = 30053, .endpoints = {endpoint("10.244.1.12", 8053)}}).build();
  const Flow node_ip_stale = udp(kNodeIp, 30053, "10.244.1.11", 8053, 40000);
  const Flow loopback_stale = udp("127.0.0.1", 30053, "10.244.1.11", 8053, 40001);
  const Flow node_ip_ok = udp(kNodeIp, 30053, "10.244.1.12", 8053, 40002);
  // Port 30053 on some other host: not a NodePort flow of this node, not DNATed by kproxy.
  const Flow elsewhere = udp("192.168.77.12", 30053, "192.168.77.12", 30053, 40003);
  EXPECT_EQ(names(stale_flows(nullptr, after, {node_ip_stale, loopback_stale, node_ip_ok, elsewhere}, kLocal)),
            names({node_ip_stale, loopback_stale}));
}

TEST(StaleFlows, AServiceWithoutEndpointsLosesEveryFlow) {
  // kube-proxy 1.32 skipped such Services (#139628) and left the flows to the last removed
  // endpoint in place; #139629 processes them with an empty set, as kproxy does.
  const Snapshot before =
      SnapshotBuilder().add({.node_port = 30053, .endpoints = {endpoint("10.244.1.11", 8053)}}).build();
  const Snapshot after = SnapshotBuilder().add({.node_port = 30053}).build();
  const Flow cluster_ip = udp("10.96.0.53", 53, "10.244.1.11", 8053, 40000);
  const Flow node_port = udp(kNodeIp, 30053, "10.244.1.11", 8053, 40001);
  EXPECT_EQ(names(stale_flows(&before, after, {cluster_ip, node_port}, kLocal)), names({cluster_ip, node_port}));
  EXPECT_EQ(names(stale_flows(nullptr, after, {cluster_ip, node_port}, kLocal)), names({cluster_ip, node_port}));
}

TEST(StaleFlows, AFlowThatWasNotDnatedGoesOnceTheServiceHasEndpoints) {
  // Created while the Service had no endpoints (or before its rules existed): the reply
  // comes from the service address itself. Left in place, it would keep every further
  // packet of that client from being DNATed.
  const Snapshot before = SnapshotBuilder().add({.node_port = 30053}).build();
  const Snapshot after =
      SnapshotBuilder().add({.node_port = 30053, .endpoints = {endpoint("10.244.1.12", 8053)}}).build();
  const Flow undnated = udp("10.96.0.53", 53, "10.96.0.53", 53, 40000);
  const Flow undnated_node_port = udp(kNodeIp, 30053, kNodeIp, 30053, 40001);
  const Flow sctp_undnated = flow(FlowProtocol::kSctp, "10.96.0.53", 53, "10.96.0.53", 53, 40002);  // no SCTP port 53
  EXPECT_EQ(names(stale_flows(&before, after, {undnated, undnated_node_port, sctp_undnated}, kLocal)),
            names({undnated, undnated_node_port}));
}

// ---- rule 2: frontends of the previous snapshot that are gone ----

TEST(StaleFlows, FlowsOfDeletedServicesPortsAndAddressesGo) {
  const Snapshot before = SnapshotBuilder()
                              .add({.name = "gone",
                                    .cluster_ip = "10.96.0.60",
                                    .node_port = 30060,
                                    .endpoints = {endpoint("10.244.1.11", 8053)}})
                              .add({.name = "kept",
                                    .cluster_ip = "10.96.0.61",
                                    .external_ips = {"203.0.113.10"},
                                    .endpoints = {endpoint("10.244.1.12", 8053)}})
                              .build();
  const Snapshot after =
      SnapshotBuilder()
          .add({.name = "kept", .cluster_ip = "10.96.0.61", .endpoints = {endpoint("10.244.1.12", 8053)}})
          .build();
  const Flow gone_cluster_ip = udp("10.96.0.60", 53, "10.244.1.11", 8053, 40000);
  const Flow gone_node_port = udp(kNodeIp, 30060, "10.244.1.11", 8053, 40001);
  const Flow gone_external_ip = udp("203.0.113.10", 53, "10.244.1.12", 8053, 40002);  // address removed
  const Flow kept = udp("10.96.0.61", 53, "10.244.1.12", 8053, 40003);
  EXPECT_EQ(names(stale_flows(&before, after, {gone_cluster_ip, gone_node_port, gone_external_ip, kept}, kLocal)),
            names({gone_cluster_ip, gone_node_port, gone_external_ip}));
}

TEST(StaleFlows, AFrontendTakenOverByAnotherServiceIsJudgedByTheNewOne) {
  const Snapshot before = SnapshotBuilder().add({.name = "old", .endpoints = {endpoint("10.244.1.11", 8053)}}).build();
  const Snapshot after = SnapshotBuilder().add({.name = "new", .endpoints = {endpoint("10.244.1.12", 8053)}}).build();
  const Flow to_old = udp("10.96.0.53", 53, "10.244.1.11", 8053, 40000);
  const Flow to_new = udp("10.96.0.53", 53, "10.244.1.12", 8053, 40001);
  EXPECT_EQ(names(stale_flows(&before, after, {to_old, to_new}, kLocal)), names({to_old}));
}

TEST(StaleFlows, ARestartDeletesNothingThatIsStillValid) {
  const Snapshot current = SnapshotBuilder()
                               .add({.node_port = 30053,
                                     .external_ips = {"203.0.113.10"},
                                     .endpoints = {endpoint("10.244.1.11", 8053), endpoint("10.244.1.12", 8053)}})
                               .add({.name = "diameter",
                                     .protocol = Protocol::kSctp,
                                     .port = 3868,
                                     .endpoints = {endpoint("10.244.1.13", 3868)}})
                               .build();
  const std::vector<Flow> valid = {
      udp("10.96.0.53", 53, "10.244.1.11", 8053, 40000),
      udp("10.96.0.53", 53, "10.244.1.12", 8053, 40001),
      udp(kNodeIp, 30053, "10.244.1.12", 8053, 40002),
      udp("203.0.113.10", 53, "10.244.1.11", 8053, 40003),
      flow(FlowProtocol::kSctp, "10.96.0.53", 3868, "10.244.1.13", 3868, 40004),
      // Not service traffic at all: DNS to an upstream resolver, pod to pod.
      udp("8.8.8.8", 53, "8.8.8.8", 53, 40005),
      udp("10.244.1.11", 8053, "10.244.1.11", 8053, 40006),
  };
  EXPECT_TRUE(stale_flows(nullptr, current, valid, kLocal).empty());
}

TEST(StaleFlows, AProtocolIsItsOwnFrontend) {
  // A UDP Service on 10.96.0.53:53; an SCTP flow to the same address and port is no flow of it.
  const Snapshot after = SnapshotBuilder().add({.endpoints = {endpoint("10.244.1.12", 8053)}}).build();
  const Flow sctp = flow(FlowProtocol::kSctp, "10.96.0.53", 53, "10.244.1.11", 8053);
  EXPECT_TRUE(stale_flows(nullptr, after, {sctp}, kLocal).empty());
}

TEST(StaleFlows, AFrontendClaimedByTwoPortsKeepsTheFlowsOfEither) {
  const Snapshot after = SnapshotBuilder()
                             .add({.name = "a",
                                   .cluster_ip = "10.96.0.1",
                                   .external_ips = {"203.0.113.10"},
                                   .endpoints = {endpoint("10.244.1.11", 8053)}})
                             .add({.name = "b",
                                   .cluster_ip = "10.96.0.2",
                                   .external_ips = {"203.0.113.10"},
                                   .endpoints = {endpoint("10.244.1.12", 8053)}})
                             .build();
  const Flow to_a = udp("203.0.113.10", 53, "10.244.1.11", 8053, 40000);
  const Flow to_b = udp("203.0.113.10", 53, "10.244.1.12", 8053, 40001);
  const Flow to_neither = udp("203.0.113.10", 53, "10.244.1.13", 8053, 40002);
  EXPECT_EQ(names(stale_flows(nullptr, after, {to_a, to_b, to_neither}, kLocal)), names({to_neither}));
}

TEST(StaleFlows, FlowsAndSnapshotsOfAnotherFamilyAreIgnored) {
  const Snapshot v4_before = SnapshotBuilder().add({.name = "gone", .cluster_ip = "10.96.0.60"}).build();
  const Snapshot v6 = SnapshotBuilder(IpFamily::kIPv6)
                          .add({.cluster_ip = "fd00:96::53", .endpoints = {endpoint("fd00::12", 8053)}})
                          .build();
  Flow v6_stale;
  v6_stale.protocol = FlowProtocol::kUdp;
  v6_stale.original = {ip("fd00::10"), ip("fd00:96::53"), 40000, 53};
  v6_stale.reply = {ip("fd00::11"), ip("fd00::10"), 8053, 40000};
  const Flow v4_gone = udp("10.96.0.60", 53, "10.244.1.11", 8053);
  EXPECT_EQ(names(stale_flows(&v4_before, v6, {v6_stale, v4_gone}, kLocal)), names({v6_stale}));
}

// ---- when to look at all ----

TEST(ConntrackCleanupNeeded, AlwaysFirstThenOnlyWhenAUdpOrSctpPortChanged) {
  const Snapshot base =
      SnapshotBuilder()
          .add({.endpoints = {endpoint("10.244.1.11", 8053)}})
          .add({.name = "web", .protocol = Protocol::kTcp, .port = 80, .endpoints = {endpoint("10.244.1.11", 80)}})
          .build();
  EXPECT_TRUE(conntrack_cleanup_needed(nullptr, base));
  EXPECT_FALSE(conntrack_cleanup_needed(&base, base));
  // Equal values in new objects (a full resync rebuilt them) are no change either.
  const Snapshot rebuilt =
      SnapshotBuilder()
          .add({.endpoints = {endpoint("10.244.1.11", 8053)}})
          .add({.name = "web", .protocol = Protocol::kTcp, .port = 80, .endpoints = {endpoint("10.244.1.11", 80)}})
          .build();
  EXPECT_FALSE(conntrack_cleanup_needed(&base, rebuilt));
  const Snapshot tcp_changed = SnapshotBuilder()
                                   .add({.endpoints = {endpoint("10.244.1.11", 8053)}})
                                   .add({.name = "web", .protocol = Protocol::kTcp, .port = 80})
                                   .build();
  EXPECT_FALSE(conntrack_cleanup_needed(&base, tcp_changed));
  const Snapshot udp_changed = SnapshotBuilder().add({.endpoints = {endpoint("10.244.1.12", 8053)}}).build();
  EXPECT_TRUE(conntrack_cleanup_needed(&base, udp_changed));
  const Snapshot udp_removed =
      SnapshotBuilder()
          .add({.name = "web", .protocol = Protocol::kTcp, .port = 80, .endpoints = {endpoint("10.244.1.11", 80)}})
          .build();
  EXPECT_TRUE(conntrack_cleanup_needed(&base, udp_removed));
  EXPECT_TRUE(conntrack_cleanup_needed(&udp_removed, base));
  const Snapshot sctp_added =
      SnapshotBuilder(base).add({.name = "sig", .protocol = Protocol::kSctp, .port = 3868}).build();
  EXPECT_TRUE(conntrack_cleanup_needed(&base, sctp_added));
}

// ---- cleanup_stale_flows on the fake table ----

class CleanupTest : public ::testing::Test {
 protected:
  void add(const Flow& f) { ASSERT_TRUE(table_.add(f).ok()); }
  FakeConntrack table_;
};

TEST_F(CleanupTest, DeletesTheStaleFlowsAndReturnsHowMany) {
  const Snapshot before =
      SnapshotBuilder()
          .add({.endpoints = {endpoint("10.244.1.11", 8053), endpoint("10.244.1.12", 8053)}})
          .add({.name = "gone", .cluster_ip = "10.96.0.60", .endpoints = {endpoint("10.244.1.11", 8053)}})
          .build();
  const Snapshot after = SnapshotBuilder().add({.endpoints = {endpoint("10.244.1.12", 8053)}}).build();
  const Flow removed_backend = udp("10.96.0.53", 53, "10.244.1.11", 8053, 40000);
  const Flow kept = udp("10.96.0.53", 53, "10.244.1.12", 8053, 40001);
  const Flow tcp = flow(FlowProtocol::kTcp, "10.96.0.53", 53, "10.244.1.11", 8053, 40002);
  const Flow deleted_service = udp("10.96.0.60", 53, "10.244.1.11", 8053, 40003);
  for (const Flow& f : {removed_backend, kept, tcp, deleted_service}) add(f);

  auto deleted = cleanup_stale_flows(table_, &before, after, kLocal);
  ASSERT_TRUE(deleted.ok()) << deleted.error();
  EXPECT_EQ(*deleted, 2u);
  EXPECT_FALSE(table_.contains(removed_backend));
  EXPECT_FALSE(table_.contains(deleted_service));
  EXPECT_TRUE(table_.contains(kept));
  EXPECT_TRUE(table_.contains(tcp));

  // Nothing changed since: the table is not even listed.
  const int lists = table_.list_calls();
  EXPECT_EQ(cleanup_stale_flows(table_, &after, after, kLocal).value(), 0u);
  EXPECT_EQ(table_.list_calls(), lists);
}

TEST_F(CleanupTest, ARestartListsButDeletesNothingValid) {
  const Snapshot current = SnapshotBuilder().add({.endpoints = {endpoint("10.244.1.12", 8053)}}).build();
  add(udp("10.96.0.53", 53, "10.244.1.12", 8053, 40000));
  add(flow(FlowProtocol::kTcp, "10.96.0.53", 53, "10.244.1.11", 8053, 40001));
  EXPECT_EQ(cleanup_stale_flows(table_, nullptr, current, kLocal).value(), 0u);
  EXPECT_EQ(table_.list_calls(), 1);
  EXPECT_EQ(table_.remove_calls(), 0);
  EXPECT_EQ(table_.flows().size(), 2u);
}

TEST_F(CleanupTest, ErrorsAreReturnedAndNothingIsDeletedOnAListingError) {
  const Snapshot current = SnapshotBuilder().add({.endpoints = {endpoint("10.244.1.12", 8053)}}).build();
  const Flow stale = udp("10.96.0.53", 53, "10.244.1.11", 8053);
  add(stale);
  table_.fail_next_list("conntrack: listing udp flows: Operation not permitted");
  auto r = cleanup_stale_flows(table_, nullptr, current, kLocal);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), "conntrack: listing udp flows: Operation not permitted");
  EXPECT_TRUE(table_.contains(stale));

  table_.fail_next_remove("conntrack: deleted 0 of 1 flows; 1 failed, the first: ...");
  r = cleanup_stale_flows(table_, nullptr, current, kLocal);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(table_.contains(stale));

  EXPECT_EQ(cleanup_stale_flows(table_, nullptr, current, kLocal).value(), 1u);
  EXPECT_FALSE(table_.contains(stale));
}

}  // namespace
}  // namespace kproxy::proxier
