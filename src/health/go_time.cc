#include "kproxy/health/go_time.h"

#include <cstdint>
#include <cstdio>

namespace kproxy::health {
namespace {

struct Parts {
  int year = 1;
  unsigned month = 1, day = 1;
  long hours = 0, minutes = 0, seconds = 0;
  std::int64_t nanos = 0;
};

Parts split(std::optional<Time> time) {
  Parts p;
  if (!time) return p;
  using namespace std::chrono;
  const auto day = floor<days>(*time);
  const year_month_day ymd(day);
  const hh_mm_ss<nanoseconds> hms(*time - day);
  p.year = static_cast<int>(ymd.year());
  p.month = static_cast<unsigned>(ymd.month());
  p.day = static_cast<unsigned>(ymd.day());
  p.hours = hms.hours().count();
  p.minutes = hms.minutes().count();
  p.seconds = static_cast<long>(hms.seconds().count());
  p.nanos = hms.subseconds().count();
  return p;
}

// Go's ".999999999": the fraction without trailing zeros, nothing at all when it is zero.
std::string fraction(std::int64_t nanos) {
  if (nanos == 0) return "";
  char digits[16];
  std::snprintf(digits, sizeof digits, ".%09lld", static_cast<long long>(nanos));
  std::string out = digits;
  while (out.back() == '0') out.pop_back();
  return out;
}

std::string format(std::optional<Time> time, char date_time_separator, const char* zone) {
  const Parts p = split(time);
  char head[64];
  std::snprintf(head, sizeof head, "%04d-%02u-%02u%c%02ld:%02ld:%02ld", p.year, p.month, p.day, date_time_separator,
                p.hours, p.minutes, p.seconds);
  return std::string(head) + fraction(p.nanos) + zone;
}

}  // namespace

std::string go_json_time(std::optional<Time> time) { return format(time, 'T', "Z"); }

std::string go_time_string(std::optional<Time> time) { return format(time, ' ', " +0000 UTC"); }

std::string go_quote(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\a': out += "\\a"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\v': out += "\\v"; break;
      default: {
        const auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte == 0x7f) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\x%02x", byte);
          out += escaped;
        } else {
          out += c;
        }
      }
    }
  }
  out += '"';
  return out;
}

}  // namespace kproxy::health
