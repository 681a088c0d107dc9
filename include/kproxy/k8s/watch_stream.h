// The watch wire format: newline-delimited JSON events over a chunked HTTP body.
//
// Chunk boundaries need not line up with events (kubernetes-api notes §2), so the decoder
// buffers partial lines across feed() calls. It is bounded: a line longer than the maximum
// event size ends the watch with an error instead of growing without limit.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "kproxy/model/json_value.h"
#include "kproxy/status.h"

namespace kproxy::k8s {

class WatchDecoder {
 public:
  explicit WatchDecoder(std::size_t max_event_bytes) : max_event_bytes_(max_event_bytes) {}

  // Splits `chunk` (appended to what is buffered) into complete lines and calls `on_line`
  // for each non-empty one. Stops at the first error, from the size limit or from on_line.
  Status feed(std::string_view chunk, const std::function<Status(std::string_view line)>& on_line);

  // Bytes of an incomplete event still buffered.
  std::size_t pending() const { return buffer_.size(); }

 private:
  std::size_t max_event_bytes_;
  std::string buffer_;
};

enum class WatchEventType { kAdded, kModified, kDeleted, kBookmark, kError };
std::string_view to_string(WatchEventType type);

struct WatchEvent {
  WatchEventType type = WatchEventType::kAdded;
  model::JsonValue object;  // the object, or for kError a metav1.Status
};

// Parses one event line (model::JsonValue::parse, simdjson). Unknown types and malformed
// JSON are errors.
Expected<WatchEvent> parse_watch_event(std::string_view line);

// A metav1.Status as it arrives in an ERROR event or as the body of a failed request.
struct ApiStatus {
  int code = 0;
  std::string reason;   // "Expired", "Gone", "Unauthorized", ...
  std::string message;
};
ApiStatus parse_api_status(const model::JsonValue& status);
ApiStatus parse_api_status(const nlohmann::json& status);
ApiStatus parse_api_status_text(std::string_view body, int http_status);

// 410 with reason Expired or Gone: the resourceVersion is too old, relist (client-go
// isExpiredError; servers <= 1.17 said Gone).
inline bool is_expired(const ApiStatus& s) { return s.code == 410 || s.reason == "Expired" || s.reason == "Gone"; }

}  // namespace kproxy::k8s
