// The two JSON readers behind the model: text (simdjson, the informers' path) and nlohmann
// trees (manifests, tests) read every input the same way: Go's decoder semantics as kproxy
// has always implemented them with nlohmann (docs/model.md, "JSON semantics").
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "json_reader.h"
#include "kproxy/model/json_value.h"
#include "kproxy/model/parse.h"
#include "model_test_support.h"

namespace kproxy::model {
namespace {

using testing::base_service;
using testing::base_slice;
using testing::describe;
using testing::find_rejection;
using testing::json;
using testing::same_result;

// The text entry point against nlohmann's reading of the same text.
::testing::AssertionResult same_as_nlohmann(const std::string& text) {
  return same_result(parse_service(json::parse(text)), parse_service_json(text));
}

TEST(JsonSemantics, TheLastOfDuplicateKeysCounts) {
  const std::string text =
      R"({"metadata": {"name": "first", "namespace": "default", "name": "web"},)"
      R"( "spec": {"clusterIP": "10.96.0.10", "ports": [{"port": 70000, "port": 80}]}})";
  auto result = parse_service_json(text);
  ASSERT_TRUE(result.ok()) << describe(result.rejections);
  EXPECT_EQ(result.value->meta.name, "web");
  ASSERT_EQ(result.value->ports.size(), 1u);
  EXPECT_EQ(result.value->ports[0].port, 80);
  EXPECT_TRUE(same_as_nlohmann(text));
}

TEST(JsonSemantics, MapEntriesAreReadInKeyOrderWithTheLastDuplicate) {
  // Unsorted keys, a duplicate whose first value is bad and last good, and one the other way
  // round: rejections come in key order, as nlohmann's sorted maps give them.
  const std::string text =
      R"({"metadata": {"name": "web", "namespace": "default", "labels": {"z": 1, "b": "x", "a": 2, "b": 3,)"
      R"( "c": 4, "c": "fine", "a": null}}, "spec": {"clusterIP": "10.96.0.10"}})";
  auto result = parse_service_json(text);
  ASSERT_TRUE(result.ok());
  ASSERT_EQ(result.rejections.size(), 2u) << describe(result.rejections);
  EXPECT_EQ(result.rejections[0].field, "metadata.labels[b]");
  EXPECT_EQ(result.rejections[0].value, "3");
  EXPECT_EQ(result.rejections[1].field, "metadata.labels[z]");
  EXPECT_EQ(result.value->meta.labels.at("c"), "fine");
  EXPECT_EQ(result.value->meta.labels.count("a"), 0u);
  EXPECT_TRUE(same_as_nlohmann(text));
}

TEST(JsonSemantics, NumbersAreIntegersOnlyWithoutAFractionOrExponent) {
  for (const char* port : {"80", "-0", "0", "80.0", "8e1", "-0.0", "1e-400", "65536", "-1",
                           "9223372036854775807", "9223372036854775808", "18446744073709551615",
                           // Beyond 64 bits: simdjson refuses them, nlohmann reads a float.
                           "18446744073709551616", "-9223372036854775809", "123456789012345678901234567890"}) {
    const std::string text = R"({"metadata": {"name": "web", "namespace": "default"},)"
                             R"( "spec": {"clusterIP": "10.96.0.10", "ports": [{"port": )" +
                             std::string(port) + "}]}}";
    EXPECT_TRUE(same_as_nlohmann(text)) << port;
  }
  auto big = parse_service_json(R"({"metadata": {"name": "web", "namespace": "default"},)"
                                R"( "spec": {"ports": [{"port": 18446744073709551615}, {"port": 1e2}]}})");
  ASSERT_NE(find_rejection(big.rejections, "spec.ports[0].port"), nullptr);
  EXPECT_EQ(find_rejection(big.rejections, "spec.ports[0].port")->reason, RejectReason::kOutOfRange);
  ASSERT_NE(find_rejection(big.rejections, "spec.ports[1].port"), nullptr);
  EXPECT_EQ(find_rejection(big.rejections, "spec.ports[1].port")->reason, RejectReason::kWrongType);
  EXPECT_EQ(find_rejection(big.rejections, "spec.ports[1].port")->value, "100.0");  // as nlohmann prints it
}

TEST(JsonSemantics, InputOnlyNlohmannReadsIsStillRead) {
  const std::string object = base_service().dump();
  EXPECT_TRUE(parse_service_json("\xef\xbb\xbf" + object).ok());  // a byte order mark
  std::string with_nul = object;
  with_nul += '\0';
  with_nul += "trailing bytes";  // nlohmann ends the text at a NUL
  EXPECT_TRUE(parse_service_json(with_nul).ok());
}

TEST(JsonSemantics, MalformedTextIsReportedWithNlohmannsMessage) {
  for (const char* text : {"", "{\"a\":", "[1,]", "{\"a\": \"\xff\"}", "{\"a\": \"\\ud800\"}", "{\"a\": 01}",
                           "{\"a\": 1} x", "{\"a\": \"\t\"}"}) {
    auto result = parse_service_json(text);
    ASSERT_EQ(result.rejections.size(), 1u) << text;
    std::string expected;
    try {
      const json ignored = json::parse(text);
    } catch (const json::exception& e) {
      expected = e.what();
    }
    ASSERT_FALSE(expected.empty()) << text;
    EXPECT_EQ(result.rejections[0].reason, RejectReason::kMalformed);
    EXPECT_EQ(result.rejections[0].detail, "input is not JSON: " + detail::escape_text(expected, 160));
  }
}

TEST(JsonSemantics, NullIsAbsentEverywhere) {
  const std::string text =
      R"({"metadata": {"name": "web", "namespace": "default", "labels": null, "uid": null},)"
      R"( "spec": {"clusterIP": "10.96.0.10", "ports": [null, {"port": 80, "name": null}], "type": null}})";
  EXPECT_TRUE(same_as_nlohmann(text));
}

TEST(JsonSemantics, LongListsReadInOrder) {
  json slice = base_slice();
  json endpoints = json::array();
  for (int i = 0; i < 1000; ++i) {
    endpoints.push_back({{"addresses", {"10.244." + std::to_string(i / 200) + "." + std::to_string(i % 200 + 1)}}});
  }
  endpoints[999]["addresses"][0] = "127.0.0.1";
  slice["endpoints"] = endpoints;
  auto from_text = parse_endpoint_slice_json(slice.dump());
  ASSERT_TRUE(from_text.ok());
  EXPECT_EQ(from_text.value->endpoints.size(), 999u);
  ASSERT_EQ(from_text.rejections.size(), 1u);
  EXPECT_EQ(from_text.rejections[0].field, "endpoints[999].addresses[0]");
  EXPECT_TRUE(same_result(parse_endpoint_slice(slice), from_text));
}

TEST(JsonValue, ReadsMembersOfEitherBackend) {
  const std::string text = R"({"metadata": {"name": "web", "resourceVersion": "7", "n": 3, "x": null}})";
  auto parsed = JsonValue::parse(text);
  ASSERT_TRUE(parsed.ok());
  for (const JsonValue& v : {*parsed, JsonValue(json::parse(text))}) {
    EXPECT_TRUE(v.is_object());
    EXPECT_EQ(v.member("metadata").member("name").string(), "web");
    EXPECT_EQ(v.member("metadata").member("n").integer(), 3);
    EXPECT_FALSE(v.member("metadata").member("x").present());
    EXPECT_FALSE(v.member("metadata").member("name").integer().has_value());
    EXPECT_FALSE(v.member("nope").member("name").present());
  }
  EXPECT_FALSE(JsonValue::parse("{").ok());
}

TEST(JsonValue, EveryDocumentKeepsItsOwnParser) {
  // Several values alive on one thread, and members outliving their root.
  std::vector<JsonValue> names;
  for (int i = 0; i < 20; ++i) {
    auto v = JsonValue::parse(R"({"metadata": {"name": "svc-)" + std::to_string(i) + R"("}})");
    ASSERT_TRUE(v.ok());
    names.push_back(v->member("metadata").member("name"));
  }
  for (int i = 0; i < 20; ++i) EXPECT_EQ(names[static_cast<std::size_t>(i)].string(), "svc-" + std::to_string(i));
  // And on other threads, with a value handed from one thread to another.
  JsonValue handed;
  std::thread t([&] { handed = *JsonValue::parse(R"({"name": "from-another-thread"})"); });
  t.join();
  EXPECT_EQ(handed.member("name").string(), "from-another-thread");
}

}  // namespace
}  // namespace kproxy::model
