// Helpers shared by the model tests: fixtures, small valid objects to edit, and checks on
// rejections.
#pragma once

#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "kproxy/model/parse.h"

namespace kproxy::model::testing {

using nlohmann::json;

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// test/fixtures/model/<name>: realistic objects.
inline std::string model_fixture_text(std::string_view name) {
  return read_file(std::string(KPROXY_FIXTURES_DIR) + "/model/" + std::string(name));
}
inline json model_fixture(std::string_view name) { return json::parse(model_fixture_text(name)); }

// test/fixtures/k8s-testdata/<name>: Kubernetes' fuzzed round-trip objects.
inline std::string k8s_fixture_text(std::string_view name) {
  return read_file(std::string(KPROXY_SHARED_TESTDATA_DIR) + "/" + std::string(name));
}

// Small valid objects that table-driven tests edit with json_pointer assignments or an
// RFC 7386 merge patch (null deletes a member).
inline json base_service() {
  return json::parse(R"({
    "apiVersion": "v1", "kind": "Service",
    "metadata": {"name": "web", "namespace": "default", "uid": "u-1", "resourceVersion": "7"},
    "spec": {
      "type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "ipFamilies": ["IPv4"],
      "ports": [{"name": "http", "port": 80, "protocol": "TCP"}, {"name": "sig", "port": 3868, "protocol": "SCTP"}]
    }
  })");
}

inline json base_slice() {
  return json::parse(R"({
    "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
    "metadata": {"name": "web-abc12", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
    "addressType": "IPv4",
    "endpoints": [
      {"addresses": ["10.244.1.5"], "conditions": {"ready": true}, "nodeName": "node-a", "zone": "zone-1"},
      {"addresses": ["10.244.2.6"], "conditions": {"ready": true}, "nodeName": "node-b", "zone": "zone-2"}
    ],
    "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "sig", "port": 3868, "protocol": "SCTP"}]
  })");
}

inline json base_node() {
  return json::parse(R"({
    "apiVersion": "v1", "kind": "Node",
    "metadata": {"name": "node-a", "labels": {"topology.kubernetes.io/zone": "zone-1"}},
    "spec": {"podCIDRs": ["10.244.1.0/24"], "taints": [{"key": "a", "effect": "NoSchedule"}]},
    "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.11"}]}
  })");
}

inline json patched(json base, const json& merge_patch) {
  base.merge_patch(merge_patch);
  return base;
}

inline json with(json base, const std::string& pointer, json value) {
  base[json::json_pointer(pointer)] = std::move(value);
  return base;
}

inline const Rejection* find_rejection(const std::vector<Rejection>& rejections, std::string_view field) {
  for (const auto& r : rejections) {
    if (r.field == field) return &r;
  }
  return nullptr;
}

inline std::string describe(const std::vector<Rejection>& rejections) {
  std::string out;
  for (const auto& r : rejections) out += "\n  [" + std::string(to_string(r.reason)) + "] " + r.message();
  return out.empty() ? "\n  (no rejections)" : out;
}

// True when the API field path ("spec.ports[1].protocol", "metadata.labels[a.b/c]") names a
// value in the object (null included). Brackets index arrays and key objects.
inline bool path_exists(const json& root, std::string_view path) {
  const json* at = &root;
  std::size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '.') ++i;
    if (i < path.size() && path[i] == '[') {
      const auto close = path.find(']', i);
      if (close == std::string_view::npos) return false;
      const std::string inner(path.substr(i + 1, close - i - 1));
      if (at->is_array()) {
        std::size_t index = std::stoul(inner);
        if (index >= at->size()) return false;
        at = &(*at)[index];
      } else if (at->is_object()) {
        auto it = at->find(inner);
        if (it == at->end()) return false;
        at = &*it;
      } else {
        return false;
      }
      i = close + 1;
      continue;
    }
    const auto end = path.find_first_of(".[", i);
    const std::string name(path.substr(i, end == std::string_view::npos ? std::string_view::npos : end - i));
    if (!at->is_object()) return false;
    auto it = at->find(name);
    if (it == at->end()) return false;
    at = &*it;
    i = end == std::string_view::npos ? path.size() : end;
  }
  return true;
}

// Every rejection names a field of the object (except whole-input refusals) and reads as a
// sentence that contains that field.
template <typename T>
::testing::AssertionResult rejections_name_their_fields(const ParseResult<T>& result, const json& object) {
  for (const auto& r : result.rejections) {
    if (r.field.empty() && r.reason != RejectReason::kWrongType) {
      return ::testing::AssertionFailure() << "rejection without a field: " << r.message();
    }
    if (r.reason != RejectReason::kMissingField && !r.field.empty() && !path_exists(object, r.field)) {
      return ::testing::AssertionFailure() << "field " << r.field << " does not exist: " << r.message();
    }
    if (r.kind.empty() || r.object.empty() || r.detail.empty() || r.message().find(r.field) == std::string::npos) {
      return ::testing::AssertionFailure() << "incomplete rejection: " << r.message();
    }
  }
  return ::testing::AssertionSuccess();
}

// The same object read from an nlohmann tree and from its text (simdjson, the informers'
// path) gives the same value and byte-identical rejections.
template <typename T>
::testing::AssertionResult same_result(const ParseResult<T>& tree, const ParseResult<T>& text) {
  if (tree.value != text.value) return ::testing::AssertionFailure() << "values differ";
  if (tree.more_rejections != text.more_rejections) return ::testing::AssertionFailure() << "counts differ";
  if (tree.rejections != text.rejections) {
    auto failure = ::testing::AssertionFailure() << "rejections differ:";
    for (const auto& r : tree.rejections) failure << "\n  tree: " << r.message();
    for (const auto& r : text.rejections) failure << "\n  text: " << r.message();
    return failure;
  }
  return ::testing::AssertionSuccess();
}


}  // namespace kproxy::model::testing
