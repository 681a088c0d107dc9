// discovery.k8s.io/v1 EndpointSlice -> model::EndpointSlice.
//
// Rules come from the API's validation (pkg/apis/discovery/validation/validation.go) and from
// what kube-proxy reads (pkg/proxy/endpointslicecache.go). The unit of dropping is the
// endpoint or the port: a bad one is reported and skipped, the rest of the slice is kept.
#include "kproxy/model/endpoint_slice.h"

#include <set>
#include <string>
#include <utility>

#include "kproxy/model/parse.h"
#include "names.h"
#include "object_reader.h"

namespace kproxy::model {

std::string_view to_string(AddressType type) {
  switch (type) {
    case AddressType::kIPv4: return "IPv4";
    case AddressType::kIPv6: return "IPv6";
    case AddressType::kFQDN: return "FQDN";
  }
  return "unknown";
}

namespace detail {
namespace {

const KindInfo kSliceKind{"EndpointSlice", "discovery.k8s.io/v1", true, is_dns1123_subdomain,
                          "a DNS-1123 subdomain"};
// discovery.LabelServiceName: which Service the slice belongs to.
constexpr std::string_view kServiceNameLabel = "kubernetes.io/service-name";
// discovery.EndpointsLastChangeTriggerTime, set by the EndpointSlice controller.
constexpr std::string_view kTriggerTimeAnnotation = "endpoints.kubernetes.io/last-change-trigger-time";

// "IP" (deprecated, pre-GA) is refused: the API server no longer accepts it on create, and
// kube-proxy never read it.
constexpr std::pair<std::string_view, AddressType> kAddressTypes[] = {
    {"IPv4", AddressType::kIPv4},
    {"IPv6", AddressType::kIPv6},
    {"FQDN", AddressType::kFQDN},
};

bool entry_present(const Field& entry) {
  if (entry.present()) return true;
  entry.fail(Severity::kDrop, RejectReason::kWrongType, "must not be null");
  return false;
}

// A condition: absent or null leaves the default (kube-proxy's nil semantics).
bool read_condition(const Field& conditions, std::string_view name, bool& out) {
  Field f = conditions.member(name);
  if (!f.present()) return true;
  auto b = f.boolean(Severity::kDrop);
  if (b) out = *b;
  return b.has_value();
}

// hints.forZones / hints.forNodes: at most kMaxEndpointHints entries of {name}.
bool read_hints(const Field& hints, std::string_view list_name, bool (*valid)(std::string_view),
                std::string_view rule, std::vector<std::string>& out) {
  Field list = hints.member(list_name);
  if (!list.present()) return true;
  if (!list.is_array(Severity::kDrop)) return false;
  if (list.size() > kMaxEndpointHints) {
    list.fail(Severity::kDrop, RejectReason::kTooLarge,
              "has " + std::to_string(list.size()) + " entries; at most " + std::to_string(kMaxEndpointHints));
    return false;
  }
  for (std::size_t i = 0; i < list.size(); ++i) {
    Field hint = list.at(i);
    if (!entry_present(hint) || !hint.is_object(Severity::kDrop)) return false;
    Field name = hint.member("name");
    auto text = name.required_string(Severity::kDrop);
    if (!text) return false;
    if (!valid(*text)) {
      name.fail(Severity::kDrop, RejectReason::kMalformed, "is not " + std::string(rule));
      return false;
    }
    out.emplace_back(*text);
  }
  return true;
}

// One endpoint; nullopt (after reporting) drops it. Everything that fails drops the endpoint
// rather than a sub-field: an endpoint with a half-read state (say, hints ignored) could be
// routed differently from what the slice says.
std::optional<Endpoint> read_endpoint(const Field& ep, std::optional<AddressType> type) {
  if (!entry_present(ep) || !ep.is_object(Severity::kDrop)) return std::nullopt;
  Endpoint e;
  bool ok = true;

  Field addresses = ep.member("addresses");
  if (!addresses.present() || (addresses.holds_array() && addresses.size() == 0)) {
    // kube-proxy: "Ignoring invalid endpoint port with empty address".
    addresses.fail(Severity::kDrop, RejectReason::kMissingField, "must contain at least 1 address");
    ok = false;
  } else if (!addresses.is_array(Severity::kDrop)) {
    ok = false;
  } else if (addresses.size() > kMaxEndpointAddresses) {
    addresses.fail(Severity::kDrop, RejectReason::kTooLarge,
                   "has " + std::to_string(addresses.size()) + " entries; at most " +
                       std::to_string(kMaxEndpointAddresses));
    ok = false;
  } else {
    // Only addresses[0] is read, as kube-proxy reads only it; the others cannot be routed to
    // and are not checked, so that an endpoint kube-proxy would use is not dropped for them.
    Field first = addresses.at(0);
    std::optional<IpAddress> ip;
    if (entry_present(first)) ip = first.ip(Severity::kDrop, Field::AddressUse::kNotSpecial);
    if (ip && type && *type != AddressType::kFQDN) {
      const IpFamily want = *type == AddressType::kIPv4 ? IpFamily::kIPv4 : IpFamily::kIPv6;
      if (ip->family() != want) {
        first.fail(Severity::kDrop, RejectReason::kFamilyMismatch,
                   "is an " + std::string(kproxy::to_string(ip->family())) + " address in an " +
                       std::string(kproxy::to_string(want)) + " slice");
        ip.reset();
      }
    }
    if (ip) {
      e.address = *ip;
    } else {
      ok = false;
    }
  }

  Field conditions = ep.member("conditions");
  if (conditions.present() && !conditions.is_object(Severity::kDrop)) {
    ok = false;
  } else {
    ok = read_condition(conditions, "ready", e.ready) && ok;
    ok = read_condition(conditions, "serving", e.serving) && ok;
    ok = read_condition(conditions, "terminating", e.terminating) && ok;
  }

  Field node_name = ep.member("nodeName");
  if (auto s = node_name.string(Severity::kDrop)) {
    // "" is never stored by the API server (ValidateNodeName); read it as absent.
    if (!s->empty() && !is_dns1123_subdomain(*s)) {
      node_name.fail(Severity::kDrop, RejectReason::kMalformed, "is not a node name (a DNS-1123 subdomain)");
      ok = false;
    } else if (!s->empty()) {
      e.node_name = std::string(*s);
    }
  } else if (node_name.present()) {
    ok = false;
  }

  Field zone = ep.member("zone");
  if (auto s = zone.string(Severity::kDrop)) {
    if (!is_label_value(*s)) {
      zone.fail(Severity::kDrop, RejectReason::kMalformed, "is not a label value");
      ok = false;
    } else if (!s->empty()) {
      e.zone = std::string(*s);
    }
  } else if (zone.present()) {
    ok = false;
  }

  Field hints = ep.member("hints");
  if (hints.present() && !hints.is_object(Severity::kDrop)) {
    ok = false;
  } else {
    ok = read_hints(hints, "forZones", is_label_value, "a zone (a label value)", e.zone_hints) && ok;
    ok = read_hints(hints, "forNodes", is_dns1123_subdomain, "a node name (a DNS-1123 subdomain)", e.node_hints) &&
         ok;
  }

  if (!ok) return std::nullopt;
  return e;
}

// One port; nullopt (after reporting) drops it. kube-proxy skips ports with a nil name or a
// nil or zero port ("Ignoring port with nil name", "Ignoring invalid endpoint port").
std::optional<EndpointPort> read_port(const Field& p, std::set<std::string, std::less<>>& names) {
  if (!entry_present(p) || !p.is_object(Severity::kDrop)) return std::nullopt;
  bool ok = true;
  EndpointPort port;

  Field name = p.member("name");
  if (!name.present()) {
    // The controller always writes a name ("" for an unnamed Service port).
    name.fail(Severity::kDrop, RejectReason::kMissingField, "is required");
    ok = false;
  } else if (auto s = name.string(Severity::kDrop)) {
    if (!s->empty() && !is_dns1123_label(*s)) {
      name.fail(Severity::kDrop, RejectReason::kMalformed, "is not a DNS-1123 label");
      ok = false;
    } else {
      port.name = std::string(*s);
    }
  } else {
    ok = false;
  }

  Field protocol_field = p.member("protocol");
  auto protocol = read_protocol(protocol_field, Severity::kDrop);
  if (protocol) {
    port.protocol = *protocol;
  } else {
    ok = false;
  }

  Field number = p.member("port");
  if (!number.present()) {
    // The API reads a nil port as "all ports"; kube-proxy cannot program that and skips it.
    number.fail(Severity::kDrop, RejectReason::kMissingField, "is required");
    ok = false;
  } else if (auto v = number.integer_in(Severity::kDrop, 1, 65535)) {
    port.port = static_cast<std::uint16_t>(*v);
  } else {
    ok = false;
  }

  if (!ok) return std::nullopt;
  if (!names.emplace(port.name).second) {
    name.fail(Severity::kDrop, RejectReason::kConflict, "is used by an earlier port");
    return std::nullopt;
  }
  return port;
}

ParseResult<EndpointSlice> parse(const ValueRef& object) {
  Reporter reporter("EndpointSlice");
  Field root(reporter, object);
  if (!root.holds_object()) {
    root.fail(Severity::kRefuse, RejectReason::kWrongType, "is not a JSON object");
    return std::move(reporter).finish<EndpointSlice>(std::nullopt);
  }
  EndpointSlice slice;
  slice.meta = read_object_meta(reporter, root, kSliceKind);

  Field metadata = root.member("metadata");
  Field labels = metadata.member("labels");
  Field service_label = labels.key(kServiceNameLabel);
  if (auto it = slice.meta.labels.find(kServiceNameLabel); it == slice.meta.labels.end() || it->second.empty()) {
    // kube-proxy cannot attach such a slice to a Service and ignores it
    // (endpointSliceCacheKeys).
    service_label.fail(Severity::kRefuse, RejectReason::kMissingField, "is required");
  } else if (!is_dns1123_label(it->second)) {
    service_label.fail(Severity::kRefuse, RejectReason::kMalformed, "is not a Service name (a DNS-1123 label)");
  } else {
    slice.service_name = it->second;
  }

  Field address_type = root.member("addressType");
  std::optional<AddressType> type;
  if (auto text = address_type.required_string(Severity::kRefuse)) {
    type = lookup(*text, kAddressTypes);
    if (type) {
      slice.address_type = *type;
    } else {
      address_type.fail(Severity::kRefuse, RejectReason::kUnknownValue, "is not IPv4, IPv6 or FQDN");
    }
  }

  Field endpoints = root.member("endpoints");
  if (endpoints.is_array(Severity::kDrop)) {
    if (endpoints.size() > kMaxSliceEndpoints) {
      endpoints.fail(Severity::kRefuse, RejectReason::kTooLarge,
                     "has " + std::to_string(endpoints.size()) + " entries; at most " +
                         std::to_string(kMaxSliceEndpoints));
    } else if (type != AddressType::kFQDN) {
      // FQDN slices are for DNS, not proxying: kube-proxy ignores them, so their addresses
      // are neither parsed nor kept. With an unknown addressType (already refused) the
      // endpoints are still read, without the family check, to report what else is wrong.
      for (std::size_t i = 0; i < endpoints.size(); ++i) {
        Field ep = endpoints.at(i);
        if (auto e = read_endpoint(ep, type)) slice.endpoints.push_back(std::move(*e));
      }
    }
  }

  Field ports = root.member("ports");
  if (ports.is_array(Severity::kDrop)) {
    if (ports.size() > kMaxSlicePorts) {
      ports.fail(Severity::kRefuse, RejectReason::kTooLarge,
                 "has " + std::to_string(ports.size()) + " entries; at most " + std::to_string(kMaxSlicePorts));
    } else {
      std::set<std::string, std::less<>> names;
      for (std::size_t i = 0; i < ports.size(); ++i) {
        Field p = ports.at(i);
        if (auto port = read_port(p, names)) slice.ports.push_back(std::move(*port));
      }
    }
  }

  Field annotations = metadata.member("annotations");
  Field trigger = annotations.key(kTriggerTimeAnnotation);
  // A non-string value was already reported with the other annotations.
  if (trigger.present() && trigger.holds_string()) {
    slice.last_change_trigger_time = trigger.timestamp(Severity::kDrop);
  }

  return std::move(reporter).finish(std::optional<EndpointSlice>(std::move(slice)));
}

}  // namespace
}  // namespace detail

ParseResult<EndpointSlice> parse_endpoint_slice(const nlohmann::json& object) noexcept {
  return detail::guarded<EndpointSlice>("EndpointSlice", [&] { return detail::parse(detail::ValueRef(object)); });
}

ParseResult<EndpointSlice> parse_endpoint_slice(const JsonValue& object) noexcept {
  return detail::guarded<EndpointSlice>("EndpointSlice", [&] { return detail::parse(detail::JsonValueAccess::ref(object)); });
}

}  // namespace kproxy::model
