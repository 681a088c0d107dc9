// SyncRunner: when the proxier syncs and whether the sync is full. Behaviour follows
// kube-proxy's BoundedFrequencyRunner (pkg/proxy/runner/bounded_frequency_runner.go) and the
// needFullSync / FullSyncPeriod rules of syncProxyRules (pkg/proxy/iptables/proxier.go).
#include "kproxy/proxier/sync_runner.h"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "kproxy/proxier/change_tracker.h"

namespace kproxy::proxier {
namespace {

using namespace std::chrono_literals;
using TimePoint = SyncRunner::TimePoint;
constexpr TimePoint kMax = TimePoint::max();

// An arbitrary origin far from the clock's epoch.
const TimePoint t0 = TimePoint{} + 1000h;

// kube-proxy's defaults: --iptables-min-sync-period 1 s, --iptables-sync-period 30 s,
// FullSyncPeriod 1 h.
SyncRunnerOptions defaults() { return {}; }

// A synced runner whose first (full) sync started at t0 and ended at t0 + 100 ms.
SyncRunner after_first_sync() {
  SyncRunner runner(defaults());
  runner.set_synced(true);
  EXPECT_EQ(runner.due(t0), SyncKind::kFull);
  runner.done(t0 + 100ms, true);
  return runner;
}

TEST(SyncRunner, DefaultsAreKubeProxys) {
  SyncRunnerOptions options;
  EXPECT_EQ(options.min_interval, 1s);
  EXPECT_EQ(options.retry_interval, 30s);
  EXPECT_EQ(options.max_interval, 1h);
}

TEST(SyncRunner, NothingRunsBeforeBothInformersHaveSynced) {
  ChangeTracker tracker({.family = IpFamily::kIPv4, .node_name = "node-1"});
  SyncRunner runner(defaults());
  runner.request();

  runner.set_synced(tracker.synced());
  EXPECT_EQ(runner.next_deadline(t0), kMax);
  EXPECT_EQ(runner.due(t0 + 24h), std::nullopt);

  tracker.service_handler().on_synced();
  runner.set_synced(tracker.synced());
  EXPECT_EQ(runner.next_deadline(t0), kMax);
  EXPECT_EQ(runner.due(t0 + 24h), std::nullopt);

  tracker.endpoint_slice_handler().on_synced();
  runner.set_synced(tracker.synced());
  EXPECT_EQ(runner.next_deadline(t0 + 24h), t0 + 24h);
  EXPECT_EQ(runner.due(t0 + 24h), SyncKind::kFull);
}

TEST(SyncRunner, TheFirstSyncIsFullAndRunsAsSoonAsSynced) {
  SyncRunner runner(defaults());
  runner.set_synced(true);  // no request needed: the initial sync is always due
  EXPECT_EQ(runner.next_deadline(t0), t0);
  EXPECT_EQ(runner.due(t0), SyncKind::kFull);
}

TEST(SyncRunner, ABurstOfRequestsWithinTheMinIntervalCoalescesIntoOneSyncAtItsEnd) {
  SyncRunner runner = after_first_sync();  // ended at t0 + 100 ms
  for (auto offset : {200ms, 500ms, 900ms, 1099ms}) {
    runner.request();
    EXPECT_EQ(runner.due(t0 + offset), std::nullopt) << offset.count() << " ms";
    EXPECT_EQ(runner.next_deadline(t0 + offset), t0 + 1100ms) << offset.count() << " ms";
  }
  EXPECT_EQ(runner.due(t0 + 1100ms), SyncKind::kPartial);
  runner.done(t0 + 1200ms, true);
  // One sync took the whole burst: only the periodic run is left.
  EXPECT_EQ(runner.next_deadline(t0 + 1200ms), t0 + 1200ms + 1h);
  EXPECT_EQ(runner.due(t0 + 3s), std::nullopt);
}

TEST(SyncRunner, TheMinIntervalCountsFromTheEndOfThePreviousSync) {
  struct Case {
    std::chrono::milliseconds sync_duration;
    std::chrono::milliseconds request_after_start;
    TimePoint expected_next;
  };
  const std::vector<Case> cases = {
      {0ms, 0ms, t0 + 1s},
      {300ms, 300ms, t0 + 1300ms},
      {5s, 5s, t0 + 6s},             // a slow sync does not eat into the interval
      {300ms, 2s, t0 + 2s},          // the interval has passed: run at once
      {300ms, 1300ms, t0 + 1300ms},  // exactly at its end
  };
  for (const Case& c : cases) {
    SyncRunner runner(defaults());
    runner.set_synced(true);
    ASSERT_EQ(runner.due(t0), SyncKind::kFull);
    runner.done(t0 + c.sync_duration, true);
    const TimePoint now = t0 + c.request_after_start;
    runner.request();
    EXPECT_EQ(runner.next_deadline(now), c.expected_next) << c.sync_duration.count() << " ms sync";
    if (c.expected_next > now) {
      EXPECT_EQ(runner.due(c.expected_next - 1ns), std::nullopt) << c.sync_duration.count() << " ms sync";
    }
    EXPECT_EQ(runner.due(c.expected_next), SyncKind::kPartial) << c.sync_duration.count() << " ms sync";
  }
}

TEST(SyncRunner, AFailedSyncIsRetriedAfterTheRetryIntervalAndTheRetryIsFull) {
  SyncRunner runner = after_first_sync();
  runner.request();
  ASSERT_EQ(runner.due(t0 + 2s), SyncKind::kPartial);
  runner.done(t0 + 3s, false);

  EXPECT_EQ(runner.next_deadline(t0 + 3s), t0 + 33s);
  EXPECT_EQ(runner.due(t0 + 33s - 1ns), std::nullopt);
  EXPECT_EQ(runner.due(t0 + 33s), SyncKind::kFull);
  runner.done(t0 + 34s, true);
  // Success cancels the retry: only the periodic run is left.
  EXPECT_EQ(runner.next_deadline(t0 + 34s), t0 + 34s + 1h);
}

TEST(SyncRunner, ARequestAfterAFailureRunsBeforeTheRetryAndIsFull) {
  SyncRunner runner = after_first_sync();
  runner.request();
  ASSERT_EQ(runner.due(t0 + 2s), SyncKind::kPartial);
  runner.done(t0 + 3s, false);

  runner.request();  // within the min interval after the failure
  EXPECT_EQ(runner.next_deadline(t0 + 3500ms), t0 + 4s);
  EXPECT_EQ(runner.due(t0 + 4s), SyncKind::kFull);
  runner.done(t0 + 5s, true);
  EXPECT_EQ(runner.next_deadline(t0 + 5s), t0 + 5s + 1h);
}

TEST(SyncRunner, ARepeatedFailureKeepsRetryingWithFullSyncs) {
  SyncRunner runner = after_first_sync();
  runner.request();
  ASSERT_EQ(runner.due(t0 + 2s), SyncKind::kPartial);
  runner.done(t0 + 2s, false);
  ASSERT_EQ(runner.due(t0 + 32s), SyncKind::kFull);
  runner.done(t0 + 33s, false);
  EXPECT_EQ(runner.next_deadline(t0 + 33s), t0 + 63s);
  EXPECT_EQ(runner.due(t0 + 63s), SyncKind::kFull);
}

TEST(SyncRunner, ARetryIntervalShorterThanTheMinIntervalWaitsForTheMinInterval) {
  SyncRunner runner({.min_interval = 10s, .retry_interval = 1s, .max_interval = 1h});
  runner.set_synced(true);
  ASSERT_EQ(runner.due(t0), SyncKind::kFull);
  runner.done(t0, false);
  EXPECT_EQ(runner.next_deadline(t0), t0 + 10s);
  EXPECT_EQ(runner.due(t0 + 9s), std::nullopt);
  EXPECT_EQ(runner.due(t0 + 10s), SyncKind::kFull);
}

TEST(SyncRunner, WithoutChangesAFullSyncRunsMaxIntervalAfterTheLastSync) {
  SyncRunner runner = after_first_sync();  // ended at t0 + 100 ms
  const TimePoint hourly = t0 + 100ms + 1h;
  EXPECT_EQ(runner.next_deadline(t0 + 1s), hourly);
  EXPECT_EQ(runner.due(hourly - 1ns), std::nullopt);
  EXPECT_EQ(runner.due(hourly), SyncKind::kFull);
  runner.done(hourly + 1s, true);
  EXPECT_EQ(runner.next_deadline(hourly + 1s), hourly + 1s + 1h);
}

TEST(SyncRunner, PartialSyncsDoNotPostponeTheHourlyFullSync) {
  SyncRunner runner = after_first_sync();  // full, ended at t0 + 100 ms
  std::vector<SyncKind> kinds;
  // The third sync starts 100 ms before the hour is up, the fourth just after it.
  for (auto at : {20min, 40min, 60min, 61min, 80min}) {
    runner.request();
    auto kind = runner.due(t0 + at);
    ASSERT_TRUE(kind.has_value());
    kinds.push_back(*kind);
    runner.done(t0 + at, true);
  }
  // The first sync starting an hour or more after the last full one is full.
  EXPECT_EQ(kinds, (std::vector<SyncKind>{SyncKind::kPartial, SyncKind::kPartial, SyncKind::kPartial, SyncKind::kFull,
                                          SyncKind::kPartial}));
}

TEST(SyncRunner, PeriodicSyncBetweenFullSyncsIsPartial) {
  // A partial sync re-arms the max interval, so the periodic run can come before the hour
  // since the last full sync is up; it is then partial, as upstream.
  SyncRunner runner = after_first_sync();  // full, ended at t0 + 100 ms
  runner.request();
  ASSERT_EQ(runner.due(t0 + 30min), SyncKind::kPartial);
  runner.done(t0 + 30min, true);
  EXPECT_EQ(runner.next_deadline(t0 + 31min), t0 + 90min);
  EXPECT_EQ(runner.due(t0 + 90min), SyncKind::kFull);  // 90 min since the last full sync
}

TEST(SyncRunner, ForceFullMakesTheNextSyncFullWithinTheMinInterval) {
  SyncRunner runner = after_first_sync();  // ended at t0 + 100 ms
  runner.force_full();                     // the zone label changed, or the canary chain vanished
  EXPECT_EQ(runner.next_deadline(t0 + 500ms), t0 + 1100ms);
  EXPECT_EQ(runner.due(t0 + 500ms), std::nullopt);
  EXPECT_EQ(runner.due(t0 + 1100ms), SyncKind::kFull);
  runner.done(t0 + 1200ms, true);
  runner.request();
  EXPECT_EQ(runner.due(t0 + 3s), SyncKind::kPartial);  // the force is used up
}

TEST(SyncRunner, ForceFullDuringASyncAppliesToTheNextOne) {
  SyncRunner runner = after_first_sync();
  runner.request();
  ASSERT_EQ(runner.due(t0 + 2s), SyncKind::kPartial);
  runner.force_full();
  runner.done(t0 + 3s, true);
  EXPECT_EQ(runner.due(t0 + 4s), SyncKind::kFull);
}

TEST(SyncRunner, NothingIsDueWhileASyncRuns) {
  SyncRunner runner(defaults());
  runner.set_synced(true);
  ASSERT_EQ(runner.due(t0), SyncKind::kFull);
  EXPECT_TRUE(runner.running());
  runner.request();
  EXPECT_EQ(runner.due(t0 + 1h), std::nullopt);
  EXPECT_EQ(runner.next_deadline(t0 + 1h), kMax);
  runner.done(t0 + 1h, true);
  EXPECT_FALSE(runner.running());
  EXPECT_EQ(runner.due(t0 + 1h + 1s), SyncKind::kPartial);
}

TEST(SyncRunner, DoneWithoutARunningSyncIsIgnored) {
  SyncRunner runner = after_first_sync();
  runner.done(t0 + 10min, false);
  EXPECT_EQ(runner.next_deadline(t0 + 1s), t0 + 100ms + 1h);
}

TEST(SyncRunner, AMaxIntervalBelowTheMinIntervalIsRaisedToIt) {
  SyncRunner runner({.min_interval = 5s, .retry_interval = 30s, .max_interval = 1s});
  runner.set_synced(true);
  ASSERT_EQ(runner.due(t0), SyncKind::kFull);
  runner.done(t0, true);
  EXPECT_EQ(runner.next_deadline(t0), t0 + 5s);
}

TEST(SyncRunner, NextDeadlineInEachState) {
  struct Case {
    std::string state;
    std::function<void(SyncRunner&)> setup;
    TimePoint now;
    TimePoint expected;
  };
  const auto first_sync = [](SyncRunner& r, bool ok) {
    r.set_synced(true);
    ASSERT_EQ(r.due(t0), SyncKind::kFull);
    r.done(t0 + 100ms, ok);
  };
  const std::vector<Case> cases = {
      {"not synced", [](SyncRunner& r) { r.request(); }, t0, kMax},
      {"synced, before the first sync", [](SyncRunner& r) { r.set_synced(true); }, t0, t0},
      {"a sync is running",
       [](SyncRunner& r) {
         r.set_synced(true);
         ASSERT_TRUE(r.due(t0).has_value());
       },
       t0, kMax},
      {"idle after a success: the periodic run", [&](SyncRunner& r) { first_sync(r, true); }, t0 + 1s, t0 + 100ms + 1h},
      {"request within the min interval",
       [&](SyncRunner& r) {
         first_sync(r, true);
         r.request();
       },
       t0 + 500ms, t0 + 1100ms},
      {"request after the min interval",
       [&](SyncRunner& r) {
         first_sync(r, true);
         r.request();
       },
       t0 + 5s, t0 + 5s},
      {"force_full within the min interval",
       [&](SyncRunner& r) {
         first_sync(r, true);
         r.force_full();
       },
       t0 + 500ms, t0 + 1100ms},
      {"after a failure: the retry", [&](SyncRunner& r) { first_sync(r, false); }, t0 + 1s, t0 + 100ms + 30s},
      {"after a failure, past the retry time", [&](SyncRunner& r) { first_sync(r, false); }, t0 + 1min, t0 + 1min},
      {"synced withdrawn",
       [&](SyncRunner& r) {
         first_sync(r, true);
         r.request();
         r.set_synced(false);
       },
       t0 + 5s, kMax},
  };
  for (const Case& c : cases) {
    SyncRunner runner(defaults());
    c.setup(runner);
    EXPECT_EQ(runner.next_deadline(c.now), c.expected) << c.state;
  }
}

}  // namespace
}  // namespace kproxy::proxier
