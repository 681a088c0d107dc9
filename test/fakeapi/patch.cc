#include "fakeapi/patch.h"

#include <algorithm>
#include <map>

namespace kproxy::fakeapi {
namespace {

using json = nlohmann::json;

// patchMergeKey / patchStrategy tags of the list fields of the served types that have them
// (api/core/v1/types.go, apimachinery/pkg/apis/meta/v1/types.go). A key of "" marks a list of
// scalars merged as a set. Lists not named here are replaced whole, as upstream; in
// particular NodeSpec.Taints has no merge key.
const std::map<std::string, std::string>& merge_keys(const ResourceType& type) {
  static const std::map<std::string, std::string> kMeta = {
      {"metadata.ownerReferences", "uid"}, {"metadata.finalizers", ""}};
  static const std::map<std::string, std::string> kService = {
      {"metadata.ownerReferences", "uid"}, {"metadata.finalizers", ""}, {"spec.ports", "port"},
      {"status.conditions", "type"}};
  static const std::map<std::string, std::string> kNode = {
      {"metadata.ownerReferences", "uid"}, {"metadata.finalizers", ""}, {"spec.podCIDRs", ""},
      {"status.addresses", "type"}, {"status.conditions", "type"}, {"status.volumesAttached", "name"}};
  if (type.name == "services") return kService;
  if (type.name == "nodes") return kNode;
  return kMeta;
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

class Strategic {
 public:
  explicit Strategic(const std::map<std::string, std::string>& keys) : keys_(keys) {}

  // Merges patch map `p` into `target` (both objects) at dotted path `path`.
  void merge_map(json& target, const json& p, const std::string& path) {
    if (auto d = p.find("$patch"); d != p.end() && d->is_string()) {
      if (*d == "replace") {
        json replaced = p;
        strip_directives(replaced);
        target = replaced;
        return;
      }
      if (*d == "delete") {
        target = json::object();
        return;
      }
    }
    if (auto rk = p.find("$retainKeys"); rk != p.end() && rk->is_array() && target.is_object()) {
      for (auto it = target.begin(); it != target.end();) {
        if (std::find(rk->begin(), rk->end(), it.key()) == rk->end()) {
          it = target.erase(it);
        } else {
          ++it;
        }
      }
    }
    if (!target.is_object()) target = json::object();
    for (auto it = p.begin(); it != p.end(); ++it) {
      const std::string& key = it.key();
      if (key == "$patch" || key == "$retainKeys" || starts_with(key, "$setElementOrder/")) continue;
      if (starts_with(key, "$deleteFromPrimitiveList/")) {
        std::string field = key.substr(std::string("$deleteFromPrimitiveList/").size());
        if (auto t = target.find(field); t != target.end() && t->is_array() && it->is_array()) {
          json kept = json::array();
          for (const auto& v : *t) {
            if (std::find(it->begin(), it->end(), v) == it->end()) kept.push_back(v);
          }
          *t = kept;
        }
        continue;
      }
      std::string child = path.empty() ? key : path + "." + key;
      const json& value = *it;
      if (value.is_null()) {
        target.erase(key);
      } else if (value.is_object()) {
        json& t = target[key];
        if (!t.is_object()) t = json::object();
        merge_map(t, value, child);
      } else if (value.is_array()) {
        auto mk = keys_.find(child);
        if (mk == keys_.end() || !target.contains(key) || !target[key].is_array()) {
          json replaced = value;
          for (auto& e : replaced) strip_directives(e);
          target[key] = replaced;
        } else {
          merge_list(target[key], value, mk->second, child);
        }
      } else {
        target[key] = value;
      }
    }
  }

 private:
  void merge_list(json& target, const json& p, const std::string& merge_key, const std::string& path) {
    if (merge_key.empty()) {  // a set of scalars
      for (const auto& v : p) {
        if (std::find(target.begin(), target.end(), v) == target.end()) target.push_back(v);
      }
      return;
    }
    for (const auto& e : p) {
      if (!e.is_object() || !e.contains(merge_key)) {
        target.push_back(e);
        continue;
      }
      auto same = std::find_if(target.begin(), target.end(), [&](const json& t) {
        return t.is_object() && t.contains(merge_key) && t[merge_key] == e[merge_key];
      });
      bool del = e.contains("$patch") && e["$patch"] == "delete";
      if (del) {
        if (same != target.end()) target.erase(same);
      } else if (same != target.end()) {
        merge_map(*same, e, path);
      } else {
        json added = e;
        strip_directives(added);
        target.push_back(added);
      }
    }
  }

  static void strip_directives(json& v) {
    if (!v.is_object()) return;
    for (auto it = v.begin(); it != v.end();) {
      if (starts_with(it.key(), "$")) {
        it = v.erase(it);
      } else {
        strip_directives(*it);
        ++it;
      }
    }
  }

  const std::map<std::string, std::string>& keys_;
};

}  // namespace

std::optional<PatchType> patch_type_from_content_type(std::string_view content_type) {
  auto semi = content_type.find(';');
  std::string_view base = content_type.substr(0, semi);
  while (!base.empty() && base.back() == ' ') base.remove_suffix(1);
  if (base == "application/json-patch+json") return PatchType::kJson;
  if (base == "application/merge-patch+json") return PatchType::kMerge;
  if (base == "application/strategic-merge-patch+json") return PatchType::kStrategicMerge;
  return std::nullopt;
}

PatchResult apply_patch(const ResourceType& type, PatchType patch_type, const json& original, std::string_view body) {
  PatchResult r;
  json patch = json::parse(body, nullptr, false);
  if (patch.is_discarded()) {
    r.code = 400;
    r.message = "error decoding patch: invalid JSON";
    return r;
  }
  try {
    switch (patch_type) {
      case PatchType::kJson:
        if (!patch.is_array()) {
          r.code = 400;
          r.message = "json: cannot unmarshal object into Go value of type jsonpatch.Patch";
          return r;
        }
        r.object = original.patch(patch);
        break;
      case PatchType::kMerge:
        r.object = original;
        r.object.merge_patch(patch);
        break;
      case PatchType::kStrategicMerge: {
        if (!patch.is_object()) {
          r.code = 400;
          r.message = "json: cannot unmarshal array into Go value of type map[string]interface {}";
          return r;
        }
        r.object = original;
        Strategic(merge_keys(type)).merge_map(r.object, patch, "");
        break;
      }
    }
  } catch (const json::exception& e) {
    // jsonpatch.Apply errors become 422 (patch.go, applyJSPatch).
    r.code = 422;
    r.message = e.what();
    return r;
  }
  r.ok = true;
  return r;
}

}  // namespace kproxy::fakeapi
