// Points in time as the Kubernetes API writes them (RFC 3339).
//
// metav1.Time is written with second precision ("2024-05-01T10:00:00Z"); the EndpointSlice
// annotation endpoints.kubernetes.io/last-change-trigger-time uses Go's RFC3339Nano. kproxy
// keeps microseconds: enough for the network-programming latency metric, and a 64-bit count
// of microseconds covers every year RFC 3339 can write (0000-9999), which nanoseconds do not.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "kproxy/status.h"

namespace kproxy::model {

using Timestamp = std::chrono::sys_time<std::chrono::microseconds>;

// "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+hh:mm|-hh:mm)", as Go's time.Parse(time.RFC3339Nano)
// accepts it: 'T' and 'Z' upper case, 1-9 fraction digits (beyond microseconds truncated),
// no leap second.
Expected<Timestamp> parse_rfc3339(std::string_view text);

// UTC, "Z" suffix, fraction only when non-zero and without trailing zeros (Go's RFC3339Nano).
// Whole seconds print exactly as metav1.Time does, so a parsed value writes back unchanged.
std::string format_rfc3339(Timestamp time);

}  // namespace kproxy::model
