#include "kproxy/metrics/process_metrics.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string_view>
#include <vector>

namespace kproxy::metrics {
namespace {

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// /proc/<pid>/stat fields after the command, which is in parentheses and may contain spaces
// and ')': everything past the last ')' splits cleanly. Index 0 is field 3 (state).
std::optional<std::vector<std::string>> stat_fields(const std::string& proc_self) {
  const std::optional<std::string> stat = read_file(proc_self + "/stat");
  if (!stat) return std::nullopt;
  const std::size_t close = stat->rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream in(stat->substr(close + 1));
  std::vector<std::string> fields;
  for (std::string f; in >> f;) fields.push_back(f);
  if (fields.size() < 22) return std::nullopt;
  return fields;
}

double field(const std::vector<std::string>& fields, int proc_field_number) {
  return std::stod(fields[static_cast<std::size_t>(proc_field_number - 3)]);
}

// The soft limit from /proc/<pid>/limits ("Max open files  1024  4096  files");
// "unlimited" is reported as Go does, the largest uint64 as a float.
std::optional<double> soft_limit(const std::string& proc_self, std::string_view name) {
  const std::optional<std::string> limits = read_file(proc_self + "/limits");
  if (!limits) return std::nullopt;
  std::istringstream in(*limits);
  for (std::string line; std::getline(in, line);) {
    if (!line.starts_with(name)) continue;
    std::istringstream values(line.substr(name.size()));
    std::string soft;
    values >> soft;
    if (soft == "unlimited") return 18446744073709551615.0;
    try {
      return std::stod(soft);
    } catch (...) {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

std::optional<double> boot_time_seconds(const std::string& proc_self) {
  // /proc/stat is system-wide; proc_self's parent is /proc (or the fixture's root).
  const std::optional<std::string> stat = read_file(std::filesystem::path(proc_self).parent_path().string() + "/stat");
  if (!stat) return std::nullopt;
  std::istringstream in(*stat);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("btime ")) return std::stod(line.substr(6));
  }
  return std::nullopt;
}

FamilyOptions raw(std::string name, std::string help) {
  return FamilyOptions{std::move(name), std::move(help), {}, StabilityLevel::kNone};
}

// A one-sample collector from a function that may fail.
CollectFunction single(std::function<std::optional<double>()> read) {
  return [read = std::move(read)]() -> std::vector<Sample> {
    std::optional<double> value;
    try {
      value = read();
    } catch (...) {  // std::stod on a malformed /proc file
      value.reset();
    }
    if (!value) return {};
    return {Sample{{}, *value}};
  };
}

}  // namespace

void register_process_metrics(Registry& registry, std::string proc_self) {
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double page_size = static_cast<double>(::sysconf(_SC_PAGESIZE));
  registry.add_collector(raw("process_cpu_seconds_total", "Total user and system CPU time spent in seconds."),
                         MetricType::kCounter, single([=]() -> std::optional<double> {
                           const auto f = stat_fields(proc_self);
                           if (!f) return std::nullopt;
                           return (field(*f, 14) + field(*f, 15)) / ticks;  // utime + stime
                         }));
  registry.add_collector(raw("process_open_fds", "Number of open file descriptors."), MetricType::kGauge,
                         single([=]() -> std::optional<double> {
                           std::error_code ec;
                           std::filesystem::directory_iterator it(proc_self + "/fd", ec);
                           if (ec) return std::nullopt;
                           double n = 0;
                           for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
                             if (ec) return std::nullopt;
                             ++n;
                           }
                           return n;
                         }));
  registry.add_collector(raw("process_max_fds", "Maximum number of open file descriptors."), MetricType::kGauge,
                         single([=] { return soft_limit(proc_self, "Max open files"); }));
  registry.add_collector(raw("process_virtual_memory_bytes", "Virtual memory size in bytes."), MetricType::kGauge,
                         single([=]() -> std::optional<double> {
                           const auto f = stat_fields(proc_self);
                           if (!f) return std::nullopt;
                           return field(*f, 23);  // vsize, bytes
                         }));
  registry.add_collector(
      raw("process_virtual_memory_max_bytes", "Maximum amount of virtual memory available in bytes."),
      MetricType::kGauge, single([=] { return soft_limit(proc_self, "Max address space"); }));
  registry.add_collector(raw("process_resident_memory_bytes", "Resident memory size in bytes."), MetricType::kGauge,
                         single([=]() -> std::optional<double> {
                           const auto f = stat_fields(proc_self);
                           if (!f) return std::nullopt;
                           return field(*f, 24) * page_size;  // rss, pages
                         }));
  registry.add_collector(raw("process_start_time_seconds", "Start time of the process since unix epoch in seconds."),
                         MetricType::kGauge, single([=]() -> std::optional<double> {
                           const auto f = stat_fields(proc_self);
                           const auto boot = boot_time_seconds(proc_self);
                           if (!f || !boot) return std::nullopt;
                           return *boot + field(*f, 22) / ticks;  // starttime, ticks after boot
                         }));
}

}  // namespace kproxy::metrics
