#include "kproxy/config/values.h"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>

namespace kproxy::config {
namespace {

std::string in_quotes(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

int digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'z') return c - 'a' + 10;
  if (c >= 'A' && c <= 'Z') return c - 'A' + 10;
  return 99;
}

}  // namespace

Expected<bool> parse_go_bool(std::string_view text) {
  if (text == "1" || text == "t" || text == "T" || text == "TRUE" || text == "true" || text == "True") return true;
  if (text == "0" || text == "f" || text == "F" || text == "FALSE" || text == "false" || text == "False") return false;
  return Error("strconv.ParseBool: parsing " + in_quotes(text) + ": invalid syntax");
}

Expected<std::int32_t> parse_go_int32(std::string_view text) {
  const Error syntax("strconv.ParseInt: parsing " + in_quotes(text) + ": invalid syntax");
  std::string_view s = text;
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s.empty()) return syntax;
  int base = 10;
  bool prefixed = false;
  if (s.size() >= 2 && s[0] == '0') {
    const char p = static_cast<char>(s[1] | 0x20);
    if (p == 'x') base = 16, prefixed = true, s.remove_prefix(2);
    else if (p == 'o') base = 8, prefixed = true, s.remove_prefix(2);
    else if (p == 'b') base = 2, prefixed = true, s.remove_prefix(2);
    else base = 8, prefixed = true, s.remove_prefix(1);  // leading 0: octal
  }
  std::int64_t value = 0;
  bool any_digit = false;
  bool last_underscore = false;  // Go allows "0x_1f" but not "1_0", "0x1__f" nor a trailing '_'
  for (char c : s) {
    if (c == '_') {
      if (!prefixed || last_underscore) return syntax;
      last_underscore = true;
      continue;
    }
    const int d = digit_value(c);
    if (d >= base) return syntax;
    value = value * base + d;
    if (value > std::int64_t{1} << 32) value = std::int64_t{1} << 32;  // clamp; reported below
    any_digit = true;
    last_underscore = false;
  }
  if (!any_digit || last_underscore) return syntax;
  if (negative) value = -value;
  if (value < std::numeric_limits<std::int32_t>::min() || value > std::numeric_limits<std::int32_t>::max()) {
    return Error("strconv.ParseInt: parsing " + in_quotes(text) + ": value out of range");
  }
  return static_cast<std::int32_t>(value);
}

Expected<float> parse_go_float32(std::string_view text) {
  const std::string s(text);
  if (s.empty() || s.find_first_not_of("+-0123456789.eE") != std::string::npos) {
    return Error("strconv.ParseFloat: parsing " + in_quotes(text) + ": invalid syntax");
  }
  char* end = nullptr;
  errno = 0;
  const double d = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return Error("strconv.ParseFloat: parsing " + in_quotes(text) + ": invalid syntax");
  if (errno == ERANGE || !std::isfinite(d) || std::fabs(d) > std::numeric_limits<float>::max()) {
    return Error("strconv.ParseFloat: parsing " + in_quotes(text) + ": value out of range");
  }
  return static_cast<float>(d);
}

Expected<std::vector<std::string>> split_go_string_slice(std::string_view text) {
  std::vector<std::string> out;
  if (text.empty()) return out;
  std::string field;
  bool in_quotes = false;
  bool field_quoted = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_quotes) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          in_quotes = false;
        }
      } else {
        field += c;
      }
    } else if (c == ',') {
      out.push_back(std::move(field));
      field.clear();
      field_quoted = false;
    } else if (c == '"' && field.empty() && !field_quoted) {
      in_quotes = true;
      field_quoted = true;
    } else if (c == '"') {
      return Error("bare \" in non-quoted field");
    } else {
      field += c;
    }
  }
  if (in_quotes) return Error("extraneous or missing \" in quoted field");
  out.push_back(std::move(field));
  return out;
}

Expected<std::map<std::string, bool>> parse_go_map_string_bool(std::string_view text) {
  std::map<std::string, bool> out;
  std::string_view rest = text;
  while (!rest.empty()) {
    const std::size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (trim(item).empty()) continue;
    const std::size_t eq = item.find('=');
    if (eq == std::string_view::npos) return Error("missing bool value for " + std::string(trim(item)));
    const std::string_view key = trim(item.substr(0, eq));
    const std::string_view value = trim(item.substr(eq + 1));
    auto b = parse_go_bool(value);
    if (!b) return Error("invalid value of " + std::string(key) + "=" + std::string(value) + ", err: " + b.error());
    out[std::string(key)] = *b;
  }
  return out;
}

Expected<HostPort> parse_listen_address(std::string_view text) {
  if (auto ip = IpAddress::parse(text)) return HostPort{*ip, 0};
  return HostPort::parse(text);
}

Expected<NodePortAddresses> parse_node_port_addresses(const std::vector<std::string>& items) {
  NodePortAddresses out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (items[i] == "primary") {
      if (items.size() != 1) return Error("can't use both 'primary' and CIDRs");
      out.primary = true;
      continue;
    }
    auto cidr = Cidr::parse(items[i]);
    if (!cidr) return Error(in_quotes(items[i]) + " must be a valid CIDR");
    out.cidrs.push_back(*cidr);
  }
  return out;
}

Status validate_port_range(std::string_view text) {
  const std::string_view s = trim(text);
  if (s.empty()) return {};
  const Error bad(in_quotes(text) + " must be a valid port range (e.g. 300-2000)");
  auto port = [](std::string_view p, int& out) {
    if (p.empty()) return false;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), out);
    return ec == std::errc() && end == p.data() + p.size() && out >= 0 && out <= 65535;
  };
  const std::size_t sep = s.find_first_of("-+");
  int first = 0;
  if (sep == std::string_view::npos) return port(s, first) ? Status() : Status(bad);
  int second = 0;
  if (!port(s.substr(0, sep), first) || !port(s.substr(sep + 1), second)) return bad;
  const int last = s[sep] == '-' ? second : first + second;
  if (last < first || last > 65535) return bad;
  return {};
}

Status validate_vmodule_entry(std::string_view entry) {
  const std::size_t eq = entry.rfind('=');
  if (eq == std::string_view::npos || eq == 0) return Error(in_quotes(entry) + " is not of the form pattern=N");
  const std::string_view level = entry.substr(eq + 1);
  int n = 0;
  auto [end, ec] = std::from_chars(level.data(), level.data() + level.size(), n);
  if (level.empty() || ec != std::errc() || end != level.data() + level.size() || n < 0) {
    return Error(in_quotes(entry) + " is not of the form pattern=N");
  }
  return {};
}

}  // namespace kproxy::config
