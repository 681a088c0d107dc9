#include "kproxy/k8s/node_taints.h"

#include <random>
#include <thread>

#include <spdlog/spdlog.h>

#include "kproxy/log.h"

namespace kproxy::k8s {
namespace {

using nlohmann::json;

std::string describe(const Taint& t) {
  return t.key + (t.value.empty() ? "" : "=" + t.value) + ":" + t.effect;
}

json to_json(const Taint& t) {
  json j = {{"key", t.key}};
  if (!t.value.empty()) j["value"] = t.value;
  j["effect"] = t.effect;
  return j;
}

std::string string_member(const json& object, const char* name) {
  const auto it = object.find(name);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// "HTTP 404 NotFound: nodes \"n1\" not found", from a Status body when there is one.
std::string http_failure(const Response& r) {
  std::string out = "HTTP " + std::to_string(r.status);
  const json status = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (status.is_object()) {
    const std::string reason = string_member(status, "reason");
    const std::string message = string_member(status, "message");
    if (!reason.empty()) out += " " + reason;
    if (!message.empty()) out += ": " + message;
  }
  return out;
}

}  // namespace

Expected<std::optional<json>> updated_taints(const json& current, const Taint& taint, bool present) {
  if (!current.is_null() && !current.is_array()) return Error("spec.taints: expected a list, got " + std::string(current.type_name()));
  json out = json::array();
  bool changed = false;
  bool found = false;
  if (current.is_array()) {
    for (size_t i = 0; i < current.size(); ++i) {
      const json& entry = current[i];
      if (!entry.is_object()) return Error("spec.taints[" + std::to_string(i) + "]: expected an object");
      const bool same = string_member(entry, "key") == taint.key && string_member(entry, "effect") == taint.effect;
      if (!same) {
        out.push_back(entry);  // others' taints travel verbatim, timeAdded and all
        continue;
      }
      if (!present) {
        changed = true;  // drop it
        continue;
      }
      if (found) {  // a duplicate key+effect (the API forbids it): keep one
        changed = true;
        continue;
      }
      found = true;
      if (string_member(entry, "value") == taint.value) {
        out.push_back(entry);
      } else {
        out.push_back(to_json(taint));  // as upstream AddOrUpdateTaint: the new taint replaces it
        changed = true;
      }
    }
  }
  if (present && !found) {
    out.push_back(to_json(taint));
    changed = true;
  }
  if (!changed) return std::optional<json>();
  return std::optional<json>(std::move(out));
}

NodeTaints::NodeTaints(ApiClient& client, std::string node_name, NodeTaintsOptions options)
    : client_(client), node_name_(std::move(node_name)), options_(std::move(options)) {}

Status NodeTaints::ensure(const Taint& taint, bool present) {
  const std::string path = "/api/v1/nodes/" + node_name_;
  const std::string what =
      "node " + node_name_ + ": " + (present ? "adding" : "removing") + " taint " + describe(taint);
  std::mt19937 rng(std::random_device{}());
  const int attempts = std::max(1, options_.max_attempts);
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    auto got = client_.get(path);
    if (!got) return Error(what + ": " + got.error());
    if (got->status != 200) return Error(what + ": GET " + path + ": " + http_failure(*got));
    const json node = json::parse(got->body, nullptr, /*allow_exceptions=*/false);
    if (!node.is_object()) return Error(what + ": GET " + path + ": the response is not a JSON object");
    const json metadata = node.value("metadata", json::object());
    const std::string resource_version = metadata.is_object() ? string_member(metadata, "resourceVersion") : "";
    if (resource_version.empty()) return Error(what + ": the Node has no metadata.resourceVersion");
    json current = nullptr;
    if (const auto spec = node.find("spec"); spec != node.end() && spec->is_object()) {
      current = spec->value("taints", json(nullptr));
    }
    auto updated = updated_taints(current, taint, present);
    if (!updated) return Error(what + ": " + updated.error());
    if (!updated->has_value()) return {};  // already as wanted: no PATCH

    // The full list replaces spec.taints; resourceVersion makes the PATCH conditional.
    const json patch = {{"metadata", {{"resourceVersion", resource_version}}}, {"spec", {{"taints", **updated}}}};
    auto patched = client_.patch(path, "application/strategic-merge-patch+json", patch.dump());
    if (!patched) return Error(what + ": " + patched.error());
    if (patched->status == 200 || patched->status == 201) {
      if (log::v(2)) spdlog::info("{}: done", what);
      return {};
    }
    if (patched->status != 409) return Error(what + ": PATCH " + path + ": " + http_failure(*patched));
    if (attempt == attempts) break;
    // Jitter 1.0 (wait.Jitter): [backoff, 2*backoff), so competing writers spread out.
    const auto base = options_.conflict_backoff.count();
    const auto delay = std::chrono::milliseconds(
        base + std::uniform_int_distribution<long long>(0, std::max<long long>(0, base - 1))(rng));
    if (log::v(4)) spdlog::info("{}: the Node changed meanwhile (409), re-reading in {} ms", what, delay.count());
    if (options_.sleep) {
      options_.sleep(delay);
    } else {
      std::this_thread::sleep_for(delay);
    }
  }
  return Error(what + ": gave up after " + std::to_string(attempts) +
               " attempts: the Node kept changing between read and update (HTTP 409 Conflict)");
}

}  // namespace kproxy::k8s
