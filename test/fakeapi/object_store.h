// The fake API server's storage: an etcd-like multi-version store with one global revision
// counter and an event log, the model behind LIST snapshots, continue tokens, WATCH from a
// resourceVersion and compaction. It does no locking and no I/O; FakeApiServer owns one
// under its mutex.
//
// Semantics follow etcd as the apiserver uses it (apiserver/pkg/storage/etcd3/store.go):
// every write gets the next revision; a read "at revision R" sees, for each key, the newest
// version written at or before R; compact(R) forgets history before R, after which reads and
// watches from an older revision fail with 410 Gone (reason Expired).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fakeapi/resources.h"

namespace kproxy::fakeapi {

using ObjectPtr = std::shared_ptr<const nlohmann::json>;

enum class EventType { kAdded, kModified, kDeleted };
const char* to_string(EventType type);

struct StoredEvent {
  std::int64_t rv = 0;
  EventType type = EventType::kAdded;
  const ResourceType* resource = nullptr;
  ObjectPtr object;       // new state; for kDeleted the last state stamped with the deletion RV
  ObjectPtr prev_object;  // state before this event (null for kAdded)
};

class ObjectStore {
 public:
  ObjectStore();

  std::int64_t current_rv() const { return rv_; }
  // Oldest revision still readable; reads and watches from before it are "too old".
  std::int64_t compacted_rv() const { return compacted_rv_; }

  // Creates or replaces the object named by its metadata. Sets metadata.resourceVersion, and on
  // create metadata.uid and metadata.creationTimestamp (kept from the old object on replace).
  // kind/apiVersion are not stored. Returns the stored object.
  ObjectPtr put(const ResourceType& type, nlohmann::json object);
  // Deletes; returns the final state (with the deletion RV), or null if absent.
  ObjectPtr remove(const ResourceType& type, const std::string& ns, const std::string& name);
  ObjectPtr get(const ResourceType& type, const std::string& ns, const std::string& name) const;

  // Visits, in key order, objects of `type` visible at revision `at_rv` whose key is >= start_key
  // and within namespace `ns` ("" = all). `visit` returns false to stop.
  void scan(const ResourceType& type, std::int64_t at_rv, const std::string& ns, const std::string& start_key,
            const std::function<bool(const std::string& key, const ObjectPtr&)>& visit) const;

  // Copies of the events with rv > after_rv (any type), oldest first, appended to `out` up to
  // max_events. Returns the rv of the last event appended (or after_rv).
  std::int64_t events_after(std::int64_t after_rv, std::size_t max_events, std::vector<StoredEvent>& out) const;
  std::size_t event_count() const { return events_.size(); }

  // Forgets history up to `rv` (clamped to current): versions superseded before it, and events
  // at or before it except those after `keep_events_after` (events open watchers have not been
  // sent yet: the watch cache keeps feeding its watchers whatever etcd compacts).
  void compact(std::int64_t rv, std::int64_t keep_events_after = std::numeric_limits<std::int64_t>::max());

  // Storage key of an object: "<ns>/<name>" or "<name>" for cluster-scoped types, the order
  // in which lists are returned (etcd key order).
  static std::string key_of(const ResourceType& type, const std::string& ns, const std::string& name);

 private:
  struct Version {
    std::int64_t rv;
    ObjectPtr object;  // null = deleted at rv
  };
  using History = std::vector<Version>;  // ascending rv
  std::map<std::string, History>& table(const ResourceType& type) { return tables_[type.name]; }

  std::int64_t rv_;
  std::int64_t compacted_rv_;
  std::uint64_t uid_counter_ = 0;
  std::map<std::string, std::map<std::string, History>> tables_;
  std::deque<StoredEvent> events_;
};

// RFC 3339 UTC timestamp with second precision, as metav1.Time serialises.
std::string rfc3339_now();

}  // namespace kproxy::fakeapi
