// SyncRunner: decides when the proxier syncs and whether the sync is full or partial. It is
// pure logic: no threads, no sleeping, no clock reads. The caller passes `now`.
//
// Upstream, two pieces of code share this job, and SyncRunner merges them:
//  - BoundedFrequencyRunner (pkg/proxy/runner/bounded_frequency_runner.go) decides when
//    syncProxyRules runs. kube-proxy builds it with
//    (minSyncPeriod, retry = syncPeriod, max = proxyutil.FullSyncPeriod).
//  - syncProxyRules (pkg/proxy/iptables/proxier.go, nftables/proxier.go) decides whether a
//    run is full: `needFullSync || time.Since(lastFullSync) > FullSyncPeriod`.
//
// The consumer loop:
//   runner.set_synced(tracker.synced());
//   queue.run_until(stop, runner.next_deadline(now));   // events call runner.request(now)
//   if (auto kind = runner.due(now)) runner.done(clock.now(), sync(*kind));
// docs/proxier.md ("Sync runner") states the rules.
#pragma once

#include <chrono>
#include <optional>

namespace kproxy::proxier {

enum class SyncKind {
  // Re-ensures the jump rules and rewrites every service's chains.
  kFull,
  // Rewrites only the chains of the service ports that changed (KEP-3453).
  kPartial,
};

struct SyncRunnerOptions {
  // --iptables-min-sync-period (default 1 s): the least time from the END of one sync to the
  // start of the next. Requests in between are merged into one sync.
  std::chrono::steady_clock::duration min_interval = std::chrono::seconds(1);
  // --iptables-sync-period (default 30 s): a failed sync is retried this long after it ended.
  std::chrono::steady_clock::duration retry_interval = std::chrono::seconds(30);
  // proxyutil.FullSyncPeriod (1 h): a sync runs at the latest this long after the previous
  // one ended, and a sync is full once this long has passed since the last full sync ended.
  // Raised to min_interval if smaller (upstream panics on max < min).
  std::chrono::steady_clock::duration max_interval = std::chrono::hours(1);
};

class SyncRunner {
 public:
  using Clock = std::chrono::steady_clock;
  using TimePoint = Clock::time_point;

  explicit SyncRunner(SyncRunnerOptions options = {});

  // Gate: no sync runs until both informers have delivered their first list
  // (ChangeTracker::synced()); until then the rules of the previous process keep serving.
  // Upstream: isInitialized() in syncProxyRules.
  void set_synced(bool synced) { synced_ = synced; }

  // A change arrived (upstream Sync() -> BoundedFrequencyRunner.Run()). Requests made while
  // the min interval runs are merged into one sync at its end.
  void request() { pending_ = true; }

  // The next sync must be full, and should run soon: the node's topology labels changed
  // (OnTopologyChange) or the canary chain was flushed (forceSyncProxyRules).
  void force_full() {
    need_full_ = true;
    pending_ = true;
  }

  // When the loop must wake to run the next sync: the end of the min interval for a pending
  // request, the retry time after a failure, or max_interval after the last sync ended,
  // whichever comes first. Never earlier than `now`. TimePoint::max() while not synced or
  // while a sync is running.
  TimePoint next_deadline(TimePoint now) const;

  // The sync to run now, if one is due. Returning a kind marks the sync as running: the
  // caller must run it and report done() before due() returns anything again.
  std::optional<SyncKind> due(TimePoint now);

  // The sync returned by due() ended at `finished`. Both the min interval and the full-sync
  // period count from here, as upstream resets its timers and sets lastFullSync after the
  // run. On failure the next sync is full (the change trackers were already drained) and
  // runs retry_interval after `finished` unless a request or force_full comes first.
  void done(TimePoint finished, bool ok);

  bool running() const { return running_.has_value(); }

 private:
  SyncRunnerOptions options_;
  bool synced_ = false;
  // The first sync counts as requested, and is full (upstream: needFullSync starts true).
  bool pending_ = true;
  bool need_full_ = true;
  std::optional<SyncKind> running_;
  std::optional<TimePoint> last_finished_;
  std::optional<TimePoint> last_full_finished_;
  std::optional<TimePoint> retry_at_;
};

}  // namespace kproxy::proxier
