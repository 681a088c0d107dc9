// core/v1 Node -> model::Node.
//
// kproxy reads its own Node for node IPs (status.addresses, as GetNodeHostIPs in
// k8s.io/component-helpers/node/util does), pod CIDRs (the NodeCIDR local-traffic detector),
// the zone label (topology hints), the deletion timestamp (health check draining) and the
// taints (userspace SCTP mode keeps its own taint on the node).
#include "kproxy/model/node.h"

#include <string>
#include <utility>

#include "kproxy/model/parse.h"
#include "names.h"
#include "object_reader.h"

namespace kproxy::model {

std::string_view to_string(NodeAddressType type) {
  switch (type) {
    case NodeAddressType::kInternalIP: return "InternalIP";
    case NodeAddressType::kExternalIP: return "ExternalIP";
  }
  return "unknown";
}

std::string_view to_string(TaintEffect effect) {
  switch (effect) {
    case TaintEffect::kNoSchedule: return "NoSchedule";
    case TaintEffect::kPreferNoSchedule: return "PreferNoSchedule";
    case TaintEffect::kNoExecute: return "NoExecute";
  }
  return "unknown";
}

namespace detail {
namespace {

const KindInfo kNodeKind{"Node", "v1", false, is_dns1123_subdomain, "a DNS-1123 subdomain"};

constexpr std::pair<std::string_view, TaintEffect> kEffects[] = {
    {"NoSchedule", TaintEffect::kNoSchedule},
    {"PreferNoSchedule", TaintEffect::kPreferNoSchedule},
    {"NoExecute", TaintEffect::kNoExecute},
};

bool entry_present(const Field& entry) {
  if (entry.present()) return true;
  entry.fail(Severity::kDrop, RejectReason::kWrongType, "must not be null");
  return false;
}

// status.addresses: InternalIP and ExternalIP entries with a valid IP are kept; the
// name-valued types are skipped without a report, since they are not IPs by design.
void read_addresses(const Field& root, Node& node) {
  Field status = root.member("status");
  if (status.present() && !status.is_object(Severity::kDrop)) return;
  Field list = status.member("addresses");
  if (!list.is_array(Severity::kDrop)) return;
  for (std::size_t i = 0; i < list.size(); ++i) {
    Field entry = list.at(i);
    if (!entry_present(entry) || !entry.is_object(Severity::kDrop)) continue;
    Field type = entry.member("type");
    auto type_text = type.required_string(Severity::kDrop);
    if (!type_text) continue;
    NodeAddressType kind;
    if (*type_text == "InternalIP") {
      kind = NodeAddressType::kInternalIP;
    } else if (*type_text == "ExternalIP") {
      kind = NodeAddressType::kExternalIP;
    } else if (*type_text == "Hostname" || *type_text == "InternalDNS" || *type_text == "ExternalDNS") {
      continue;
    } else {
      type.fail(Severity::kDrop, RejectReason::kUnknownValue,
                "is not InternalIP, ExternalIP, Hostname, InternalDNS or ExternalDNS");
      continue;
    }
    Field address = entry.member("address");
    if (!address.present()) {
      address.fail(Severity::kDrop, RejectReason::kMissingField, "is required");
      continue;
    }
    // Node IPs are the node's own: loopback or link-local values are odd but not an attack
    // on anyone else, so only the parser's rules (and the IPv4-mapped refusal) apply.
    if (auto ip = address.ip(Severity::kDrop, Field::AddressUse::kAny)) node.addresses.push_back({kind, *ip});
  }
}

// spec.podCIDRs (at most one per family), or the older single spec.podCIDR when podCIDRs is
// absent. A bad entry is dropped alone.
void read_pod_cidrs(const Field& spec, Node& node) {
  Field list = spec.member("podCIDRs");
  if (list.present() && list.is_array(Severity::kDrop) && list.size() > 0) {
    if (list.size() > kMaxPodCIDRs) {
      list.fail(Severity::kDrop, RejectReason::kTooLarge,
                "has " + std::to_string(list.size()) + " entries; at most 2, one per family");
      return;
    }
    for (std::size_t i = 0; i < list.size(); ++i) {
      Field entry = list.at(i);
      if (!entry_present(entry)) continue;
      auto cidr = entry.cidr(Severity::kDrop, false);
      if (!cidr) continue;
      if (!node.pod_cidrs.empty() && node.pod_cidrs.front().family() == cidr->family()) {
        entry.fail(Severity::kDrop, RejectReason::kFamilyMismatch, "has the same family as spec.podCIDRs[0]");
        continue;
      }
      node.pod_cidrs.push_back(*cidr);
    }
    return;
  }
  if (list.present()) return;  // not a list (reported) or empty
  Field single = spec.member("podCIDR");
  if (auto text = single.string(Severity::kDrop); text && !text->empty()) {
    if (auto cidr = single.cidr(Severity::kDrop, false)) node.pod_cidrs.push_back(*cidr);
  }
}

// spec.taints. Any refused taint marks the list incomplete (see Node::taints_complete).
void read_taints(const Field& spec, Node& node) {
  Field list = spec.member("taints");
  if (!list.present()) return;
  if (!list.is_array(Severity::kDrop)) {
    node.taints_complete = false;
    return;
  }
  for (std::size_t i = 0; i < list.size(); ++i) {
    Field entry = list.at(i);
    if (!entry_present(entry) || !entry.is_object(Severity::kDrop)) {
      node.taints_complete = false;
      continue;
    }
    Taint taint;
    bool ok = true;
    Field key = entry.member("key");
    if (auto s = key.required_string(Severity::kDrop)) {
      taint.key = std::string(*s);
    } else {
      ok = false;
    }
    Field value = entry.member("value");
    if (auto s = value.string(Severity::kDrop)) {
      taint.value = std::string(*s);
    } else if (value.present()) {
      ok = false;
    }
    Field effect = entry.member("effect");
    if (auto s = effect.required_string(Severity::kDrop)) {
      if (auto e = lookup(*s, kEffects)) {
        taint.effect = *e;
      } else {
        effect.fail(Severity::kDrop, RejectReason::kUnknownValue, "is not NoSchedule, PreferNoSchedule or NoExecute");
        ok = false;
      }
    } else {
      ok = false;
    }
    Field time_added = entry.member("timeAdded");
    if (time_added.present()) {
      taint.time_added = time_added.timestamp(Severity::kDrop);
      ok = ok && taint.time_added.has_value();
    }
    if (ok) {
      node.taints.push_back(std::move(taint));
    } else {
      node.taints_complete = false;
    }
  }
}

ParseResult<Node> parse(const ValueRef& object) {
  Reporter reporter("Node");
  Field root(reporter, object);
  if (!root.holds_object()) {
    root.fail(Severity::kRefuse, RejectReason::kWrongType, "is not a JSON object");
    return std::move(reporter).finish<Node>(std::nullopt);
  }
  Node node;
  node.meta = read_object_meta(reporter, root, kNodeKind);
  Field spec = root.member("spec");
  if (spec.present() && !spec.is_object(Severity::kDrop)) {
    // Without a readable spec the taints are unknown, not absent.
    node.taints_complete = false;
  } else {
    read_pod_cidrs(spec, node);
    read_taints(spec, node);
  }
  read_addresses(root, node);
  return std::move(reporter).finish(std::optional<Node>(std::move(node)));
}

}  // namespace
}  // namespace detail

ParseResult<Node> parse_node(const nlohmann::json& object) noexcept {
  return detail::guarded<Node>("Node", [&] { return detail::parse(detail::ValueRef(object)); });
}

ParseResult<Node> parse_node(const JsonValue& object) noexcept {
  return detail::guarded<Node>("Node", [&] { return detail::parse(detail::JsonValueAccess::ref(object)); });
}

}  // namespace kproxy::model
