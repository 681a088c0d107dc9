// The real IptablesRunner on the real kernel, inside namespaces of our own (the runner runs
// every command through "ip netns exec <ns>"), for both iptables flavours; and the fake
// checked against the kernel on the same payloads.
#include <gtest/gtest.h>

#include <memory>

#include "fake_iptables.h"
#include "kproxy/kernel/exec_iptables_runner.h"
#include "netns.h"

namespace kproxy::kernel {
namespace {

using kproxy::testing::Netns;

constexpr const char* kTag = "iptrun";

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::vector<std::string> prefix(const Netns& ns) { return {"ip", "netns", "exec", ns.name()}; }

class RunnerTest : public ::testing::TestWithParam<IptablesFlavour> {
 protected:
  void SetUp() override {
    if (!kproxy::testing::can_create_netns()) GTEST_SKIP() << "needs root and iproute2 (netns tier)";
    Netns::remove_stale(kTag);
    ns_ = std::make_unique<Netns>(kTag);
    ASSERT_TRUE(ns_->ok());
    runner_ = std::make_unique<ExecIptablesRunner>(ExecIptablesOptions{GetParam(), IpFamily::kIPv4, prefix(*ns_)});
  }
  std::string save(Table t) {
    auto s = runner_->save(t);
    EXPECT_TRUE(s.ok()) << s.error();
    return s.ok() ? *s : std::string();
  }
  std::string tool(const char* what) const { return "iptables-" + std::string(flavour_name(GetParam())) + what; }

