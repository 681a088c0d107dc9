// ServicePortName: kube-proxy's identity of one port of one Service, and the chain-name hashes
// derived from it.
//
// Upstream: pkg/proxy/types.go (ServicePortName, String) and pkg/proxy/iptables/proxier.go
// (portProtoHash, servicePortChainName, servicePortEndpointChainName). The hashes are kept
// bit-for-bit so that kproxy's chains carry the same names as kube-proxy's on the same
// cluster: operators grep for them, and a takeover from kube-proxy can reuse them.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "kproxy/ip.h"
#include "kproxy/model/protocol.h"

namespace kproxy::proxier {

struct ServicePortName {
  std::string ns;
  std::string name;
  std::string port;  // the Service port's name; "" for a single unnamed port
  model::Protocol protocol = model::Protocol::kTcp;

  auto operator<=>(const ServicePortName&) const = default;
  bool operator==(const ServicePortName&) const = default;
};

// "ns/name:port", or "ns/name" when the port is unnamed (kube-proxy's ServicePortName.String,
// which is what appears in its iptables comments and logs). The protocol is not part of it.
std::string to_string(const ServicePortName& name);

// "tcp", "udp", "sctp": strings.ToLower(string(protocol)), as the hashes use it.
std::string_view lower_case_protocol(model::Protocol protocol);

// The 16-character hash shared by KUBE-SVC-, KUBE-SVL-, KUBE-EXT- and KUBE-FW- chains:
// base32(SHA-256(to_string(name) + lower_case_protocol(name.protocol)))[:16] (portProtoHash).
std::string service_port_hash(const ServicePortName& name);

// The hash of a KUBE-SEP- chain: as above, with join_host_port(ip, port) appended to the
// input (servicePortEndpointChainName).
std::string endpoint_hash(const ServicePortName& name, const IpAddress& ip, std::uint16_t port);

}  // namespace kproxy::proxier
