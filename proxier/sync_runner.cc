#include "kproxy/proxier/sync_runner.h"

#include <algorithm>

namespace kproxy::proxier {
namespace {

using TimePoint = SyncRunner::TimePoint;
using Duration = SyncRunner::Clock::duration;

// t + d, saturating at TimePoint::max() so that a huge interval means "never".
TimePoint add(TimePoint t, Duration d) {
  if (d <= Duration::zero()) return t;
  if (t > TimePoint::max() - d) return TimePoint::max();
  return t + d;
}

}  // namespace

SyncRunner::SyncRunner(SyncRunnerOptions options) : options_(options) {
  // BoundedFrequencyRunner panics when maxInterval < minInterval; kproxy's flag validation
  // rejects such values first, so here the larger value simply wins.
  options_.max_interval = std::max(options_.max_interval, options_.min_interval);
}

SyncRunner::TimePoint SyncRunner::next_deadline(TimePoint now) const {
  if (!synced_ || running_) return TimePoint::max();
  // Upstream waits for minIntervalTimer after every run, before it looks at any trigger, so
  // nothing (request, retry or periodic run) starts before the min interval has passed.
  const TimePoint earliest = last_finished_ ? add(*last_finished_, options_.min_interval) : TimePoint::min();
  TimePoint deadline = TimePoint::max();
  if (pending_) deadline = earliest;
  if (retry_at_) deadline = std::min(deadline, std::max(*retry_at_, earliest));
  // maxIntervalTimer is re-armed after every run, successful or not.
  if (last_finished_) deadline = std::min(deadline, add(*last_finished_, options_.max_interval));
  return std::max(deadline, now);
}

std::optional<SyncKind> SyncRunner::due(TimePoint now) {
  if (!synced_ || running_ || next_deadline(now) > now) return std::nullopt;
  // Upstream: doFullSync := needFullSync || time.Since(lastFullSync) > FullSyncPeriod. Upstream
  // stamps lastFullSync inside the run, before the max timer is re-armed, so the periodic run
  // sees slightly more than the period; with an exact clock that takes ">=".
  const bool full = need_full_ || !last_full_finished_ || now >= add(*last_full_finished_, options_.max_interval);
  const SyncKind kind = full ? SyncKind::kFull : SyncKind::kPartial;
  running_ = kind;
  // This run takes every pending request and the retry with it; done() re-arms the retry on
  // failure. A force_full() arriving while it runs sets need_full_ again for the next one.
  pending_ = false;
  retry_at_.reset();
  if (full) need_full_ = false;
  return kind;
}

void SyncRunner::done(TimePoint finished, bool ok) {
  if (!running_) return;  // no sync was handed out by due()
  last_finished_ = finished;
  if (ok) {
    if (*running_ == SyncKind::kFull) last_full_finished_ = finished;
  } else {
    // The change trackers were drained by the failed run, so only a full sync can restore the
    // rules it lost (proxier.go: "We've lost the state needed for partial sync").
    need_full_ = true;
    retry_at_ = add(finished, options_.retry_interval);
  }
  running_.reset();
}

}  // namespace kproxy::proxier
