#include "json_reader.h"

#include <cstdio>
#include <iterator>
#include <limits>

#include "kproxy/model/parse.h"

namespace kproxy::model::detail {
namespace {

// The length of the well-formed UTF-8 sequence at text[i] (RFC 3629, no overlong forms, no
// surrogates), or 0. Stores its code point in cp.
std::size_t utf8_sequence(std::string_view text, std::size_t i, char32_t& cp) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char b0 = byte(i);
  std::size_t len = 0;
  unsigned char lo = 0x80, hi = 0xbf;
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    len = 2;
    cp = b0 & 0x1f;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    len = 3;
    cp = b0 & 0x0f;
    if (b0 == 0xe0) lo = 0xa0;
    if (b0 == 0xed) hi = 0x9f;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    len = 4;
    cp = b0 & 0x07;
    if (b0 == 0xf0) lo = 0x90;
    if (b0 == 0xf4) hi = 0x8f;
  } else {
    return 0;
  }
  if (i + len > text.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    const unsigned char b = byte(i + k);
    if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xbf)) return 0;
    cp = (cp << 6) | (b & 0x3f);
  }
  return len;
}

// Characters that print as nothing or reorder text: C1 controls, zero-width and bidi
// controls, line/paragraph separators, BOM. Escaped so a log line shows what is really there.
bool is_invisible(char32_t cp) {
  return (cp >= 0x80 && cp <= 0x9f) || (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202e) ||
         (cp >= 0x2060 && cp <= 0x2069) || cp == 0xfeff;
}

std::string hex_byte(unsigned char b) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "\\x%02x", b);
  return buf;
}

}  // namespace

void Reporter::report(Severity severity, std::string field, const ValueRef& value, RejectReason reason,
                      std::string detail) {
  if (full()) {
    count_unkept(severity);
    return;
  }
  Rejection r;
  r.kind = kind_;
  r.field = std::move(field);
  r.value = value.present() ? render_value(value) : std::string();
  r.reason = reason;
  r.detail = std::move(detail);
  rejections_.push_back(std::move(r));
  if (severity == Severity::kRefuse) refused_ = true;
}

std::string escape_text(std::string_view text, std::size_t max_chars) {
  std::string out;
  std::size_t chars = 0;
  for (std::size_t i = 0; i < text.size(); ++chars) {
    if (chars == max_chars) {
      out += "...";
      break;
    }
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
          if (c < 0x20 || c == 0x7f) {
            out += hex_byte(c);
          } else {
            out += static_cast<char>(c);
          }
      }
      ++i;
      continue;
    }
    char32_t cp = 0;
    const std::size_t len = utf8_sequence(text, i, cp);
    if (len == 0) {
      out += hex_byte(c);
      ++i;
    } else if (is_invisible(cp)) {
      char buf[16];
      std::snprintf(buf, sizeof buf, "\\u{%04x}", static_cast<unsigned>(cp));
      out += buf;
      i += len;
    } else {
      out.append(text.substr(i, len));
      i += len;
    }
  }
  return out;
}

ValueRef::Type ValueRef::type() const {
  if (simd_) {
    switch (element_.type()) {
      case simdjson::dom::element_type::ARRAY: return Type::kArray;
      case simdjson::dom::element_type::OBJECT: return Type::kObject;
      case simdjson::dom::element_type::INT64: return Type::kInteger;
      // simdjson reads an integer as uint64 only when it does not fit int64.
      case simdjson::dom::element_type::UINT64: return Type::kBigInteger;
      case simdjson::dom::element_type::DOUBLE: return Type::kFloat;
      case simdjson::dom::element_type::STRING: return Type::kString;
      case simdjson::dom::element_type::BOOL: return Type::kBool;
      case simdjson::dom::element_type::NULL_VALUE: return Type::kNull;
    }
    return Type::kOther;
  }
  if (tree_ == nullptr) return Type::kAbsent;
  switch (tree_->type()) {
    case Json::value_t::null: return Type::kNull;
    case Json::value_t::boolean: return Type::kBool;
    case Json::value_t::number_integer: return Type::kInteger;
    case Json::value_t::number_unsigned:
      return tree_->get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())
                 ? Type::kBigInteger
                 : Type::kInteger;
    case Json::value_t::number_float: return Type::kFloat;
    case Json::value_t::string: return Type::kString;
    case Json::value_t::array: return Type::kArray;
    case Json::value_t::object: return Type::kObject;
    default: return Type::kOther;
  }
}

std::string_view ValueRef::string_value() const {
  if (simd_) return element_.get_string().value_unsafe();
  return tree_->get_ref<const std::string&>();
}

std::int64_t ValueRef::integer_value() const {
  if (simd_) return element_.get_int64().value_unsafe();
  return tree_->is_number_unsigned() ? static_cast<std::int64_t>(tree_->get<std::uint64_t>())
                                     : tree_->get<std::int64_t>();
}

