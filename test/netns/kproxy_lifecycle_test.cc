// The daemon's life on a node, on the real kernel in a throwaway namespace: a flush by another
// program is repaired within the sync period (the canary), and --cleanup leaves iptables-save
// as it was before kproxy ran.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <sstream>
#include <thread>

#include "netns.h"
#include "subprocess.h"

namespace {

using kproxy::testing::BackgroundProcess;
using kproxy::testing::Netns;
using namespace std::chrono_literals;

const std::string kManifests = std::string(KPROXY_FIXTURES_DIR) + "/manifests/basic";

// Waits for a process that exits by itself, then returns its exit code.
int wait_exit(BackgroundProcess& p, std::chrono::milliseconds timeout) {
  p.wait_for([](const std::vector<std::string>&) { return false; }, timeout);
  return p.running() ? p.stop() : p.exit_code();
}

bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(100ms);
  }
  return pred();
}

// iptables-nft-save of a namespace without the comment lines and counters, so that two
// saves of the same rules compare equal.
std::string normalized_save(const Netns& ns) {
  const auto r = ns.exec({"iptables-nft-save"});
  std::istringstream in(r.out);
  std::string out;
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("#")) continue;
    if (line.starts_with(":")) line = line.substr(0, line.rfind(' '));  // drop "[packets:bytes]"
    out += line + "\n";
  }
  return out;
}

class KproxyLifecycle : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!kproxy::testing::can_create_netns()) GTEST_SKIP() << "needs root and iproute2 (netns tier)";
    Netns::remove_stale("lifecycle");
    ns_ = std::make_unique<Netns>("lifecycle");
    ASSERT_TRUE(ns_->ok());
    // What kubelet leaves on a node: its hint and canary chains (so the flavour is nft) and
    // the localnet firewall chain with its jumps.
    ns_->exec_ok({"iptables-nft-restore", "--noflush"},
                 "*mangle\n:KUBE-IPTABLES-HINT - [0:0]\n:KUBE-KUBELET-CANARY - [0:0]\nCOMMIT\n"
                 "*filter\n:KUBE-FIREWALL - [0:0]\n:OPERATOR - [0:0]\n"
                 "-A KUBE-FIREWALL -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m comment --comment \"block incoming localnet "
                 "connections\" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP\n"
                 "-A INPUT -j KUBE-FIREWALL\n-A INPUT -j OPERATOR\n-A OUTPUT -j KUBE-FIREWALL\n"
                 "-A OPERATOR -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n"
                 "*nat\n:OPERATOR-NAT - [0:0]\n-A PREROUTING -j OPERATOR-NAT\nCOMMIT\n");
  }
  std::unique_ptr<BackgroundProcess> start_kproxy(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv{KPROXY_BINARY,         "--manifests=" + kManifests, "--hostname-override=n1",
                                  "--cluster-cidr=10.244.0.0/16", "--healthz-bind-address=127.0.0.1:10256",
                                  "--v=2"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return std::make_unique<BackgroundProcess>(argv, ns_->name());
  }
  // A jump to a KUBE-SVC- chain anywhere in nat (the cluster IP rules sit in the leaves of the
  // dispatch tree under KUBE-SERVICES).
  bool has_service_rules() {
    return ns_->exec({"iptables-nft", "-t", "nat", "-S"}).out.find("-j KUBE-SVC-") != std::string::npos;
  }
  bool has_prerouting_jump() {
    return ns_->exec({"iptables-nft", "-t", "nat", "-S", "PREROUTING"}).out.find("-j KUBE-SERVICES") !=
           std::string::npos;
  }

  std::unique_ptr<Netns> ns_;
};

TEST_F(KproxyLifecycle, AFlushOfNatIsRepairedWithinTheSyncPeriod) {
  auto kproxy = start_kproxy({"--iptables-sync-period=2s"});
  ASSERT_TRUE(eventually([&] { return has_service_rules() && has_prerouting_jump(); }, 20s)) << kproxy->describe();
  ns_->exec_ok({"iptables-nft", "-t", "nat", "-F"});
  ASSERT_FALSE(has_service_rules());
  EXPECT_TRUE(eventually([&] { return has_service_rules() && has_prerouting_jump(); }, 10s)) << kproxy->describe();
  EXPECT_NE(kproxy->stderr_text().find("the tables were flushed; forcing a full sync"), std::string::npos)
      << kproxy->describe();
  EXPECT_EQ(kproxy->stop(), 0) << kproxy->describe();
}

TEST_F(KproxyLifecycle, HealthzAndLivezAnswerOnceSynced) {
  auto kproxy = start_kproxy();
  ASSERT_TRUE(eventually([&] { return has_service_rules(); }, 20s)) << kproxy->describe();
  for (const char* path : {"/healthz", "/livez"}) {
    kproxy::testing::RunResult r;
    ASSERT_TRUE(eventually(
        [&] {
          r = ns_->exec({"curl", "-s", "-o", "/dev/stdout", "-w", "\n%{http_code}", std::string("http://127.0.0.1:10256") + path});
          return r.out.ends_with("\n200");
        },
        10s))
        << path << ": " << r.out << r.err << kproxy->describe();
    EXPECT_NE(r.out.find("\"lastUpdated\""), std::string::npos) << r.out;
    if (std::string(path) == "/healthz") {
      EXPECT_NE(r.out.find("\"nodeEligible\":true"), std::string::npos) << r.out;
    }
  }
  EXPECT_EQ(kproxy->stop(), 0) << kproxy->describe();
}

