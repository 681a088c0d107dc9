// core/v1 Service -> model::Service.
//
// Rules come from the API's own validation (pkg/apis/core/validation/validation.go,
// ValidateService) and from what kube-proxy reads (pkg/proxy/serviceport.go,
// newBaseServiceInfo). What makes the Service unusable refuses it; a bad port, external IP,
// source range or ingress entry drops that entry only, as kube-proxy skips them one by one.
#include "kproxy/model/service.h"

#include <set>
#include <string>
#include <utility>

#include "kproxy/model/parse.h"
#include "names.h"
#include "object_reader.h"

namespace kproxy::model {

std::string_view to_string(ServiceType type) {
  switch (type) {
    case ServiceType::kClusterIP: return "ClusterIP";
    case ServiceType::kNodePort: return "NodePort";
    case ServiceType::kLoadBalancer: return "LoadBalancer";
    case ServiceType::kExternalName: return "ExternalName";
  }
  return "unknown";
}

std::string_view to_string(SessionAffinity affinity) {
  switch (affinity) {
    case SessionAffinity::kNone: return "None";
    case SessionAffinity::kClientIP: return "ClientIP";
  }
  return "unknown";
}

std::string_view to_string(TrafficPolicy policy) {
  switch (policy) {
    case TrafficPolicy::kCluster: return "Cluster";
    case TrafficPolicy::kLocal: return "Local";
  }
  return "unknown";
}

std::string_view to_string(LoadBalancerIPMode mode) {
  switch (mode) {
    case LoadBalancerIPMode::kVIP: return "VIP";
    case LoadBalancerIPMode::kProxy: return "Proxy";
  }
  return "unknown";
}

std::string_view to_string(TrafficDistribution distribution) {
  switch (distribution) {
    case TrafficDistribution::kPreferClose: return "PreferClose";
    case TrafficDistribution::kPreferSameZone: return "PreferSameZone";
    case TrafficDistribution::kPreferSameNode: return "PreferSameNode";
  }
  return "unknown";
}

namespace detail {
namespace {

using AddressUse = Field::AddressUse;

constexpr std::pair<std::string_view, ServiceType> kServiceTypes[] = {
    {"ClusterIP", ServiceType::kClusterIP},
    {"NodePort", ServiceType::kNodePort},
    {"LoadBalancer", ServiceType::kLoadBalancer},
    {"ExternalName", ServiceType::kExternalName},
};
constexpr std::pair<std::string_view, SessionAffinity> kAffinities[] = {
    {"None", SessionAffinity::kNone},
    {"ClientIP", SessionAffinity::kClientIP},
};
constexpr std::pair<std::string_view, TrafficPolicy> kPolicies[] = {
    {"Cluster", TrafficPolicy::kCluster},
    {"Local", TrafficPolicy::kLocal},
};
constexpr std::pair<std::string_view, LoadBalancerIPMode> kIPModes[] = {
    {"VIP", LoadBalancerIPMode::kVIP},
    {"Proxy", LoadBalancerIPMode::kProxy},
};
constexpr std::pair<std::string_view, TrafficDistribution> kDistributions[] = {
    {"PreferClose", TrafficDistribution::kPreferClose},
    {"PreferSameZone", TrafficDistribution::kPreferSameZone},
    {"PreferSameNode", TrafficDistribution::kPreferSameNode},
};
constexpr std::pair<std::string_view, IpFamily> kFamilies[] = {
    {"IPv4", IpFamily::kIPv4},
    {"IPv6", IpFamily::kIPv6},
};

const KindInfo kServiceKind{"Service", "v1", true, is_dns1123_label, "a DNS-1123 label"};

// A null entry in a list of strings: Go would decode it as "", which no field accepts.
bool entry_present(const Field& entry, Severity severity) {
  if (entry.present()) return true;
  entry.fail(severity, RejectReason::kWrongType, "must not be null");
  return false;
}

// An enum-valued string: "" and absent leave the default (the API server fills these in, so
// only hand-written manifests omit them); an unknown spelling is reported.
template <typename E, std::size_t N>
void read_enum(const Field& field, Severity severity, const std::pair<std::string_view, E> (&table)[N],
               std::string_view allowed, E& out) {
  auto text = field.string(severity);
  if (!text || text->empty()) return;
  if (auto v = lookup(*text, table)) {
    out = *v;
  } else {
    field.fail(severity, RejectReason::kUnknownValue, "is not " + std::string(allowed));
  }
}

// clusterIP and clusterIPs (validateClusterIPs in pkg/apis/core/validation): clusterIPs[0]
// equals clusterIP, at most one per family, "None" only alone. Any problem refuses the
// Service: its cluster IPs are its identity, and a partial set would silently turn a
// dual-stack Service into a single-stack one.
void read_cluster_ips(const Field& spec, Service& svc) {
  Field single = spec.member("clusterIP");
  Field list = spec.member("clusterIPs");
  auto single_text = single.string(Severity::kRefuse);
  if (list.present() && !list.is_array(Severity::kRefuse)) return;

  if (list.size() == 0) {
    // Objects written before dual-stack, and manifests, have only clusterIP.
    if (!single_text || single_text->empty()) return;  // not allocated: not proxied
    if (*single_text == "None") {
      svc.headless = true;
      return;
    }
    if (auto ip = single.ip(Severity::kRefuse, AddressUse::kNotSpecial)) svc.cluster_ips.push_back(*ip);
    return;
  }
  if (list.size() > kMaxClusterIPs) {
    list.fail(Severity::kRefuse, RejectReason::kTooLarge,
              "has " + std::to_string(list.size()) + " entries; at most 2, one per family");
    return;
  }

  Field first = list.at(0);
  if (!entry_present(first, Severity::kRefuse)) return;
  auto first_text = first.string(Severity::kRefuse);
  if (!first_text) return;
  if (single_text && !single_text->empty() && *single_text != *first_text) {
    single.fail(Severity::kRefuse, RejectReason::kConflict,
                "does not match spec.clusterIPs[0] \"" + escape_text(*first_text, kMaxRejectedValueChars) + "\"");
    return;
  }
  if (*first_text == "None") {
    if (list.size() > 1) {
      Field second = list.at(1);
      second.fail(Severity::kRefuse, RejectReason::kMalformed, "follows \"None\", which must be the only entry");
      return;
    }
    svc.headless = true;
    return;
  }
  for (std::size_t i = 0; i < list.size(); ++i) {
    Field entry = list.at(i);
    if (!entry_present(entry, Severity::kRefuse)) return;
    auto ip = entry.ip(Severity::kRefuse, AddressUse::kNotSpecial);
    if (!ip) return;
    if (!svc.cluster_ips.empty() && svc.cluster_ips.front().family() == ip->family()) {
      entry.fail(Severity::kRefuse, RejectReason::kFamilyMismatch,
                 "has the same family as spec.clusterIPs[0]; a dual-stack Service has one IP per family");
      return;
    }
    svc.cluster_ips.push_back(*ip);
  }
}

// ipFamilies: each IPv4 or IPv6, no repeats, and ipFamilies[i] is the family of clusterIPs[i]
// (validateIPFamilies in pkg/apis/core/validation). Disagreement refuses the Service.
void read_ip_families(const Field& spec, Service& svc) {
  Field list = spec.member("ipFamilies");
  if (list.present() && list.is_array(Severity::kRefuse)) {
    if (list.size() > kMaxIPFamilies) {
      list.fail(Severity::kRefuse, RejectReason::kTooLarge,
                "has " + std::to_string(list.size()) + " entries; at most 2");
      return;
    }
    for (std::size_t i = 0; i < list.size(); ++i) {
      Field entry = list.at(i);
      if (!entry_present(entry, Severity::kRefuse)) return;
      auto text = entry.string(Severity::kRefuse);
      if (!text) return;
      auto family = lookup(*text, kFamilies);
      if (!family) {
        entry.fail(Severity::kRefuse, RejectReason::kUnknownValue, "is not IPv4 or IPv6");
        return;
      }
      if (!svc.ip_families.empty() && svc.ip_families.front() == *family) {
        entry.fail(Severity::kRefuse, RejectReason::kConflict, "repeats spec.ipFamilies[0]");
        return;
      }
      svc.ip_families.push_back(*family);
    }
  } else if (list.present()) {
    return;  // wrong type, reported
  }

  if (svc.ip_families.empty()) {
    // Absent or empty: objects from before dual-stack. The families are those of the IPs.
    for (const auto& ip : svc.cluster_ips) svc.ip_families.push_back(ip.family());
    return;
  }
  if (svc.ip_families.size() < svc.cluster_ips.size()) {
    list.fail(Severity::kRefuse, RejectReason::kFamilyMismatch,
              "lists fewer families than spec.clusterIPs has addresses");
    return;
  }
  for (std::size_t i = 0; i < svc.cluster_ips.size(); ++i) {
    if (svc.ip_families[i] != svc.cluster_ips[i].family()) {
      Field entry = list.at(i);
      entry.fail(Severity::kRefuse, RejectReason::kFamilyMismatch,
                 "does not match spec.clusterIPs[" + std::to_string(i) + "], an " +
                     std::string(kproxy::to_string(svc.cluster_ips[i].family())) + " address");
      return;
    }
  }
}

// spec.ports: each port is kept or dropped on its own, as kube-proxy builds one
// ServicePortInfo per port. Names, port+protocol and nodePort+protocol are unique
// (ValidateService); a later duplicate is dropped, since the pair names the port everywhere
// downstream (iptables chains, endpoints).
void read_ports(const Field& spec, Service& svc) {
  Field ports = spec.member("ports");
  if (!ports.is_array(Severity::kDrop)) return;
  std::set<std::string, std::less<>> names;
  std::set<std::pair<Protocol, std::int64_t>> numbers;
  std::set<std::pair<Protocol, std::int64_t>> node_ports;
  for (std::size_t i = 0; i < ports.size(); ++i) {
    Field p = ports.at(i);
    if (!p.present()) {
      p.fail(Severity::kDrop, RejectReason::kWrongType, "must not be null");
      continue;
    }
    if (!p.is_object(Severity::kDrop)) continue;
    bool ok = true;

    Field name = p.member("name");
    std::string_view name_text;
    if (name.present()) {
      if (auto s = name.string(Severity::kDrop)) {
        name_text = *s;
        if (!name_text.empty() && !is_dns1123_label(name_text)) {
          name.fail(Severity::kDrop, RejectReason::kMalformed, "is not a DNS-1123 label");
          ok = false;
        }
      } else {
        ok = false;
      }
    }
    Field protocol_field = p.member("protocol");
    auto protocol = read_protocol(protocol_field, Severity::kDrop);
    ok = ok && protocol.has_value();

    Field port = p.member("port");
    std::optional<std::int64_t> number;
    if (port.present()) {
      number = port.integer_in(Severity::kDrop, 1, 65535);
    } else {
      port.fail(Severity::kDrop, RejectReason::kMissingField, "is required");
    }
    ok = ok && number.has_value();

    Field node_port = p.member("nodePort");
    std::int64_t node_port_number = 0;
    if (node_port.present()) {
      auto v = node_port.integer_in(Severity::kDrop, 0, 65535);
      ok = ok && v.has_value();
      node_port_number = v.value_or(0);
    }
    if (!ok) continue;

    if (names.find(name_text) != names.end()) {
      if (name_text.empty()) {
        name.fail(Severity::kDrop, RejectReason::kMissingField, "is required when a Service has more than one port");
      } else {
        name.fail(Severity::kDrop, RejectReason::kConflict, "is used by an earlier port");
      }
      continue;
    }
    if (numbers.count({*protocol, *number}) != 0) {
      port.fail(Severity::kDrop, RejectReason::kConflict,
                "is used with " + std::string(to_string(*protocol)) + " by an earlier port");
      continue;
    }
    if (node_port_number != 0 && node_ports.count({*protocol, node_port_number}) != 0) {
      node_port.fail(Severity::kDrop, RejectReason::kConflict,
                     "is used with " + std::string(to_string(*protocol)) + " by an earlier port");
      continue;
    }
    names.emplace(name_text);
    numbers.emplace(*protocol, *number);
    if (node_port_number != 0) node_ports.emplace(*protocol, node_port_number);
    svc.ports.push_back(ServicePort{std::string(name_text), *protocol, static_cast<std::uint16_t>(*number),
                                    static_cast<std::uint16_t>(node_port_number)});
  }
}

// externalIPs: each one kept or dropped alone (kube-proxy logs and skips bad ones). The
// special ranges are refused as for endpoints: an externalIP of 127.0.0.1 or 169.254.169.254
// would capture node-local traffic on every node (CVE-2020-8554's family of attacks).
void read_external_ips(const Field& spec, Service& svc) {
  Field list = spec.member("externalIPs");
  if (!list.is_array(Severity::kDrop)) return;
  for (std::size_t i = 0; i < list.size(); ++i) {
    Field entry = list.at(i);
    if (!entry_present(entry, Severity::kDrop)) continue;
    if (auto ip = entry.ip(Severity::kDrop, AddressUse::kNotSpecial)) svc.external_ips.push_back(*ip);
  }
}

void read_source_ranges(const Field& spec, Service& svc) {
  Field list = spec.member("loadBalancerSourceRanges");
  if (!list.present()) return;
  // Any refused entry marks the list incomplete: an empty list means "no firewall", so a
  // list whose every entry was refused must not be read as one (see Service).
  if (!list.is_array(Severity::kDrop)) {
    svc.load_balancer_source_ranges_complete = false;
    return;
  }
  for (std::size_t i = 0; i < list.size(); ++i) {
    Field entry = list.at(i);
    if (!entry_present(entry, Severity::kDrop)) {
      svc.load_balancer_source_ranges_complete = false;
      continue;
    }
    // Trimmed: "LoadBalancerSourceRanges validation mistakenly allows whitespace padding"
    // (serviceport.go).
    if (auto cidr = entry.cidr(Severity::kDrop, true)) {
      svc.load_balancer_source_ranges.push_back(*cidr);
    } else {
      svc.load_balancer_source_ranges_complete = false;
    }
  }
}

void read_session_affinity(const Field& spec, Service& svc) {
  Field affinity = spec.member("sessionAffinity");
  read_enum(affinity, Severity::kDrop, kAffinities, "None or ClientIP", svc.session_affinity);
  if (svc.session_affinity != SessionAffinity::kClientIP) return;
  // kube-proxy reads the timeout only for ClientIP (newBaseServiceInfo); the API defaults it.
  Field config = spec.member("sessionAffinityConfig");
  if (config.present() && !config.is_object(Severity::kDrop)) return;
  Field client_ip = config.member("clientIP");
  if (client_ip.present() && !client_ip.is_object(Severity::kDrop)) return;
  Field timeout = client_ip.member("timeoutSeconds");
  if (auto t = timeout.integer_in(Severity::kDrop, 1, kMaxSessionAffinityTimeoutSeconds)) {
    svc.session_affinity_timeout_seconds = static_cast<std::uint32_t>(*t);
  }
}

// status.loadBalancer.ingress: entries without an IP (hostname-only) are skipped silently,
// as kube-proxy skips them; a bad IP or ipMode drops that entry.
void read_load_balancer_status(const Field& root, Service& svc) {
  Field status = root.member("status");
  if (status.present() && !status.is_object(Severity::kDrop)) return;
  Field load_balancer = status.member("loadBalancer");
  if (load_balancer.present() && !load_balancer.is_object(Severity::kDrop)) return;
  Field ingress = load_balancer.member("ingress");
  if (!ingress.is_array(Severity::kDrop)) return;
  for (std::size_t i = 0; i < ingress.size(); ++i) {
    Field entry = ingress.at(i);
    if (!entry_present(entry, Severity::kDrop) || !entry.is_object(Severity::kDrop)) continue;
    Field ip_field = entry.member("ip");
    auto ip_text = ip_field.string(Severity::kDrop);
    if (!ip_text || ip_text->empty()) continue;
    auto ip = ip_field.ip(Severity::kDrop, AddressUse::kNotSpecial);
    LoadBalancerIngress lb;
    Field mode = entry.member("ipMode");
    bool ok = true;
    if (mode.present()) {
      auto mode_text = mode.string(Severity::kDrop);
      // An unknown mode is not VIP, so kube-proxy would not capture the IP (IsVIPMode);
      // dropping the entry has the same effect and says so.
      auto m = mode_text ? lookup(*mode_text, kIPModes) : std::nullopt;
      if (mode_text && !m) mode.fail(Severity::kDrop, RejectReason::kUnknownValue, "is not VIP or Proxy");
      ok = m.has_value();
      lb.ip_mode = m.value_or(LoadBalancerIPMode::kVIP);
    }
    if (!ip || !ok) continue;
    lb.ip = *ip;
    svc.load_balancer_ingress.push_back(lb);
  }
}

ParseResult<Service> parse(const ValueRef& object) {
  Reporter reporter("Service");
  Field root(reporter, object);
  if (!root.holds_object()) {
    root.fail(Severity::kRefuse, RejectReason::kWrongType, "is not a JSON object");
    return std::move(reporter).finish<Service>(std::nullopt);
  }
  Service svc;
  svc.meta = read_object_meta(reporter, root, kServiceKind);

  Field spec = root.member("spec");
  if (spec.present() && !spec.is_object(Severity::kRefuse)) return std::move(reporter).finish<Service>(std::nullopt);

  Field type = spec.member("type");
  read_enum(type, Severity::kRefuse, kServiceTypes, "ClusterIP, NodePort, LoadBalancer or ExternalName", svc.type);

  if (svc.type == ServiceType::kExternalName) {
    // A DNS alias: the API clears its cluster IPs and kube-proxy skips it (ShouldSkipService).
    if (auto name = spec.member("externalName").string(Severity::kDrop)) svc.external_name = std::string(*name);
  } else {
    read_cluster_ips(spec, svc);
    read_ip_families(spec, svc);
  }
  read_ports(spec, svc);
  read_external_ips(spec, svc);
  read_source_ranges(spec, svc);
  read_session_affinity(spec, svc);
  read_enum(spec.member("externalTrafficPolicy"), Severity::kDrop, kPolicies, "Cluster or Local",
            svc.external_traffic_policy);
  read_enum(spec.member("internalTrafficPolicy"), Severity::kDrop, kPolicies, "Cluster or Local",
            svc.internal_traffic_policy);
  if (auto port = spec.member("healthCheckNodePort").integer_in(Severity::kDrop, 0, 65535)) {
    svc.health_check_node_port = static_cast<std::uint16_t>(*port);
  }
  Field distribution = spec.member("trafficDistribution");
  if (auto text = distribution.string(Severity::kDrop); text && !text->empty()) {
    if (auto d = lookup(*text, kDistributions)) {
      svc.traffic_distribution = *d;
    } else {
      distribution.fail(Severity::kDrop, RejectReason::kUnknownValue,
                        "is not PreferClose, PreferSameZone or PreferSameNode");
    }
  }
  read_load_balancer_status(root, svc);
  return std::move(reporter).finish(std::optional<Service>(std::move(svc)));
}

}  // namespace
}  // namespace detail

ParseResult<Service> parse_service(const nlohmann::json& object) noexcept {
  return detail::guarded<Service>("Service", [&] { return detail::parse(detail::ValueRef(object)); });
}

ParseResult<Service> parse_service(const JsonValue& object) noexcept {
  return detail::guarded<Service>("Service", [&] { return detail::parse(detail::JsonValueAccess::ref(object)); });
}

}  // namespace kproxy::model
