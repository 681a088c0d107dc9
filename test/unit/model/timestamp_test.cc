#include "kproxy/model/timestamp.h"

#include <gtest/gtest.h>

namespace kproxy::model {
namespace {

using std::chrono::microseconds;
using std::chrono::seconds;
using std::chrono::sys_days;

TEST(Timestamp, ReadsTheFormsTheApiWrites) {
  const Timestamp expected = Timestamp{sys_days{std::chrono::year{2024} / 5 / 14}} + std::chrono::hours{9} +
                             std::chrono::minutes{40} + seconds{2};
  EXPECT_EQ(*parse_rfc3339("2024-05-14T09:40:02Z"), expected);
  EXPECT_EQ(*parse_rfc3339("2024-05-14T11:40:02+02:00"), expected);
  EXPECT_EQ(*parse_rfc3339("2024-05-14T04:10:02-05:30"), expected);
  EXPECT_EQ(*parse_rfc3339("2024-05-14T09:40:02.5Z"), expected + microseconds{500000});
  // RFC3339Nano: digits past the microsecond are dropped, not rounded.
  EXPECT_EQ(*parse_rfc3339("2024-05-14T09:40:02.123456789Z"), expected + microseconds{123456});
}

TEST(Timestamp, CoversEveryYearRfc3339CanWrite) {
  EXPECT_EQ(format_rfc3339(*parse_rfc3339("0001-01-01T00:00:00Z")), "0001-01-01T00:00:00Z");
  EXPECT_EQ(format_rfc3339(*parse_rfc3339("9999-12-31T23:59:59.999999Z")), "9999-12-31T23:59:59.999999Z");
  // The Kubernetes fuzzed fixtures use years such as 2404, past the 64-bit nanosecond range.
  EXPECT_EQ(format_rfc3339(*parse_rfc3339("2404-01-10T11:35:42Z")), "2404-01-10T11:35:42Z");
}

TEST(Timestamp, WritesBackWhatItReadInUtc) {
  EXPECT_EQ(format_rfc3339(*parse_rfc3339("2024-09-01T11:58:20Z")), "2024-09-01T11:58:20Z");
  EXPECT_EQ(format_rfc3339(*parse_rfc3339("2024-09-01T11:58:20.120Z")), "2024-09-01T11:58:20.12Z");
  EXPECT_EQ(format_rfc3339(*parse_rfc3339("2024-01-01T00:30:00+01:00")), "2023-12-31T23:30:00Z");
}

class MalformedTimestamp : public ::testing::TestWithParam<const char*> {};

TEST_P(MalformedTimestamp, IsRefused) { EXPECT_FALSE(parse_rfc3339(GetParam()).ok()) << GetParam(); }

INSTANTIATE_TEST_SUITE_P(Rfc3339, MalformedTimestamp,
                         ::testing::Values("", "yesterday", "2024-05-14", "2024-05-14 09:40:02Z",
                                           "2024-05-14t09:40:02z", "2024-05-14T09:40:02", "2024-13-01T00:00:00Z",
                                           "2024-02-30T00:00:00Z", "2023-02-29T00:00:00Z", "2024-05-14T24:00:00Z",
                                           "2024-05-14T09:60:00Z", "2024-05-14T09:40:60Z", "2024-05-14T09:40:02.Z",
                                           "2024-05-14T09:40:02.1234567890Z", "2024-05-14T09:40:02+2:00",
                                           "2024-05-14T09:40:02+02:00x", "2024-05-14T09:40:02Zjunk",
                                           "+2024-05-14T09:40:02Z", "2024-05-14T09:40:02+24:00"));

TEST(Timestamp, AcceptsTheLeapDay) { EXPECT_TRUE(parse_rfc3339("2024-02-29T00:00:00Z").ok()); }

}  // namespace
}  // namespace kproxy::model
