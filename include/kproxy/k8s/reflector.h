// The reflector: list, then watch, with client-go's semantics (kubernetes-api notes §1-3).
//
//  - LIST with limit/continue pages (500 a page); the first list asks for resourceVersion=0
//    (served from the watch cache), a relist after an expired watch asks for the last RV
//    (NotOlderThan); a list that gets 410 or "too large resource version" is retried at
//    once as a consistent read (RV unset); an expired continue token restarts the list.
//  - WATCH from the list's RV with allowWatchBookmarks and a timeoutSeconds drawn from
//    [5 min, 10 min); every event, bookmarks included, advances the RV.
//  - A clean end of the stream re-watches at once from the last RV; a 410 (HTTP status or
//    ERROR event with reason Expired/Gone) relists; 429 re-watches the same RV after a
//    backoff of at least Retry-After; garbage or an oversized event relists after a backoff;
//    other failures back off (0.8 s doubling to 30 s, jittered, reset after 2 min).
//  - Nothing is torn down while the API server is unreachable: the sink keeps its state.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kproxy/k8s/api_client.h"
#include "kproxy/k8s/backoff.h"
#include "kproxy/k8s/watch_stream.h"
#include "kproxy/model/json_value.h"
#include "kproxy/status.h"

namespace kproxy::k8s {

struct ResourceSpec {
  std::string kind;            // "Service", for messages
  std::string path;            // "/api/v1/services"
  std::string label_selector;  // e.g. "!service.kubernetes.io/headless"
  std::string field_selector;  // e.g. "metadata.name=node-1"
};

// What a reflector feeds. Called on the reflector's thread.
//
// A list arrives as begin_list, list_item per item as it is read off the wire, then
// end_list: the sink holds one item's JSON at a time, never the whole list. A list that
// fails part-way is started again with begin_list; items already delivered stay until the
// end_list of a complete list removes what it did not contain.
//
// Items and objects are parsed from their text (model::JsonValue::parse, simdjson) and are
// valid for the duration of the call; a sink that keeps one keeps a copy of the JsonValue.
class ReflectorSink {
 public:
  virtual ~ReflectorSink() = default;
  virtual void begin_list() = 0;
  // May be called from several threads at once (the reflector's list workers).
  virtual void list_item(const model::JsonValue& item) = 0;
  // The list was complete: the state at `resource_version`. The sink removes what the list
  // did not hold (a relist after a 410 thereby delivers the deletes it missed).
  virtual void end_list(const std::string& resource_version) = 0;
  // One ADDED, MODIFIED or DELETED event.
  virtual void apply(WatchEventType type, const model::JsonValue& object) = 0;

  // A whole list at once (the manifests source, tests).
  void replace(std::vector<nlohmann::json> items, const std::string& resource_version) {
    begin_list();
    for (auto& item : items) list_item(model::JsonValue(std::move(item)));
    end_list(resource_version);
  }
};

// One per core beyond the first, at most 3: the reader thread keeps one busy.
int default_list_workers();

struct ReflectorOptions {
  int page_size = 500;  // client-go's pager default
  // Larger than any object the API server stores (etcd's default limit is 1.5 MiB, the
  // apiserver's request limit 3 MiB) plus the event envelope.
  std::size_t max_event_bytes = 8u << 20;
  // Threads that parse and validate list items while the reflector's own thread keeps
  // receiving and splitting the body; 0 does it all on the reflector's thread.
  int list_workers = default_list_workers();
  // A list response silent for this long is dead (lists stream; there is no total limit).
  std::chrono::milliseconds list_idle_timeout{std::chrono::seconds(60)};
  Backoff::Params backoff{};
  std::chrono::seconds min_watch_timeout{300};  // timeoutSeconds in [min, 2 min)
  // A watch that ends sooner than this without any event counts as a failure (client-go).
  std::chrono::milliseconds short_watch{1000};
  std::function<double()> random01;  // [0, 1); default: a seeded PRNG
};

// Counters for tests and metrics; read from any thread.
struct ReflectorStats {
  std::atomic<std::uint64_t> lists{0};
  std::atomic<std::uint64_t> list_pages{0};
  std::atomic<std::uint64_t> watches{0};
  std::atomic<std::uint64_t> events{0};
  std::atomic<std::uint64_t> failures{0};
  std::atomic<std::uint64_t> bytes_received{0};
};

class Reflector {
 public:
  Reflector(std::unique_ptr<ApiClient> client, ResourceSpec spec, ReflectorSink& sink, ReflectorOptions options = {});

  // Lists and watches until `stop` is requested. Blocking: run it on its own thread.
  void run(std::stop_token stop);

  std::string last_resource_version() const;
  const ReflectorStats& stats() const { return stats_; }
  const ResourceSpec& spec() const { return spec_; }

 private:
  enum class ListRv { kInitial, kLast, kConsistent };
  enum class WatchEnd { kClean, kExpired, kRetrySameRv, kRelist };

  Status list(std::stop_token stop, ListRv mode);
  WatchEnd watch(std::stop_token stop, std::chrono::milliseconds& retry_after);
  std::string query(std::initializer_list<std::pair<const char*, std::string>> params) const;
  void sleep_for(std::stop_token stop, std::chrono::milliseconds d);
  std::chrono::milliseconds backoff_delay(std::chrono::milliseconds at_least = {});
  void set_rv(std::string rv);

  std::unique_ptr<ApiClient> client_;
  ResourceSpec spec_;
  ReflectorSink& sink_;
  ReflectorOptions options_;
  Backoff backoff_;
  ReflectorStats stats_;
  mutable std::mutex rv_mu_;
  std::string last_rv_;
};

// The cache key of a raw object: "namespace/name", or "name" for cluster-scoped objects;
// empty when metadata.name is missing.
std::string object_key(const model::JsonValue& object);
std::string object_key(const nlohmann::json& object);
// metadata.resourceVersion, or "" when absent.
std::string object_resource_version(const model::JsonValue& object);
std::string object_resource_version(const nlohmann::json& object);

// Percent-encodes a query value (RFC 3986 unreserved characters pass).
std::string url_encode(std::string_view value);

}  // namespace kproxy::k8s
