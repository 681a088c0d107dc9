#include "kproxy/ip.h"

#include <charconv>
#include <cstdio>
#include <optional>

namespace kproxy {
namespace {

// Go's IPv4 text has at most 15 characters; IPv6 at most 45. Anything much longer is not an
// address, and refusing it early keeps error messages short.
constexpr std::size_t kMaxAddressText = 64;

// Built with append: GCC 12 at -O3 reports a false -Wrestrict on chained operator+ (GCC
// bug 105329).
std::string quoted(std::string_view text) {
  std::string out = "\"";
  out.append(text.substr(0, kMaxAddressText));
  if (text.size() > kMaxAddressText) out.append("...");
  out.push_back('"');
  return out;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Dotted-quad IPv4 with decimal octets; leading zeros allowed and read as decimal.
std::optional<std::array<std::uint8_t, 4>> parse_v4(std::string_view s) {
  std::array<std::uint8_t, 4> out{};
  std::size_t pos = 0;
  for (int part = 0; part < 4; ++part) {
    if (part > 0) {
      if (pos >= s.size() || s[pos] != '.') return std::nullopt;
      ++pos;
    }
    std::size_t start = pos;
    unsigned value = 0;
    while (pos < s.size() && is_digit(s[pos])) {
      value = value * 10 + static_cast<unsigned>(s[pos] - '0');
      if (value > 255) return std::nullopt;
      ++pos;
    }
    if (pos == start) return std::nullopt;
    out[static_cast<std::size_t>(part)] = static_cast<std::uint8_t>(value);
  }
  if (pos != s.size()) return std::nullopt;
  return out;
}

std::optional<std::array<std::uint8_t, 16>> parse_v6(std::string_view s) {
  std::array<std::uint8_t, 16> out{};
  int ellipsis = -1;  // index (in 16-bit groups) where "::" was seen
  int groups = 0;
  std::size_t pos = 0;

  if (s.size() >= 2 && s[0] == ':' && s[1] == ':') {
    ellipsis = 0;
    pos = 2;
    if (pos == s.size()) return out;  // "::"
  } else if (!s.empty() && s[0] == ':') {
    return std::nullopt;
  }

  while (pos < s.size()) {
    if (groups == 8) return std::nullopt;
    // Embedded IPv4 in the last 32 bits ("::ffff:1.2.3.4").
    std::size_t next_colon = s.find(':', pos);
    std::string_view token = s.substr(pos, next_colon == std::string_view::npos ? s.npos : next_colon - pos);
    if (token.find('.') != std::string_view::npos) {
      if (next_colon != std::string_view::npos || groups > 6) return std::nullopt;
      auto v4 = parse_v4(token);
      if (!v4) return std::nullopt;
      for (int i = 0; i < 4; ++i) out[static_cast<std::size_t>(2 * groups + i)] = (*v4)[static_cast<std::size_t>(i)];
      groups += 2;
      pos = s.size();
      break;
    }
    if (token.empty() || token.size() > 4) return std::nullopt;
    unsigned value = 0;
    for (char c : token) {
      int h = hex_value(c);
      if (h < 0) return std::nullopt;
      value = value * 16 + static_cast<unsigned>(h);
    }
    out[static_cast<std::size_t>(2 * groups)] = static_cast<std::uint8_t>(value >> 8);
    out[static_cast<std::size_t>(2 * groups + 1)] = static_cast<std::uint8_t>(value & 0xff);
    ++groups;
    pos += token.size();
    if (pos == s.size()) break;
    // pos is at ':'
    ++pos;
    if (pos < s.size() && s[pos] == ':') {
      if (ellipsis >= 0) return std::nullopt;  // a second "::"
      ellipsis = groups;
      ++pos;
      if (pos == s.size()) break;
    } else if (pos == s.size()) {
      return std::nullopt;  // trailing single ':'
    }
  }

  if (ellipsis < 0) {
    if (groups != 8) return std::nullopt;
    return out;
  }
  if (groups == 8) return std::nullopt;  // "::" must stand for at least one group
  // Shift the groups after the ellipsis to the end.
  int tail = groups - ellipsis;
  for (int i = tail - 1; i >= 0; --i) {
    auto from = static_cast<std::size_t>(2 * (ellipsis + i));
    auto to = static_cast<std::size_t>(2 * (8 - tail + i));
    out[to] = out[from];
    out[to + 1] = out[from + 1];
  }
  for (int i = ellipsis; i < 8 - tail; ++i) {
    out[static_cast<std::size_t>(2 * i)] = 0;
    out[static_cast<std::size_t>(2 * i + 1)] = 0;
  }
  return out;
}

}  // namespace

std::string_view to_string(IpFamily family) { return family == IpFamily::kIPv4 ? "IPv4" : "IPv6"; }

Expected<IpAddress> IpAddress::parse(std::string_view text) {
  if (text.empty()) return Error("empty IP address");
  if (text.size() > kMaxAddressText) return Error("invalid IP address " + quoted(text) + ": too long");
  if (text.find('%') != std::string_view::npos) {
    return Error("invalid IP address " + quoted(text) + ": zone-scoped addresses are not allowed");
  }
  if (text.find(':') == std::string_view::npos) {
    auto v4 = parse_v4(text);
    if (!v4) return Error("invalid IP address " + quoted(text));
    IpAddress ip;
    for (std::size_t i = 0; i < 4; ++i) ip.bytes_[i] = (*v4)[i];
    return ip;
  }
  auto v6 = parse_v6(text);
  if (!v6) return Error("invalid IP address " + quoted(text));
  return from_v6(*v6);
}

IpAddress IpAddress::from_v4(std::uint32_t host_order) {
  IpAddress ip;
  ip.bytes_[0] = static_cast<std::uint8_t>(host_order >> 24);
  ip.bytes_[1] = static_cast<std::uint8_t>(host_order >> 16);
  ip.bytes_[2] = static_cast<std::uint8_t>(host_order >> 8);
  ip.bytes_[3] = static_cast<std::uint8_t>(host_order);
  return ip;
}

IpAddress IpAddress::from_v6(const std::array<std::uint8_t, 16>& bytes) {
  IpAddress ip;
  ip.family_ = IpFamily::kIPv6;
  ip.bytes_ = bytes;
  return ip;
}

std::uint32_t IpAddress::v4_host_order() const {
  return (std::uint32_t{bytes_[0]} << 24) | (std::uint32_t{bytes_[1]} << 16) | (std::uint32_t{bytes_[2]} << 8) |
         std::uint32_t{bytes_[3]};
}

bool IpAddress::is_unspecified() const {
  for (auto b : bytes_) {
    if (b != 0) return false;
  }
  return true;
}

bool IpAddress::is_loopback() const {
  if (is_v4()) return bytes_[0] == 127;
  for (std::size_t i = 0; i < 15; ++i) {
    if (bytes_[i] != 0) return false;
  }
  return bytes_[15] == 1;
}

bool IpAddress::is_link_local() const {
  if (is_v4()) return bytes_[0] == 169 && bytes_[1] == 254;
  return bytes_[0] == 0xfe && (bytes_[1] & 0xc0) == 0x80;
}

bool IpAddress::is_multicast() const {
  if (is_v4()) return (bytes_[0] & 0xf0) == 0xe0;
  return bytes_[0] == 0xff;
}

bool IpAddress::is_ipv4_mapped() const {
  if (is_v4()) return false;
  for (std::size_t i = 0; i < 10; ++i) {
    if (bytes_[i] != 0) return false;
  }
  return bytes_[10] == 0xff && bytes_[11] == 0xff;
}

std::string IpAddress::to_string() const {
  char buf[64];
  if (is_v4()) {
    std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", bytes_[0], bytes_[1], bytes_[2], bytes_[3]);
    return buf;
  }
  if (is_ipv4_mapped()) {
    std::snprintf(buf, sizeof buf, "::ffff:%u.%u.%u.%u", bytes_[12], bytes_[13], bytes_[14], bytes_[15]);
    return buf;
  }
  std::array<unsigned, 8> g{};
  for (std::size_t i = 0; i < 8; ++i) g[i] = (unsigned{bytes_[2 * i]} << 8) | bytes_[2 * i + 1];
  // RFC 5952 4.2: the longest run of two or more zero groups becomes "::", the first on a tie.
  int best_start = -1, best_len = 0;
  for (int i = 0; i < 8;) {
    if (g[static_cast<std::size_t>(i)] != 0) {
      ++i;
      continue;
    }
    int j = i;
    while (j < 8 && g[static_cast<std::size_t>(j)] == 0) ++j;
    if (j - i > best_len && j - i >= 2) {
      best_start = i;
      best_len = j - i;
    }
    i = j;
  }
  std::string out;
  for (int i = 0; i < 8; ++i) {
    if (i == best_start) {
      out += "::";
      i += best_len - 1;
      continue;
    }
    if (!out.empty() && out.back() != ':') out += ':';
    std::snprintf(buf, sizeof buf, "%x", g[static_cast<std::size_t>(i)]);
    out += buf;
  }
  return out;
}

std::string join_host_port(const IpAddress& ip, std::uint16_t port) {
  std::string out;
  if (ip.is_v6()) {
    out.push_back('[');
    out.append(ip.to_string());
    out.push_back(']');
  } else {
    out.append(ip.to_string());
  }
  out.push_back(':');
  out.append(std::to_string(port));
  return out;
}

Expected<Cidr> Cidr::make(const IpAddress& address, int prefix_length) {
  const int bits = address.is_v4() ? 32 : 128;
  if (prefix_length < 0 || prefix_length > bits) {
    return Error("invalid prefix length " + std::to_string(prefix_length) + " for " + address.to_string());
  }
  auto bytes = address.bytes();
  for (int i = 0; i < 16; ++i) {
    int keep = prefix_length - 8 * i;
    auto& b = bytes[static_cast<std::size_t>(i)];
    if (keep <= 0) {
      b = 0;
    } else if (keep < 8) {
      b = static_cast<std::uint8_t>(b & (0xff << (8 - keep)));
    }
  }
  Cidr c;
  c.network_ = address.is_v4() ? IpAddress::from_v4((std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) |
                                                    (std::uint32_t{bytes[2]} << 8) | std::uint32_t{bytes[3]})
                               : IpAddress::from_v6(bytes);
  c.prefix_length_ = prefix_length;
  return c;
}

Expected<Cidr> Cidr::parse(std::string_view text) {
  if (text.empty()) return Error("empty CIDR");
  auto slash = text.find('/');
  if (slash == std::string_view::npos) return Error("invalid CIDR " + quoted(text) + ": no prefix length");
  auto ip = IpAddress::parse(text.substr(0, slash));
  if (!ip) return Error("invalid CIDR " + quoted(text) + ": " + ip.error());
  std::string_view len = text.substr(slash + 1);
  int prefix = 0;
  auto [end, ec] = std::from_chars(len.data(), len.data() + len.size(), prefix);
  if (len.empty() || len.size() > 3 || ec != std::errc() || end != len.data() + len.size() || !is_digit(len[0])) {
    return Error("invalid CIDR " + quoted(text) + ": bad prefix length");
  }
  auto c = make(*ip, prefix);
  if (!c) return Error("invalid CIDR " + quoted(text) + ": prefix length out of range");
  return c;
}

bool Cidr::contains(const IpAddress& ip) const {
  if (ip.family() != network_.family()) return false;
  auto masked = make(ip, prefix_length_);
  return masked && masked->network_ == network_;
}

std::string Cidr::to_string() const { return network_.to_string() + "/" + std::to_string(prefix_length_); }

}  // namespace kproxy
