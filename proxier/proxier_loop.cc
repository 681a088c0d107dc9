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
  runner_.set_synced(tracker_.synced());
  const auto kind = runner_.due(now);
  if (!kind) return std::nullopt;
  const auto start = clock();
  auto checkout = tracker_.checkout();
  unsynced_changes_.insert(checkout.changed.begin(), checkout.changed.end());
  SyncReport report;
  report.kind = *kind;
  report.snapshot = checkout.snapshot;
  report.changed_ports = unsynced_changes_.size();
  const Status status = backend_.sync(SyncRequest{*checkout.snapshot, unsynced_changes_, *kind, node_, node_object_.get()});
  const auto end = clock();
  report.ok = status.ok();
  report.duration = end - start;
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