  std::unique_ptr<Netns> ns_;
  std::unique_ptr<ExecIptablesRunner> runner_;
};

TEST_P(RunnerTest, RestoreCreatesChainsAndRulesAndSaveShowsThem) {
  Status s = runner_->restore("*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-A - [0:0]\n"
                              "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n"
                              "-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m tcp --dport 443 -j KUBE-SVC-A\n"
                              "-A KUBE-SVC-A -p tcp -j DNAT --to-destination 10.0.0.1:6443\nCOMMIT\n"
                              "*filter\n:KUBE-FORWARD - [0:0]\n-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP\nCOMMIT\n",
                              {});
  ASSERT_TRUE(s.ok()) << s.message();
  std::string nat = save(Table::kNat);
  EXPECT_TRUE(contains(nat, ":KUBE-SVC-A - [0:0]")) << nat;
  EXPECT_TRUE(contains(nat, "-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m tcp --dport 443 -j KUBE-SVC-A")) << nat;
  EXPECT_TRUE(contains(nat, "-A KUBE-SVC-A -p tcp -j DNAT --to-destination 10.0.0.1:6443")) << nat;
  EXPECT_TRUE(contains(save(Table::kFilter), "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP"));
  EXPECT_TRUE(*runner_->chain_exists(Table::kNat, "KUBE-SVC-A"));
  EXPECT_TRUE(*runner_->chain_exists(Table::kNat, "OUTPUT"));
  auto missing = runner_->chain_exists(Table::kNat, "KUBE-NOPE");
  ASSERT_TRUE(missing.ok()) << missing.error();
  EXPECT_FALSE(*missing);
  // Nothing leaked into the root namespace. Only nft is read there: "iptables-legacy-save -t nat"
  // would make the kernel create the legacy nat table in the root namespace.
  if (GetParam() == IptablesFlavour::kNft) {
    EXPECT_FALSE(contains(kproxy::testing::run({"iptables-nft-save", "-t", "nat"}).out, "KUBE-SVC-A"));
  }
}

TEST_P(RunnerTest, NoflushLeavesForeignRulesAlone) {
  ns_->exec_ok({tool("-restore"), "--noflush"},
               "*filter\n:FOREIGN - [0:0]\n-A FOREIGN -s 192.0.2.1/32 -j DROP\n-A INPUT -j FOREIGN\nCOMMIT\n");
  ASSERT_TRUE(runner_->restore("*filter\n:KUBE-A - [0:0]\n-A KUBE-A -j ACCEPT\nCOMMIT\n", {}).ok());
  ASSERT_TRUE(runner_->restore("*filter\n:KUBE-A - [0:0]\n-A KUBE-A -j RETURN\nCOMMIT\n", {}).ok());
  std::string filter = save(Table::kFilter);
  EXPECT_TRUE(contains(filter, "-A FOREIGN -s 192.0.2.1/32 -j DROP")) << filter;
  EXPECT_TRUE(contains(filter, "-A INPUT -j FOREIGN")) << filter;
  EXPECT_TRUE(contains(filter, "-A KUBE-A -j RETURN")) << filter;
  EXPECT_FALSE(contains(filter, "-A KUBE-A -j ACCEPT")) << filter;
}

TEST_P(RunnerTest, BadPayloadFailsAtomicallyAndNamesTheLine) {
  const std::string payload =
      "*nat\n:KUBE-NEW - [0:0]\n:KUBE-SVC-B - [0:0]\n-A KUBE-NEW -j KUBE-SVC-B\n-A KUBE-SVC-B -j KUBE-MISSING\n"
      "-A KUBE-NEW -j RETURN\nCOMMIT\n";
  Status s = runner_->restore(payload, {});
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(contains(s.message(), "KUBE-MISSING")) << s.message();
  EXPECT_TRUE(contains(s.message(), "payload around line")) << s.message();
  EXPECT_TRUE(contains(s.message(), ": -A KUBE-SVC-B -j KUBE-MISSING")) << s.message();
  std::string nat = save(Table::kNat);
  EXPECT_FALSE(contains(nat, "KUBE-NEW")) << nat;
  EXPECT_FALSE(contains(nat, "KUBE-SVC-B")) << nat;
}

TEST_P(RunnerTest, FakeAndKernelAgree) {
  FakeIptables fake(GetParam());
  const std::string sep1 = "-A KUBE-SEP-111 -p tcp -m tcp -j DNAT --to-destination 10.0.0.1:6443\n";
  struct Step {
    std::string name, payload;
    RestoreFlags flags;
  };
  const std::vector<Step> steps = {
      {"full sync",
       "*filter\n:KUBE-FORWARD - [0:0]\n:KUBE-SERVICES - [0:0]\n"
       "-A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD\n"
       "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP\n"
       "-A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment \"default/none has no endpoints\" -m tcp "
       "--dport 80 -j REJECT --reject-with icmp-port-unreachable\nCOMMIT\n"
       "*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n:KUBE-SVC-AAA - [0:0]\n:KUBE-SEP-111 - [0:0]\n"
       ":KUBE-SEP-222 - [0:0]\n"
       "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n"
       "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000\n"
       "-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m comment --comment \"default/kubernetes:https cluster IP\" -m tcp "
       "--dport 443 -j KUBE-SVC-AAA\n"
       "-A KUBE-SVC-AAA -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-111\n"
       "-A KUBE-SVC-AAA -j KUBE-SEP-222\n-A KUBE-SEP-111 -s 10.0.0.1/32 -j KUBE-MARK-MASQ\n" + sep1 +
       "-A KUBE-SEP-222 -p tcp -m tcp -j DNAT --to-destination 10.0.0.2:6443\nCOMMIT\n",
       {}},
      {"partial sync removes a stale endpoint chain",
       "*nat\n:KUBE-SVC-AAA - [0:0]\n:KUBE-SEP-111 - [0:0]\n-A KUBE-SVC-AAA -j KUBE-SEP-222\n-X KUBE-SEP-111\nCOMMIT\n",
       {}},
      {"jump to a missing chain", "*nat\n:KUBE-SERVICES - [0:0]\n-A KUBE-SERVICES -j KUBE-SVC-MISSING\nCOMMIT\n", {}},
      {"delete a referenced chain", "*nat\n:KUBE-SVC-AAA - [0:0]\n-X KUBE-SVC-AAA\nCOMMIT\n", {}},
      {"delete a non-empty chain", "*nat\n-X KUBE-SEP-222\nCOMMIT\n", {}},
      {"missing COMMIT", "*nat\n:KUBE-EXTRA - [0:0]\n", {}},
      {"unknown table", "*bogus\nCOMMIT\n", {}},
      {"DNAT in the filter table",
       "*filter\n:KUBE-X - [0:0]\n-A KUBE-X -p tcp -j DNAT --to-destination 10.0.0.1:80\nCOMMIT\n", {}},
      {"first block commits, second fails",
       "*filter\n:KUBE-NODEPORTS - [0:0]\nCOMMIT\n*nat\n:KUBE-NODEPORTS - [0:0]\n-A KUBE-NODEPORTS -j KUBE-NONE\nCOMMIT\n",
       {}},
      {"insert and delete by spec",
       "*nat\n-I KUBE-SVC-AAA -j KUBE-MARK-MASQ\n-D KUBE-SVC-AAA -j KUBE-SEP-222\nCOMMIT\n", {}},
      {"without --noflush the filter table is replaced",
       "*filter\n:KUBE-FORWARD - [0:0]\n-A KUBE-FORWARD -j ACCEPT\nCOMMIT\n", {false, true}},
  };
  for (const auto& step : steps) {
    SCOPED_TRACE(step.name);
    Status real = runner_->restore(step.payload, step.flags);
    Status modelled = fake.restore(step.payload, step.flags);
    EXPECT_EQ(real.ok(), modelled.ok()) << "kernel: " << real.message() << "\nfake: " << modelled.message();
    for (Table t : {Table::kFilter, Table::kNat}) {
      EXPECT_EQ(kube_chains_view(save(t)), kube_chains_view(*fake.save(t))) << table_name(t);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Flavours, RunnerTest, ::testing::Values(IptablesFlavour::kNft, IptablesFlavour::kLegacy),
                         [](const auto& info) { return std::string(flavour_name(info.param)); });

class DetectFlavour : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!kproxy::testing::can_create_netns()) GTEST_SKIP() << "needs root and iproute2 (netns tier)";
    Netns::remove_stale(kTag);
  }
};

TEST_F(DetectFlavour, NftWhenNothingIsFound) {
  Netns ns(kTag);
  ASSERT_TRUE(ns.ok());
  EXPECT_EQ(detect_iptables_flavour(prefix(ns)), IptablesFlavour::kNft);
}

TEST_F(DetectFlavour, LegacyWhenOnlyLegacyHasTheKubeletHint) {
  Netns ns(kTag);
  ASSERT_TRUE(ns.ok());
  ns.exec_ok({"iptables-legacy", "-t", "mangle", "-N", "KUBE-IPTABLES-HINT"});
  EXPECT_EQ(detect_iptables_flavour(prefix(ns)), IptablesFlavour::kLegacy);
}

TEST_F(DetectFlavour, LegacyFromTheKubeletCanaryInAnyTable) {
  Netns ns(kTag);
  ASSERT_TRUE(ns.ok());
  ns.exec_ok({"iptables-legacy", "-t", "nat", "-N", "KUBE-KUBELET-CANARY"});
  EXPECT_EQ(detect_iptables_flavour(prefix(ns)), IptablesFlavour::kLegacy);
}

TEST_F(DetectFlavour, NftWinsWhenBothHaveIt) {
  Netns ns(kTag);
  ASSERT_TRUE(ns.ok());
  ns.exec_ok({"iptables-legacy", "-t", "mangle", "-N", "KUBE-IPTABLES-HINT"});
  ns.exec_ok({"iptables-nft", "-t", "mangle", "-N", "KUBE-IPTABLES-HINT"});
  EXPECT_EQ(detect_iptables_flavour(prefix(ns)), IptablesFlavour::kNft);
}

TEST_F(DetectFlavour, NftFromTheIPv6Mangle) {
  Netns ns(kTag);
  ASSERT_TRUE(ns.ok());
  ns.exec_ok({"iptables-legacy", "-t", "mangle", "-N", "KUBE-IPTABLES-HINT"});
  ns.exec_ok({"ip6tables-nft", "-t", "mangle", "-N", "KUBE-KUBELET-CANARY"});
  EXPECT_EQ(detect_iptables_flavour(prefix(ns)), IptablesFlavour::kNft);
}

}  // namespace
}  // namespace kproxy::kernel
