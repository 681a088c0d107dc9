// Keeps one taint present or absent on this node's Node object.
//
// Node.spec.taints has no patch merge key, so a strategic-merge patch replaces the whole list
// (api/core/v1/types.go; upstream PatchNodeTaints): every PATCH carries the full desired list,
// others' taints included verbatim (timeAdded and any unknown fields), with
// metadata.resourceVersion as a precondition. A 409 Conflict means the Node changed since the
// read: re-read, recompute, retry (like client-go's RetryOnConflict).
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "kproxy/k8s/api_client.h"
#include "kproxy/status.h"

namespace kproxy::k8s {

// A taint as kproxy sets it; timeAdded is left to the API server.
struct Taint {
  std::string key;
  std::string value;   // "" is omitted from the JSON, as the API does
  std::string effect;  // NoSchedule, PreferNoSchedule or NoExecute
  friend bool operator==(const Taint&, const Taint&) = default;
};

// The taint list after making `taint` present (replace the entry with the same key and
// effect, or append) or absent (drop entries with that key and effect); nullopt when the
// list would not change. Other entries are copied unchanged. `current` is spec.taints
// (null or an array); an error if it or an entry has the wrong shape.
Expected<std::optional<nlohmann::json>> updated_taints(const nlohmann::json& current, const Taint& taint,
                                                       bool present);

struct NodeTaintsOptions {
  int max_attempts = 5;                             // PATCHes before giving up on conflicts
  std::chrono::milliseconds conflict_backoff{100};  // before a retry, plus 0-100 % jitter
  std::function<void(std::chrono::milliseconds)> sleep;  // null = std::this_thread::sleep_for
};

class NodeTaints {
 public:
  // `client` must outlive this object; calls go through it on the caller's thread.
  NodeTaints(ApiClient& client, std::string node_name, NodeTaintsOptions options = {});

  // GET the Node, compute the list, PATCH it when it differs (no PATCH otherwise), retrying
  // a 409 after a fresh GET. Errors name the node, the taint and the failing step.
  Status ensure(const Taint& taint, bool present);

 private:
  ApiClient& client_;
  std::string node_name_;
  NodeTaintsOptions options_;
};

}  // namespace kproxy::k8s
