// The node facts each IP family's proxier takes from the configuration, split as kube-proxy's
// meta-proxier splits them (docs/dual-stack.md). Pure: the node's addresses are passed in.
#pragma once

#include <optional>
#include <vector>

#include "kproxy/ip.h"

namespace kproxy::proxier {

// --cluster-cidr: the CIDR of `family`, if one was given (validation allows one per family).
std::optional<Cidr> cluster_cidr_of(const std::vector<Cidr>& cluster_cidrs, IpFamily family);

// --nodeport-addresses for `family`, as CIDRs that select the node addresses NodePorts answer
// on; empty means every local address. `all` is the flag's default (unset): empty for both
// families. Otherwise the CIDRs of `family`; when there is none (the keyword "primary", or a
// list of the other family's CIDRs only), the node's own addresses of `family`, each as a host
// CIDR (kube-proxy's NewNodePortAddresses: one family's CIDRs never silence the other family's
// NodePorts). Loopback and IPv6 link-local addresses are not node IPs and are left out.
std::vector<Cidr> node_port_cidrs_of(const std::vector<Cidr>& cidrs, bool all, IpFamily family,
                                     const std::vector<IpAddress>& local_addresses);

}  // namespace kproxy::proxier
