#include "kproxy/yaml_json.h"

#include <charconv>
#include <cmath>
#include <string>

#include <yaml-cpp/yaml.h>

namespace kproxy {
namespace {

// Nesting deeper than this is refused rather than risking the stack on hostile input.
constexpr int kMaxDepth = 64;

bool digit(char c) { return c >= '0' && c <= '9'; }

// [-+]?[0-9]+
bool is_int(std::string_view s) {
  std::size_t i = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  if (i == s.size()) return false;
  for (; i < s.size(); ++i) {
    if (!digit(s[i])) return false;
  }
  return true;
}

// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool is_float(std::string_view s) {
  std::size_t i = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  std::size_t int_digits = 0, frac_digits = 0;
  while (i < s.size() && digit(s[i])) ++i, ++int_digits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && digit(s[i])) ++i, ++frac_digits;
  }
  if (int_digits == 0 && frac_digits == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    std::size_t exp_digits = 0;
    while (i < s.size() && digit(s[i])) ++i, ++exp_digits;
    if (exp_digits == 0) return false;
  }
  return i == s.size();
}

// YAML 1.2 core schema, which is what sigs.k8s.io/yaml (go-yaml) resolves for the values
// that occur in Kubernetes manifests and KubeProxyConfiguration.
nlohmann::json plain_scalar(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  if (is_int(s)) {
    const char* begin = s.data() + (s[0] == '+' ? 1 : 0);
    if (s[0] == '-') {
      std::int64_t v = 0;
      auto [p, ec] = std::from_chars(begin, s.data() + s.size(), v);
      if (ec == std::errc() && p == s.data() + s.size()) return v;
    } else {
      std::uint64_t v = 0;
      auto [p, ec] = std::from_chars(begin, s.data() + s.size(), v);
      if (ec == std::errc() && p == s.data() + s.size()) {
        if (v <= static_cast<std::uint64_t>(INT64_MAX)) return static_cast<std::int64_t>(v);
        return v;
      }
    }
    return s;  // out of range for 64 bits: keep the text, the consumer reports it
  }
  if (is_float(s)) {
    double d = std::strtod(s.c_str(), nullptr);
    if (std::isfinite(d)) return d;
  }
  return s;
}

Expected<nlohmann::json> convert(const YAML::Node& node, int depth) {
  if (depth > kMaxDepth) return Error("document nested deeper than " + std::to_string(kMaxDepth) + " levels");
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return nlohmann::json(nullptr);
    case YAML::NodeType::Scalar:
      // Tag "!" marks a quoted (non-plain) scalar: always a string.
      if (node.Tag() == "!") return nlohmann::json(node.Scalar());
      return plain_scalar(node.Scalar());
    case YAML::NodeType::Sequence: {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& item : node) {
        auto v = convert(item, depth + 1);
        if (!v) return v;
        out.push_back(std::move(*v));
      }
      return out;
    }
    case YAML::NodeType::Map: {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& kv : node) {
        if (!kv.first.IsScalar()) {
          return Error("line " + std::to_string(kv.first.Mark().line + 1) + ": mapping keys must be scalars");
        }
        auto v = convert(kv.second, depth + 1);
        if (!v) return v;
        out[kv.first.Scalar()] = std::move(*v);
      }
      return out;
    }
  }
  return nlohmann::json(nullptr);
}

}  // namespace

Expected<std::vector<nlohmann::json>> yaml_documents_to_json(std::string_view text) {
  std::vector<nlohmann::json> out;
  try {
    for (const auto& doc : YAML::LoadAll(std::string(text))) {
      if (doc.IsNull()) continue;
      auto v = convert(doc, 0);
      if (!v) return Error(v.error());
      out.push_back(std::move(*v));
    }
  } catch (const YAML::Exception& e) {
    // e.mark is 0-based; e.msg has no position.
    return Error("YAML syntax error at line " + std::to_string(e.mark.line + 1) + ", column " +
                 std::to_string(e.mark.column + 1) + ": " + e.msg);
  } catch (const std::exception& e) {
    return Error(std::string("YAML error: ") + e.what());
  }
  return out;
}

}  // namespace kproxy
