#include "kproxy/proxier/proxier_loop.h"

#include "kproxy/log.h"

namespace kproxy::proxier {

ProxierLoop::ProxierLoop(ProxierLoopOptions options, ProxierBackend& backend)
    : backend_(backend), tracker_(options.tracker), runner_(options.runner) {
  node_.name = options.tracker.node_name;
}

void ProxierLoop::set_node(const std::shared_ptr<const model::Node>& node) {
  const bool addresses_changed = !node_object_ || node_object_->addresses != node->addresses ||
                                 node_object_->pod_cidrs != node->pod_cidrs;
  node_object_ = node;
  auto it = node->meta.labels.find(kZoneLabel);
  const std::string zone = it == node->meta.labels.end() ? std::string() : it->second;
  if (zone != node_.zone) {
    spdlog::info("node {} zone changed from \"{}\" to \"{}\"; the next sync is full", node_.name, node_.zone, zone);
    node_.zone = zone;
    runner_.force_full();
  } else if (addresses_changed) {
    if (log::v(2)) spdlog::info("node {} addresses or pod CIDRs changed; the next sync is full", node_.name);
    runner_.force_full();
  }
}

void ProxierLoop::after_events() {
  runner_.set_synced(tracker_.synced());
  if (tracker_.has_pending_changes()) runner_.request();
}

std::optional<SyncReport> ProxierLoop::run_due(Clock::time_point now,
                                               const std::function<Clock::time_point()>& clock) {
  auto due = take_due(now, clock);
  if (!due) return std::nullopt;
  const Status status = run(*due);
  return finish(std::move(*due), status, clock());
}

std::optional<ProxierLoop::DueSync> ProxierLoop::take_due(Clock::time_point now,
                                                          const std::function<Clock::time_point()>& clock) {
  runner_.set_synced(tracker_.synced());
  const auto kind = runner_.due(now);
  if (!kind) return std::nullopt;
  DueSync due{*kind, clock(), tracker_.checkout()};
  unsynced_changes_.insert(due.checkout.changed.begin(), due.checkout.changed.end());
  return due;
}

Status ProxierLoop::run(const DueSync& due) {
  return backend_.sync(SyncRequest{*due.checkout.snapshot, unsynced_changes_, due.kind, node_, node_object_.get()});
}

SyncReport ProxierLoop::finish(DueSync due, const Status& status, Clock::time_point end) {
  SyncReport report;
  report.kind = due.kind;
  report.snapshot = due.checkout.snapshot;
  report.changed_ports = unsynced_changes_.size();
  report.ok = status.ok();
  report.duration = end - due.start;
  if (status.ok()) {
    unsynced_changes_.clear();
  } else {
    report.error = status.message();
  }
  runner_.done(end, status.ok());
  for (const auto& observer : observers_) observer(report);
  return report;
}

}  // namespace kproxy::proxier
