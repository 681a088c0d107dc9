// Go's time.Duration text, which kube-proxy's flags and KubeProxyConfiguration use
// ("30s", "1m0s", "1h30m", "500ms", "2h45m0.5s").
//
// Parsing follows Go's time.ParseDuration: an optional sign, then one or more
// <decimal number><unit> pairs with units ns, us (also µs and μs), ms, s, m, h; the bare
// "0" is allowed; anything else, including an empty string, a number without a unit and
// a value beyond the int64 range of nanoseconds, is an error. Formatting follows Go's
// Duration.String(), so a value read and written again looks as kube-proxy writes it.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "kproxy/status.h"

namespace kproxy::config {

// Go's time.Duration: a signed count of nanoseconds.
using Duration = std::chrono::nanoseconds;

// The error message has Go's wording: time: invalid duration "abc".
Expected<Duration> parse_go_duration(std::string_view text);

// "0s", "500ms", "1.5s", "1m0s", "24h0m0s", "-2µs".
std::string format_go_duration(Duration d);

}  // namespace kproxy::config
