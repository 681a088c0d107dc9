// categorize_endpoints against the cases of kube-proxy's TestCategorizeEndpoints
// (pkg/proxy/topology_test.go), restated for current kube-proxy: hints are honoured without
// the old topology annotation, terminating endpoints are always a fallback
// (ProxyTerminatingEndpoints is GA), and node hints select PreferSameNode.
#include "kproxy/proxier/endpoint_selection.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace kproxy::proxier {
namespace {

enum class State { kReady, kNotReady, kServingTerminating, kTerminatingNotServing };

struct Ep {
  std::string ip;
  State state = State::kReady;
  bool local = false;
  std::vector<std::string> zone_hints = {};
  std::vector<std::string> node_hints = {};
};

struct Policy {
  bool itp_local = false;
  bool etp_local = false;
  std::uint16_t node_port = 0;
};

struct Case {
  std::string name;
  Policy policy;
  NodeFacts node;
  std::vector<Ep> endpoints;
  std::vector<std::string> cluster = {};
  std::vector<std::string> local = {};
  std::vector<std::string> all = {};
  bool has_any = false;
  TopologyMode mode = TopologyMode::kNone;
};

ServicePortInfo make_port(const Case& c) {
  ServicePortInfo port;
  port.name = ServicePortName{"ns", "svc", "p80", model::Protocol::kTcp};
  port.port = 80;
  port.internal_policy_local = c.policy.itp_local;
  port.external_policy_local = c.policy.etp_local;
  port.node_port = c.policy.node_port;
  for (const Ep& e : c.endpoints) {
    Endpoint endpoint;
    endpoint.ip = IpAddress::parse(e.ip).value();
    endpoint.port = 80;
    endpoint.ready = e.state == State::kReady;
    endpoint.serving = e.state == State::kReady || e.state == State::kServingTerminating;
    endpoint.terminating = e.state == State::kServingTerminating || e.state == State::kTerminatingNotServing;
    endpoint.is_local = e.local;
    endpoint.zone_hints = e.zone_hints;
    endpoint.node_hints = e.node_hints;
    port.endpoints.push_back(endpoint);
  }
  return port;
}

std::vector<std::string> names(const std::vector<const Endpoint*>& endpoints) {
  std::vector<std::string> out;
  for (const Endpoint* endpoint : endpoints) out.push_back(endpoint->to_string());
  return out;
}

const NodeFacts kZoneA{"node-1", "zone-a"};
const Policy kCluster{};
const Policy kEtpLocalNodePort{false, true, 30080};
const Policy kItpLocal{true, false, 0};
const Policy kItpLocalNodePort{true, false, 30080};
const Policy kBothLocalNodePort{true, true, 30080};
constexpr auto kT = State::kServingTerminating;

const std::vector<Case> kCases = {
    {"ZoneHintsForThisZoneKeepOnlyThoseEndpoints", kCluster, kZoneA,
     {{"10.1.2.3", State::kReady, false, {"zone-a"}}, {"10.1.2.4", State::kReady, false, {"zone-b"}},
      {"10.1.2.5", State::kReady, false, {"zone-c"}}, {"10.1.2.6", State::kReady, false, {"zone-a"}}},
     {"10.1.2.3:80", "10.1.2.6:80"}, {}, {"10.1.2.3:80", "10.1.2.6:80"}, true, TopologyMode::kPreferSameZone},
    {"EtpLocalIgnoresTopologyForLocalEndpoints", kEtpLocalNodePort, kZoneA,
     {{"10.1.2.3", State::kReady, true, {"zone-a"}}, {"10.1.2.4", State::kReady, true, {"zone-b"}},
      {"10.1.2.5", State::kReady, false, {"zone-c"}}, {"10.1.2.6", State::kReady, false, {"zone-a"}}},
     {"10.1.2.3:80", "10.1.2.6:80"}, {"10.1.2.3:80", "10.1.2.4:80"},
     {"10.1.2.3:80", "10.1.2.4:80", "10.1.2.6:80"}, true, TopologyMode::kPreferSameZone},
    {"ItpLocalIgnoresTopologyForLocalEndpoints", kItpLocalNodePort, kZoneA,
     {{"10.1.2.3", State::kReady, true, {"zone-a"}}, {"10.1.2.4", State::kReady, true, {"zone-b"}},
      {"10.1.2.5", State::kReady, false, {"zone-c"}}, {"10.1.2.6", State::kReady, false, {"zone-a"}}},
     {"10.1.2.3:80", "10.1.2.6:80"}, {"10.1.2.3:80", "10.1.2.4:80"},
     {"10.1.2.3:80", "10.1.2.4:80", "10.1.2.6:80"}, true, TopologyMode::kPreferSameZone},
    {"NodeWithoutZoneLabelIgnoresZoneHints", kCluster, NodeFacts{"node-1", ""},
     {{"10.1.2.3", State::kReady, false, {"zone-a"}}},
     {"10.1.2.3:80"}, {}, {"10.1.2.3:80"}, true},
    {"NodeInAZoneWithoutHintsUsesEveryEndpoint", kCluster, NodeFacts{"node-1", "zone-b"},
     {{"10.1.2.3", State::kReady, false, {"zone-a"}}},
     {"10.1.2.3:80"}, {}, {"10.1.2.3:80"}, true},
    {"UnreadyEndpointInThisZoneIsNotUsed", kCluster, kZoneA,
     {{"10.1.2.3", State::kReady, false, {"zone-a"}}, {"10.1.2.4", State::kReady, false, {"zone-b"}},
      {"10.1.2.5", State::kReady, false, {"zone-c"}}, {"10.1.2.6", State::kNotReady, false, {"zone-a"}}},
     {"10.1.2.3:80"}, {}, {"10.1.2.3:80"}, true, TopologyMode::kPreferSameZone},
    {"OnlyUnreadyEndpointsInThisZoneDisableFiltering", kCluster, kZoneA,
     {{"10.1.2.3", State::kNotReady, false, {"zone-a"}}, {"10.1.2.4", State::kReady, false, {"zone-b"}},
      {"10.1.2.5", State::kReady, false, {"zone-c"}}, {"10.1.2.6", State::kNotReady, false, {"zone-a"}}},
     {"10.1.2.4:80", "10.1.2.5:80"}, {}, {"10.1.2.4:80", "10.1.2.5:80"}, true},
    {"SomeEndpointsWithoutHintsDisableFiltering", kCluster, kZoneA,
     {{"10.1.2.3", State::kReady, false, {"zone-a"}}, {"10.1.2.4", State::kReady, false, {"zone-b"}},
      {"10.1.2.5", State::kReady, false, {}}, {"10.1.2.6", State::kReady, false, {"zone-a"}}},
     {"10.1.2.3:80", "10.1.2.4:80", "10.1.2.5:80", "10.1.2.6:80"}, {},
     {"10.1.2.3:80", "10.1.2.4:80", "10.1.2.5:80", "10.1.2.6:80"}, true},
    {"NoHintsMeansNoFiltering", kCluster, kZoneA,
     {{"10.1.2.3", State::kReady}, {"10.1.2.4", State::kReady}},
     {"10.1.2.3:80", "10.1.2.4:80"}, {}, {"10.1.2.3:80", "10.1.2.4:80"}, true},
    {"EndpointWithSeveralZoneHintsServesEachOfThem", kCluster, NodeFacts{"node-1", "zone-c"},
     {{"10.1.2.3", State::kReady, false, {"zone-a", "zone-b", "zone-c"}},
      {"10.1.2.4", State::kReady, false, {"zone-b", "zone-c"}},
      {"10.1.2.5", State::kReady, false, {"zone-b", "zone-d"}}, {"10.1.2.6", State::kReady, false, {"zone-c"}}},
     {"10.1.2.3:80", "10.1.2.4:80", "10.1.2.6:80"}, {}, {"10.1.2.3:80", "10.1.2.4:80", "10.1.2.6:80"}, true,
     TopologyMode::kPreferSameZone},
    {"TopologyAndLocalnessConflictSoAllEndpointsAreMerged", kEtpLocalNodePort, kZoneA,
     {{"10.0.0.0", State::kReady, true, {"zone-a"}}, {"10.0.0.1", State::kReady, true, {"zone-b"}},
      {"10.0.0.2", State::kReady, false, {"zone-a"}}, {"10.0.0.3", State::kReady, false, {"zone-b"}}},
     {"10.0.0.0:80", "10.0.0.2:80"}, {"10.0.0.0:80", "10.0.0.1:80"}, {"10.0.0.0:80", "10.0.0.1:80", "10.0.0.2:80"},
     true, TopologyMode::kPreferSameZone},
    {"NodeHintsForThisNodeSelectPreferSameNode", kCluster, kZoneA,
     {{"10.0.0.0", State::kReady, false, {"zone-a"}, {"node-1"}}, {"10.0.0.1", State::kReady, false, {"zone-a"}, {"node-2"}}},
     {"10.0.0.0:80"}, {}, {"10.0.0.0:80"}, true, TopologyMode::kPreferSameNode},
    {"NodeHintsForOtherNodesFallBackToZoneHints", kCluster, kZoneA,
     {{"10.0.0.0", State::kReady, false, {"zone-a"}, {"node-2"}}, {"10.0.0.1", State::kReady, false, {"zone-b"}, {"node-3"}}},
     {"10.0.0.0:80"}, {}, {"10.0.0.0:80"}, true, TopologyMode::kPreferSameZone},
    {"SomeEndpointsWithoutNodeHintsIgnoreNodeHints", kCluster, kZoneA,
     {{"10.0.0.0", State::kReady, false, {}, {"node-1"}}, {"10.0.0.1", State::kReady, false, {}, {}}},
     {"10.0.0.0:80", "10.0.0.1:80"}, {}, {"10.0.0.0:80", "10.0.0.1:80"}, true},
    {"ItpLocalWithoutEndpointsHasNothing", kItpLocal, kZoneA, {}, {}, {}, {}, false},
    {"ItpLocalWithOnlyRemoteEndpointsDropsButHasEndpoints", kItpLocal, kZoneA,
     {{"10.0.0.0", State::kReady}, {"10.0.0.1", State::kReady}}, {}, {}, {}, true},
    {"ItpLocalWithAllEndpointsLocalUsesThemAll", kItpLocal, kZoneA,
     {{"10.0.0.0", State::kReady, true}, {"10.0.0.1", State::kReady, true}},
     {}, {"10.0.0.0:80", "10.0.0.1:80"}, {"10.0.0.0:80", "10.0.0.1:80"}, true},
    {"ItpLocalUsesOnlyTheLocalEndpoints", kItpLocal, kZoneA,
     {{"10.0.0.0", State::kReady, true}, {"10.0.0.1", State::kReady, false}},
     {}, {"10.0.0.0:80"}, {"10.0.0.0:80"}, true},
    {"ClusterPolicyWithNoUsableEndpointsHasNone", kCluster, kZoneA,
     {{"10.0.0.0", State::kNotReady}, {"10.0.0.1", State::kNotReady}}, {}, {}, {}, false},
    {"ClusterPolicyUsesOnlyReadyEndpoints", kCluster, kZoneA,
     {{"10.0.0.0", State::kNotReady}, {"10.0.0.1", State::kReady}}, {"10.0.0.1:80"}, {}, {"10.0.0.1:80"}, true},
    {"ClusterPolicyFallsBackToServingTerminatingEndpoints", kCluster, kZoneA,
     {{"10.0.0.0", kT, true}, {"10.0.0.1", kT, false}},
     {"10.0.0.0:80", "10.0.0.1:80"}, {}, {"10.0.0.0:80", "10.0.0.1:80"}, true},
    {"TerminatingEndpointsThatStoppedServingAreNotAFallback", kCluster, kZoneA,
     {{"10.0.0.0", State::kTerminatingNotServing}, {"10.0.0.1", State::kTerminatingNotServing}}, {}, {}, {}, false},
    {"TerminatingFallbackIgnoresTopology", kCluster, kZoneA,
     {{"10.0.0.0", kT, false, {"zone-b"}}, {"10.0.0.1", kT, false, {"zone-b"}}},
     {"10.0.0.0:80", "10.0.0.1:80"}, {}, {"10.0.0.0:80", "10.0.0.1:80"}, true},
    {"ItpLocalEtpClusterUsesBothLists", kItpLocalNodePort, kZoneA,
     {{"10.0.0.0", State::kReady, true}, {"10.0.0.1", State::kReady, false}},
     {"10.0.0.0:80", "10.0.0.1:80"}, {"10.0.0.0:80"}, {"10.0.0.0:80", "10.0.0.1:80"}, true},
    {"EtpLocalItpClusterUsesBothLists", kEtpLocalNodePort, kZoneA,
     {{"10.0.0.0", State::kReady, true}, {"10.0.0.1", State::kReady, false}},
     {"10.0.0.0:80", "10.0.0.1:80"}, {"10.0.0.0:80"}, {"10.0.0.0:80", "10.0.0.1:80"}, true},
    {"BothPoliciesLocalWithSomeLocalEndpoints", kBothLocalNodePort, kZoneA,
     {{"10.0.0.0", State::kReady, true}, {"10.0.0.1", State::kReady, false}},
     {"10.0.0.0:80", "10.0.0.1:80"}, {"10.0.0.0:80"}, {"10.0.0.0:80", "10.0.0.1:80"}, true},
    {"BothPoliciesLocalWithOnlyRemoteEndpoints", kBothLocalNodePort, kZoneA,
     {{"10.0.0.0", State::kReady}, {"10.0.0.1", State::kReady}},
     {"10.0.0.0:80", "10.0.0.1:80"}, {}, {"10.0.0.0:80", "10.0.0.1:80"}, true},
    {"BothPoliciesLocalWithOnlyRemoteTerminatingEndpoints", kBothLocalNodePort, kZoneA,
     {{"10.0.0.0", kT}, {"10.0.0.1", kT}},
     {"10.0.0.0:80", "10.0.0.1:80"}, {}, {"10.0.0.0:80", "10.0.0.1:80"}, true},
    {"LocalFallsBackToLocalTerminatingWhileClusterKeepsReady", kEtpLocalNodePort, kZoneA,
     {{"10.0.0.0", State::kReady, false}, {"10.0.0.1", State::kNotReady, true}, {"10.0.0.2", kT, true},
      {"10.0.0.3", kT, false}},
     {"10.0.0.0:80"}, {"10.0.0.2:80"}, {"10.0.0.0:80", "10.0.0.2:80"}, true},
    {"EtpLocalIsIgnoredWhenNotExternallyAccessible", Policy{false, true, 0}, kZoneA,
     {{"10.0.0.0", State::kReady, false}, {"10.0.0.1", State::kReady, true}},
     {"10.0.0.0:80", "10.0.0.1:80"}, {}, {"10.0.0.0:80", "10.0.0.1:80"}, true},
    {"ItpLocalInternalOnlyServiceHasNoClusterEndpoints", kItpLocal, kZoneA,
     {{"10.0.0.0", State::kReady, false}, {"10.0.0.1", State::kReady, true}},
     {}, {"10.0.0.1:80"}, {"10.0.0.1:80"}, true},
};

class CategorizeEndpoints : public ::testing::TestWithParam<Case> {};

TEST_P(CategorizeEndpoints, MatchesKubeProxy) {
  const Case& c = GetParam();
  const ServicePortInfo port = make_port(c);
  const EndpointSelection selection = categorize_endpoints(port, c.node);
  EXPECT_EQ(names(selection.cluster), c.cluster);
  EXPECT_EQ(names(selection.local), c.local);
  EXPECT_EQ(names(selection.all_reachable), c.all);
  EXPECT_EQ(selection.has_any_endpoints, c.has_any);
  EXPECT_EQ(selection.topology_mode, c.mode);
}

INSTANTIATE_TEST_SUITE_P(TopologyTestCases, CategorizeEndpoints, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

TEST(CategorizeEndpointsPointers, PointIntoTheServicePort) {
  Case c{"", kCluster, kZoneA, {{"10.0.0.1", State::kReady}}};
  const ServicePortInfo port = make_port(c);
  const EndpointSelection selection = categorize_endpoints(port, c.node);
  ASSERT_EQ(selection.cluster.size(), 1u);
  EXPECT_EQ(selection.cluster[0], &port.endpoints[0]);
}

}  // namespace
}  // namespace kproxy::proxier
