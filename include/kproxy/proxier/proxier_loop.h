// ProxierLoop: the proxier's one consumer thread's logic. It owns the change tracker and the
// sync runner, follows this node's Node object for its zone, and calls a backend (iptables,
// later IPVS) when a sync is due.
//
// The thread itself lives in main: it runs the informers' events (EventQueue::run_until) up
// to next_deadline(), then calls after_events() and run_due(). Nothing here reads a clock or
// sleeps, so tests drive it with a fake time (DESIGN.md, "pure logic apart").
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include "kproxy/informer_handler.h"
#include "kproxy/model/node.h"
#include "kproxy/proxier/change_tracker.h"
#include "kproxy/proxier/endpoint_selection.h"
#include "kproxy/proxier/sync_runner.h"
#include "kproxy/status.h"

namespace kproxy::proxier {

// What a backend is asked to do in one sync.
struct SyncRequest {
  const Snapshot& snapshot;
  // Service ports changed since the last successful sync (all of them may be rewritten on
  // a full sync regardless).
  const std::set<ServicePortName>& changed;
  SyncKind kind;
  const NodeFacts& node;
  // This node's Node object as last seen (nullptr before it arrives): its addresses and pod
  // CIDRs, for backends that need them.
  const model::Node* node_object = nullptr;
};

class ProxierBackend {
 public:
  virtual ~ProxierBackend() = default;
  // Programs the kernel for `request`. A failure leaves the previous rules in place as far
  // as the kernel's transactions allow; the loop retries with a full sync.
  virtual Status sync(const SyncRequest& request) = 0;
};

struct ProxierLoopOptions {
  ChangeTrackerOptions tracker;
  SyncRunnerOptions runner;
};

// The outcome of one sync, for health, metrics and logs.
struct SyncReport {
  SyncKind kind = SyncKind::kFull;
  bool ok = false;
  std::string error;
  std::chrono::steady_clock::duration duration{};
  std::shared_ptr<const Snapshot> snapshot;
  std::size_t changed_ports = 0;
};

class ProxierLoop {
 public:
  using Clock = std::chrono::steady_clock;

  ProxierLoop(ProxierLoopOptions options, ProxierBackend& backend);

  InformerHandler<model::Service>& service_handler() { return tracker_.service_handler(); }
  InformerHandler<model::EndpointSlice>& endpoint_slice_handler() { return tracker_.endpoint_slice_handler(); }
  // This node's Node: its zone label selects topology-aware endpoints; a zone change forces
  // a full sync, as kube-proxy's OnTopologyChange. So does a change of its addresses or pod
  // CIDRs, which backends read (the node IP, --detect-local-mode NodeCIDR).
  InformerHandler<model::Node>& node_handler() { return node_handler_; }

  // Called after each batch of informer events: turns pending changes into a sync request.
  void after_events();
  // When the loop must wake next (Clock::time_point::max() when nothing is scheduled).
  Clock::time_point next_deadline(Clock::time_point now) const { return runner_.next_deadline(now); }
  // Runs the sync that is due at `now`, if any, and returns its report. `clock` times it
  // (a test passes a fake). The same as take_due(), run() and finish() in a row.
  std::optional<SyncReport> run_due(Clock::time_point now, const std::function<Clock::time_point()>& clock);

  // The three steps of run_due(), for a caller that runs several loops' backends at once (a
  // dual-stack node syncs both families concurrently, as kube-proxy's per-family proxiers do).
  // take_due() and finish() belong on the loop's thread; run() may be called on another thread
  // while the loop's thread runs no informer event and no other call on this loop.
  struct DueSync {
    SyncKind kind = SyncKind::kFull;
    Clock::time_point start;
    ChangeTracker::Checkout checkout;
  };
  std::optional<DueSync> take_due(Clock::time_point now, const std::function<Clock::time_point()>& clock);
  Status run(const DueSync& due);
  SyncReport finish(DueSync due, const Status& status, Clock::time_point end);

  // Called when every sync ends (successful or not), on the loop's thread.
  void on_sync(std::function<void(const SyncReport&)> observer) { observers_.push_back(std::move(observer)); }

  // Force the next sync to be full (a flushed canary, in issue 5).
  void force_full() { runner_.force_full(); }

  const NodeFacts& node() const { return node_; }
  const ChangeTracker& tracker() const { return tracker_; }
  bool synced() const { return tracker_.synced(); }

 private:
  class NodeHandler final : public InformerHandler<model::Node> {
   public:
    explicit NodeHandler(ProxierLoop& loop) : loop_(loop) {}
    void on_add(const Ptr& node) override { loop_.set_node(node); }
    void on_update(const Ptr&, const Ptr& node) override { loop_.set_node(node); }
    void on_delete(const Ptr&) override {}
    void on_synced() override {}

   private:
    ProxierLoop& loop_;
  };
  void set_node(const std::shared_ptr<const model::Node>& node);

  ProxierBackend& backend_;
  ChangeTracker tracker_;
  SyncRunner runner_;
  NodeHandler node_handler_{*this};
  NodeFacts node_;
  std::shared_ptr<const model::Node> node_object_;
  // Ports changed since the last successful sync: a failed sync keeps them for the next.
  std::set<ServicePortName> unsynced_changes_;
  std::vector<std::function<void(const SyncReport&)>> observers_;
};

// The zone label kube-proxy reads (v1.LabelTopologyZone).
inline constexpr const char* kZoneLabel = "topology.kubernetes.io/zone";

}  // namespace kproxy::proxier
