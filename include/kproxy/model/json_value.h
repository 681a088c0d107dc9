// A read-only JSON value as the model reads it: the fast path for API objects that arrive as
// text (LIST items, WATCH events), and a wrapper for values that are already nlohmann trees
// (manifests, tests).
//
//   auto item = kproxy::model::JsonValue::parse(text);   // one LIST item's bytes
//   if (!item) return Error("an item is not valid JSON");
//   auto result = kproxy::model::parse_service(*item);
//
// Text is parsed with simdjson into a parser reused by the calling thread, so parsing an
// object allocates almost nothing and strings are views into the parser's buffer. Text that
// simdjson refuses is parsed again with nlohmann, which then either accepts it (inputs only
// nlohmann reads: integers beyond 64 bits, a BOM, a NUL ending the text) or supplies the
// error message; so what is accepted, and every rejection, is the same as with nlohmann
// alone (docs/model.md, "JSON semantics").
//
// A JsonValue shares ownership of its document: copies and members keep it alive. It is
// immutable and may be read from any thread, but not destroyed concurrently with a copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "kproxy/status.h"

namespace kproxy::model {

namespace detail {
struct JsonValueAccess;
}

class JsonValue {
 public:
  // Absent: no value.
  JsonValue() noexcept = default;
  // Takes an nlohmann tree (moved in, so no copy when the caller is done with it). Implicit,
  // so that a tree can be passed where a JsonValue is expected (manifests, tests).
  JsonValue(nlohmann::json value);  // NOLINT(google-explicit-constructor)

  // Parses the text of one JSON value. On failure, the error is nlohmann's message for the
  // same text. Never throws.
  static Expected<JsonValue> parse(std::string_view text) noexcept;

  bool present() const { return backend_ != Backend::kAbsent; }
  bool is_object() const;
  // A member of this object: absent when this is not an object, when the member is missing
  // and when it is null (Go's decoder reads both as the zero value). With duplicate keys the
  // last one counts, as in Go's decoder and nlohmann.
  JsonValue member(std::string_view name) const;
  // The value when it is a string / an integer that fits int64; nullopt otherwise.
  std::optional<std::string_view> string() const;
  std::optional<std::int64_t> integer() const;

 private:
  friend struct detail::JsonValueAccess;
  enum class Backend : std::uint8_t { kAbsent, kNlohmann, kSimdjson };

  std::shared_ptr<const void> owner_;  // the document: a leased simdjson parser, or an nlohmann tree
  const nlohmann::json* tree_ = nullptr;  // kNlohmann
  // kSimdjson: a simdjson::dom::element (a document pointer and a tape index), stored as bytes
  // so that this header does not include simdjson.h; json_value.cc checks size and alignment.
  alignas(8) unsigned char element_[16] = {};
  Backend backend_ = Backend::kAbsent;
};

}  // namespace kproxy::model
