// The real runner's pure parts: names, error reports, argv, detection's pattern, and
// run_command. Running iptables itself is the netns tier's job (test/netns).
#include <gtest/gtest.h>

#include "kproxy/kernel/exec_iptables_runner.h"

namespace kproxy::kernel {
namespace {

TEST(IptablesNames, TablesRoundTrip) {
  for (Table t : {Table::kFilter, Table::kNat, Table::kMangle, Table::kRaw}) EXPECT_EQ(parse_table(table_name(t)), t);
  EXPECT_FALSE(parse_table("security").has_value());
  EXPECT_EQ(flavour_name(IptablesFlavour::kLegacy), "legacy");
}

TEST(RestoreErrorLine, ReadsEveryKnownForm) {
  EXPECT_EQ(restore_error_line("iptables-restore: line 4 failed"), 4);
  EXPECT_EQ(restore_error_line("iptables-nft-restore v1.8.9 (nf_tables): Chain 'X' does not exist\n"
                               "Error occurred at line: 9\nTry `iptables-nft-restore -h'"), 9);
  EXPECT_EQ(restore_error_line("iptables-restore: COMMIT expected at line 3"), 3);
  EXPECT_EQ(restore_error_line("iptables-nft-restore v1.8.9 (nf_tables): \nline 2: CHAIN_DEL failed"), 2);
  EXPECT_FALSE(restore_error_line("Another app is currently holding the xtables lock").has_value());
}

TEST(FormatRestoreError, QuotesTheLinesAroundTheFailingOne) {
  std::string payload = "*nat\n:KUBE-A - [0:0]\n-A KUBE-A -j KUBE-B\nCOMMIT\n";
  std::string msg = format_restore_error("iptables-restore failed",
                                         "Ignoring deprecated --wait-interval option.\niptables-restore: line 3 failed\n",
                                         payload, 3, 1);
  EXPECT_EQ(msg,
            "iptables-restore failed: iptables-restore: line 3 failed\n"
            "payload around line 3:\n"
            "  2: :KUBE-A - [0:0]\n"
            "> 3: -A KUBE-A -j KUBE-B\n"
            "  4: COMMIT");
  EXPECT_EQ(format_restore_error("x", "boom", payload, 99), "x: boom");
}

TEST(ExecIptablesRunner, RestoreArgvHasTheLockFlagsAndPrefix) {
  ExecIptablesRunner legacy({IptablesFlavour::kLegacy, IpFamily::kIPv4, {"ip", "netns", "exec", "ns1"}});
  EXPECT_EQ(legacy.restore_argv({}), (std::vector<std::string>{"ip", "netns", "exec", "ns1", "iptables-legacy-restore",
                                                               "-w", "5", "-W", "100000", "--noflush", "--counters"}));
  ExecIptablesRunner nft6({IptablesFlavour::kNft, IpFamily::kIPv6, {}});
  EXPECT_EQ(nft6.restore_argv({false, false}),
            (std::vector<std::string>{"ip6tables-nft-restore", "-w", "5", "-W", "100000"}));
}

TEST(ExecIptablesRunner, FailureToRunIsAnError) {
  ExecIptablesRunner r({IptablesFlavour::kNft, IpFamily::kIPv4, {"/nonexistent/kproxy-prefix"}});
  Status s = r.restore("*nat\nCOMMIT\n", {});
  EXPECT_FALSE(s.ok());
  auto saved = r.save(Table::kNat);
  EXPECT_FALSE(saved.ok());
}

TEST(ExecIptablesRunner, NonZeroExitReportsStderrAndPayloadLine) {
  // "sh -c" stands in for iptables-restore: it reads stdin and fails on line 2.
  ExecIptablesRunner r({IptablesFlavour::kNft, IpFamily::kIPv4,
                        {"sh", "-c", "cat >/dev/null; echo 'iptables-restore: line 2 failed' >&2; exit 1", "sh"}});
  Status s = r.restore("*nat\n-A NOPE -j ACCEPT\nCOMMIT\n", {});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("exit status 1"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("> 2: -A NOPE -j ACCEPT"), std::string::npos) << s.message();
}

TEST(HasKubeletChains, MatchesOnlyChainDeclarations) {
  EXPECT_TRUE(has_kubelet_chains("*mangle\n:KUBE-IPTABLES-HINT - [0:0]\nCOMMIT\n"));
  EXPECT_TRUE(has_kubelet_chains(":KUBE-KUBELET-CANARY - [0:0]\n"));
  EXPECT_FALSE(has_kubelet_chains("-A FOO -m comment --comment \":KUBE-IPTABLES-HINT\"\n"));
  EXPECT_FALSE(has_kubelet_chains("*mangle\n:KUBE-PROXY-CANARY - [0:0]\n"));
}

TEST(RunCommand, PassesStdinAndCollectsOutput) {
  std::string big(1 << 20, 'x');
  auto r = run_command({"cat"}, big);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->out.size(), big.size());
}

TEST(RunCommand, ChildThatIgnoresStdinIsNotAnError) {
  auto r = run_command({"sh", "-c", "echo err >&2; exit 3"}, std::string(1 << 20, 'x'));
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->err, "err\n");
}

TEST(RunCommand, KillsAfterTimeout) {
  auto r = run_command({"sleep", "10"}, "", std::chrono::milliseconds(200));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("killed"), std::string::npos);
}

}  // namespace
}  // namespace kproxy::kernel
