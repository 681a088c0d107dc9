// The text entry points: bounded input, then the JSON entry points.
#include "kproxy/model/parse.h"

#include "object_reader.h"

namespace kproxy::model {
namespace detail {
namespace {

Rejection input_rejection(std::string_view kind, RejectReason reason, std::string detail) {
  Rejection r;
  r.kind = kind;
  r.object = "(unknown)";
  r.reason = reason;
  r.detail = std::move(detail);
  return r;
}

// The deepest nesting of arrays and objects in JSON text, counted without parsing (brackets
// inside strings do not count). nlohmann's parser is iterative, but a value that deep would
// still cost time in every later walk; refusing it up front is cheap.
int nesting_depth(std::string_view text) {
  int depth = 0, deepest = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > deepest) deepest = depth;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

}  // namespace

std::optional<JsonValue> parse_text(std::string_view kind, std::string_view text, std::vector<Rejection>& out) {
  if (text.size() > kMaxObjectBytes) {
    out.push_back(input_rejection(kind, RejectReason::kTooLarge,
                                  "input of " + std::to_string(text.size()) + " bytes is over the " +
                                      std::to_string(kMaxObjectBytes) + "-byte limit"));
    return std::nullopt;
  }
  if (nesting_depth(text) > kMaxJsonDepth) {
    out.push_back(input_rejection(kind, RejectReason::kTooLarge,
                                  "input is nested deeper than " + std::to_string(kMaxJsonDepth) + " levels"));
    return std::nullopt;
  }
  auto value = JsonValue::parse(text);
  if (!value) {
    // nlohmann's message: "[json.exception.parse_error.101] parse error at line 1, column 2:
    // ..."; it quotes at most a few bytes of the input, so it is safe to pass on once escaped.
    out.push_back(input_rejection(kind, RejectReason::kMalformed,
                                  "input is not JSON: " + escape_text(value.error(), 160)));
    return std::nullopt;
  }
  return std::move(*value);
}

template <typename T, typename Fn>
ParseResult<T> parse_json_text(std::string_view kind, std::string_view text, Fn&& parse_json) noexcept {
  return guarded<T>(kind, [&] {
    ParseResult<T> result;
    auto json = parse_text(kind, text, result.rejections);
    if (!json) return result;
    return parse_json(*json);
  });
}

}  // namespace detail

ParseResult<Service> parse_service_json(std::string_view text) noexcept {
  return detail::parse_json_text<Service>("Service", text, [](const JsonValue& j) { return parse_service(j); });
}

ParseResult<EndpointSlice> parse_endpoint_slice_json(std::string_view text) noexcept {
  return detail::parse_json_text<EndpointSlice>("EndpointSlice", text,
                                                [](const JsonValue& j) { return parse_endpoint_slice(j); });
}

ParseResult<Node> parse_node_json(std::string_view text) noexcept {
  return detail::parse_json_text<Node>("Node", text, [](const JsonValue& j) { return parse_node(j); });
}

}  // namespace kproxy::model
