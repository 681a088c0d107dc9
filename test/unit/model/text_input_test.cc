// The text entry points: bounded, never throwing, and equivalent to the JSON ones.
#include <gtest/gtest.h>

#include "kproxy/model/parse.h"
#include "model_test_support.h"

namespace kproxy::model {
namespace {

using testing::base_service;
using testing::describe;
using testing::json;

TEST(TextInput, RefusesAnObjectOverTheApiServersRequestLimit) {
  std::string text = base_service().dump();
  text.insert(text.size() - 1, R"(,"padding":")" + std::string(kMaxObjectBytes, 'x') + "\"");
  auto result = parse_service_json(text);
  EXPECT_FALSE(result.ok());
  ASSERT_EQ(result.rejections.size(), 1u);
  EXPECT_EQ(result.rejections[0].reason, RejectReason::kTooLarge);
  EXPECT_EQ(result.rejections[0].field, "");
  EXPECT_EQ(result.rejections[0].object, "(unknown)");
}

TEST(TextInput, AcceptsALargeObjectJustUnderTheLimit) {
  std::string text = base_service().dump();
  const std::string head = R"(,"metadata2":")";
  text.insert(text.size() - 1, head + std::string(kMaxObjectBytes - text.size() - head.size() - 1, 'x') + "\"");
  ASSERT_EQ(text.size(), kMaxObjectBytes);
  auto result = parse_service_json(text);
  EXPECT_TRUE(result.ok()) << describe(result.rejections);
}

TEST(TextInput, RefusesDeepNestingBeforeParsing) {
  std::string deep = R"({"metadata": {"name": "web", "namespace": "default"}, "x": )" +
                     std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']') + "}";
  auto result = parse_endpoint_slice_json(deep);
  ASSERT_EQ(result.rejections.size(), 1u);
  EXPECT_EQ(result.rejections[0].reason, RejectReason::kTooLarge);
  // Brackets inside strings are text, not nesting.
  std::string brackets = R"({"metadata": {"name": "web", "namespace": "default", "labels": {"a": ")" +
                         std::string(1000, '[') + R"("}}, "spec": {}})";
  auto ok = parse_service_json(brackets);
  EXPECT_TRUE(ok.ok()) << describe(ok.rejections);
}

TEST(TextInput, ReportsSyntaxErrorsAsMalformed) {
  for (const char* text : {"", "{", "{\"kind\": \"Service\",}", "nul", "{\"a\": \"\xff\"}", "[1, 2] 3", "1e999999"}) {
    auto result = parse_node_json(text);
    EXPECT_FALSE(result.ok()) << text;
    ASSERT_EQ(result.rejections.size(), 1u) << text;
    EXPECT_EQ(result.rejections[0].reason, RejectReason::kMalformed) << text;
    EXPECT_EQ(result.rejections[0].message().rfind("node (unknown): input is not JSON", 0), 0u)
        << result.rejections[0].message();
  }
}

TEST(TextInput, KeepsAtMostAHundredRejectionsPerObjectAndCountsTheRest) {
  // Three megabytes of bad entries must not become a million log lines.
  std::string ips = "[";
  for (int i = 0; i < 100000; ++i) ips += (i ? ",\"x\"" : "\"x\"");
  ips += "]";
  auto object = base_service();
  object["spec"]["externalIPs"] = json::parse(ips);
  auto result = parse_service_json(object.dump());
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.rejections.size(), kMaxRejectionsPerObject);
  EXPECT_EQ(result.more_rejections, 100000 - kMaxRejectionsPerObject);
}

TEST(TextInput, StillRefusesAnObjectWhoseFatalProblemComesPastTheCap) {
  auto slice = testing::base_slice();
  slice["endpoints"] = json::array();
  for (int i = 0; i < 200; ++i) slice["endpoints"].push_back({{"addresses", {"127.0.0.1"}}});
  slice["ports"] = json::array();
  for (std::size_t i = 0; i <= kMaxSlicePorts; ++i) slice["ports"].push_back({{"name", ""}, {"port", 80}});
  auto result = parse_endpoint_slice(slice);
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.rejections.size(), kMaxRejectionsPerObject);
  EXPECT_EQ(result.more_rejections, 200 - kMaxRejectionsPerObject + 1);
}

TEST(TextInput, RefusesJsonThatIsNotAnObject) {
  for (const char* text : {"[]", "\"Service\"", "42", "null", "true"}) {
    auto result = parse_service_json(text);
    EXPECT_FALSE(result.ok()) << text;
    ASSERT_EQ(result.rejections.size(), 1u) << text;
    EXPECT_EQ(result.rejections[0].reason, RejectReason::kWrongType) << text;
  }
}

}  // namespace
}  // namespace kproxy::model