// /metrics of the running daemon, read by a real Prometheus text-format parser (Debian's
// python3-prometheus-client), carries kube-proxy's sync metrics after the first sync.
TEST_F(KproxyLifecycle, MetricsParseWithPrometheusAndShowTheSync) {
  if (kproxy::testing::run({"/usr/bin/python3", "-c", "import prometheus_client.parser"}).exit_code != 0) {
    GTEST_SKIP() << "/usr/bin/python3 with prometheus_client (python3-prometheus-client) is not installed";
  }
  auto kproxy = start_kproxy({"--metrics-bind-address=127.0.0.1:10249"});
  ASSERT_TRUE(eventually([&] { return has_service_rules(); }, 20s)) << kproxy->describe();
  kproxy::testing::RunResult scraped;
  ASSERT_TRUE(eventually(
      [&] {
        scraped = ns_->exec({"curl", "-sf", "http://127.0.0.1:10249/metrics"});
        return scraped.exit_code == 0 &&
               scraped.out.find("kubeproxy_sync_proxy_rules_last_timestamp_seconds{") != std::string::npos;
      },
      10s))
      << scraped.out << scraped.err << kproxy->describe();
  const std::string program =
      "import sys\n"
      "from prometheus_client.parser import text_string_to_metric_families\n"
      "names = {}\n"
      "for f in text_string_to_metric_families(sys.stdin.read()):\n"
      "    names[f.name] = (f.type, len(f.samples))\n"
      "for n in sorted(names): print(n, *names[n])\n";
  const auto parsed = kproxy::testing::run({"/usr/bin/python3", "-c", program}, scraped.out);
  ASSERT_EQ(parsed.exit_code, 0) << parsed.err << "\n" << scraped.out;
  for (const char* family : {"kubeproxy_sync_proxy_rules_duration_seconds histogram",
                             "kubeproxy_sync_full_proxy_rules_duration_seconds histogram",
                             "kubeproxy_sync_proxy_rules_last_timestamp_seconds gauge",
                             "kubeproxy_sync_proxy_rules_iptables_total gauge",
                             "kubeproxy_sync_proxy_rules_endpoint_changes counter"}) {
    EXPECT_NE(parsed.out.find(family), std::string::npos) << family << " in\n" << parsed.out;
  }
  EXPECT_EQ(kproxy->stop(), 0) << kproxy->describe();
}

TEST_F(KproxyLifecycle, SigtermLeavesTheRulesAndCleanupRestoresTheTablesOfBefore) {
  const std::string before = normalized_save(*ns_);
  auto kproxy = start_kproxy();
  ASSERT_TRUE(eventually([&] { return has_service_rules(); }, 20s)) << kproxy->describe();
  EXPECT_EQ(kproxy->stop(), 0) << kproxy->describe();
  EXPECT_TRUE(has_service_rules()) << "SIGTERM must not remove rules: traffic keeps flowing across a restart";
  const std::string with_kproxy = normalized_save(*ns_);
  EXPECT_NE(with_kproxy, before);

  BackgroundProcess cleanup({KPROXY_BINARY, "--cleanup", "--v=2"}, ns_->name());
  EXPECT_EQ(wait_exit(cleanup, 30s), 0) << cleanup.describe();
  EXPECT_EQ(normalized_save(*ns_), before) << "after kproxy:\n" << with_kproxy;
}

TEST_F(KproxyLifecycle, CleanupExitsNonZeroWhenAForeignRuleHoldsAChain) {
  auto kproxy = start_kproxy();
  ASSERT_TRUE(eventually([&] { return has_service_rules(); }, 20s)) << kproxy->describe();
  kproxy->stop();
  ns_->exec_ok({"iptables-nft", "-t", "nat", "-A", "OPERATOR-NAT", "-j", "KUBE-MARK-MASQ"});
  BackgroundProcess cleanup({KPROXY_BINARY, "--cleanup"}, ns_->name());
  EXPECT_EQ(wait_exit(cleanup, 30s), 1) << cleanup.describe();
  EXPECT_NE(cleanup.stderr_text().find("could not remove everything"), std::string::npos) << cleanup.describe();
}

// --sctp-userspace-mode without CAP_NET_RAW (dropped from the bounding set, as a pod's
// securityContext would) exits 1 naming the capability, before touching iptables.
TEST_F(KproxyLifecycle, SctpUserspaceModeWithoutNetRawExitsNamingTheCapability) {
  const std::string before = normalized_save(*ns_);
  BackgroundProcess p({"setpriv", "--bounding-set=-net_raw", "--inh-caps=-net_raw", KPROXY_BINARY,
                       "--manifests=" + kManifests, "--hostname-override=n1", "--sctp-userspace-mode"},
                      ns_->name());
  EXPECT_EQ(wait_exit(p, 10s), 1) << p.describe();
  EXPECT_NE(p.stderr_text().find("--sctp-userspace-mode needs CAP_NET_RAW"), std::string::npos) << p.describe();
  EXPECT_EQ(normalized_save(*ns_), before);
  // With the capability the same command line runs.
  auto kproxy = start_kproxy({"--sctp-userspace-mode"});
  EXPECT_TRUE(eventually([&] { return has_service_rules(); }, 20s)) << kproxy->describe();
  EXPECT_EQ(kproxy->stop(), 0) << kproxy->describe();
}

}  // namespace
