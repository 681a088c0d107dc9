// A discovery.k8s.io/v1 EndpointSlice as kproxy sees it.
//
// Field meanings follow api/discovery/v1/types.go and kube-proxy's reading of them in
// pkg/proxy/endpointslicecache.go (endpointInfoByServicePort, addEndpoints).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kproxy/ip.h"
#include "kproxy/model/object_meta.h"
#include "kproxy/model/protocol.h"
#include "kproxy/model/timestamp.h"

namespace kproxy::model {

enum class AddressType : std::uint8_t { kIPv4, kIPv6, kFQDN };

// "IPv4", "IPv6", "FQDN".
std::string_view to_string(AddressType type);

struct Endpoint {
  // addresses[0]: kube-proxy uses only the first address, and the EndpointSlice controller
  // writes exactly one. Its family matches the slice's address_type.
  IpAddress address;
  // Conditions with kube-proxy's nil semantics (endpointslicecache.go):
  // ready nil => true, serving nil => true, terminating nil => false.
  bool ready = true;
  bool serving = true;
  bool terminating = false;
  std::optional<std::string> node_name;  // compared with kproxy's node name for "local"
  std::optional<std::string> zone;
  // hints.forZones[].name and hints.forNodes[].name; empty when the endpoint has none.
  std::vector<std::string> zone_hints;
  std::vector<std::string> node_hints;

  bool operator==(const Endpoint&) const = default;
};

struct EndpointPort {
  // "" for the Service's single unnamed port. Must equal the Service port name.
  std::string name;
  Protocol protocol = Protocol::kTcp;
  std::uint16_t port = 0;  // 1..65535

  bool operator==(const EndpointPort&) const = default;
};

struct EndpointSlice {
  ObjectMeta meta;
  // The kubernetes.io/service-name label. A slice without it is refused: kube-proxy ignores
  // such slices (endpointSliceCacheKeys), so there is nothing to attach it to.
  std::string service_name;
  AddressType address_type = AddressType::kIPv4;
  // Empty for FQDN slices: kube-proxy ignores them, so their addresses are not parsed.
  std::vector<Endpoint> endpoints;
  std::vector<EndpointPort> ports;
  // The endpoints.kubernetes.io/last-change-trigger-time annotation, for kube-proxy's
  // network_programming_duration_seconds metric.
  std::optional<Timestamp> last_change_trigger_time;

  bool operator==(const EndpointSlice&) const = default;
};

}  // namespace kproxy::model
