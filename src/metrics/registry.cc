#include "kproxy/metrics/registry.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <system_error>
#include <type_traits>
#include <utility>

namespace kproxy::metrics {
namespace {

[[noreturn]] void bug(const std::string& what) {
  std::fprintf(stderr, "kproxy metrics: %s\n", what.c_str());
  std::abort();
}

// Prometheus' data model: metric names [a-zA-Z_:][a-zA-Z0-9_:]*, label names
// [a-zA-Z_][a-zA-Z0-9_]*, and label names starting with "__" are reserved.
bool valid_name(std::string_view name, bool colon_allowed) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon_allowed && c == ':') ||
                    (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

void check_options(const FamilyOptions& options, MetricType type) {
  if (!valid_name(options.name, true)) bug("invalid metric name \"" + options.name + "\"");
  for (std::size_t i = 0; i < options.label_names.size(); ++i) {
    const std::string& label = options.label_names[i];
    if (!valid_name(label, false) || label.starts_with("__")) {
      bug(options.name + ": invalid label name \"" + label + "\"");
    }
    if (type == MetricType::kHistogram && label == "le") bug(options.name + ": label \"le\" is reserved");
    if (i > 0 && !(options.label_names[i - 1] < label)) {
      bug(options.name + ": label names must be strictly ascending");
    }
  }
}

std::string_view stability_prefix(StabilityLevel level) {
  switch (level) {
    case StabilityLevel::kNone:
      return "";
    case StabilityLevel::kAlpha:
      return "[ALPHA] ";
    case StabilityLevel::kBeta:
      return "[BETA] ";
    case StabilityLevel::kStable:
      return "[STABLE] ";
  }
  return "";
}

std::string_view type_name(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// Text format 0.0.4: in HELP, backslash and newline are escaped; in label values, also '"'.
void append_escaped(std::string& out, std::string_view text, bool quote) {
  for (const char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

void append_labels(std::string& out, const std::vector<std::string>& names, const std::vector<std::string>& values,
                   std::string_view extra_name = {}, std::string_view extra_value = {}) {
  if (names.empty() && extra_name.empty()) return;
  out += '{';
  bool first = true;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (!first) out += ',';
    first = false;
    out += names[i];
    out += "=\"";
    append_escaped(out, values[i], true);
    out += '"';
  }
  if (!extra_name.empty()) {
    if (!first) out += ',';
    out += extra_name;
    out += "=\"";
    out += extra_value;
    out += '"';
  }
  out += '}';
}

void append_line(std::string& out, std::string_view name, std::string_view suffix,
                 const std::vector<std::string>& names, const std::vector<std::string>& values, std::string_view value,
                 std::string_view extra_name = {}, std::string_view extra_value = {}) {
  out += name;
  out += suffix;
  append_labels(out, names, values, extra_name, extra_value);
  out += ' ';
  out += value;
  out += '\n';
}

}  // namespace

std::string format_float(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[64];
  // Shortest round-trip digits in exponent form first, to read the decimal exponent.
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::scientific);
  if (ec != std::errc()) return "NaN";  // cannot happen with 64 bytes
  std::string_view sci(buf, static_cast<std::size_t>(end - buf));
  const std::size_t e = sci.find('e');
  const int exponent = std::atoi(std::string(sci.substr(e + 1)).c_str());
  // strconv's 'g' with the shortest precision switches to %e when exp < -4 || exp >= 6
  // (Go's eprec is 6 for the shortest form); the exponent has at least two digits in both.
  if (exponent < -4 || exponent >= 6) return std::string(sci);
  auto [fend, fec] = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::fixed);
  if (fec != std::errc()) return std::string(sci);
  return std::string(buf, fend);
}

std::vector<double> exponential_buckets(double start, double factor, int count) {
  std::vector<double> out;
  for (int i = 0; i < count; ++i, start *= factor) out.push_back(start);
  return out;
}

std::vector<double> linear_buckets(double start, double width, int count) {
  std::vector<double> out;
  for (int i = 0; i < count; ++i, start += width) out.push_back(start);
  return out;
}

std::vector<double> merge_buckets(std::initializer_list<std::vector<double>> parts) {
  // component-base's MergeBuckets starts from make([]float64, 1): a leading 0 bucket.
  std::vector<double> out(1, 0.0);
  for (const auto& part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}

void Counter::inc(double delta) {
  if (!(delta >= 0)) return;
  value_.fetch_add(delta, std::memory_order_relaxed);
}

Histogram::Histogram(const std::vector<double>& bounds) : bounds_(bounds), counts_(bounds.size() + 1, 0) {}

void Histogram::observe(double value) {
  // The first bucket whose upper bound is >= value (client_golang: sort.SearchFloat64s).
  const std::size_t index =
      static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
  std::lock_guard lock(mu_);
  ++counts_[index];
  sum_ += value;
  ++count_;
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  std::lock_guard lock(mu_);
  s.cumulative.reserve(counts_.size());
  std::uint64_t running = 0;
  for (const std::uint64_t c : counts_) s.cumulative.push_back(running += c);
  s.sum = sum_;
  s.count = count_;
  return s;
}

FamilyBase::FamilyBase(FamilyOptions options, MetricType type) : options_(std::move(options)), type_(type) {
  check_options(options_, type_);
}

FamilySnapshot FamilyBase::empty_snapshot() const {
  FamilySnapshot s;
  s.name = options_.name;
  s.help = std::string(stability_prefix(options_.stability)) + options_.help;
  s.type = type_;
  s.label_names = options_.label_names;
  return s;
}

std::vector<std::string> FamilyBase::key(std::initializer_list<std::string_view> values) const {
  if (values.size() != options_.label_names.size()) {
    bug(options_.name + ": " + std::to_string(values.size()) + " label values for " +
        std::to_string(options_.label_names.size()) + " labels");
  }
  return std::vector<std::string>(values.begin(), values.end());
}

template <typename Metric>
Family<Metric>::Family(FamilyOptions options, MetricType type, std::vector<double> bounds)
    : FamilyBase(std::move(options), type), bounds_(std::move(bounds)) {
  if (this->options().label_names.empty()) with({});
}

template <typename Metric>
Metric& Family<Metric>::with(std::initializer_list<std::string_view> label_values) {
  std::vector<std::string> k = key(label_values);
  std::lock_guard lock(mu_);
  auto it = series_.find(k);
  if (it == series_.end()) {
    std::unique_ptr<Metric> metric;
    if constexpr (std::is_same_v<Metric, Histogram>) {
      metric = std::make_unique<Histogram>(bounds_);
    } else {
      metric = std::make_unique<Metric>();
    }
    it = series_.emplace(std::move(k), std::move(metric)).first;
  }
  return *it->second;
}

template <typename Metric>
FamilySnapshot Family<Metric>::collect() const {
  FamilySnapshot s = empty_snapshot();
  s.bounds = bounds_;
  std::lock_guard lock(mu_);
  for (const auto& [labels, metric] : series_) {  // std::map: already in label-value order
    if constexpr (std::is_same_v<Metric, Histogram>) {
      s.histograms.push_back(HistogramSample{labels, metric->snapshot()});
    } else {
      s.samples.push_back(Sample{labels, metric->value()});
    }
  }
  return s;
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

namespace {

class CollectorFamily : public FamilyBase {
 public:
  CollectorFamily(FamilyOptions options, MetricType type, CollectFunction collect)
      : FamilyBase(std::move(options), type), collect_(std::move(collect)) {}

  FamilySnapshot collect() const override {
    FamilySnapshot s = empty_snapshot();
    s.samples = collect_();
    const std::size_t labels = options().label_names.size();
    std::erase_if(s.samples, [labels](const Sample& sample) { return sample.label_values.size() != labels; });
    std::sort(s.samples.begin(), s.samples.end(),
              [](const Sample& a, const Sample& b) { return a.label_values < b.label_values; });
    return s;
  }

 private:
  CollectFunction collect_;
};

}  // namespace

FamilyBase& Registry::add(std::unique_ptr<FamilyBase> family) {
  std::lock_guard lock(mu_);
  const std::string& name = family->options().name;
  if (families_.contains(name)) bug("metric \"" + name + "\" registered twice");
  auto [it, inserted] = families_.emplace(name, std::move(family));
  return *it->second;
}

CounterFamily& Registry::counter(FamilyOptions options) {
  return static_cast<CounterFamily&>(add(std::make_unique<CounterFamily>(std::move(options), MetricType::kCounter)));
}

GaugeFamily& Registry::gauge(FamilyOptions options) {
  return static_cast<GaugeFamily&>(add(std::make_unique<GaugeFamily>(std::move(options), MetricType::kGauge)));
}

HistogramFamily& Registry::histogram(FamilyOptions options, std::vector<double> bounds) {
  if (!bounds.empty() && std::isinf(bounds.back()) && bounds.back() > 0) bounds.pop_back();
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    if (std::isnan(bounds[i]) || (i > 0 && !(bounds[i - 1] < bounds[i]))) {
      bug(options.name + ": histogram bounds must be strictly ascending");
    }
  }
  return static_cast<HistogramFamily&>(
      add(std::make_unique<HistogramFamily>(std::move(options), MetricType::kHistogram, std::move(bounds))));
}

void Registry::add_collector(FamilyOptions options, MetricType type, CollectFunction collect) {
  if (type == MetricType::kHistogram) bug(options.name + ": custom collectors yield counters or gauges");
  add(std::make_unique<CollectorFamily>(std::move(options), type, std::move(collect)));
}

bool Registry::contains(std::string_view name) const {
  std::lock_guard lock(mu_);
  return families_.find(name) != families_.end();
}

std::vector<FamilySnapshot> Registry::gather() const {
  std::vector<const FamilyBase*> families;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, family] : families_) families.push_back(family.get());
  }
  // Families are never removed, so they can be read (and custom collectors run) unlocked.
  std::vector<FamilySnapshot> out;
  out.reserve(families.size());
  for (const FamilyBase* family : families) out.push_back(family->collect());
  return out;
}

