// Label and field selector syntax and matching, against the rules of
// apimachinery/pkg/labels/selector.go and apimachinery/pkg/fields/selector.go.
#include "fakeapi/selectors.h"

#include <gtest/gtest.h>

namespace kproxy::fakeapi {
namespace {

using json = nlohmann::json;

struct LabelCase {
  const char* selector;
  json labels;
  bool matches;
};

TEST(LabelSelector, MatchesAsTheApiserverDoes) {
  const json web = {{"app", "web"}, {"tier", "front"}, {"replicas", "3"}};
  const std::vector<LabelCase> cases = {
      {"", web, true},
      {"app", web, true},
      {"app", json::object(), false},
      {"!app", web, false},
      {"!service.kubernetes.io/headless", web, true},
      {"!service.kubernetes.io/headless", {{"service.kubernetes.io/headless", ""}}, false},
      {"app=web", web, true},
      {"app==web", web, true},
      {"app=db", web, false},
      {"app!=db", web, true},
      {"app!=web", web, false},
      {"missing!=x", web, true},  // != matches objects without the key
      {"app in (db,web)", web, true},
      {"app in (db)", web, false},
      {"missing in (x)", web, false},
      {"app notin (db)", web, true},
      {"app notin (web, db)", web, false},
      {"missing notin (x)", web, true},
      {"app=web,tier=front", web, true},
      {"app=web,tier=back", web, false},
      {" app = web , !missing ", web, true},
      {"replicas>2", web, true},
      {"replicas<2", web, false},
      {"app=", {{"app", ""}}, true},
      {"app=", web, false},
      {"app", nullptr, false},
      {"!app", nullptr, true},
  };
  for (const auto& c : cases) {
    auto sel = LabelSelector::parse(c.selector);
    ASSERT_TRUE(sel.ok()) << c.selector << ": " << sel.error();
    EXPECT_EQ(sel->matches(c.labels), c.matches) << "selector \"" << c.selector << "\" on " << c.labels.dump();
  }
}

TEST(LabelSelector, RejectsMalformedSelectors) {
  for (const char* bad : {"app in ()", "app in (a", "a=b=c", "=x", "app notin", "app in x", "bad key=x", "a>x",
                          "app=has space", "!a=b", "a,,b"}) {
    auto sel = LabelSelector::parse(bad);
    EXPECT_FALSE(sel.ok()) << "accepted \"" << bad << "\"";
  }
}

TEST(FieldSelector, MatchesObjectFields) {
  const json svc = {{"metadata", {{"name", "web"}, {"namespace", "prod"}}},
                    {"spec", {{"clusterIP", "None"}, {"type", "ClusterIP"}}}};
  const std::vector<std::pair<const char*, bool>> cases = {
      {"", true},
      {"metadata.name=web", true},
      {"metadata.name==web", true},
      {"metadata.name=db", false},
      {"metadata.name!=db", true},
      {"metadata.namespace=prod,metadata.name=web", true},
      {"metadata.namespace=prod,metadata.name=db", false},
      {"spec.clusterIP!=None", false},
      {"spec.clusterIP=None", true},
      {"spec.type=ClusterIP", true},
  };
  for (const auto& [text, want] : cases) {
    auto sel = FieldSelector::parse(text);
    ASSERT_TRUE(sel.ok()) << text << ": " << sel.error();
    EXPECT_EQ(sel->matches(svc), want) << text;
  }
}

TEST(FieldSelector, UnescapesValuesAndRejectsTermsWithoutOperator) {
  auto sel = FieldSelector::parse(R"(metadata.name=a\,b\=c)");
  ASSERT_TRUE(sel.ok()) << sel.error();
  ASSERT_EQ(sel->terms().size(), 1u);
  EXPECT_EQ(sel->terms()[0].value, "a,b=c");
  EXPECT_FALSE(FieldSelector::parse("metadata.name").ok());
  EXPECT_FALSE(FieldSelector::parse(R"(metadata.name=a\x)").ok());
}

TEST(FieldSelector, RendersUnsetBooleansAsFalse) {
  const json node = {{"metadata", {{"name", "n1"}}}, {"spec", json::object()}};
  EXPECT_EQ(field_value(node, "spec.unschedulable"), "false");
  EXPECT_EQ(field_value(node, "metadata.name"), "n1");
  EXPECT_EQ(field_value(node, "spec.clusterIP"), "");
}

}  // namespace
}  // namespace kproxy::fakeapi
