// An informer: the cache of one kind of object, fed by a reflector (or by the manifests
// source) and reporting adds, updates and deletes to a handler on the consumer's thread.
//
// The cache holds model values, not JSON: every object is validated once, here, on its way
// in (model/parse.h). Bad parts are reported through the RejectionSink and dropped; an object
// that is unusable as a whole is skipped, and if an earlier version of it was usable that
// version stays in force ("bad input loses nothing"). A list (replace) is diffed against the
// cache, so a relist after a 410 delivers exactly the adds, updates and deletes that were
// missed. Handlers run on the EventQueue's consumer thread, in the order events arrived.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "kproxy/informer_handler.h"
#include "kproxy/k8s/event_queue.h"
#include "kproxy/k8s/reflector.h"
#include "kproxy/log.h"
#include "kproxy/model/parse.h"

namespace kproxy::k8s {

using kproxy::InformerHandler;

// Receives every rejection, on the reflector's thread or its list workers, possibly from
// several threads at once: it must be thread-safe. The default logs it.
using RejectionSink = std::function<void(const model::Rejection&)>;
void log_rejection(const model::Rejection& rejection);

template <typename T>
class Informer final : public ReflectorSink {
 public:
  using Ptr = std::shared_ptr<const T>;
  using Parse = model::ParseResult<T> (*)(const model::JsonValue&) noexcept;

  Informer(std::string kind, Parse parse, EventQueue& queue, InformerHandler<T>& handler,
           RejectionSink on_reject = log_rejection)
      : kind_(std::move(kind)), parse_(parse), queue_(queue), handler_(handler), on_reject_(std::move(on_reject)) {}

  void begin_list() override {
    std::lock_guard lock(mu_);
    listed_.clear();
  }

  // Safe to call from several threads at once: the reflector validates a list's items on
  // worker threads. Validation runs outside the lock; only the cache update is serialized.
  void list_item(const model::JsonValue& item) override { upsert(item, /*listed=*/true); }

  void end_list(const std::string& resource_version) override {
    std::lock_guard lock(mu_);
    for (auto it = cache_.begin(); it != cache_.end();) {
      if (listed_.count(it->first)) {
        ++it;
        continue;
      }
      if (it->second.value) post_delete(it->second.value);
      it = cache_.erase(it);
    }
    if (log::v(4)) spdlog::info("{} informer: listed {} objects at {}", kind_, listed_.size(), resource_version);
    listed_.clear();
    if (!synced_.exchange(true)) queue_.post([this] { handler_.on_synced(); });
  }

  void apply(WatchEventType type, const model::JsonValue& object) override {
    if (type != WatchEventType::kDeleted) {
      upsert(object, /*listed=*/false);
      return;
    }
    std::lock_guard lock(mu_);
    auto it = cache_.find(object_key(object));
    if (it == cache_.end()) return;
    if (it->second.value) post_delete(it->second.value);
    cache_.erase(it);
  }

  bool has_synced() const { return synced_.load(); }

  // The valid objects now cached (tests, debugging). Not for the proxier: it builds its
  // own state from the events.
  std::vector<Ptr> list() const {
    std::lock_guard lock(mu_);
    std::vector<Ptr> out;
    for (const auto& [k, e] : cache_) {
      if (e.value) out.push_back(e.value);
    }
    return out;
  }

 private:
  struct Entry {
    std::string resource_version;
    Ptr value;  // null while no version of the object has been usable
  };

  // Validates the object (outside the lock) and updates the cache (under it). With `listed`
  // the key counts as seen by the list in progress. Reports and skips an object without a name.
  void upsert(const model::JsonValue& object, bool listed) {
    std::string key = object_key(object);
    if (key.empty()) {
      on_reject_(model::Rejection{kind_, "(unknown)", "metadata.name", "", model::RejectReason::kMissingField,
                                  "is required"});
      return;
    }
    std::string rv = object_resource_version(object);
    {
      std::lock_guard lock(mu_);
      auto it = cache_.find(key);
      // The same resourceVersion is the same object: a relist repeats what we hold.
      if (it != cache_.end() && !rv.empty() && it->second.resource_version == rv) {
        if (listed) listed_.insert(std::move(key));
        return;
      }
    }

    model::ParseResult<T> parsed = parse_(object);
    for (const auto& r : parsed.rejections) on_reject_(r);
    if (parsed.more_rejections > 0) {
      spdlog::warn("{} {}: {} more problems not listed", kind_, key, parsed.more_rejections);
    }
    Ptr fresh = parsed.value ? std::make_shared<const T>(std::move(*parsed.value)) : nullptr;

    std::lock_guard lock(mu_);
    auto it = cache_.find(key);
    if (!fresh) {
      if (it != cache_.end() && it->second.value) {
        spdlog::warn("{} {}: the new version is unusable; keeping the previous one in force", kind_, key);
      }
      if (it == cache_.end()) {
        cache_.emplace(key, Entry{rv, nullptr});
      } else {
        it->second.resource_version = rv;
      }
    } else if (it == cache_.end()) {
      cache_.emplace(key, Entry{rv, fresh});
      post_add(fresh);
    } else if (!it->second.value) {
      it->second = Entry{rv, fresh};
      post_add(fresh);
    } else {
      Ptr old = std::exchange(it->second.value, fresh);
      it->second.resource_version = rv;
      // Manifests carry no resourceVersion: an unchanged file must not look like an update.
      if (!(*old == *fresh)) post_update(old, fresh);
    }
    if (listed) listed_.insert(std::move(key));
  }

  void post_add(Ptr p) {
    queue_.post([this, p = std::move(p)] { handler_.on_add(p); });
  }
  void post_update(Ptr o, Ptr n) {
    queue_.post([this, o = std::move(o), n = std::move(n)] { handler_.on_update(o, n); });
  }
  void post_delete(Ptr p) {
    queue_.post([this, p = std::move(p)] { handler_.on_delete(p); });
  }

  std::string kind_;
  Parse parse_;
  EventQueue& queue_;
  InformerHandler<T>& handler_;
  RejectionSink on_reject_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> cache_;
  std::set<std::string> listed_;  // keys seen by the list in progress
  std::atomic<bool> synced_{false};
};

}  // namespace kproxy::k8s
