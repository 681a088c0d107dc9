// Keeps one taint present (or absent) on this node's Node while kproxy runs: ensured at start,
// and again whenever the Node the informer delivers disagrees (someone removed the taint, or
// put it back on a node that should not have it). Retries with the reflector's backoff while
// the API server refuses. API calls run on the keeper's own thread, never on the informer's
// or the proxier's.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "kproxy/informer_handler.h"
#include "kproxy/k8s/api_client.h"
#include "kproxy/k8s/node_taints.h"
#include "kproxy/model/node.h"

namespace kproxy::k8s {

class TaintKeeper final : public InformerHandler<model::Node> {
 public:
  TaintKeeper(std::unique_ptr<ApiClient> client, std::string node_name, Taint taint, bool present);
  ~TaintKeeper() override;

  void start();
  void stop();

  // Whether `node` carries the taint as wanted: present = an entry with its key, value and
  // effect; absent = no entry with its key and effect (NodeTaints' semantics).
  static bool agrees(const model::Node& node, const Taint& taint, bool present);

  void on_add(const Ptr& node) override { check(*node); }
  void on_update(const Ptr&, const Ptr& node) override { check(*node); }
  void on_delete(const Ptr&) override {}
  void on_synced() override {}

 private:
  void check(const model::Node& node);
  void run(std::stop_token stop);

  std::unique_ptr<ApiClient> client_;
  std::string node_name_;
  Taint taint_;
  bool present_;
  std::mutex mu_;
  std::condition_variable_any wake_;
  bool pending_ = true;  // ensure at start
  std::jthread thread_;
};

}  // namespace kproxy::k8s
