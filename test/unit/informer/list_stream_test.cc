#include "kproxy/k8s/list_stream.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace kproxy::k8s {
namespace {

struct Split {
  std::vector<std::string> items;
  Status status;
  Expected<nlohmann::json> envelope = Error("not finished");
};

// Feeds `body` in pieces of `step` bytes.
Split split(const std::string& body, std::size_t step, std::size_t max_item = 1 << 20) {
  Split out;
  ListStreamParser p(max_item);
  for (std::size_t i = 0; i < body.size() && out.status.ok(); i += step) {
    out.status = p.feed(std::string_view(body).substr(i, step), [&](std::string_view item) {
      out.items.emplace_back(item);
      return Status();
    });
  }
  if (out.status.ok()) out.envelope = p.finish();
  return out;
}

const std::string kList =
    R"({"kind":"ServiceList","apiVersion":"v1","metadata":{"resourceVersion":"42","continue":"abc"},)"
    R"("items":[{"metadata":{"name":"a"},"spec":{"note":"braces } ] [ { and \"quotes\" and \\"}},)"
    "\n  "
    R"({"metadata":{"name":"b"},"spec":{"ports":[{"port":80}]}}]})";

TEST(ListStreamParser, SplitsItemsAtEveryChunkBoundary) {
  for (std::size_t step : {1u, 2u, 3u, 7u, 64u, 100000u}) {
    Split s = split(kList, step);
    ASSERT_TRUE(s.status.ok()) << step << ": " << s.status.message();
    ASSERT_EQ(s.items.size(), 2u) << step;
    EXPECT_EQ(nlohmann::json::parse(s.items[0])["spec"]["note"], "braces } ] [ { and \"quotes\" and \\");
    EXPECT_EQ(nlohmann::json::parse(s.items[1])["spec"]["ports"][0]["port"], 80);
    ASSERT_TRUE(s.envelope.ok()) << s.envelope.error();
    EXPECT_EQ((*s.envelope)["metadata"]["resourceVersion"], "42");
    EXPECT_EQ((*s.envelope)["metadata"]["continue"], "abc");
    EXPECT_TRUE((*s.envelope)["items"].empty());
  }
}

TEST(ListStreamParser, ReadsMetadataAfterTheItemsAndEmptyOrNullItems) {
  Split s = split(R"({"items":[{"a":1}],"metadata":{"resourceVersion":"7"}})", 5);
  ASSERT_TRUE(s.envelope.ok());
  EXPECT_EQ(s.items.size(), 1u);
  EXPECT_EQ((*s.envelope)["metadata"]["resourceVersion"], "7");
  for (const char* body : {R"({"metadata":{"resourceVersion":"1"},"items":[]})",
                           R"({"metadata":{"resourceVersion":"1"},"items":null})"}) {
    Split e = split(body, 3);
    ASSERT_TRUE(e.envelope.ok()) << body;
    EXPECT_TRUE(e.items.empty());
  }
}

TEST(ListStreamParser, ArraysNamedOtherwiseStayInTheEnvelope) {
  Split s = split(R"({"metadata":{"x":[1,2]},"other":[{"a":1}],"items":[{"b":2}]})", 4);
  ASSERT_TRUE(s.envelope.ok());
  ASSERT_EQ(s.items.size(), 1u);
  EXPECT_EQ((*s.envelope)["other"][0]["a"], 1);
}

TEST(ListStreamParser, RefusesWhatIsNotAList) {
  EXPECT_FALSE(split("[1,2]", 1).status.ok());
  EXPECT_FALSE(split(R"({"items":[1,2]})", 1).status.ok());
  EXPECT_FALSE(split(R"({"items":[{"a":1}]}garbage)", 4).status.ok());
  Split truncated = split(R"({"items":[{"a":1})", 4);
  EXPECT_TRUE(truncated.status.ok());
  EXPECT_FALSE(truncated.envelope.ok());
}

TEST(ListStreamParser, RefusesAnItemOverTheLimitWithoutBufferingIt) {
  std::string big = R"({"items":[{"x":")" + std::string(5000, 'x') + R"("}]})";
  Split s = split(big, 100, 1000);
  ASSERT_FALSE(s.status.ok());
  EXPECT_NE(s.status.message().find("larger than 1000"), std::string::npos);
}

}  // namespace
}  // namespace kproxy::k8s
