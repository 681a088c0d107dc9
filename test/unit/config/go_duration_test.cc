#include "kproxy/config/go_duration.h"

#include <chrono>

#include <gtest/gtest.h>

namespace kproxy::config {
namespace {

using namespace std::chrono_literals;

TEST(GoDuration, ParsesWhatGoParses) {
  const struct {
    const char* text;
    Duration want;
  } cases[] = {
      {"0", 0ns},           {"0s", 0ns},         {"30s", 30s},         {"1m0s", 1min},       {"1h30m", 90min},
      {"500ms", 500ms},     {"2h45m0.5s", 2h + 45min + 500ms},         {"1.5s", 1500ms},     {".5s", 500ms},
      {"1.s", 1s},          {"+5s", 5s},          {"-5s", -5s},         {"-0", 0ns},          {"100ns", 100ns},
      {"2us", 2us},         {"2\u00b5s", 2us},   {"2\u03bcs", 2us},    {"24h0m0s", 24h},     {"15m", 15min},
      {"1h1m1s1ms1us1ns", 1h + 1min + 1s + 1ms + 1us + 1ns},            {"0.000000001s", 1ns},
      {"9223372036854775807ns", Duration(INT64_MAX)}, {"-9223372036854775808ns", Duration(INT64_MIN)},
  };
  for (const auto& c : cases) {
    auto d = parse_go_duration(c.text);
    ASSERT_TRUE(d.ok()) << c.text << ": " << d.error();
    EXPECT_EQ(*d, c.want) << c.text;
  }
}

TEST(GoDuration, RefusesWhatGoRefusesWithGosMessages) {
  const struct {
    const char* text;
    const char* message;
  } cases[] = {
      {"", "time: invalid duration \"\""},
      {"abc", "time: invalid duration \"abc\""},
      {"30", "time: missing unit in duration \"30\""},
      {"1x", "time: unknown unit \"x\" in duration \"1x\""},
      {"1d", "time: unknown unit \"d\" in duration \"1d\""},
      {".s", "time: invalid duration \".s\""},
      {"-", "time: invalid duration \"-\""},
      {"1s ", "time: unknown unit \"s \" in duration \"1s \""},
      {"9223372036854775808ns", "time: invalid duration \"9223372036854775808ns\""},
      {"3000000h", "time: invalid duration \"3000000h\""},
  };
  for (const auto& c : cases) {
    auto d = parse_go_duration(c.text);
    ASSERT_FALSE(d.ok()) << c.text;
    EXPECT_EQ(d.error(), c.message);
  }
}

TEST(GoDuration, FormatsAsGosDurationString) {
  const struct {
    Duration d;
    const char* want;
  } cases[] = {
      {0ns, "0s"},          {1ns, "1ns"},          {1100ns, "1.1\u00b5s"}, {2200us, "2.2ms"},   {500ms, "500ms"},
      {1s, "1s"},           {1500ms, "1.5s"},      {30s, "30s"},           {1min, "1m0s"},      {90s, "1m30s"},
      {1h, "1h0m0s"},       {24h, "24h0m0s"},      {15min, "15m0s"},       {-5s, "-5s"},
      {2h + 45min + 500ms, "2h45m0.5s"},           {Duration(INT64_MIN), "-2562047h47m16.854775808s"},
  };
  for (const auto& c : cases) EXPECT_EQ(format_go_duration(c.d), c.want);
}

TEST(GoDuration, FormattedValuesParseBack) {
  for (Duration d : {Duration(1), Duration(999), Duration(123456789), Duration(3723004005006), Duration(-42000)}) {
    auto back = parse_go_duration(format_go_duration(d));
    ASSERT_TRUE(back.ok()) << format_go_duration(d);
    EXPECT_EQ(*back, d);
  }
}

}  // namespace
}  // namespace kproxy::config
