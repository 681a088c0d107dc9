#include "kproxy/k8s/list_stream.h"

namespace kproxy::k8s {
namespace {

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

// True when `text` ends with `"items"` followed by optional whitespace and ':' (and
// optional whitespace): the '[' that follows opens the items array.
bool ends_with_items_key(std::string_view text) {
  std::size_t i = text.size();
  while (i > 0 && is_space(text[i - 1])) --i;
  if (i == 0 || text[i - 1] != ':') return false;
  --i;
  while (i > 0 && is_space(text[i - 1])) --i;
  constexpr std::string_view kKey = "\"items\"";
  return i >= kKey.size() && text.substr(i - kKey.size(), kKey.size()) == kKey;
}

}  // namespace

Status ListStreamParser::feed(std::string_view chunk, const std::function<Status(std::string_view)>& on_item) {
  std::size_t item_start = 0;  // where the current item began in this chunk (when in_item_)
  std::size_t env_start = 0;   // where envelope bytes began in this chunk (when outside items)
  auto flush_envelope = [&](std::size_t end) -> Status {
    if (end > env_start) {
      envelope_.append(chunk.substr(env_start, end - env_start));
      if (envelope_.size() > kMaxEnvelopeBytes) return Error("list response envelope larger than 1 MiB");
    }
    return {};
  };

  for (std::size_t i = 0; i < chunk.size(); ++i) {
    const char c = chunk[i];
    if (done_) {
      if (!is_space(c)) return Error("list response: data after the end of the JSON object");
      continue;
    }
    if (in_string_) {
      if (escape_) {
        escape_ = false;
      } else if (c == '\\') {
        escape_ = true;
      } else if (c == '"') {
        in_string_ = false;
      }
      continue;
    }
    if (in_items_ && !in_item_) {
      // Between items, at depth 2: whitespace, ',' or the closing ']'.
      if (is_space(c) || c == ',') continue;
      if (c == ']') {
        in_items_ = false;
        --depth_;
        env_start = i;  // "]" goes back into the envelope, closing the emptied array
        continue;
      }
      // The API's lists hold objects only; anything else is not a list response.
      if (c != '{') return Error("list response: an item of \"items\" is not a JSON object");
      in_item_ = true;
      item_start = i;
      item_.clear();
    }
    switch (c) {
      case '"':
        in_string_ = true;
        break;
      case '{':
      case '[':
        if (depth_ == 0 && c != '{') return Error("list response is not a JSON object");
        if (depth_ == 1 && c == '[' && !in_items_) {
          if (Status s = flush_envelope(i); !s.ok()) return s;
          env_start = i;
          if (ends_with_items_key(envelope_)) {
            envelope_ += '[';
            in_items_ = true;
            ++depth_;
            continue;
          }
        }
        ++depth_;
        break;
      case '}':
      case ']':
        if (depth_ == 0) return Error("list response: unbalanced JSON");
        --depth_;
        if (depth_ == 0) done_ = true;
        break;
      default:
        break;
    }
    if (in_item_ && depth_ == 2) {
      // Back at the array's depth: that was the item's closing '}'.
      if (c == '}') {
        std::string_view text;
        if (item_.empty()) {
          text = chunk.substr(item_start, i + 1 - item_start);
        } else {
          item_.append(chunk.substr(item_start, i + 1 - item_start));
          text = item_;
        }
        if (text.size() > max_item_bytes_) return Error("list item larger than " + std::to_string(max_item_bytes_) + " bytes");
        in_item_ = false;
        if (Status s = on_item(text); !s.ok()) return s;
        item_.clear();
      }
    }
  }
  if (in_item_) {
    item_.append(chunk.substr(item_start));
    if (item_.size() > max_item_bytes_) return Error("list item larger than " + std::to_string(max_item_bytes_) + " bytes");
  } else if (!in_items_) {
    if (Status s = flush_envelope(chunk.size()); !s.ok()) return s;
  }
  return {};
}

Expected<nlohmann::json> ListStreamParser::finish() {
  if (!done_) return Error("list response ended before the JSON object was complete");
  nlohmann::json envelope = nlohmann::json::parse(envelope_, nullptr, false);
  if (envelope.is_discarded() || !envelope.is_object()) return Error("list response envelope is not valid JSON");
  return envelope;
}

}  // namespace kproxy::k8s
