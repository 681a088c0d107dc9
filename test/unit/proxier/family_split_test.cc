// The node facts split per family (docs/dual-stack.md): --cluster-cidr and
// --nodeport-addresses as each family's proxier sees them.
#include "kproxy/proxier/family_split.h"

#include <gtest/gtest.h>

namespace kproxy::proxier {
namespace {

Cidr cidr(const char* s) { return *Cidr::parse(s); }
IpAddress ip(const char* s) { return *IpAddress::parse(s); }

TEST(FamilySplit, ClusterCidrPerFamily) {
  const std::vector<Cidr> both = {cidr("10.244.0.0/16"), cidr("fd00:10:244::/48")};
  EXPECT_EQ(cluster_cidr_of(both, IpFamily::kIPv4), cidr("10.244.0.0/16"));
  EXPECT_EQ(cluster_cidr_of(both, IpFamily::kIPv6), cidr("fd00:10:244::/48"));
  EXPECT_EQ(cluster_cidr_of({cidr("fd00:10:244::/48")}, IpFamily::kIPv4), std::nullopt);
  EXPECT_EQ(cluster_cidr_of({}, IpFamily::kIPv6), std::nullopt);
}

const std::vector<IpAddress> kLocal = {ip("127.0.0.1"),   ip("192.168.77.11"), ip("10.244.1.1"), ip("::1"),
                                       ip("fe80::1"),     ip("fd00:77::11")};

TEST(FamilySplit, UnsetNodePortAddressesMeanEveryAddressOfBothFamilies) {
  EXPECT_TRUE(node_port_cidrs_of({}, true, IpFamily::kIPv4, kLocal).empty());
  EXPECT_TRUE(node_port_cidrs_of({}, true, IpFamily::kIPv6, kLocal).empty());
}

TEST(FamilySplit, EachFamilyTakesItsOwnCidrs) {
  const std::vector<Cidr> both = {cidr("192.168.77.0/24"), cidr("fd00:77::/64")};
  EXPECT_EQ(node_port_cidrs_of(both, false, IpFamily::kIPv4, kLocal), std::vector<Cidr>{cidr("192.168.77.0/24")});
  EXPECT_EQ(node_port_cidrs_of(both, false, IpFamily::kIPv6, kLocal), std::vector<Cidr>{cidr("fd00:77::/64")});
}

// An IPv4-only list must not leave IPv6 NodePorts answering nowhere, nor everywhere: the IPv6
// side falls back to the node's own IPv6 addresses (loopback and link-local are not node IPs).
TEST(FamilySplit, AFamilyWithoutCidrsGetsTheNodesOwnAddresses) {
  const std::vector<Cidr> v4_only = {cidr("192.168.77.0/24")};
  EXPECT_EQ(node_port_cidrs_of(v4_only, false, IpFamily::kIPv6, kLocal), std::vector<Cidr>{cidr("fd00:77::11/128")});
  // "primary": no CIDRs, both families' node addresses.
  EXPECT_EQ(node_port_cidrs_of({}, false, IpFamily::kIPv4, kLocal),
            (std::vector<Cidr>{cidr("192.168.77.11/32"), cidr("10.244.1.1/32")}));
  EXPECT_EQ(node_port_cidrs_of({}, false, IpFamily::kIPv6, kLocal), std::vector<Cidr>{cidr("fd00:77::11/128")});
}

}  // namespace
}  // namespace kproxy::proxier
