#include "kproxy/metrics/kube_proxy_metrics.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace kproxy::metrics {
namespace {

using namespace std::chrono_literals;

struct Expected {
  const char* name;
  MetricType type;
  std::vector<std::string> labels;
  const char* help;  // without the "[ALPHA] " prefix
};

// kube-proxy's metrics as the Kubernetes metrics reference lists them (1.33+, with ip_family).
const std::vector<Expected> kKubeProxy = {
    {"kubeproxy_conntrack_reconciler_deleted_entries_total",
     MetricType::kCounter,
     {"ip_family"},
     "Cumulative conntrack flows deleted by conntrack reconciler"},
    {"kubeproxy_conntrack_reconciler_sync_duration_seconds",
     MetricType::kHistogram,
     {"ip_family"},
     "ReconcileConntrackFlowsLatency latency in seconds"},
    {"kubeproxy_iptables_ct_state_invalid_dropped_packets_total",
     MetricType::kCounter,
     {},
     "packets dropped by iptables to work around conntrack problems"},
    {"kubeproxy_iptables_localhost_nodeports_accepted_packets_total",
     MetricType::kCounter,
     {},
     "Number of packets accepted on nodeports of loopback interface"},
    {"kubeproxy_network_programming_duration_seconds",
     MetricType::kHistogram,
     {"ip_family"},
     "In Cluster Network Programming Latency in seconds"},
    {"kubeproxy_proxy_healthz_total", MetricType::kCounter, {"code"}, "Cumulative proxy healthz HTTP status"},
    {"kubeproxy_proxy_livez_total", MetricType::kCounter, {"code"}, "Cumulative proxy livez HTTP status"},
    {"kubeproxy_sync_full_proxy_rules_duration_seconds",
     MetricType::kHistogram,
     {"ip_family"},
     "SyncProxyRules latency in seconds for full resyncs"},
    {"kubeproxy_sync_partial_proxy_rules_duration_seconds",
     MetricType::kHistogram,
     {"ip_family"},
     "SyncProxyRules latency in seconds for partial resyncs"},
    {"kubeproxy_sync_proxy_rules_duration_seconds",
     MetricType::kHistogram,
     {"ip_family"},
     "SyncProxyRules latency in seconds"},
    {"kubeproxy_sync_proxy_rules_endpoint_changes_pending",
     MetricType::kGauge,
     {},
     "Pending proxy rules Endpoint changes"},
    {"kubeproxy_sync_proxy_rules_endpoint_changes_total",
     MetricType::kCounter,
     {},
     "Cumulative proxy rules Endpoint changes"},
    {"kubeproxy_sync_proxy_rules_iptables_last",
     MetricType::kGauge,
     {"ip_family", "table"},
     "Number of iptables rules written by kube-proxy in last sync"},
    {"kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total",
     MetricType::kCounter,
     {"ip_family"},
     "Cumulative proxy iptables partial restore failures"},
    {"kubeproxy_sync_proxy_rules_iptables_restore_failures_total",
     MetricType::kCounter,
     {"ip_family"},
     "Cumulative proxy iptables restore failures"},
    {"kubeproxy_sync_proxy_rules_iptables_total",
     MetricType::kGauge,
     {"ip_family", "table"},
     "Total number of iptables rules owned by kube-proxy"},
    {"kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds",
     MetricType::kGauge,
     {"ip_family"},
     "The last time a sync of proxy rules was queued"},
    {"kubeproxy_sync_proxy_rules_last_timestamp_seconds",
     MetricType::kGauge,
     {"ip_family"},
     "The last time proxy rules were successfully synced"},
    {"kubeproxy_sync_proxy_rules_no_local_endpoints_total",
     MetricType::kGauge,
     {"ip_family", "traffic_policy"},
     "Number of services with a Local traffic policy and no endpoints"},
    {"kubeproxy_sync_proxy_rules_service_changes_pending",
     MetricType::kGauge,
     {},
     "Pending proxy rules Service changes"},
    {"kubeproxy_sync_proxy_rules_service_changes_total",
     MetricType::kCounter,
     {},
     "Cumulative proxy rules Service changes"},
};

std::map<std::string, FamilySnapshot> by_name(const Registry& registry) {
  std::map<std::string, FamilySnapshot> out;
  for (FamilySnapshot& f : registry.gather()) out.emplace(f.name, std::move(f));
  return out;
}

// One observation of everything, as the callers will make them.
void observe_everything(KubeProxyMetrics& m) {
  const auto now = std::chrono::system_clock::time_point(1763000000s + 250ms);
  m.observe_sync(IpFamily::kIPv4, SyncKind::kFull, 0.3);
  m.observe_sync(IpFamily::kIPv4, SyncKind::kPartial, 0.01);
  m.sync_succeeded(IpFamily::kIPv4, now);
  m.sync_queued(IpFamily::kIPv4, now);
  m.observe_network_programming(IpFamily::kIPv4, 1.5);
  m.set_no_local_endpoints(IpFamily::kIPv4, 2, 1);
  m.service_changed(3);
  m.endpoints_changed(4);
  m.iptables_restore_failed(IpFamily::kIPv4);
  m.iptables_partial_restore_failed(IpFamily::kIPv4);
  m.set_iptables_rules_total(IpFamily::kIPv4, RuleTable::kNat, 120);
  m.set_iptables_rules_total(IpFamily::kIPv4, RuleTable::kFilter, 8);
  m.set_iptables_rules_last(IpFamily::kIPv4, RuleTable::kNat, 12);
  m.set_iptables_rules_last(IpFamily::kIPv4, RuleTable::kFilter, 8);
  m.enable_nfacct_counters([](std::string_view counter) -> std::optional<std::uint64_t> {
    return counter == kCtStateInvalidDroppedCounter ? 5 : 9;
  });
  m.conntrack_reconciled(IpFamily::kIPv4, 0.02, 0);
  m.healthz_answered(200);
  m.livez_answered(503);
  m.object_rejected("Service", model::RejectReason::kUnknownValue);
}

TEST(KubeProxyMetrics, EveryKubeProxyMetricHasUpstreamsNameTypeLabelsAndHelp) {
  Registry registry;
  KubeProxyMetrics metrics(registry, ProxyMetricsMode::kIptables);
  observe_everything(metrics);
  const auto families = by_name(registry);
  for (const Expected& e : kKubeProxy) {
    SCOPED_TRACE(e.name);
    auto it = families.find(e.name);
    ASSERT_NE(it, families.end());
    const FamilySnapshot& f = it->second;
    EXPECT_EQ(f.type, e.type);
    EXPECT_EQ(f.label_names, e.labels);
    EXPECT_EQ(f.help, std::string("[ALPHA] ") + e.help);
    EXPECT_EQ(f.samples.size() + f.histograms.size() > 0, true) << "no series after one observation";
  }
}

TEST(KubeProxyMetrics, ObservationsLandInTheRightSeries) {
  Registry registry;
  KubeProxyMetrics metrics(registry, ProxyMetricsMode::kIptables);
  observe_everything(metrics);
  const std::string text = registry.render();
  for (const char* line : {
           "kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family=\"IPv4\"} 2\n",
           "kubeproxy_sync_full_proxy_rules_duration_seconds_count{ip_family=\"IPv4\"} 1\n",
           "kubeproxy_sync_partial_proxy_rules_duration_seconds_bucket{ip_family=\"IPv4\",le=\"0.016\"} 1\n",
           // Go's float64(UnixNano())/1e9 of ...000.25 s, rounding included.
           "kubeproxy_sync_proxy_rules_last_timestamp_seconds{ip_family=\"IPv4\"} 1.7630000002499998e+09\n",
           "kubeproxy_network_programming_duration_seconds_bucket{ip_family=\"IPv4\",le=\"0\"} 0\n",
           "kubeproxy_network_programming_duration_seconds_bucket{ip_family=\"IPv4\",le=\"2\"} 1\n",
           "kubeproxy_sync_proxy_rules_no_local_endpoints_total{ip_family=\"IPv4\",traffic_policy=\"external\"} 1\n",
           "kubeproxy_sync_proxy_rules_no_local_endpoints_total{ip_family=\"IPv4\",traffic_policy=\"internal\"} 2\n",
           "kubeproxy_sync_proxy_rules_service_changes_total 1\n",
           "kubeproxy_sync_proxy_rules_service_changes_pending 3\n",
           "kubeproxy_sync_proxy_rules_endpoint_changes_pending 4\n",
           "kubeproxy_sync_proxy_rules_iptables_total{ip_family=\"IPv4\",table=\"filter\"} 8\n",
           "kubeproxy_sync_proxy_rules_iptables_total{ip_family=\"IPv4\",table=\"nat\"} 120\n",
           "kubeproxy_sync_proxy_rules_iptables_last{ip_family=\"IPv4\",table=\"nat\"} 12\n",
           "kubeproxy_iptables_ct_state_invalid_dropped_packets_total 5\n",
           "kubeproxy_iptables_localhost_nodeports_accepted_packets_total 9\n",
           "kubeproxy_conntrack_reconciler_deleted_entries_total{ip_family=\"IPv4\"} 0\n",
           "kubeproxy_proxy_healthz_total{code=\"200\"} 1\n",
           "kubeproxy_proxy_livez_total{code=\"503\"} 1\n",
           "kproxy_objects_rejected_total{kind=\"Service\",reason=\"unknown_value\"} 1\n",
           "kproxy_build_info{version=\"",
       }) {
    EXPECT_NE(text.find(line), std::string::npos) << line;
  }
  // Only the family observed appears: no IPv6 series were touched.
  EXPECT_EQ(text.find("IPv6"), std::string::npos);
}

TEST(KubeProxyMetrics, BucketsAreKubeProxys) {
  Registry registry;
  KubeProxyMetrics metrics(registry, ProxyMetricsMode::kIptables);
  const auto families = by_name(registry);
  const std::vector<double> exponential = {0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128,
                                           0.256, 0.512, 1.024, 2.048, 4.096, 8.192, 16.384};
  for (const char* name :
       {"kubeproxy_sync_proxy_rules_duration_seconds", "kubeproxy_sync_full_proxy_rules_duration_seconds",
        "kubeproxy_sync_partial_proxy_rules_duration_seconds",
        "kubeproxy_conntrack_reconciler_sync_duration_seconds"}) {
    ASSERT_TRUE(families.contains(name)) << name;
    const auto& bounds = families.at(name).bounds;
    ASSERT_EQ(bounds.size(), exponential.size()) << name;
    for (std::size_t i = 0; i < bounds.size(); ++i) EXPECT_DOUBLE_EQ(bounds[i], exponential[i]) << name;
  }
  const auto& np = families.at("kubeproxy_network_programming_duration_seconds").bounds;
  ASSERT_EQ(np.size(), 1u + 2 + 59 + 12 + 7);
  EXPECT_EQ(np.front(), 0);
  EXPECT_EQ(np[1], 0.25);
  EXPECT_EQ(np[2], 0.5);
  EXPECT_EQ(np[3], 1);
  EXPECT_EQ(np[61], 59);
  EXPECT_EQ(np[62], 60);
  EXPECT_EQ(np[73], 115);
  EXPECT_EQ(np[74], 120);
  EXPECT_EQ(np.back(), 300);
}

TEST(KubeProxyMetrics, IpvsModeRegistersOnlyItsSet) {
  Registry registry;
  KubeProxyMetrics metrics(registry, ProxyMetricsMode::kIpvs);
  // Iptables-only metrics are absent, and their methods do nothing.
  metrics.observe_sync(IpFamily::kIPv6, SyncKind::kFull, 0.5);
  metrics.iptables_partial_restore_failed(IpFamily::kIPv6);
  metrics.set_iptables_rules_total(IpFamily::kIPv6, RuleTable::kNat, 1);
  metrics.enable_nfacct_counters([](std::string_view) { return std::optional<std::uint64_t>(1); });
  for (const char* name :
       {"kubeproxy_sync_full_proxy_rules_duration_seconds", "kubeproxy_sync_partial_proxy_rules_duration_seconds",
        "kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total",
        "kubeproxy_sync_proxy_rules_iptables_total", "kubeproxy_sync_proxy_rules_iptables_last",
        "kubeproxy_iptables_ct_state_invalid_dropped_packets_total"}) {
    EXPECT_FALSE(registry.contains(name)) << name;
  }
  EXPECT_TRUE(registry.contains("kubeproxy_sync_proxy_rules_iptables_restore_failures_total"));
  EXPECT_NE(registry.render().find("kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family=\"IPv6\"} 1\n"),
            std::string::npos);
}

TEST(KubeProxyMetrics, UnreadableNfacctCounterIsLeftOut) {
  Registry registry;
  KubeProxyMetrics metrics(registry, ProxyMetricsMode::kIptables);
  metrics.enable_nfacct_counters([](std::string_view counter) -> std::optional<std::uint64_t> {
    if (counter == kLocalhostNodePortsAcceptedCounter) return std::nullopt;
    return 1;
  });
  metrics.enable_nfacct_counters([](std::string_view) { return std::optional<std::uint64_t>(2); });  // once only
  const std::string text = registry.render();
  EXPECT_NE(text.find("kubeproxy_iptables_ct_state_invalid_dropped_packets_total 1\n"), std::string::npos);
  EXPECT_EQ(text.find("kubeproxy_iptables_localhost_nodeports_accepted_packets_total"), std::string::npos);
}

TEST(KubeProxyMetrics, RejectionsCountByKindAndStableReason) {
  Registry registry;
  KubeProxyMetrics metrics(registry, ProxyMetricsMode::kIptables);
  model::Rejection r;
  r.kind = "EndpointSlice";
  r.reason = model::RejectReason::kFamilyMismatch;
  metrics.object_rejected(r);
  metrics.object_rejected("EndpointSlice", model::RejectReason::kFamilyMismatch, 2);
  EXPECT_NE(
      registry.render().find("kproxy_objects_rejected_total{kind=\"EndpointSlice\",reason=\"family_mismatch\"} 3\n"),
      std::string::npos);
}

}  // namespace
}  // namespace kproxy::metrics
