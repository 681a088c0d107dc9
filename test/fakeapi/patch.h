// PATCH bodies applied to a stored object the way the apiserver's patch handler does
// (apiserver/pkg/endpoints/handlers/patch.go):
//   application/json-patch+json           RFC 6902; a failed op (including "test") is 422
//   application/merge-patch+json          RFC 7386
//   application/strategic-merge-patch+json merge patch plus the strategic directives and the
//                                          list merge keys of the served types; lists without a
//                                          merge key (Node spec.taints among them) are replaced
// Server-side apply (application/apply-patch+yaml) is not modelled: 415.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fakeapi/resources.h"

namespace kproxy::fakeapi {

enum class PatchType { kJson, kMerge, kStrategicMerge };

// From the request's Content-Type (parameters such as "; charset=utf-8" ignored).
std::optional<PatchType> patch_type_from_content_type(std::string_view content_type);

struct PatchResult {
  bool ok = false;
  nlohmann::json object;  // when ok
  int code = 0;           // HTTP status when not ok: 400 (undecodable patch) or 422 (cannot apply)
  std::string message;
};

PatchResult apply_patch(const ResourceType& type, PatchType patch_type, const nlohmann::json& original,
                        std::string_view body);

}  // namespace kproxy::fakeapi
