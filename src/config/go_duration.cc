#include "kproxy/config/go_duration.h"

#include <cstdint>
#include <limits>

namespace kproxy::config {
namespace {

Error invalid(std::string_view what, std::string_view text) {
  return Error("time: " + std::string(what) + " \"" + std::string(text) + "\"");
}

// Nanoseconds per unit; µ is U+00B5 (micro sign) or U+03BC (Greek mu), as in Go.
std::int64_t unit_nanos(std::string_view unit) {
  if (unit == "ns") return 1;
  if (unit == "us" || unit == "\u00b5s" || unit == "\u03bcs") return 1000;
  if (unit == "ms") return 1000 * 1000;
  if (unit == "s") return 1000 * 1000 * 1000;
  if (unit == "m") return 60LL * 1000 * 1000 * 1000;
  if (unit == "h") return 3600LL * 1000 * 1000 * 1000;
  return 0;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Writes v / 10^prec with trailing zeros (and a bare point) removed: 1500, 3 -> "1.5".
std::string with_fraction(std::uint64_t v, int prec) {
  std::uint64_t scale = 1;
  for (int i = 0; i < prec; ++i) scale *= 10;
  std::string out = std::to_string(v / scale);
  std::uint64_t frac = v % scale;
  if (frac != 0) {
    std::string digits = std::to_string(frac);
    digits.insert(0, static_cast<std::size_t>(prec) - digits.size(), '0');
    while (!digits.empty() && digits.back() == '0') digits.pop_back();
    out += "." + digits;
  }
  return out;
}

}  // namespace

Expected<Duration> parse_go_duration(std::string_view text) {
  std::string_view s = text;
  bool negative = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return Duration(0);
  if (s.empty()) return invalid("invalid duration", text);

  // Accumulate in unsigned 64 bits; the limit is 2^63 for a negative value, 2^63-1 otherwise.
  constexpr std::uint64_t kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  const std::uint64_t limit = negative ? kMax + 1 : kMax;
  std::uint64_t total = 0;
  while (!s.empty()) {
    if (!(s[0] == '.' || is_digit(s[0]))) return invalid("invalid duration", text);
    // Integer part.
    std::uint64_t whole = 0;
    std::size_t i = 0;
    bool overflow = false;
    while (i < s.size() && is_digit(s[i])) {
      if (whole > (kMax + 1) / 10) overflow = true;
      whole = whole * 10 + static_cast<std::uint64_t>(s[i] - '0');
      if (whole > kMax + 1) overflow = true;
      ++i;
    }
    if (overflow) return invalid("invalid duration", text);
    const bool had_whole = i > 0;
    // Fraction: digits past what 63 bits hold are ignored, as Go does.
    std::uint64_t frac = 0;
    double scale = 1;
    bool had_frac = false;
    if (i < s.size() && s[i] == '.') {
      ++i;
      bool frac_overflow = false;
      while (i < s.size() && is_digit(s[i])) {
        had_frac = true;
        if (!frac_overflow) {
          if (frac > (kMax - 9) / 10) {
            frac_overflow = true;
          } else {
            frac = frac * 10 + static_cast<std::uint64_t>(s[i] - '0');
            scale *= 10;
          }
        }
        ++i;
      }
    }
    if (!had_whole && !had_frac) return invalid("invalid duration", text);
    // Unit: everything up to the next digit or '.'.
    std::size_t u = i;
    while (u < s.size() && s[u] != '.' && !is_digit(s[u])) ++u;
    if (u == i) return invalid("missing unit in duration", text);
    std::string_view unit = s.substr(i, u - i);
    const std::int64_t per = unit_nanos(unit);
    if (per == 0) {
      return Error("time: unknown unit \"" + std::string(unit) + "\" in duration \"" + std::string(text) + "\"");
    }
    const auto uper = static_cast<std::uint64_t>(per);
    if (whole > limit / uper) return invalid("invalid duration", text);
    std::uint64_t v = whole * uper;
    if (frac > 0) {
      v += static_cast<std::uint64_t>(static_cast<double>(frac) * (static_cast<double>(per) / scale));
      if (v > limit) return invalid("invalid duration", text);
    }
    total += v;
    if (total > limit) return invalid("invalid duration", text);
    s.remove_prefix(u);
  }
  if (negative) {
    // -2^63 is representable; negate in unsigned arithmetic to avoid signed overflow.
    return Duration(static_cast<std::int64_t>(~total + 1));
  }
  return Duration(static_cast<std::int64_t>(total));
}

std::string format_go_duration(Duration d) {
  const std::int64_t n = d.count();
  if (n == 0) return "0s";
  const bool negative = n < 0;
  std::uint64_t u = negative ? ~static_cast<std::uint64_t>(n) + 1 : static_cast<std::uint64_t>(n);
  std::string out;
  constexpr std::uint64_t kSecond = 1000ULL * 1000 * 1000;
  if (u < kSecond) {
    if (u < 1000) {
      out = std::to_string(u) + "ns";
    } else if (u < 1000 * 1000) {
      out = with_fraction(u, 3) + "\u00b5s";
    } else {
      out = with_fraction(u, 6) + "ms";
    }
  } else {
    const std::uint64_t seconds_part = u % (60 * kSecond);
    const std::uint64_t minutes = u / (60 * kSecond);
    out = with_fraction(seconds_part, 9) + "s";
    if (minutes > 0) {
      out = std::to_string(minutes % 60) + "m" + out;
      if (minutes >= 60) out = std::to_string(minutes / 60) + "h" + out;
    }
  }
  return negative ? "-" + out : out;
}

}  // namespace kproxy::config
