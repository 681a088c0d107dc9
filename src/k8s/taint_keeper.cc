#include "kproxy/k8s/taint_keeper.h"

#include <random>

#include "kproxy/k8s/backoff.h"
#include "kproxy/log.h"

namespace kproxy::k8s {

TaintKeeper::TaintKeeper(std::unique_ptr<ApiClient> client, std::string node_name, Taint taint, bool present)
    : client_(std::move(client)), node_name_(std::move(node_name)), taint_(std::move(taint)), present_(present) {}

TaintKeeper::~TaintKeeper() { stop(); }

void TaintKeeper::start() {
  thread_ = std::jthread([this](std::stop_token stop) { run(stop); });
}

void TaintKeeper::stop() {
  if (!thread_.joinable()) return;
  thread_.request_stop();
  client_->cancel();
  thread_ = {};
}

bool TaintKeeper::agrees(const model::Node& node, const Taint& taint, bool present) {
  for (const model::Taint& t : node.taints) {
    if (t.key != taint.key || model::to_string(t.effect) != taint.effect) continue;
    if (!present) return false;
    if (t.value == taint.value) return true;
  }
  return !present;
}

void TaintKeeper::check(const model::Node& node) {
  if (node.meta.name != node_name_ || agrees(node, taint_, present_)) return;
  {
    std::lock_guard lock(mu_);
    pending_ = true;
  }
  wake_.notify_all();
}

void TaintKeeper::run(std::stop_token stop) {
  NodeTaints taints(*client_, node_name_);
  Backoff backoff;
  std::mt19937 rng(std::random_device{}());
  const std::string what = taint_.key + (taint_.value.empty() ? "" : "=" + taint_.value) + ":" + taint_.effect;
  while (!stop.stop_requested()) {
    {
      std::unique_lock lock(mu_);
      if (!wake_.wait(lock, stop, [this] { return pending_; })) return;
      pending_ = false;
    }
    const Status s = taints.ensure(taint_, present_);
    if (s.ok()) {
      spdlog::info("node {}: taint {} {}", node_name_, what, present_ ? "present" : "absent");
      continue;
    }
    if (stop.stop_requested()) return;
    const auto delay = backoff.next(Backoff::Clock::now(), std::uniform_real_distribution<double>(0, 1)(rng));
    spdlog::error("{}; retrying in {} ms", s.message(), delay.count());
    std::unique_lock lock(mu_);
    pending_ = true;
    wake_.wait_for(lock, stop, delay, [] { return false; });
  }
}

}  // namespace kproxy::k8s
