#include "kproxy/k8s/watch_stream.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kproxy/k8s/backoff.h"

namespace kproxy::k8s {
namespace {

std::vector<std::string> feed_all(WatchDecoder& d, const std::vector<std::string>& chunks, Status* last = nullptr) {
  std::vector<std::string> lines;
  for (const auto& c : chunks) {
    Status s = d.feed(c, [&](std::string_view l) {
      lines.emplace_back(l);
      return Status();
    });
    if (last) *last = s;
    if (!s.ok()) break;
  }
  return lines;
}

TEST(WatchDecoder, ReassemblesEventsSplitAcrossChunks) {
  WatchDecoder d(1024);
  auto lines = feed_all(d, {"{\"type\":\"ADD", "ED\"}\n{\"a\":", "1}\n", "\n", "{\"b\":2}\r\n{\"c\""});
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "{\"type\":\"ADDED\"}");
  EXPECT_EQ(lines[1], "{\"a\":1}");
  EXPECT_EQ(lines[2], "{\"b\":2}");
  EXPECT_EQ(d.pending(), 4u);
}

TEST(WatchDecoder, SplitsManyEventsInOneChunk) {
  WatchDecoder d(1024);
  auto lines = feed_all(d, {"{}\n{}\n{}\n"});
  EXPECT_EQ(lines.size(), 3u);
  EXPECT_EQ(d.pending(), 0u);
}

TEST(WatchDecoder, RefusesAnEventLargerThanTheLimitWithoutBufferingIt) {
  WatchDecoder d(100);
  Status s;
  std::string big(60, 'x');
  auto lines = feed_all(d, {"{}\n", big, big, "\n"}, &s);
  EXPECT_EQ(lines.size(), 1u);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("larger than 100 bytes"), std::string::npos) << s.message();
  EXPECT_EQ(d.pending(), 0u);
}

TEST(WatchDecoder, StopsAtTheFirstHandlerError) {
  WatchDecoder d(1024);
  int calls = 0;
  Status s = d.feed("a\nb\nc\n", [&](std::string_view) {
    ++calls;
    return calls == 2 ? Status(Error("bad")) : Status();
  });
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(calls, 2);
}

TEST(WatchEvent, ParsesEveryEventType) {
  for (const char* t : {"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"}) {
    auto e = parse_watch_event(std::string("{\"type\":\"") + t + "\",\"object\":{\"metadata\":{}}}");
    ASSERT_TRUE(e.ok()) << t << ": " << e.error();
    EXPECT_EQ(to_string(e->type), t);
  }
}

TEST(WatchEvent, RejectsGarbageWithAReason) {
  for (const char* line : {"not json", "[]", "{\"type\":\"ADDED\"}", "{\"object\":{}}",
                           "{\"type\":\"SOMETHING\",\"object\":{}}", "{\"type\":\"ADDED\",\"object\":[]}", "{\"ty"}) {
    auto e = parse_watch_event(line);
    EXPECT_FALSE(e.ok()) << line;
    if (!e.ok()) {
      EXPECT_NE(e.error().find("malformed watch event"), std::string::npos);
    }
  }
}

TEST(ApiStatus, RecognisesBothExpiredForms) {
  auto e = parse_watch_event(
      R"({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",)"
      R"J("message":"too old resource version: 1000 (2500)","reason":"Expired","code":410}})J");
  ASSERT_TRUE(e.ok());
  ApiStatus s = parse_api_status(e->object);
  EXPECT_TRUE(is_expired(s));
  EXPECT_EQ(s.message, "too old resource version: 1000 (2500)");
  EXPECT_TRUE(is_expired(parse_api_status_text(R"({"kind":"Status","reason":"Gone","code":410})", 410)));
  EXPECT_TRUE(is_expired(parse_api_status_text("gone", 410)));
  EXPECT_FALSE(is_expired(parse_api_status_text(R"({"reason":"Unauthorized","code":401})", 401)));
}

TEST(Backoff, DoublesFromPointEightSecondsToThirtyWithoutJitter) {
  Backoff b;
  auto t = Backoff::Clock::time_point{} + std::chrono::hours(1);
  std::vector<long long> got;
  for (int i = 0; i < 8; ++i) got.push_back(b.next(t, 0.0).count());
  EXPECT_EQ(got, (std::vector<long long>{800, 1600, 3200, 6400, 12800, 25600, 30000, 30000}));
}

TEST(Backoff, AddsUpToOneHundredPercentJitter) {
  Backoff b;
  auto t = Backoff::Clock::time_point{} + std::chrono::hours(1);
  EXPECT_EQ(b.next(t, 0.5).count(), 1200);
  EXPECT_EQ(b.next(t, 0.999).count(), 3198);  // 1600 * 1.999
}

TEST(Backoff, StartsOverAfterTwoMinutesWithoutFailure) {
  Backoff b;
  auto t = Backoff::Clock::time_point{} + std::chrono::hours(1);
  b.next(t, 0);
  b.next(t, 0);
  EXPECT_EQ(b.next(t + std::chrono::seconds(119), 0).count(), 3200);
  EXPECT_EQ(b.next(t + std::chrono::seconds(119 + 120), 0).count(), 800);
}

}  // namespace
}  // namespace kproxy::k8s
