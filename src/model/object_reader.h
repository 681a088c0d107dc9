// Internal to kproxy_model: the parts every kind shares (kind/apiVersion, metadata, port
// protocols) and the guarded entry points.
#pragma once

#include <exception>
#include <new>
#include <optional>
#include <string_view>

#include "json_reader.h"
#include "kproxy/model/object_meta.h"
#include "kproxy/model/protocol.h"

namespace kproxy::model::detail {

struct KindInfo {
  std::string_view kind;         // "Service"
  std::string_view api_version;  // "v1"
  bool namespaced;
  bool (*valid_name)(std::string_view);
  std::string_view name_rule;  // "a DNS-1123 label", for the rejection detail
};

// Checks that the value is an object of this kind (kind and apiVersion are optional: LIST
// items omit them) and reads its metadata. Sets the reporter's object name. Problems that
// make the object unusable (no name, a malformed namespace) are reported as kRefuse.
ObjectMeta read_object_meta(Reporter& reporter, const Field& root, const KindInfo& info);

// "TCP" | "UDP" | "SCTP"; absent is TCP, the API default (pkg/apis/core/v1/defaults.go).
std::optional<Protocol> read_protocol(const Field& field, Severity severity);

// Runs a parser so that no exception escapes: nlohmann's type errors (which the Field
// checks should make impossible) and std::bad_alloc become one kMalformed rejection.
template <typename T, typename Fn>
ParseResult<T> guarded(std::string_view kind, Fn&& parse) noexcept {
  try {
    return parse();
  } catch (const std::exception& e) {
    ParseResult<T> result;
    try {
      Rejection r;
      r.kind = kind;
      r.object = "(unknown)";
      r.reason = RejectReason::kMalformed;
      r.detail = std::string("could not be read: ") + e.what();
      result.rejections.push_back(std::move(r));
    } catch (...) {
      // Out of memory while reporting: return the bare refusal.
    }
    return result;
  }
}

// Size and nesting checks, then JsonValue::parse; an empty optional (and a rejection in `out`)
// when the text cannot be parsed.
std::optional<JsonValue> parse_text(std::string_view kind, std::string_view text, std::vector<Rejection>& out);

}  // namespace kproxy::model::detail
