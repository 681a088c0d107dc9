// A small Prometheus metrics registry: counter, gauge and histogram families with fixed label
// names, custom collectors read at scrape time, and the text exposition format 0.0.4.
//
// Only what kproxy needs. The output matches what kube-proxy's Go client (client_golang via
// k8s.io/component-base) writes, so dashboards and alerts built on kube-proxy keep working:
// families sorted by name, series sorted by label values, label pairs in name order with `le`
// last, floats as Go's strconv.FormatFloat(v, 'g', -1, 64), a family with no series omitted,
// and "[ALPHA] " in front of the help text of component-base metrics.
//
// Thread safety: every method may be called from any thread. Updating a series is lock-free
// (counters, gauges) or takes that series' own mutex (histograms); finding a labelled series
// takes its family's mutex, so hot paths may keep the returned reference, which stays valid for
// the registry's lifetime.
//
// Names and label names are constants of the code. A bad one (invalid characters, label names
// not strictly sorted, a name registered twice, a wrong number of label values) is a bug: it is
// reported on stderr and the process aborts, as client_golang's MustRegister panics.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace kproxy::metrics {

enum class MetricType { kCounter, kGauge, kHistogram };

// component-base's stability levels. Anything but kNone puts "[LEVEL] " before the help text,
// as component-base does; kNone is for metrics client_golang registers raw (process_*).
enum class StabilityLevel { kNone, kAlpha, kBeta, kStable };

struct FamilyOptions {
  std::string name;
  std::string help;
  // Strictly ascending: the exposition writes label pairs in name order (client_golang sorts
  // them), so declaring them sorted keeps one order everywhere. "le" is reserved.
  std::vector<std::string> label_names;
  StabilityLevel stability = StabilityLevel::kAlpha;
};

// Go's strconv.FormatFloat(v, 'g', -1, 64), which the Go client writes values and `le` with:
// the shortest digits that read back exactly, in exponent form when the decimal exponent is
// < -4 or >= 6 ("1e+06", "1.5e-05") and plain otherwise ("0.001", "123456", "16.384"); and
// "+Inf", "-Inf", "NaN".
std::string format_float(double value);

// prometheus.ExponentialBuckets / LinearBuckets, and component-base's MergeBuckets (which
// starts the result with a 0 bucket).
std::vector<double> exponential_buckets(double start, double factor, int count);
std::vector<double> linear_buckets(double start, double width, int count);
std::vector<double> merge_buckets(std::initializer_list<std::vector<double>> parts);

class Counter {
 public:
  void inc(double delta = 1);  // negative deltas are ignored: counters only go up
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Gauge {
 public:
  void set(double value) { value_.store(value, std::memory_order_relaxed); }
  void add(double delta) { value_.fetch_add(delta, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  struct Snapshot {
    std::vector<std::uint64_t> cumulative;  // one per bound, then +Inf (== count)
    double sum = 0;
    std::uint64_t count = 0;
  };

  explicit Histogram(const std::vector<double>& bounds);
  void observe(double value);
  Snapshot snapshot() const;  // consistent: count, sum and buckets from the same instant

 private:
  const std::vector<double> bounds_;
  mutable std::mutex mu_;
  std::vector<std::uint64_t> counts_;  // per bucket, not cumulative; last is +Inf
  double sum_ = 0;
  std::uint64_t count_ = 0;
};

// What a scrape reads: one family's metadata and series, already sorted.
struct Sample {
  std::vector<std::string> label_values;  // in label_names order
  double value = 0;
};
struct HistogramSample {
  std::vector<std::string> label_values;
  Histogram::Snapshot data;
};
struct FamilySnapshot {
  std::string name;
  std::string help;  // with the stability prefix
  MetricType type = MetricType::kCounter;
  std::vector<std::string> label_names;
  std::vector<double> bounds;  // histograms
  std::vector<Sample> samples;
  std::vector<HistogramSample> histograms;
};

// The text exposition format 0.0.4 of `families`, in the given order; families without series
// are left out.
std::string render_text(const std::vector<FamilySnapshot>& families);

class FamilyBase {
 public:
  explicit FamilyBase(FamilyOptions options, MetricType type);
  virtual ~FamilyBase() = default;
  FamilyBase(const FamilyBase&) = delete;
  FamilyBase& operator=(const FamilyBase&) = delete;

  const FamilyOptions& options() const { return options_; }
  MetricType type() const { return type_; }
  virtual FamilySnapshot collect() const = 0;

 protected:
  FamilySnapshot empty_snapshot() const;
  // Aborts unless `values` has one entry per label name.
  std::vector<std::string> key(std::initializer_list<std::string_view> values) const;

 private:
  FamilyOptions options_;
  MetricType type_;
};

// A family of series of one metric type, one per distinct label values. A family without
// labels has its one series from the start (it renders as 0), as client_golang's plain metrics.
template <typename Metric>
class Family : public FamilyBase {
 public:
  Family(FamilyOptions options, MetricType type, std::vector<double> bounds = {});

  // The series for these label values (in label_names order), created on first use.
  Metric& with(std::initializer_list<std::string_view> label_values);
  FamilySnapshot collect() const override;

 private:
  const std::vector<double> bounds_;
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<Metric>> series_;
};

extern template class Family<Counter>;
extern template class Family<Gauge>;
extern template class Family<Histogram>;

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

// Values read at scrape time (client_golang's custom Collector with const metrics): the callback
// runs on a server thread, once per scrape, and returns the current series. Returning none
// leaves the family out of that scrape.
using CollectFunction = std::function<std::vector<Sample>()>;

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  CounterFamily& counter(FamilyOptions options);
  GaugeFamily& gauge(FamilyOptions options);
  // `bounds`: strictly ascending upper bounds; +Inf is implied (and dropped if given).
  HistogramFamily& histogram(FamilyOptions options, std::vector<double> bounds);
  // `type` is kCounter or kGauge.
  void add_collector(FamilyOptions options, MetricType type, CollectFunction collect);

  bool contains(std::string_view name) const;
  std::vector<FamilySnapshot> gather() const;  // sorted by name
  std::string render() const { return render_text(gather()); }

 private:
  FamilyBase& add(std::unique_ptr<FamilyBase> family);

  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<FamilyBase>, std::less<>> families_;
};

}  // namespace kproxy::metrics
