#include "kproxy/k8s/watch_stream.h"

#include <limits>

namespace kproxy::k8s {

Status WatchDecoder::feed(std::string_view chunk, const std::function<Status(std::string_view)>& on_line) {
  while (!chunk.empty()) {
    auto nl = chunk.find('\n');
    std::string_view piece = chunk.substr(0, nl);
    if (buffer_.size() + piece.size() > max_event_bytes_) {
      std::size_t seen = buffer_.size() + piece.size();
      buffer_.clear();
      return Error("watch event larger than " + std::to_string(max_event_bytes_) + " bytes (at least " +
                   std::to_string(seen) + " bytes seen)");
    }
    if (nl == std::string_view::npos) {
      buffer_.append(piece);
      break;
    }
    std::string_view line;
    if (buffer_.empty()) {
      line = piece;  // the common case: a whole event inside one chunk, no copy
    } else {
      buffer_.append(piece);
      line = buffer_;
    }
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty()) {
      Status s = on_line(line);
      if (!s.ok()) {
        buffer_.clear();
        return s;
      }
    }
    buffer_.clear();
    chunk.remove_prefix(nl + 1);
  }
  return {};
}

std::string_view to_string(WatchEventType type) {
  switch (type) {
    case WatchEventType::kAdded: return "ADDED";
    case WatchEventType::kModified: return "MODIFIED";
    case WatchEventType::kDeleted: return "DELETED";
    case WatchEventType::kBookmark: return "BOOKMARK";
    case WatchEventType::kError: return "ERROR";
  }
  return "?";
}

Expected<WatchEvent> parse_watch_event(std::string_view line) {
  auto j = model::JsonValue::parse(line);
  if (!j || !j->is_object()) {
    return Error("malformed watch event: not a JSON object (" + std::to_string(line.size()) + " bytes)");
  }
  auto type = j->member("type").string();
  model::JsonValue object = j->member("object");
  if (!type) return Error("malformed watch event: no \"type\"");
  if (!object.is_object()) return Error("malformed watch event: no \"object\"");
  const std::string_view t = *type;
  WatchEvent e;
  if (t == "ADDED") {
    e.type = WatchEventType::kAdded;
  } else if (t == "MODIFIED") {
    e.type = WatchEventType::kModified;
  } else if (t == "DELETED") {
    e.type = WatchEventType::kDeleted;
  } else if (t == "BOOKMARK") {
    e.type = WatchEventType::kBookmark;
  } else if (t == "ERROR") {
    e.type = WatchEventType::kError;
  } else {
    return Error("malformed watch event: unknown type \"" + std::string(t.substr(0, 32)) + "\"");
  }
  e.object = std::move(object);
  return e;
}

ApiStatus parse_api_status(const model::JsonValue& status) {
  ApiStatus s;
  if (!status.is_object()) return s;
  if (auto code = status.member("code").integer();
      code && *code >= std::numeric_limits<int>::min() && *code <= std::numeric_limits<int>::max()) {
    s.code = static_cast<int>(*code);
  }
  if (auto reason = status.member("reason").string()) s.reason = std::string(*reason);
  if (auto message = status.member("message").string()) s.message = std::string(*message);
  return s;
}

ApiStatus parse_api_status(const nlohmann::json& status) {
  ApiStatus s;
  if (!status.is_object()) return s;
  if (auto it = status.find("code"); it != status.end() && it->is_number_integer()) s.code = it->get<int>();
  if (auto it = status.find("reason"); it != status.end() && it->is_string()) s.reason = it->get<std::string>();
  if (auto it = status.find("message"); it != status.end() && it->is_string()) s.message = it->get<std::string>();
  return s;
}

ApiStatus parse_api_status_text(std::string_view body, int http_status) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  ApiStatus s = parse_api_status(j.is_discarded() ? nlohmann::json() : j);
  if (s.code == 0) s.code = http_status;
  if (s.message.empty()) s.message = std::string(body.substr(0, 200));
  return s;
}

}  // namespace kproxy::k8s
