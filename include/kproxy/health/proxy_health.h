// kube-proxy's health state (pkg/proxy/healthcheck/proxy_health.go) as a pure value holder,
// and the /healthz and /livez responses rendered from it.
//
// Per IP family, the proxier reports `queued_update` when an event needs a sync and `updated`
// after each successful sync (and once when its loop starts). A family is unhealthy when an
// update has been queued for health_timeout (kube-proxy passes 2 x syncPeriod) or longer
// without a successful sync since. A family that has never called `updated` is not judged at
// all: kube-proxy is healthy while it starts up. The node is eligible for load-balancer traffic
// once its Node is known and while it is neither being deleted nor tainted
// ToBeDeletedByClusterAutoscaler (KEP-3836).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "kproxy/health/go_time.h"
#include "kproxy/ip.h"
#include "kproxy/model/node.h"

namespace kproxy::health {

// Now, as the health state reads it. Tests pass a fake; the default reads the system clock.
using Clock = std::function<Time()>;
Time system_now();

// The Cluster Autoscaler's taint on a node it is about to remove (kube-proxy's ToBeDeletedTaint).
inline constexpr std::string_view kToBeDeletedTaint = "ToBeDeletedByClusterAutoscaler";

struct FamilyHealth {
  Time last_updated;
  bool healthy = true;
  bool operator==(const FamilyHealth&) const = default;
};

// One reading of the state (kube-proxy's ProxyHealth value).
struct HealthReport {
  bool healthy = true;               // every family healthy
  std::optional<Time> last_updated;  // the newest `updated` of any family; nullopt before the first
  Time current_time;
  std::map<IpFamily, FamilyHealth> families;  // the families that have called `updated`
};

class ProxyHealth {
 public:
  explicit ProxyHealth(std::chrono::nanoseconds health_timeout, Clock clock = system_now);
  ProxyHealth(const ProxyHealth&) = delete;
  ProxyHealth& operator=(const ProxyHealth&) = delete;

  // Thread-safe: the proxier calls these, HTTP threads read.
  void queued_update(IpFamily family);  // keeps the oldest pending time until the next `updated`
  void updated(IpFamily family);
  // Eligibility from this node's Node: not deleting, no ToBeDeletedByClusterAutoscaler taint
  // (any effect). Until the first call the node counts as not eligible, as in kube-proxy 1.33+
  // (its NodeManager has no Node yet); 1.32 and earlier counted it eligible.
  void sync_node(const model::Node& node);

  HealthReport health() const;
  bool healthy() const { return health().healthy; }  // what /livez and the service health checks use
  bool node_eligible() const;

 private:
  const std::chrono::nanoseconds health_timeout_;
  const Clock clock_;
  mutable std::mutex mu_;
  std::map<IpFamily, Time> last_updated_;
  std::map<IpFamily, Time> oldest_pending_queued_;
  bool node_eligible_ = false;
};

// The body kube-proxy writes. kJson is 1.33+ (PR #129271: encoding/json, per-family status);
// kLegacy is 1.29-1.32 (fmt with %q of time.String()).
enum class HealthzFormat : std::uint8_t { kJson, kLegacy };

struct HealthResponse {
  int status = 200;  // 200 or 503
  std::string body;  // Content-Type application/json, X-Content-Type-Options nosniff
};

// /healthz: 200 when healthy and the node is eligible. /livez: 200 when healthy. On 200 the
// body's lastUpdated is the current time, as kube-proxy keeps it for compatibility.
HealthResponse healthz_response(const HealthReport& report, bool node_eligible,
                                HealthzFormat format = HealthzFormat::kJson);
HealthResponse livez_response(const HealthReport& report, HealthzFormat format = HealthzFormat::kJson);

}  // namespace kproxy::health
