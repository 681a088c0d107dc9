// Proves the netns tier's ground: a namespace of our own can be created, programmed with
// both iptables flavours, used for traffic, and removed, without touching the root namespace.
#include <gtest/gtest.h>

#include <algorithm>

#include "netns.h"

namespace kproxy::testing {
namespace {

constexpr const char* kTag = "harness";

class NetnsHarness : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!can_create_netns()) GTEST_SKIP() << "needs root and iproute2 (netns tier)";
    Netns::remove_stale(kTag);
  }
};

bool listed(const std::string& name) {
  auto names = Netns::list();
  return std::find(names.begin(), names.end(), name) != names.end();
}

TEST_F(NetnsHarness, NamespaceIsCreatedAndAlwaysDeleted) {
  std::string name;
  {
    Netns ns(kTag);
    ASSERT_TRUE(ns.ok());
    name = ns.name();
    EXPECT_TRUE(listed(name));
  }
  EXPECT_FALSE(listed(name));
}

// kproxy programs iptables with iptables-restore --noflush; both back ends must work in a
// namespace, and nothing may leak out of it. Isolation is checked against a second fresh
// namespace, never by reading the root namespace's tables: even iptables-legacy-save -t nat
// there can make the kernel create the legacy nat table.
class IptablesInNamespace : public NetnsHarness, public ::testing::WithParamInterface<std::string> {};

TEST_P(IptablesInNamespace, RestoreProgramsOnlyTheNamespace) {
  const std::string flavour = GetParam();
  const std::string restore = "iptables-" + flavour + "-restore";
  const std::string save = "iptables-" + flavour + "-save";
  Netns ns(kTag);
  ASSERT_TRUE(ns.ok());
  ns.exec_ok({restore, "--noflush"},
             "*nat\n:KUBE-SERVICES - [0:0]\n-A OUTPUT -j KUBE-SERVICES\n"
             "-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp --dport 443 -j DNAT --to-destination 127.0.0.1:6443\n"
             "COMMIT\n");
  RunResult saved = ns.exec_ok({save, "-t", "nat"});
  EXPECT_NE(saved.out.find("-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m tcp --dport 443 -j DNAT"), std::string::npos)
      << saved.out;
  Netns other("harness-other");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other.exec({save, "-t", "nat"}).out.find("KUBE-SERVICES"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Flavours, IptablesInNamespace, ::testing::Values("nft", "legacy"));

TEST_F(NetnsHarness, VethPairCarriesTrafficBetweenNamespaces) {
  Netns a("harness-a");
  Netns b("harness-b");
  ASSERT_TRUE(a.ok() && b.ok());
  const std::string peer = "kpt-veth-" + std::to_string(getpid() % 100000);
  a.exec_ok({"ip", "link", "add", "eth0", "type", "veth", "peer", "name", peer});
  a.exec_ok({"ip", "link", "set", peer, "netns", b.name()});
  b.exec_ok({"ip", "link", "set", peer, "name", "eth0"});
  a.exec_ok({"ip", "addr", "add", "10.250.0.1/24", "dev", "eth0"});
  b.exec_ok({"ip", "addr", "add", "10.250.0.2/24", "dev", "eth0"});
  a.exec_ok({"ip", "link", "set", "eth0", "up"});
  b.exec_ok({"ip", "link", "set", "eth0", "up"});
  RunResult ping = a.exec({"ping", "-c", "1", "-W", "5", "10.250.0.2"});
  EXPECT_EQ(ping.exit_code, 0) << ping.out << ping.err;
}

}  // namespace
}  // namespace kproxy::testing
