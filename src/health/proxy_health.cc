#include "kproxy/health/proxy_health.h"

#include <algorithm>
#include <utility>

namespace kproxy::health {

Time system_now() { return std::chrono::time_point_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now()); }

ProxyHealth::ProxyHealth(std::chrono::nanoseconds health_timeout, Clock clock)
    : health_timeout_(health_timeout), clock_(std::move(clock)) {}

void ProxyHealth::queued_update(IpFamily family) {
  const Time now = clock_();
  std::lock_guard lock(mu_);
  oldest_pending_queued_.try_emplace(family, now);  // only the first since the last success
}

void ProxyHealth::updated(IpFamily family) {
  const Time now = clock_();
  std::lock_guard lock(mu_);
  oldest_pending_queued_.erase(family);
  last_updated_[family] = now;
}

void ProxyHealth::sync_node(const model::Node& node) {
  const bool eligible =
      !node.meta.deletion_timestamp &&
      std::none_of(node.taints.begin(), node.taints.end(),
                   [](const model::Taint& taint) { return taint.key == kToBeDeletedTaint; });
  std::lock_guard lock(mu_);
  node_eligible_ = eligible;
}

bool ProxyHealth::node_eligible() const {
  std::lock_guard lock(mu_);
  return node_eligible_;
}

HealthReport ProxyHealth::health() const {
  HealthReport report;
  std::lock_guard lock(mu_);
  report.current_time = clock_();
  for (const auto& [family, last_updated] : last_updated_) {
    if (!report.last_updated || last_updated > *report.last_updated) report.last_updated = last_updated;
    // Families that never synced are not judged: kube-proxy iterates lastUpdatedMap only.
    const auto pending = oldest_pending_queued_.find(family);
    const bool late = pending != oldest_pending_queued_.end() && report.current_time - pending->second >= health_timeout_;
    report.families[family] = FamilyHealth{last_updated, !late};
    if (late) report.healthy = false;
  }
  return report;
}

namespace {

std::string json_body(const HealthReport& report, std::optional<Time> last_updated, const bool* node_eligible) {
  // Field order and omitempty as kube-proxy's ProxyHealth struct marshals: nodeEligible only on
  // /healthz, status only when some family has synced. Map keys sort: "IPv4" < "IPv6".
  std::string body = "{\"lastUpdated\":\"" + go_json_time(last_updated) + "\",\"currentTime\":\"" +
                     go_json_time(report.current_time) + "\"";
  if (node_eligible != nullptr) body += std::string(",\"nodeEligible\":") + (*node_eligible ? "true" : "false");
  body += std::string(",\"healthy\":") + (report.healthy ? "true" : "false");
  if (!report.families.empty()) {
    body += ",\"status\":{";
    bool first = true;
    for (const auto& [family, health] : report.families) {
      if (!first) body += ',';
      first = false;
      body += "\"" + std::string(to_string(family)) + "\":{\"lastUpdated\":\"" + go_json_time(health.last_updated) +
              "\",\"healthy\":" + (health.healthy ? "true" : "false") + "}";
    }
    body += "}";
  }
  return body + "}";
}

// 1.29-1.32 printed, on 503, the lastUpdated of the unhealthy family it met first (Go map order,
// so either one when both are late; kproxy takes IPv4), else the newest.
std::optional<Time> legacy_last_updated(const HealthReport& report) {
  for (const auto& [family, health] : report.families) {
    if (!health.healthy) return health.last_updated;
  }
  return report.last_updated;
}

}  // namespace

HealthResponse healthz_response(const HealthReport& report, bool node_eligible, HealthzFormat format) {
  const bool ok = report.healthy && node_eligible;
  HealthResponse response{ok ? 200 : 503, {}};
  if (format == HealthzFormat::kJson) {
    response.body = json_body(report, ok ? report.current_time : report.last_updated, &node_eligible);
  } else {
    const std::optional<Time> last_updated = ok ? report.current_time : legacy_last_updated(report);
    response.body = "{\"lastUpdated\": " + go_quote(go_time_string(last_updated)) +
                    ",\"currentTime\": " + go_quote(go_time_string(report.current_time)) +
                    ", \"nodeEligible\": " + (node_eligible ? "true" : "false") + "}";
  }
  return response;
}

HealthResponse livez_response(const HealthReport& report, HealthzFormat format) {
  HealthResponse response{report.healthy ? 200 : 503, {}};
  if (format == HealthzFormat::kJson) {
    response.body = json_body(report, report.healthy ? report.current_time : report.last_updated, nullptr);
  } else {
    const std::optional<Time> last_updated = report.healthy ? report.current_time : legacy_last_updated(report);
    response.body = "{\"lastUpdated\": " + go_quote(go_time_string(last_updated)) +
                    ",\"currentTime\": " + go_quote(go_time_string(report.current_time)) + "}";
  }
  return response;
}

}  // namespace kproxy::health
