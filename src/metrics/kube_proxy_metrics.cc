#include "kproxy/metrics/kube_proxy_metrics.h"

#include <string>

#include "kproxy/version.h"

namespace kproxy::metrics {
namespace {

// kube-proxy's metrics, as registered by pkg/proxy/metrics/metrics.go (subsystem "kubeproxy",
// stability ALPHA; the label ip_family since Kubernetes 1.33, PR #129173).
FamilyOptions alpha(std::string name, std::string help, std::vector<std::string> labels = {}) {
  return FamilyOptions{"kubeproxy_" + std::move(name), std::move(help), std::move(labels), StabilityLevel::kAlpha};
}

const std::vector<std::string> kIpFamily = {"ip_family"};

// prometheus.ExponentialBuckets(0.001, 2, 15): 1 ms to 16.384 s.
std::vector<double> sync_buckets() { return exponential_buckets(0.001, 2, 15); }

// 0 (MergeBuckets' leading bucket), 0.25 s, 0.5 s, 1-59 s, 60-115 s by 5, 2-5 min by 30 s.
std::vector<double> network_programming_buckets() {
  return merge_buckets(
      {linear_buckets(0.25, 0.25, 2), linear_buckets(1, 1, 59), linear_buckets(60, 5, 12), linear_buckets(120, 30, 7)});
}

std::string_view table_label(RuleTable table) { return table == RuleTable::kFilter ? "filter" : "nat"; }

double unix_seconds(KubeProxyMetrics::WallTime t) {
  // client_golang's Gauge.SetToCurrentTime: float64(UnixNano()) / 1e9, rounding included.
  const auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  return static_cast<double>(nanos) / 1e9;
}

}  // namespace

KubeProxyMetrics::KubeProxyMetrics(Registry& registry, ProxyMetricsMode mode)
    : registry_(registry),
      mode_(mode),
      sync_duration_(registry.histogram(
          alpha("sync_proxy_rules_duration_seconds", "SyncProxyRules latency in seconds", kIpFamily), sync_buckets())),
      last_timestamp_(registry.gauge(alpha("sync_proxy_rules_last_timestamp_seconds",
                                           "The last time proxy rules were successfully synced", kIpFamily))),
      last_queued_timestamp_(registry.gauge(alpha("sync_proxy_rules_last_queued_timestamp_seconds",
                                                  "The last time a sync of proxy rules was queued", kIpFamily))),
      network_programming_(registry.histogram(
          alpha("network_programming_duration_seconds", "In Cluster Network Programming Latency in seconds", kIpFamily),
          network_programming_buckets())),
      endpoint_changes_pending_(
          registry.gauge(alpha("sync_proxy_rules_endpoint_changes_pending", "Pending proxy rules Endpoint changes"))),
      endpoint_changes_total_(registry.counter(
          alpha("sync_proxy_rules_endpoint_changes_total", "Cumulative proxy rules Endpoint changes"))),
      service_changes_pending_(
          registry.gauge(alpha("sync_proxy_rules_service_changes_pending", "Pending proxy rules Service changes"))),
      service_changes_total_(
          registry.counter(alpha("sync_proxy_rules_service_changes_total", "Cumulative proxy rules Service changes"))),
      no_local_endpoints_(registry.gauge(alpha("sync_proxy_rules_no_local_endpoints_total",
                                               "Number of services with a Local traffic policy and no endpoints",
                                               {"ip_family", "traffic_policy"}))),
      healthz_total_(registry.counter(alpha("proxy_healthz_total", "Cumulative proxy healthz HTTP status", {"code"}))),
      livez_total_(registry.counter(alpha("proxy_livez_total", "Cumulative proxy livez HTTP status", {"code"}))),
      conntrack_duration_(registry.histogram(alpha("conntrack_reconciler_sync_duration_seconds",
                                                   "ReconcileConntrackFlowsLatency latency in seconds", kIpFamily),
                                             sync_buckets())),
      conntrack_deleted_(
          registry.counter(alpha("conntrack_reconciler_deleted_entries_total",
                                 "Cumulative conntrack flows deleted by conntrack reconciler", kIpFamily))),
      restore_failures_(registry.counter(alpha("sync_proxy_rules_iptables_restore_failures_total",
                                               "Cumulative proxy iptables restore failures", kIpFamily))),
      objects_rejected_(registry.counter(
          FamilyOptions{"kproxy_objects_rejected_total",
                        "Cumulative API objects, or parts of them, refused by validation, by kind and reason",
                        {"kind", "reason"},
                        StabilityLevel::kAlpha})) {
  if (mode_ == ProxyMetricsMode::kIptables) {
    sync_full_duration_ = &registry.histogram(alpha("sync_full_proxy_rules_duration_seconds",
                                                    "SyncProxyRules latency in seconds for full resyncs", kIpFamily),
                                              sync_buckets());
    sync_partial_duration_ =
        &registry.histogram(alpha("sync_partial_proxy_rules_duration_seconds",
                                  "SyncProxyRules latency in seconds for partial resyncs", kIpFamily),
                            sync_buckets());
    partial_restore_failures_ =
        &registry.counter(alpha("sync_proxy_rules_iptables_partial_restore_failures_total",
                                "Cumulative proxy iptables partial restore failures", kIpFamily));
    iptables_total_ =
        &registry.gauge(alpha("sync_proxy_rules_iptables_total", "Total number of iptables rules owned by kube-proxy",
                              {"ip_family", "table"}));
    iptables_last_ =
        &registry.gauge(alpha("sync_proxy_rules_iptables_last",
                              "Number of iptables rules written by kube-proxy in last sync", {"ip_family", "table"}));
  }
  // kubernetes_build_info's counterpart: which kproxy answers on this port.
  registry
      .gauge(FamilyOptions{"kproxy_build_info",
                           "A metric with a constant '1' value labeled by the kproxy version",
                           {"version"},
                           StabilityLevel::kAlpha})
      .with({kVersion})
      .set(1);
}

void KubeProxyMetrics::observe_sync(IpFamily family, SyncKind kind, double seconds) {
  observe_sync(family, seconds);
  HistogramFamily* split = kind == SyncKind::kFull ? sync_full_duration_ : sync_partial_duration_;
  if (split != nullptr) split->with({to_string(family)}).observe(seconds);
}

void KubeProxyMetrics::observe_sync(IpFamily family, double seconds) {
  sync_duration_.with({to_string(family)}).observe(seconds);
}

void KubeProxyMetrics::sync_succeeded(IpFamily family, WallTime now) {
  last_timestamp_.with({to_string(family)}).set(unix_seconds(now));
}

void KubeProxyMetrics::sync_queued(IpFamily family, WallTime now) {
  last_queued_timestamp_.with({to_string(family)}).set(unix_seconds(now));
}

void KubeProxyMetrics::observe_network_programming(IpFamily family, double seconds) {
  network_programming_.with({to_string(family)}).observe(seconds);
}

void KubeProxyMetrics::set_no_local_endpoints(IpFamily family, std::size_t internal, std::size_t external) {
  no_local_endpoints_.with({to_string(family), "internal"}).set(static_cast<double>(internal));
  no_local_endpoints_.with({to_string(family), "external"}).set(static_cast<double>(external));
}

void KubeProxyMetrics::service_changed(std::size_t pending) {
  service_changes_total_.with({}).inc();
  set_service_changes_pending(pending);
}

void KubeProxyMetrics::endpoints_changed(std::size_t pending) {
  endpoint_changes_total_.with({}).inc();
  set_endpoint_changes_pending(pending);
}

void KubeProxyMetrics::set_service_changes_pending(std::size_t pending) {
  service_changes_pending_.with({}).set(static_cast<double>(pending));
}

void KubeProxyMetrics::set_endpoint_changes_pending(std::size_t pending) {
  endpoint_changes_pending_.with({}).set(static_cast<double>(pending));
}

void KubeProxyMetrics::iptables_restore_failed(IpFamily family) { restore_failures_.with({to_string(family)}).inc(); }

void KubeProxyMetrics::iptables_partial_restore_failed(IpFamily family) {
  if (partial_restore_failures_ != nullptr) partial_restore_failures_->with({to_string(family)}).inc();
}

void KubeProxyMetrics::set_iptables_rules_total(IpFamily family, RuleTable table, std::size_t rules) {
  if (iptables_total_ != nullptr) {
    iptables_total_->with({to_string(family), table_label(table)}).set(static_cast<double>(rules));
  }
}

void KubeProxyMetrics::set_iptables_rules_last(IpFamily family, RuleTable table, std::size_t rules) {
  if (iptables_last_ != nullptr) {
    iptables_last_->with({to_string(family), table_label(table)}).set(static_cast<double>(rules));
  }
}

void KubeProxyMetrics::enable_nfacct_counters(NfacctReader reader) {
  if (mode_ != ProxyMetricsMode::kIptables || !reader) return;
  std::call_once(nfacct_once_, [&] {
    // Custom collectors in kube-proxy (nfacctMetricCollector): const counters, one sample each.
    const auto add = [&](std::string name, std::string help, std::string_view counter) {
      registry_.add_collector(alpha(std::move(name), std::move(help)), MetricType::kCounter,
                              [reader, counter]() -> std::vector<Sample> {
                                const std::optional<std::uint64_t> packets = reader(counter);
                                if (!packets) return {};
                                return {Sample{{}, static_cast<double>(*packets)}};
                              });
    };
    add("iptables_ct_state_invalid_dropped_packets_total",
        "packets dropped by iptables to work around conntrack problems", kCtStateInvalidDroppedCounter);
    add("iptables_localhost_nodeports_accepted_packets_total",
        "Number of packets accepted on nodeports of loopback interface", kLocalhostNodePortsAcceptedCounter);
  });
}

void KubeProxyMetrics::conntrack_reconciled(IpFamily family, double seconds, std::uint64_t deleted_entries) {
  conntrack_duration_.with({to_string(family)}).observe(seconds);
  // kube-proxy adds the count even when it is 0, so the series exists after the first reconcile.
  conntrack_deleted_.with({to_string(family)}).inc(static_cast<double>(deleted_entries));
}

void KubeProxyMetrics::healthz_answered(int status_code) { healthz_total_.with({std::to_string(status_code)}).inc(); }

void KubeProxyMetrics::livez_answered(int status_code) { livez_total_.with({std::to_string(status_code)}).inc(); }

void KubeProxyMetrics::object_rejected(std::string_view kind, model::RejectReason reason, std::size_t count) {
  objects_rejected_.with({kind, model::to_string(reason)}).inc(static_cast<double>(count));
}

}  // namespace kproxy::metrics
