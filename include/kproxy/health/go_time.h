// Points in time printed the way kube-proxy's health bodies print them (Go's time package).
//
// kube-proxy 1.33+ writes times with encoding/json (time.Time.MarshalJSON, RFC 3339 with
// nanoseconds); 1.29-1.32 wrote them with fmt's %q, i.e. a quoted time.String(). kproxy keeps
// every time in UTC, so the zone is always "Z" or "+0000 UTC" (kube-proxy uses the pod's local
// zone, which is UTC unless the pod mounts another /etc/localtime).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace kproxy::health {

// Nanoseconds, like Go's time.Time. nullopt is Go's zero time.Time{} (0001-01-01 00:00:00 UTC),
// which a 64-bit count of nanoseconds since 1970 cannot reach.
using Time = std::chrono::sys_time<std::chrono::nanoseconds>;

// RFC 3339 with the fraction's trailing zeros dropped and "Z" for UTC, as encoding/json writes
// a time.Time (format "2006-01-02T15:04:05.999999999Z07:00"), without the quotes.
// "2026-11-25T12:00:00.123456789Z"; the zero time is "0001-01-01T00:00:00Z".
std::string go_json_time(std::optional<Time> time);

// Go's time.String() of a UTC time without the monotonic-clock reading ("m=+12.345678901",
// present in kube-proxy's output only for times taken from time.Now()).
// "2026-11-25 12:00:00.123456789 +0000 UTC"; the zero time is "0001-01-01 00:00:00 +0000 UTC".
std::string go_time_string(std::optional<Time> time);

// Go's strconv.Quote for the ASCII and UTF-8 text kproxy quotes (names, the strings above):
// surrounding double quotes, \" \\ \a \b \f \n \r \t \v escaped, other control bytes and DEL
// as \xNN. Bytes >= 0x80 are copied unchanged (Go would escape invalid UTF-8 as \xNN too;
// Kubernetes names are ASCII, so kproxy never quotes such bytes).
std::string go_quote(std::string_view text);

}  // namespace kproxy::health
