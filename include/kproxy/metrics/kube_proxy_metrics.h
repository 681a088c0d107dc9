// kube-proxy's metrics (pkg/proxy/metrics/metrics.go), with kube-proxy's names, types, label
// names, buckets and help texts, plus kproxy's own. docs/metrics.md lists them and says which
// caller updates each one when.
//
// Callers use the typed methods below, never the families: a method names the event
// ("a sync took this long", "a restore failed") and updates every metric kube-proxy updates
// for it. As in kube-proxy, some metrics exist only in some modes (RegisterMetrics(mode));
// a method whose metrics are not registered in this mode does nothing.
//
// Thread-safe: the proxier thread, the health server threads and the informers' threads may
// all call in at once while the metrics server scrapes.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string_view>

#include "kproxy/ip.h"
#include "kproxy/metrics/registry.h"
#include "kproxy/model/rejection.h"

namespace kproxy::metrics {

// Which of kube-proxy's per-mode sets to register.
enum class ProxyMetricsMode { kIptables, kIpvs };

enum class SyncKind { kFull, kPartial };

// The iptables tables kube-proxy counts rules of (label "table").
enum class RuleTable { kFilter, kNat };

// Label "traffic_policy" of sync_proxy_rules_no_local_endpoints_total.
enum class TrafficPolicyScope { kInternal, kExternal };

// Reads one nfacct counter's packet count at scrape time; nullopt when it cannot be read (the
// sample is then left out, as kube-proxy's collector does on a failed Get).
using NfacctReader = std::function<std::optional<std::uint64_t>(std::string_view counter_name)>;

// kube-proxy's nfacct counter names (pkg/proxy/util/nfacct).
inline constexpr std::string_view kCtStateInvalidDroppedCounter = "ct_state_invalid_dropped_pkts";
inline constexpr std::string_view kLocalhostNodePortsAcceptedCounter = "localhost_nps_accepted_pkts";

class KubeProxyMetrics {
 public:
  using WallTime = std::chrono::system_clock::time_point;

  // Registers the metrics of `mode` (and kproxy's own) in `registry`, which must outlive this.
  KubeProxyMetrics(Registry& registry, ProxyMetricsMode mode);
  KubeProxyMetrics(const KubeProxyMetrics&) = delete;
  KubeProxyMetrics& operator=(const KubeProxyMetrics&) = delete;

  // --- the proxier's sync loop ---
  // After every sync attempt, successful or not: sync_proxy_rules_duration_seconds, and in
  // iptables mode the full or partial histogram too.
  void observe_sync(IpFamily family, SyncKind kind, double seconds);
  // The same for a backend without full/partial syncs (IPVS).
  void observe_sync(IpFamily family, double seconds);
  // After a successful sync: sync_proxy_rules_last_timestamp_seconds = now.
  void sync_succeeded(IpFamily family, WallTime now);
  // When a sync is requested, and once when the loop starts:
  // sync_proxy_rules_last_queued_timestamp_seconds = now.
  void sync_queued(IpFamily family, WallTime now);
  // After a successful restore, once per recorded trigger time of each changed Service:
  // network_programming_duration_seconds.
  void observe_network_programming(IpFamily family, double seconds);
  // After a successful sync: Services with a Local policy and no local endpoints.
  void set_no_local_endpoints(IpFamily family, std::size_t internal, std::size_t external);

  // --- the change trackers ---
  // One Service / EndpointSlice change seen: *_changes_total + 1 and *_changes_pending set.
  void service_changed(std::size_t pending);
  void endpoints_changed(std::size_t pending);
  // When the pending changes are taken for a sync (pending 0) or otherwise recounted.
  void set_service_changes_pending(std::size_t pending);
  void set_endpoint_changes_pending(std::size_t pending);

  // --- the iptables backend ---
  void iptables_restore_failed(IpFamily family);          // any failed restore
  void iptables_partial_restore_failed(IpFamily family);  // a failed partial sync
  // After each sync: rules kube-proxy owns in `table`, and rules written by the last restore.
  void set_iptables_rules_total(IpFamily family, RuleTable table, std::size_t rules);
  void set_iptables_rules_last(IpFamily family, RuleTable table, std::size_t rules);
  // iptables mode: serve the two nfacct packet counters, read at each scrape.
  void enable_nfacct_counters(NfacctReader reader);

  // --- conntrack cleanup, after each reconcile of one family ---
  void conntrack_reconciled(IpFamily family, double seconds, std::uint64_t deleted_entries);

  // --- the /healthz and /livez server, per answered probe ---
  void healthz_answered(int status_code);
  void livez_answered(int status_code);

  // --- kproxy's own ---
  // An object, or a part of one, refused by validation: kproxy_objects_rejected_total.
  // `kind` is the API kind ("Service", "EndpointSlice", "Node").
  void object_rejected(std::string_view kind, model::RejectReason reason, std::size_t count = 1);
  void object_rejected(const model::Rejection& rejection) { object_rejected(rejection.kind, rejection.reason); }

 private:
  Registry& registry_;
  const ProxyMetricsMode mode_;
  // Always registered.
  HistogramFamily& sync_duration_;
  GaugeFamily& last_timestamp_;
  GaugeFamily& last_queued_timestamp_;
  HistogramFamily& network_programming_;
  GaugeFamily& endpoint_changes_pending_;
  CounterFamily& endpoint_changes_total_;
  GaugeFamily& service_changes_pending_;
  CounterFamily& service_changes_total_;
  GaugeFamily& no_local_endpoints_;
  CounterFamily& healthz_total_;
  CounterFamily& livez_total_;
  HistogramFamily& conntrack_duration_;
  CounterFamily& conntrack_deleted_;
  CounterFamily& restore_failures_;
  CounterFamily& objects_rejected_;
  // iptables mode only.
  HistogramFamily* sync_full_duration_ = nullptr;
  HistogramFamily* sync_partial_duration_ = nullptr;
  CounterFamily* partial_restore_failures_ = nullptr;
  GaugeFamily* iptables_total_ = nullptr;
  GaugeFamily* iptables_last_ = nullptr;
  std::once_flag nfacct_once_;
};

}  // namespace kproxy::metrics
