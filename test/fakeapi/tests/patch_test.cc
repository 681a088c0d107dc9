// PATCH application: strategic merge (taints replaced whole, merge keys elsewhere),
// JSON merge patch and JSON patch (RFC 6902).
#include "fakeapi/patch.h"

#include <gtest/gtest.h>

namespace kproxy::fakeapi {
namespace {

using json = nlohmann::json;

const json kNode = {
    {"metadata", {{"name", "n1"}, {"resourceVersion", "7"}, {"labels", {{"a", "1"}, {"b", "2"}}}}},
    {"spec", {{"podCIDRs", {"10.0.0.0/24"}},
              {"taints", json::array({{{"key", "node.kubernetes.io/unreachable"}, {"effect", "NoExecute"}},
                                      {{"key", "other"}, {"effect", "NoSchedule"}}})}}},
    {"status", {{"addresses", json::array({{{"type", "InternalIP"}, {"address", "192.168.0.1"}}})}}}};

const ResourceType& nodes() { return *find_resource("nodes"); }

TEST(StrategicMergePatch, ReplacesNodeTaintsWhole) {
  // NodeSpec.Taints has no patchMergeKey (api/core/v1/types.go): the list is replaced.
  auto r = apply_patch(nodes(), PatchType::kStrategicMerge, kNode,
                       R"({"spec":{"taints":[{"key":"kproxy/sctp","effect":"NoSchedule"}]}})");
  ASSERT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.object["spec"]["taints"], json::parse(R"([{"key":"kproxy/sctp","effect":"NoSchedule"}])"));
  EXPECT_EQ(r.object["spec"]["podCIDRs"], kNode["spec"]["podCIDRs"]);
}

TEST(StrategicMergePatch, MergesListsThatHaveAMergeKey) {
  auto r = apply_patch(nodes(), PatchType::kStrategicMerge, kNode,
                       R"({"status":{"addresses":[{"type":"ExternalIP","address":"1.2.3.4"}]},
                           "spec":{"podCIDRs":["fd00::/64"]},
                           "metadata":{"labels":{"a":null,"c":"3"}}})");
  ASSERT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.object["status"]["addresses"].size(), 2u);
  EXPECT_EQ(r.object["spec"]["podCIDRs"], json::parse(R"(["10.0.0.0/24","fd00::/64"])"));
  EXPECT_EQ(r.object["metadata"]["labels"], json::parse(R"({"b":"2","c":"3"})"));
}

TEST(StrategicMergePatch, HonoursDeleteAndReplaceDirectives) {
  auto r = apply_patch(nodes(), PatchType::kStrategicMerge, kNode,
                       R"({"status":{"addresses":[{"type":"InternalIP","$patch":"delete"}]},
                           "metadata":{"labels":{"$patch":"replace","z":"9"}},
                           "$setElementOrder/spec":[]})");
  ASSERT_TRUE(r.ok) << r.message;
  EXPECT_TRUE(r.object["status"]["addresses"].empty());
  EXPECT_EQ(r.object["metadata"]["labels"], json::parse(R"({"z":"9"})"));
}

TEST(StrategicMergePatch, NullTaintsRemovesThem) {
  auto r = apply_patch(nodes(), PatchType::kStrategicMerge, kNode, R"({"spec":{"taints":null}})");
  ASSERT_TRUE(r.ok) << r.message;
  EXPECT_FALSE(r.object["spec"].contains("taints"));
}

TEST(MergePatch, FollowsRfc7386) {
  auto r = apply_patch(nodes(), PatchType::kMerge, kNode,
                       R"({"metadata":{"resourceVersion":"7"},"spec":{"taints":[]}})");
  ASSERT_TRUE(r.ok) << r.message;
  EXPECT_TRUE(r.object["spec"]["taints"].empty());
  EXPECT_EQ(r.object["metadata"]["resourceVersion"], "7");
}

TEST(JsonPatch, AppliesOperationsAndFailsATestWith422) {
  auto ok = apply_patch(nodes(), PatchType::kJson, kNode,
                        R"([{"op":"test","path":"/metadata/resourceVersion","value":"7"},
                            {"op":"add","path":"/spec/taints","value":[]}])");
  ASSERT_TRUE(ok.ok) << ok.message;
  EXPECT_TRUE(ok.object["spec"]["taints"].empty());
  auto failed = apply_patch(nodes(), PatchType::kJson, kNode,
                            R"([{"op":"test","path":"/metadata/resourceVersion","value":"6"}])");
  EXPECT_FALSE(failed.ok);
  EXPECT_EQ(failed.code, 422);
}

TEST(Patch, RejectsUndecodableBodiesWith400) {
  EXPECT_EQ(apply_patch(nodes(), PatchType::kMerge, kNode, "{not json").code, 400);
  EXPECT_EQ(apply_patch(nodes(), PatchType::kJson, kNode, R"({"op":"add"})").code, 400);
  EXPECT_EQ(apply_patch(nodes(), PatchType::kStrategicMerge, kNode, "[]").code, 400);
}

TEST(Patch, KnowsTheContentTypes) {
  EXPECT_EQ(patch_type_from_content_type("application/strategic-merge-patch+json"), PatchType::kStrategicMerge);
  EXPECT_EQ(patch_type_from_content_type("application/merge-patch+json; charset=utf-8"), PatchType::kMerge);
  EXPECT_EQ(patch_type_from_content_type("application/json-patch+json"), PatchType::kJson);
  EXPECT_FALSE(patch_type_from_content_type("application/apply-patch+yaml").has_value());
  EXPECT_FALSE(patch_type_from_content_type("application/json").has_value());
}

}  // namespace
}  // namespace kproxy::fakeapi
