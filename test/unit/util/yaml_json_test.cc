#include "kproxy/yaml_json.h"

#include <gtest/gtest.h>

namespace kproxy {
namespace {

TEST(YamlToJson, TypesPlainScalarsAndKeepsQuotedOnesAsStrings) {
  auto docs = yaml_documents_to_json(
      "a: 1\nb: \"1\"\nc: true\nd: 'false'\ne: null\nf: 1.5\ng: 30s\nh: ~\ni: -7\nj: 0.0.0.0:10256\n");
  ASSERT_TRUE(docs.ok()) << docs.error();
  ASSERT_EQ(docs->size(), 1u);
  const auto& j = (*docs)[0];
  EXPECT_EQ(j["a"], 1);
  EXPECT_EQ(j["b"], "1");
  EXPECT_EQ(j["c"], true);
  EXPECT_EQ(j["d"], "false");
  EXPECT_TRUE(j["e"].is_null());
  EXPECT_DOUBLE_EQ(j["f"].get<double>(), 1.5);
  EXPECT_EQ(j["g"], "30s");
  EXPECT_TRUE(j["h"].is_null());
  EXPECT_EQ(j["i"], -7);
  EXPECT_EQ(j["j"], "0.0.0.0:10256");
}

TEST(YamlToJson, ReadsJsonAsWell) {
  auto docs = yaml_documents_to_json(R"({"kind": "Service", "spec": {"ports": [{"port": 80}]}})");
  ASSERT_TRUE(docs.ok()) << docs.error();
  EXPECT_EQ((*docs)[0]["spec"]["ports"][0]["port"], 80);
}

TEST(YamlToJson, SplitsDocumentsAndDropsEmptyOnes) {
  auto docs = yaml_documents_to_json("---\nkind: A\n---\n---\nkind: B\n");
  ASSERT_TRUE(docs.ok()) << docs.error();
  ASSERT_EQ(docs->size(), 2u);
  EXPECT_EQ((*docs)[1]["kind"], "B");
}

TEST(YamlToJson, ReportsTheLineOfASyntaxError) {
  auto docs = yaml_documents_to_json("a: 1\nb: [1, 2\nc: 3\n");
  ASSERT_FALSE(docs.ok());
  EXPECT_NE(docs.error().find("line"), std::string::npos) << docs.error();
}

TEST(YamlToJson, RefusesHostileNesting) {
  std::string deep(5000, '[');
  auto docs = yaml_documents_to_json(deep);
  EXPECT_FALSE(docs.ok());
}

}  // namespace
}  // namespace kproxy
