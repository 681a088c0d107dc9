// Why part of an API object was not accepted, and the result of parsing one object.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kproxy::model {

// Why a value was refused. This labels kproxy's "objects rejected by validation" metric, so
// the set is small and its spellings are stable: add a value only for a new kind of cause.
enum class RejectReason : std::uint8_t {
  kMalformed,         // bad syntax: not JSON, a bad name, a bad timestamp
  kWrongType,         // a JSON type the API never sends there: a port as a string
  kMissingField,      // a required field is absent or null
  kUnknownValue,      // an enum string the API does not define: protocol "QUIC"
  kOutOfRange,        // a number outside its range: port 70000
  kInvalidIp,         // not an IP address or CIDR (zone-scoped IPv6 included)
  kForbiddenAddress,  // a valid IP that must not be used: loopback, link-local, IPv4-mapped...
  kFamilyMismatch,    // IP family disagrees: IPv6 in an IPv4 slice, clusterIPs vs ipFamilies
  kConflict,          // disagrees with another field or entry: duplicate port name
  kTooLarge,          // over a size or count limit
};

// "malformed", "wrong_type", "missing_field", "unknown_value", "out_of_range",
// "invalid_ip", "forbidden_address", "family_mismatch", "conflict", "too_large".
std::string_view to_string(RejectReason reason);

inline constexpr std::array kAllRejectReasons = {
    RejectReason::kMalformed,    RejectReason::kWrongType,        RejectReason::kMissingField,
    RejectReason::kUnknownValue, RejectReason::kOutOfRange,       RejectReason::kInvalidIp,
    RejectReason::kForbiddenAddress, RejectReason::kFamilyMismatch, RejectReason::kConflict,
    RejectReason::kTooLarge,
};

struct Rejection {
  std::string kind;    // "Service", "EndpointSlice", "Node"
  std::string object;  // "namespace/name", "name" (Node), or "(unknown)" before a name is known
  // The path as the API server writes it in validation errors: "spec.ports[1].protocol",
  // "endpoints[3].addresses[0]", "metadata.labels[kubernetes.io/service-name]". Empty only
  // when the input as a whole is refused (not JSON, not an object, too large).
  std::string field;
  // The offending value as JSON text, escaped and truncated: "\"QUIC\"", "70000", "{...}".
  // Empty when the field is missing.
  std::string value;
  RejectReason reason = RejectReason::kMalformed;
  // What is wrong, as the end of a sentence: "is not TCP, UDP or SCTP".
  std::string detail;

  // `service default/web: spec.ports[1].protocol: "QUIC" is not TCP, UDP or SCTP`
  std::string message() const;

  bool operator==(const Rejection&) const = default;
};

// value is absent when the object as a whole is unusable (not an object, no name, an invalid
// clusterIP, an unknown type...). Otherwise it holds every part that passed validation, and
// rejections lists what was dropped or defaulted instead. Rejections are collected past the
// first fatal one, so one pass reports everything wrong with an object.
template <typename T>
struct ParseResult {
  std::optional<T> value;
  std::vector<Rejection> rejections;
  // Rejections past the per-object cap (kMaxRejectionsPerObject in parse.h): counted, not kept.
  std::size_t more_rejections = 0;

  bool ok() const { return value.has_value(); }
};

}  // namespace kproxy::model
