#include "kproxy/metrics/registry.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <thread>
#include <vector>

namespace kproxy::metrics {
namespace {

TEST(FormatFloat, MatchesGosShortestGFormat) {
  // Expected strings are what Go's strconv.FormatFloat(v, 'g', -1, 64) returns.
  struct Case {
    double value;
    const char* go;
  } cases[] = {
      {0, "0"},
      {1, "1"},
      {-2, "-2"},
      {0.001, "0.001"},
      {0.0001, "0.0001"},
      {0.00001, "1e-05"},
      {0.000015, "1.5e-05"},
      {16.384, "16.384"},
      {0.25, "0.25"},
      {300, "300"},
      {123456, "123456"},
      {999999, "999999"},
      {1000000, "1e+06"},
      {1234567, "1.234567e+06"},
      {1.7e9, "1.7e+09"},
      {1763000000.123456, "1.763000000123456e+09"},
      {0.1 + 0.2, "0.30000000000000004"},
      {18446744073709551615.0, "1.8446744073709552e+19"},
      {1e21, "1e+21"},
      {1e-300, "1e-300"},
      {std::numeric_limits<double>::infinity(), "+Inf"},
      {-std::numeric_limits<double>::infinity(), "-Inf"},
      {std::nan(""), "NaN"},
  };
  for (const Case& c : cases) EXPECT_EQ(format_float(c.value), c.go) << c.go;
}

TEST(Buckets, FollowClientGolangAndComponentBase) {
  EXPECT_EQ(exponential_buckets(0.001, 2, 3), (std::vector<double>{0.001, 0.002, 0.004}));
  EXPECT_EQ(linear_buckets(60, 5, 3), (std::vector<double>{60, 65, 70}));
  // component-base's MergeBuckets starts with a 0 bucket.
  EXPECT_EQ(merge_buckets({linear_buckets(0.25, 0.25, 2), linear_buckets(1, 1, 2)}),
            (std::vector<double>{0, 0.25, 0.5, 1, 2}));
}

TEST(Exposition, EmptyRegistryAndLabelledFamiliesWithoutSeriesRenderNothing) {
  Registry registry;
  EXPECT_EQ(registry.render(), "");
  registry.counter({"a_total", "A.", {"code"}});
  registry.histogram({"b_seconds", "B.", {"ip_family"}}, {1, 2});
  registry.add_collector({"c", "C.", {}}, MetricType::kGauge, [] { return std::vector<Sample>{}; });
  EXPECT_EQ(registry.render(), "");
}

TEST(Exposition, UnlabelledMetricsRenderZeroFromTheStart) {
  Registry registry;
  registry.counter({"x_total", "Cumulative x", {}});
  registry.gauge({"y", "Pending y", {}, StabilityLevel::kNone});
  EXPECT_EQ(registry.render(),
            "# HELP x_total [ALPHA] Cumulative x\n"
            "# TYPE x_total counter\n"
            "x_total 0\n"
            "# HELP y Pending y\n"
            "# TYPE y gauge\n"
            "y 0\n");
}

TEST(Exposition, FamiliesSortByNameAndSeriesByLabelValues) {
  Registry registry;
  auto& requests = registry.counter({"zz_requests_total", "Requests.", {"code", "method"}});
  auto& temperature = registry.gauge({"aa_temperature", "T.", {"room"}, StabilityLevel::kStable});
  requests.with({"503", "GET"}).inc();
  requests.with({"200", "POST"}).inc(2.5);
  requests.with({"200", "GET"}).inc();
  requests.with({"200", "GET"}).inc(-5);  // ignored: counters only go up
  temperature.with({"kitchen"}).set(-3);
  temperature.with({"hall"}).set(1e6);
  EXPECT_EQ(registry.render(),
            "# HELP aa_temperature [STABLE] T.\n"
            "# TYPE aa_temperature gauge\n"
            "aa_temperature{room=\"hall\"} 1e+06\n"
            "aa_temperature{room=\"kitchen\"} -3\n"
            "# HELP zz_requests_total [ALPHA] Requests.\n"
            "# TYPE zz_requests_total counter\n"
            "zz_requests_total{code=\"200\",method=\"GET\"} 1\n"
            "zz_requests_total{code=\"200\",method=\"POST\"} 2.5\n"
            "zz_requests_total{code=\"503\",method=\"GET\"} 1\n");
}

TEST(Exposition, EscapesHelpAndLabelValues) {
  Registry registry;
  registry.gauge({"g", "Back\\slash and\nnewline and \"quotes\"", {"v"}, StabilityLevel::kNone})
      .with({"a\\b\"c\nd é"})
      .set(1);
  // HELP escapes backslash and newline only; label values also escape the double quote.
  EXPECT_EQ(registry.render(),
            "# HELP g Back\\\\slash and\\nnewline and \"quotes\"\n"
            "# TYPE g gauge\n"
            "g{v=\"a\\\\b\\\"c\\nd é\"} 1\n");
}

TEST(Exposition, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  Registry registry;
  auto& h = registry.histogram({"d_seconds", "D.", {"ip_family"}}, {0.25, 0.5, 2});
  auto& v4 = h.with({"IPv4"});
  v4.observe(0.25);  // le is inclusive
  v4.observe(0.375);
  v4.observe(0.375);
  v4.observe(100);
  EXPECT_EQ(registry.render(),
            "# HELP d_seconds [ALPHA] D.\n"
            "# TYPE d_seconds histogram\n"
            "d_seconds_bucket{ip_family=\"IPv4\",le=\"0.25\"} 1\n"
            "d_seconds_bucket{ip_family=\"IPv4\",le=\"0.5\"} 3\n"
            "d_seconds_bucket{ip_family=\"IPv4\",le=\"2\"} 3\n"
            "d_seconds_bucket{ip_family=\"IPv4\",le=\"+Inf\"} 4\n"
            "d_seconds_sum{ip_family=\"IPv4\"} 101\n"
            "d_seconds_count{ip_family=\"IPv4\"} 4\n");
}

TEST(Exposition, UnlabelledHistogramAndExplicitInfBound) {
  Registry registry;
  registry.histogram({"e", "E.", {}}, {1, std::numeric_limits<double>::infinity()});
  EXPECT_EQ(registry.render(),
            "# HELP e [ALPHA] E.\n"
            "# TYPE e histogram\n"
            "e_bucket{le=\"1\"} 0\n"
            "e_bucket{le=\"+Inf\"} 0\n"
            "e_sum 0\n"
            "e_count 0\n");
}

TEST(Exposition, CustomCollectorsRunAtScrapeTime) {
  Registry registry;
  double packets = 7;
  registry.add_collector({"p_total", "P.", {"dir"}}, MetricType::kCounter, [&packets] {
    return std::vector<Sample>{{{"out"}, packets}, {{"in"}, packets * 2}, {{"bad", "extra"}, 1}};
  });
  packets = 8;
  EXPECT_EQ(registry.render(),
            "# HELP p_total [ALPHA] P.\n"
            "# TYPE p_total counter\n"
            "p_total{dir=\"in\"} 16\n"
            "p_total{dir=\"out\"} 8\n");
}

TEST(Registry, RejectsBadDefinitions) {
  Registry registry;
  registry.counter({"ok_total", "", {}});
  EXPECT_DEATH(registry.counter({"ok_total", "", {}}), "registered twice");
  EXPECT_DEATH(registry.counter({"bad-name", "", {}}), "invalid metric name");
  EXPECT_DEATH(registry.counter({"c", "", {"b", "a"}}), "strictly ascending");
  EXPECT_DEATH(registry.counter({"c", "", {"__x"}}), "invalid label name");
  EXPECT_DEATH(registry.histogram({"h", "", {"le"}}, {1}), "reserved");
  EXPECT_DEATH(registry.histogram({"h", "", {}}, {2, 1}), "strictly ascending");
  auto& family = registry.counter({"two_total", "", {"a", "b"}});
  EXPECT_DEATH(family.with({"x"}), "1 label values for 2 labels");
}

TEST(Registry, ConcurrentUpdatesAndScrapesLoseNothing) {
  Registry registry;
  auto& counter = registry.counter({"n_total", "N.", {"worker"}});
  auto& histogram = registry.histogram({"h_seconds", "H.", {}}, {0.5});
  auto& gauge = registry.gauge({"g", "G.", {}});
  constexpr int kThreads = 4;
  constexpr int kIterations = 5000;
  std::atomic<bool> done{false};
  std::jthread scraper([&] {
    while (!done) EXPECT_FALSE(registry.render().empty());
  });
  {
    std::vector<std::jthread> workers;
    for (int t = 0; t < kThreads; ++t) {
      workers.emplace_back([&, t] {
        for (int i = 0; i < kIterations; ++i) {
          counter.with({std::to_string(i % 3)}).inc();
          histogram.with({}).observe(t % 2 == 0 ? 0.25 : 1.0);
          gauge.with({}).add(1);
        }
      });
    }
  }
  done = true;
  double total = 0;
  for (const char* w : {"0", "1", "2"}) total += counter.with({w}).value();
  EXPECT_EQ(total, kThreads * kIterations);
  const Histogram::Snapshot s = histogram.with({}).snapshot();
  EXPECT_EQ(s.count, static_cast<std::uint64_t>(kThreads * kIterations));
  EXPECT_EQ(s.cumulative[0], static_cast<std::uint64_t>(kThreads / 2 * kIterations));
  EXPECT_DOUBLE_EQ(s.sum, kIterations * (0.25 * 2 + 1.0 * 2));
  EXPECT_EQ(gauge.with({}).value(), kThreads * kIterations);
}

}  // namespace
}  // namespace kproxy::metrics
