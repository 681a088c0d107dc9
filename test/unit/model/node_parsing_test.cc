#include <gtest/gtest.h>

#include "kproxy/model/parse.h"
#include "model_test_support.h"

namespace kproxy::model {
namespace {

using testing::base_node;
using testing::describe;
using testing::find_rejection;
using testing::json;
using testing::model_fixture;
using testing::model_fixture_text;
using testing::with;

IpAddress ip(std::string_view text) { return *IpAddress::parse(text); }
Cidr cidr(std::string_view text) { return *Cidr::parse(text); }

Node parse_ok(const json& object) {
  auto result = parse_node(object);
  EXPECT_TRUE(result.ok()) << describe(result.rejections);
  return result.value.value_or(Node{});
}

class NodeFixture : public ::testing::TestWithParam<const char*> {};

TEST_P(NodeFixture, ParsesWithoutRejectionsFromTextAndJson) {
  auto from_text = parse_node_json(model_fixture_text(GetParam()));
  ASSERT_TRUE(from_text.ok()) << describe(from_text.rejections);
  EXPECT_TRUE(from_text.rejections.empty()) << describe(from_text.rejections);
  EXPECT_EQ(from_text.value, parse_node(model_fixture(GetParam())).value);
}

INSTANTIATE_TEST_SUITE_P(RealCluster, NodeFixture,
                         ::testing::Values("node-worker.json", "node-dualstack-tainted.json", "node-deleting.json"));

TEST(NodeParsing, ReadsIPAddressesAndSkipsNameAddresses) {
  Node node = parse_ok(model_fixture("node-worker.json"));
  EXPECT_EQ(node.meta.name, "node-a");
  EXPECT_EQ(node.meta.ns, "");
  EXPECT_EQ(node.meta.key(), "node-a");
  EXPECT_EQ(node.meta.labels.at("topology.kubernetes.io/zone"), "europe-west1-b");
  EXPECT_EQ(node.addresses, (std::vector<NodeAddress>{{NodeAddressType::kInternalIP, ip("10.0.1.11")},
                                                      {NodeAddressType::kExternalIP, ip("203.0.113.11")}}));
  EXPECT_EQ(node.pod_cidrs, std::vector<Cidr>{cidr("10.244.1.0/24")});
  EXPECT_TRUE(node.taints.empty());
  EXPECT_TRUE(node.taints_complete);
  EXPECT_FALSE(node.meta.deletion_timestamp);
}

TEST(NodeParsing, ReadsADualStackNodeAndItsTaints) {
  Node node = parse_ok(model_fixture("node-dualstack-tainted.json"));
  EXPECT_EQ(node.addresses, (std::vector<NodeAddress>{{NodeAddressType::kInternalIP, ip("10.0.0.10")},
                                                      {NodeAddressType::kInternalIP, ip("fd00:10::a")}}));
  EXPECT_EQ(node.pod_cidrs, (std::vector<Cidr>{cidr("10.244.0.0/24"), cidr("fd00:10:244::/64")}));
  ASSERT_EQ(node.taints.size(), 3u);
  EXPECT_EQ(node.taints[0], (Taint{"node-role.kubernetes.io/control-plane", "", TaintEffect::kNoSchedule, {}}));
  EXPECT_EQ(node.taints[1].effect, TaintEffect::kNoExecute);
  ASSERT_TRUE(node.taints[1].time_added);
  EXPECT_EQ(format_rfc3339(*node.taints[1].time_added), "2024-09-01T11:58:20Z");
  EXPECT_EQ(node.taints[2], (Taint{"example.com/maintenance", "kernel-upgrade", TaintEffect::kPreferNoSchedule, {}}));
  EXPECT_TRUE(node.taints_complete);
}

TEST(NodeParsing, ReadsTheDeletionTimestampOfADrainingNode) {
  Node node = parse_ok(model_fixture("node-deleting.json"));
  ASSERT_TRUE(node.meta.deletion_timestamp);
  EXPECT_EQ(format_rfc3339(*node.meta.deletion_timestamp), "2024-09-02T04:15:09Z");
  EXPECT_EQ(node.taints[0].key, "ToBeDeletedByClusterAutoscaler");
}

TEST(NodeParsing, FallsBackToTheSinglePodCIDR) {
  auto object = base_node();
  object["spec"].erase("podCIDRs");
  object["spec"]["podCIDR"] = "10.244.9.0/24";
  EXPECT_EQ(parse_ok(object).pod_cidrs, std::vector<Cidr>{cidr("10.244.9.0/24")});
}

TEST(NodeParsing, IgnoresTheNamespaceOfAClusterScopedObject) {
  Node node = parse_ok(with(base_node(), "/metadata/namespace", "default"));
  EXPECT_EQ(node.meta.ns, "");
}

TEST(NodeParsing, MarksTaintsIncompleteWhenOneIsRefused) {
  // spec.taints is replaced whole by a PATCH: a writer must know the list it holds is partial.
  auto object = with(base_node(), "/spec/taints",
                     json::parse(R"([{"key": "a", "effect": "NoSchedule"}, {"key": "b", "effect": "NoRun"},
                                     {"key": "c", "effect": "NoExecute"}])"));
  auto result = parse_node(object);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value->taints.size(), 2u);
  EXPECT_FALSE(result.value->taints_complete);
  const Rejection* r = find_rejection(result.rejections, "spec.taints[1].effect");
  ASSERT_NE(r, nullptr) << describe(result.rejections);
  EXPECT_EQ(r->message(),
            "node node-a: spec.taints[1].effect: \"NoRun\" is not NoSchedule, PreferNoSchedule or NoExecute");
}

struct RejectionCase {
  const char* name;
  const char* pointer;
  const char* value;
  const char* field;
  RejectReason reason;
  bool refused;
};

class NodeRejection : public ::testing::TestWithParam<RejectionCase> {};

TEST_P(NodeRejection, NamesTheField) {
  const auto& c = GetParam();
  json object = with(base_node(), c.pointer, json::parse(c.value));
  auto result = parse_node(object);
  const Rejection* r = find_rejection(result.rejections, c.field);
  ASSERT_NE(r, nullptr) << "no rejection for " << c.field << describe(result.rejections);
  EXPECT_EQ(r->reason, c.reason) << r->message();
  EXPECT_EQ(result.ok(), !c.refused) << describe(result.rejections);
  EXPECT_TRUE(testing::rejections_name_their_fields(result, object));
}

const RejectionCase kNodeRejections[] = {
    {"AddressInvalid", "/status/addresses/0/address", R"("10.0.0.300")", "status.addresses[0].address",
     RejectReason::kInvalidIp, false},
    {"AddressIPv4Mapped", "/status/addresses/0/address", R"("::ffff:10.0.0.11")", "status.addresses[0].address",
     RejectReason::kForbiddenAddress, false},
    {"AddressTypeUnknown", "/status/addresses/0/type", R"("VirtualIP")", "status.addresses[0].type",
     RejectReason::kUnknownValue, false},
    {"AddressMissing", "/status/addresses/0", R"({"type": "InternalIP"})", "status.addresses[0].address",
     RejectReason::kMissingField, false},
    {"PodCIDRInvalid", "/spec/podCIDRs/0", R"("10.244.1.0")", "spec.podCIDRs[0]", RejectReason::kInvalidIp, false},
    {"PodCIDRsSameFamily", "/spec/podCIDRs", R"(["10.244.1.0/24", "10.245.1.0/24"])", "spec.podCIDRs[1]",
     RejectReason::kFamilyMismatch, false},
    {"PodCIDRsTooMany", "/spec/podCIDRs", R"(["10.244.1.0/24", "fd00::/64", "10.245.1.0/24"])", "spec.podCIDRs",
     RejectReason::kTooLarge, false},
    {"TaintWithoutKey", "/spec/taints/0", R"({"effect": "NoSchedule"})", "spec.taints[0].key",
     RejectReason::kMissingField, false},
    {"TaintTimeMalformed", "/spec/taints/0/timeAdded", R"("2024-13-01T00:00:00Z")", "spec.taints[0].timeAdded",
     RejectReason::kMalformed, false},
    {"TaintsNotAList", "/spec/taints", R"({"key": "a"})", "spec.taints", RejectReason::kWrongType, false},
    {"NameMalformed", "/metadata/name", R"("Node-A")", "metadata.name", RejectReason::kMalformed, true},
    {"NameNotAString", "/metadata/name", "42", "metadata.name", RejectReason::kWrongType, true},
    {"KindIsAnother", "/kind", R"("Service")", "kind", RejectReason::kUnknownValue, true},
};

INSTANTIATE_TEST_SUITE_P(Rules, NodeRejection, ::testing::ValuesIn(kNodeRejections),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(NodeEnums, PrintTheApiSpelling) {
  EXPECT_EQ(to_string(NodeAddressType::kExternalIP), "ExternalIP");
  EXPECT_EQ(to_string(TaintEffect::kPreferNoSchedule), "PreferNoSchedule");
  EXPECT_EQ(to_string(AddressType::kFQDN), "FQDN");
}

}  // namespace
}  // namespace kproxy::model
