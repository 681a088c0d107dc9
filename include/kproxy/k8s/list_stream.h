// Splits a LIST response body ({"kind":..., "metadata":{...}, "items":[...]}) into its items
// while the bytes arrive, so a 20 MiB list is never held whole, neither as text nor as a
// JSON tree: each item is handed on as soon as its last byte is in, and the envelope (kind,
// metadata with resourceVersion and continue) is kept, without the items, for the end.
//
// It is a byte-level scanner of JSON structure (strings, escapes, nesting), not a parser:
// each item's text is parsed by the caller. It is bounded: an item larger than the limit,
// or an envelope larger than 1 MiB, is an error.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "kproxy/status.h"

namespace kproxy::k8s {

class ListStreamParser {
 public:
  explicit ListStreamParser(std::size_t max_item_bytes) : max_item_bytes_(max_item_bytes) {}

  // Scans `chunk`, calling `on_item` with the complete text of every item of the top-level
  // "items" array. Stops at the first error (from the scan or from on_item).
  Status feed(std::string_view chunk, const std::function<Status(std::string_view item)>& on_item);

  // After the last chunk: the envelope with "items" emptied, or an error if the body was
  // not one complete JSON object.
  Expected<nlohmann::json> finish();

 private:
  static constexpr std::size_t kMaxEnvelopeBytes = 1u << 20;

  std::size_t max_item_bytes_;
  std::string envelope_;     // everything outside the items array
  std::string item_;         // the item being collected
  int depth_ = 0;            // nesting depth of objects/arrays
  bool in_string_ = false;
  bool escape_ = false;
  bool in_items_ = false;    // inside the top-level "items" array (depth 2)
  bool in_item_ = false;     // collecting an item
  bool done_ = false;        // the top-level object closed
};

}  // namespace kproxy::k8s