double ValueRef::float_value() const {
  if (simd_) return element_.get_double().value_unsafe();
  return tree_->get<double>();
}

bool ValueRef::bool_value() const {
  if (simd_) return element_.get_bool().value_unsafe();
  return tree_->get<bool>();
}

std::size_t ValueRef::size() const {
  if (!simd_) return tree_ != nullptr ? tree_->size() : 0;
  if (element_.is_array()) {
    simdjson::dom::array a = element_.get_array().value_unsafe();
    std::size_t n = a.size();
    // The tape's count saturates at 0xffffff; count such a list by walking it.
    if (n == 0xffffff) n = static_cast<std::size_t>(std::distance(a.begin(), a.end()));
    return n;
  }
  if (element_.is_object()) {
    simdjson::dom::object o = element_.get_object().value_unsafe();
    std::size_t n = o.size();
    if (n == 0xffffff) {
      n = 0;
      for (auto it = o.begin(); it != o.end(); ++it) ++n;
    }
    return n;
  }
  return 0;
}

ValueRef ValueRef::find(std::string_view name) const {
  if (!simd_) {
    if (tree_ == nullptr || !tree_->is_object()) return {};
    auto it = tree_->find(name);
    return it == tree_->end() ? ValueRef() : ValueRef(*it);
  }
  simdjson::dom::object object;
  if (element_.get_object().get(object) != simdjson::SUCCESS) return {};
  // The last of duplicate keys counts, as in Go's decoder and nlohmann: look at every key.
  ValueRef found;
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (it.key() == name) found = ValueRef(it.value());
  }
  return found;
}

std::string render_value(const ValueRef& value) {
  using Type = ValueRef::Type;
  switch (value.type()) {
    case Type::kString:
      return "\"" + escape_text(value.string_value(), kMaxRejectedValueChars) + "\"";
    case Type::kArray:
      return value.size() == 0 ? "[]" : "[...]";
    case Type::kObject:
      return value.size() == 0 ? "{}" : "{...}";
    case Type::kOther:
      return "(discarded)";
    case Type::kAbsent:
      return {};
    default:
      break;
  }
  // Scalars: null, booleans and numbers print short and cannot hold invalid UTF-8. They
  // print as nlohmann prints them (floats in its shortest round-trip form, "80.0").
  if (!value.simdjson()) return value.tree()->dump();
  switch (value.type()) {
    case Type::kNull: return "null";
    case Type::kBool: return value.bool_value() ? "true" : "false";
    case Type::kInteger: return std::to_string(value.integer_value());
    case Type::kBigInteger: return std::to_string(value.element().get_uint64().value_unsafe());
    case Type::kFloat: return Json(value.float_value()).dump();
    default: return {};
  }
}

std::string Field::path() const {
  if (step_ == Step::kRoot) return {};
  std::string out = parent_->path();
  switch (step_) {
    case Step::kMember:
      if (!out.empty()) out += '.';
      out += name_;
      break;
    case Step::kIndex:
      out += '[' + std::to_string(index_) + ']';
      break;
    case Step::kKey:
      out += '[' + escape_text(name_, kMaxNameChars) + ']';
      break;
    case Step::kRoot:
      break;
  }
  return out;
}

Field Field::member(std::string_view name) const& { return Field(*this, value_.find(name), Step::kMember, name, 0); }

Field Field::key(std::string_view name) const& { return Field(*this, value_.find(name), Step::kKey, name, 0); }

Field Field::at(std::size_t i) const& {
  if (!holds_array() || i >= value_.size()) return Field(*this, ValueRef(), Step::kIndex, {}, i);
  if (!value_.simdjson()) return Field(*this, value_.tree_element(i), Step::kIndex, {}, i);
  if (cursor_index_ == kNoCursor || i < cursor_index_) {
    cursor_ = value_.element().get_array().value_unsafe().begin();
    cursor_index_ = 0;
  }
  for (; cursor_index_ < i; ++cursor_index_) ++cursor_;
  return Field(*this, ValueRef(*cursor_), Step::kIndex, {}, i);
}

bool Reporter::full() const { return rejections_.size() >= kMaxRejectionsPerObject; }

void Field::fail(Severity severity, RejectReason reason, std::string detail) const {
  if (reporter_->full()) {
    reporter_->count_unkept(severity);
    return;
  }
  reporter_->report(severity, path(), value_, reason, std::move(detail));
}

std::optional<std::string_view> Field::string(Severity severity) const {
  if (!present()) return std::nullopt;
  if (!holds_string()) {
    fail(severity, RejectReason::kWrongType, "must be a string");
    return std::nullopt;
  }
  return value_.string_value();
}

std::optional<std::string_view> Field::required_string(Severity severity) const {
  if (!present()) {
    fail(severity, RejectReason::kMissingField, "is required");
    return std::nullopt;
  }
  auto s = string(severity);
  if (s && s->empty()) {
    fail(severity, RejectReason::kMissingField, "is required");
    return std::nullopt;
  }
  return s;
}

