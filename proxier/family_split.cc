#include "kproxy/proxier/family_split.h"

namespace kproxy::proxier {

std::optional<Cidr> cluster_cidr_of(const std::vector<Cidr>& cluster_cidrs, IpFamily family) {
  for (const Cidr& c : cluster_cidrs) {
    if (c.family() == family) return c;
  }
  return std::nullopt;
}

std::vector<Cidr> node_port_cidrs_of(const std::vector<Cidr>& cidrs, bool all, IpFamily family,
                                     const std::vector<IpAddress>& local_addresses) {
  std::vector<Cidr> out;
  if (all) return out;
  for (const Cidr& c : cidrs) {
    if (c.family() == family) out.push_back(c);
  }
  if (!out.empty()) return out;
  for (const IpAddress& ip : local_addresses) {
    if (ip.family() != family || ip.is_loopback() || (ip.is_v6() && ip.is_link_local())) continue;
    out.push_back(*Cidr::make(ip, ip.is_v4() ? 32 : 128));
  }
  return out;
}

}  // namespace kproxy::proxier
