// A core/v1 Node as kproxy sees it: its own node's IPs, pod CIDRs, zone label, taints and
// deletion state (api/core/v1/types.go).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kproxy/ip.h"
#include "kproxy/model/object_meta.h"
#include "kproxy/model/timestamp.h"

namespace kproxy::model {

// Only the address types that carry an IP. Hostname, InternalDNS and ExternalDNS entries are
// skipped: node IP detection (GetNodeHostIPs in component-helpers) never reads them.
enum class NodeAddressType : std::uint8_t { kInternalIP, kExternalIP };
enum class TaintEffect : std::uint8_t { kNoSchedule, kPreferNoSchedule, kNoExecute };

// "InternalIP", "ExternalIP"; "NoSchedule", "PreferNoSchedule", "NoExecute".
std::string_view to_string(NodeAddressType type);
std::string_view to_string(TaintEffect effect);

struct NodeAddress {
  NodeAddressType type = NodeAddressType::kInternalIP;
  IpAddress ip;

  bool operator==(const NodeAddress&) const = default;
};

struct Taint {
  std::string key;
  std::string value;
  TaintEffect effect = TaintEffect::kNoSchedule;
  std::optional<Timestamp> time_added;

  bool operator==(const Taint&) const = default;
};

struct Node {
  ObjectMeta meta;  // ns is always empty: Nodes are cluster-scoped
  // In API order (kubelet writes InternalIP before ExternalIP).
  std::vector<NodeAddress> addresses;
  // spec.podCIDRs, or the older single spec.podCIDR; at most one per family.
  std::vector<Cidr> pod_cidrs;
  std::vector<Taint> taints;
  // False when some taint was refused (unknown effect, missing key, bad timeAdded). spec.taints
  // has no merge key, so a PATCH replaces the whole list: writing back this partial list
  // would delete other controllers' taints. Do not patch taints from a Node where this is
  // false.
  bool taints_complete = true;

  bool operator==(const Node&) const = default;
};

}  // namespace kproxy::model
