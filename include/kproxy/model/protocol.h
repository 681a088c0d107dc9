// The transport protocol of a Service or EndpointSlice port.
//
// The API accepts exactly "TCP", "UDP" and "SCTP" (core/v1 Protocol; validated in
// pkg/apis/core/validation and pkg/apis/discovery/validation). Anything else is refused at
// the parse boundary, so code past it never sees an unknown protocol.
#pragma once

#include <cstdint>
#include <string_view>

namespace kproxy::model {

enum class Protocol : std::uint8_t { kTcp, kUdp, kSctp };

// "TCP", "UDP", "SCTP": the API spelling, which is also what kube-proxy writes in iptables
// comments and metric labels.
std::string_view to_string(Protocol protocol);

}  // namespace kproxy::model