std::optional<std::int64_t> Field::integer(Severity severity) const {
  if (!present()) return std::nullopt;
  const auto type = value_.type();
  if (type == ValueRef::Type::kBigInteger) {
    fail(severity, RejectReason::kOutOfRange, "is out of range");
    return std::nullopt;
  }
  if (type == ValueRef::Type::kInteger) return value_.integer_value();
  // Go's decoder refuses 80.0 for an int32 field as well.
  fail(severity, RejectReason::kWrongType, "must be an integer");
  return std::nullopt;
}

std::optional<std::int64_t> Field::integer_in(Severity severity, std::int64_t min, std::int64_t max) const {
  auto v = integer(severity);
  if (v && (*v < min || *v > max)) {
    fail(severity, RejectReason::kOutOfRange, "is not in " + std::to_string(min) + ".." + std::to_string(max));
    return std::nullopt;
  }
  return v;
}

std::optional<bool> Field::boolean(Severity severity) const {
  if (!present()) return std::nullopt;
  if (!value_.is(ValueRef::Type::kBool)) {
    fail(severity, RejectReason::kWrongType, "must be true or false");
    return std::nullopt;
  }
  return value_.bool_value();
}

bool Field::is_array(Severity severity) const {
  if (!present()) return false;
  if (!holds_array()) {
    fail(severity, RejectReason::kWrongType, "must be a list");
    return false;
  }
  return true;
}

bool Field::is_object(Severity severity) const {
  if (!present()) return false;
  if (!holds_object()) {
    fail(severity, RejectReason::kWrongType, "must be an object");
    return false;
  }
  return true;
}

std::optional<IpAddress> Field::ip(Severity severity, AddressUse use) const {
  auto text = string(severity);
  if (!text) return std::nullopt;
  if (text->find('%') != std::string_view::npos) {
    fail(severity, RejectReason::kInvalidIp, "is zone-scoped; IPv6 zones are not allowed");
    return std::nullopt;
  }
  auto ip = IpAddress::parse(*text);
  if (!ip) {
    fail(severity, RejectReason::kInvalidIp, "is not a valid IP address");
    return std::nullopt;
  }
  // Go's net.IP treats ::ffff:a.b.c.d as IPv4 (To4), so such a value could pass as either
  // family. kube-proxy's newer validation (KEP-4858) refuses it too.
  if (ip->is_ipv4_mapped()) {
    fail(severity, RejectReason::kForbiddenAddress, "is an IPv4-mapped IPv6 address");
    return std::nullopt;
  }
  if (use == AddressUse::kNotSpecial) {
    // CVE-2021-25737: endpoints (and externalIPs) pointing at the node itself or at
    // link-local services such as cloud metadata (169.254.169.254). ValidateNonSpecialIP and
    // ValidateEndpointIP in pkg/apis/core/validation refuse the same ranges.
    const char* what = nullptr;
    if (ip->is_unspecified()) {
      what = "is the unspecified address";
    } else if (ip->is_loopback()) {
      what = "is a loopback address";
    } else if (ip->is_link_local()) {
      what = "is a link-local address";
    } else if (ip->is_multicast()) {
      what = "is a multicast address";
    }
    if (what != nullptr) {
      fail(severity, RejectReason::kForbiddenAddress, what);
      return std::nullopt;
    }
  }
  return *ip;
}

std::optional<Cidr> Field::cidr(Severity severity, bool trim) const {
  auto text = string(severity);
  if (!text) return std::nullopt;
  std::string_view s = *text;
  if (trim) {
    constexpr std::string_view kSpace = " \t\n\r\v\f";
    const auto first = s.find_first_not_of(kSpace);
    s = first == std::string_view::npos ? std::string_view() : s.substr(first, s.find_last_not_of(kSpace) - first + 1);
  }
  if (s.find('%') != std::string_view::npos) {
    fail(severity, RejectReason::kInvalidIp, "is zone-scoped; IPv6 zones are not allowed");
    return std::nullopt;
  }
  auto cidr = Cidr::parse(s);
  if (!cidr) {
    fail(severity, RejectReason::kInvalidIp, "is not a valid CIDR");
    return std::nullopt;
  }
  if (cidr->network().is_ipv4_mapped() && cidr->prefix_length() >= 96) {
    fail(severity, RejectReason::kForbiddenAddress, "is an IPv4-mapped IPv6 range");
    return std::nullopt;
  }
  return *cidr;
}

std::optional<Timestamp> Field::timestamp(Severity severity) const {
  auto text = string(severity);
  if (!text) return std::nullopt;
  auto t = parse_rfc3339(*text);
  if (!t) {
    fail(severity, RejectReason::kMalformed, "is not an RFC 3339 time");
    return std::nullopt;
  }
  return *t;
}

}  // namespace kproxy::model::detail
