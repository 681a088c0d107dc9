#include "kproxy/health/go_time.h"

#include <gtest/gtest.h>

#include "test_support.h"

namespace kproxy::health {
namespace {

using namespace std::chrono;
using testing::example_time;

TEST(GoTime, JsonTimeIsRfc3339NanoInUtc) {
  EXPECT_EQ(go_json_time(example_time()), "2026-11-25T12:00:00.123456789Z");
}

TEST(GoTime, JsonTimeDropsTrailingZerosAndAWholeZeroFraction) {
  const Time whole(sys_days(year(2026) / 1 / 2) + hours(3) + minutes(4) + seconds(5));
  EXPECT_EQ(go_json_time(whole), "2026-01-02T03:04:05Z");
  EXPECT_EQ(go_json_time(whole + milliseconds(120)), "2026-01-02T03:04:05.12Z");
  EXPECT_EQ(go_json_time(whole + nanoseconds(1)), "2026-01-02T03:04:05.000000001Z");
}

TEST(GoTime, ZeroTimeIsYearOne) {
  EXPECT_EQ(go_json_time(std::nullopt), "0001-01-01T00:00:00Z");
  EXPECT_EQ(go_time_string(std::nullopt), "0001-01-01 00:00:00 +0000 UTC");
}

TEST(GoTime, TimeStringIsGosDefaultFormatWithoutMonotonicReading) {
  EXPECT_EQ(go_time_string(example_time()), "2026-11-25 12:00:00.123456789 +0000 UTC");
  EXPECT_EQ(go_time_string(Time(sys_days(year(1970) / 1 / 1))), "1970-01-01 00:00:00 +0000 UTC");
  EXPECT_EQ(go_time_string(Time(sys_days(year(1969) / 12 / 31) + hours(23) + nanoseconds(500'000'000))),
            "1969-12-31 23:00:00.5 +0000 UTC");
}

TEST(GoTime, QuoteEscapesLikeStrconvQuote) {
  EXPECT_EQ(go_quote("web"), "\"web\"");
  EXPECT_EQ(go_quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(go_quote("\t\n\x01\x7f"), "\"\\t\\n\\x01\\x7f\"");
}

}  // namespace
}  // namespace kproxy::health