std::string render_text(const std::vector<FamilySnapshot>& families) {
  std::string out;
  for (const FamilySnapshot& f : families) {
    if (f.samples.empty() && f.histograms.empty()) continue;
    out += "# HELP ";
    out += f.name;
    out += ' ';
    append_escaped(out, f.help, false);
    out += "\n# TYPE ";
    out += f.name;
    out += ' ';
    out += type_name(f.type);
    out += '\n';
    for (const Sample& s : f.samples)
      append_line(out, f.name, "", f.label_names, s.label_values, format_float(s.value));
    for (const HistogramSample& h : f.histograms) {
      // Counts are integers (client_golang writes them with writeUint); `le` comes last.
      for (std::size_t i = 0; i < f.bounds.size(); ++i) {
        append_line(out, f.name, "_bucket", f.label_names, h.label_values, std::to_string(h.data.cumulative[i]), "le",
                    format_float(f.bounds[i]));
      }
      append_line(out, f.name, "_bucket", f.label_names, h.label_values, std::to_string(h.data.count), "le", "+Inf");
      append_line(out, f.name, "_sum", f.label_names, h.label_values, format_float(h.data.sum));
      append_line(out, f.name, "_count", f.label_names, h.label_values, std::to_string(h.data.count));
    }
  }
  return out;
}

}  // namespace kproxy::metrics
