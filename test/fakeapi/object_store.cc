#include "fakeapi/object_store.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace kproxy::fakeapi {

using json = nlohmann::json;

const char* to_string(EventType type) {
  switch (type) {
    case EventType::kAdded: return "ADDED";
    case EventType::kModified: return "MODIFIED";
    case EventType::kDeleted: return "DELETED";
  }
  return "UNKNOWN";
}

std::string rfc3339_now() {
  std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// A fresh cluster's etcd has already seen writes (namespaces, RBAC, ...); starting above 1
// keeps "0" and small numbers distinguishable from real revisions in tests.
ObjectStore::ObjectStore() : rv_(100), compacted_rv_(100) {}

std::string ObjectStore::key_of(const ResourceType& type, const std::string& ns, const std::string& name) {
  return type.namespaced ? ns + "/" + name : name;
}

ObjectPtr ObjectStore::get(const ResourceType& type, const std::string& ns, const std::string& name) const {
  auto t = tables_.find(type.name);
  if (t == tables_.end()) return nullptr;
  auto it = t->second.find(key_of(type, ns, name));
  if (it == t->second.end() || it->second.empty()) return nullptr;
  return it->second.back().object;
}

ObjectPtr ObjectStore::put(const ResourceType& type, json object) {
  auto& meta = object["metadata"];
  std::string ns = type.namespaced ? meta.value("namespace", std::string("default")) : "";
  if (type.namespaced) meta["namespace"] = ns;
  std::string name = meta.value("name", std::string());
  object.erase("kind");
  object.erase("apiVersion");

  ObjectPtr prev = get(type, ns, name);
  if (prev) {
    const auto& old_meta = (*prev)["metadata"];
    meta["uid"] = old_meta.value("uid", std::string());
    if (old_meta.contains("creationTimestamp")) meta["creationTimestamp"] = old_meta["creationTimestamp"];
  } else {
    char uid[40];
    std::snprintf(uid, sizeof uid, "00000000-0000-4000-8000-%012llx", static_cast<unsigned long long>(++uid_counter_));
    meta["uid"] = uid;
    if (!meta.contains("creationTimestamp") || meta["creationTimestamp"].is_null()) {
      meta["creationTimestamp"] = rfc3339_now();
    }
  }
  ++rv_;
  meta["resourceVersion"] = std::to_string(rv_);
  auto stored = std::make_shared<const json>(std::move(object));
  table(type)[key_of(type, ns, name)].push_back({rv_, stored});
  events_.push_back({rv_, prev ? EventType::kModified : EventType::kAdded, &type, stored, prev});
  return stored;
}

ObjectPtr ObjectStore::remove(const ResourceType& type, const std::string& ns, const std::string& name) {
  ObjectPtr prev = get(type, ns, name);
  if (!prev) return nullptr;
  ++rv_;
  json last = *prev;
  last["metadata"]["resourceVersion"] = std::to_string(rv_);
  auto stored = std::make_shared<const json>(std::move(last));
  table(type)[key_of(type, type.namespaced ? ns : "", name)].push_back({rv_, nullptr});
  events_.push_back({rv_, EventType::kDeleted, &type, stored, prev});
  return stored;
}

void ObjectStore::scan(const ResourceType& type, std::int64_t at_rv, const std::string& ns,
                       const std::string& start_key,
                       const std::function<bool(const std::string&, const ObjectPtr&)>& visit) const {
  auto t = tables_.find(type.name);
  if (t == tables_.end()) return;
  std::string prefix = (type.namespaced && !ns.empty()) ? ns + "/" : "";
  auto it = t->second.lower_bound(std::max(start_key, prefix));
  for (; it != t->second.end(); ++it) {
    if (!prefix.empty() && it->first.compare(0, prefix.size(), prefix) != 0) break;
    const History& h = it->second;
    // Newest version at or before at_rv.
    auto v = std::upper_bound(h.begin(), h.end(), at_rv, [](std::int64_t rv, const Version& x) { return rv < x.rv; });
    if (v == h.begin()) continue;
    --v;
    if (!v->object) continue;
    if (!visit(it->first, v->object)) return;
  }
}

std::int64_t ObjectStore::events_after(std::int64_t after_rv, std::size_t max_events,
                                       std::vector<StoredEvent>& out) const {
  auto it = std::upper_bound(events_.begin(), events_.end(), after_rv,
                             [](std::int64_t rv, const StoredEvent& e) { return rv < e.rv; });
  std::int64_t last = after_rv;
  for (std::size_t n = 0; it != events_.end() && n < max_events; ++it, ++n) {
    out.push_back(*it);
    last = it->rv;
  }
  return last;
}

void ObjectStore::compact(std::int64_t rv, std::int64_t keep_events_after) {
  rv = std::min(rv, rv_);
  std::int64_t drop_events = std::min(rv, keep_events_after);
  while (!events_.empty() && events_.front().rv <= drop_events) events_.pop_front();
  if (rv <= compacted_rv_) return;
  compacted_rv_ = rv;
  for (auto& [name, tbl] : tables_) {
    for (auto it = tbl.begin(); it != tbl.end();) {
      History& h = it->second;
      // Keep the newest version at or before rv (it is what a read at rv sees) and all later ones.
      auto keep = std::upper_bound(h.begin(), h.end(), rv, [](std::int64_t r, const Version& x) { return r < x.rv; });
      if (keep != h.begin()) --keep;
      h.erase(h.begin(), keep);
      if (h.size() == 1 && !h.front().object && h.front().rv <= rv) {
        it = tbl.erase(it);
      } else {
        ++it;
      }
    }
  }
}

}  // namespace kproxy::fakeapi
