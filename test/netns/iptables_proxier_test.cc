// IptablesProxier against the real kernel (nft and legacy) in a throwaway namespace: the
// rendered payloads apply, jumps are ensured once, and a chain of partial syncs leaves the
// same tables as one full sync of the final state (kernel compared with kernel).
#include "kproxy/iptables/proxier.h"

#include <gtest/gtest.h>

#include "fake_iptables.h"  // kube_chains_view
#include "kproxy/iptables/maintenance.h"
#include "kproxy/kernel/exec_iptables_runner.h"
#include "kproxy/kernel/ipset_runner.h"
#include "netns.h"
#include "service_builder.h"

namespace kproxy::iptables {
namespace {

using kernel::ExecIptablesOptions;
using kernel::ExecIptablesRunner;
using kernel::IptablesFlavour;
using kproxy::testing::Netns;
using testing::cidr;
using testing::ip;
using testing::ServiceBuilder;
using testing::snapshot;
using proxier::SyncKind;

constexpr const char* kTag = "iptproxier";

IptablesProxierOptions options() {
  IptablesProxierOptions o;
  o.render.node_ip = ip("192.168.0.2");
  o.render.local_detector = {LocalDetector::Mode::kCidr, cidr("10.0.0.0/8"), ""};
  o.render.layout = RenderOptions::Layout::kKproxy;  // as the daemon runs
  return o;
}

struct Node {
  Node(IptablesFlavour flavour, const std::string& tag)
      : ns(tag), runner(ExecIptablesOptions{flavour, kernel::IpFamily::kIPv4, {"ip", "netns", "exec", ns.name()}}),
        proxier(runner, options()) {}
  Status sync(const proxier::Snapshot& s, SyncKind kind, std::set<proxier::ServicePortName> changed = {}) {
    return proxier.sync(proxier::SyncRequest{s, changed, kind, node});
  }
  std::string view(Table t) {
    auto saved = runner.save(t);
    EXPECT_TRUE(saved.ok()) << saved.error();
    return saved.ok() ? kernel::kube_chains_view(*saved) : std::string();
  }
  std::string builtin(Table t, const std::string& chain) {
    auto saved = runner.save(t);
    std::string out;
    std::size_t pos = 0;
    const std::string prefix = "-A " + chain + " ";
    while (saved.ok() && (pos = saved->find(prefix, pos)) != std::string::npos) {
      const std::size_t end = saved->find('\n', pos);
      out += saved->substr(pos, end - pos) + "\n";
      pos = end;
    }
    return out;
  }

  Netns ns;
  ExecIptablesRunner runner;
  proxier::NodeFacts node{"node1", ""};
  IptablesProxier proxier;
};

class IptablesProxierKernel : public ::testing::TestWithParam<IptablesFlavour> {
 protected:
  void SetUp() override {
    if (!kproxy::testing::can_create_netns()) GTEST_SKIP() << "needs root and iproute2 (netns tier)";
    Netns::remove_stale(std::string(kTag) + "a");
    Netns::remove_stale(std::string(kTag) + "b");
  }
};

std::vector<ServiceBuilder> cluster(int web_endpoints, bool with_lb) {
  std::vector<ServiceBuilder> s;
  ServiceBuilder web("ns", "web", "http", model::Protocol::kTcp, "10.96.0.10", 80);
  for (int i = 0; i < web_endpoints; ++i) web.endpoint({"10.180.0." + std::to_string(10 + i), 8080, "node1"});
  s.push_back(web.node_port(30080).affinity(300));
  s.push_back(ServiceBuilder("core", "mme", "s1ap", model::Protocol::kSctp, "10.96.0.20", 36412)
                  .node_port(30412)
                  .etp_local()
                  .endpoint({"10.180.0.20", 36412, "node1"})
                  .endpoint({"10.180.1.20", 36412, "node2"}));
  s.push_back(ServiceBuilder("ns", "dns", "dns", model::Protocol::kUdp, "10.96.0.53", 53).itp_local());  // no endpoints
  if (with_lb) {
    s.push_back(ServiceBuilder("ns", "lb", "", model::Protocol::kTcp, "10.96.0.30", 443)
                    .lb_ip("203.0.113.20")
                    .source_range("198.51.100.0/24")
                    .external_ip("203.0.113.21")
                    .health_check_node_port(30999)
                    .etp_local()
                    .endpoint({"10.180.1.30", 8443, "node2"}));
  }
  return s;
}

TEST_P(IptablesProxierKernel, PartialSyncsEndWhereOneFullSyncEnds) {
  Node a(GetParam(), std::string(kTag) + "a");
  ASSERT_TRUE(a.ns.ok());
  Status s = a.sync(snapshot(cluster(3, true)), SyncKind::kFull);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(a.proxier.last_figures().jumps_inserted, 14u);
  const std::string jumps_after_first = a.builtin(Table::kFilter, "INPUT") + a.builtin(Table::kNat, "PREROUTING");

  // A second full sync ensures the jumps without adding any.
  s = a.sync(snapshot(cluster(3, true)), SyncKind::kFull);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(a.proxier.last_figures().jumps_inserted, 0u);
  EXPECT_EQ(a.builtin(Table::kFilter, "INPUT") + a.builtin(Table::kNat, "PREROUTING"), jumps_after_first);

  // Partial syncs: an endpoint goes, then the LB Service goes.
  const auto web = cluster(1, true)[0].info().name;
  s = a.sync(snapshot(cluster(1, true)), SyncKind::kPartial, {web});
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(a.proxier.last_figures().deleted_chains, 2u);
  const auto lb = cluster(1, true)[3].info().name;
  s = a.sync(snapshot(cluster(1, false)), SyncKind::kPartial, {lb});
  ASSERT_TRUE(s.ok()) << s.message();

  Node b(GetParam(), std::string(kTag) + "b");
  ASSERT_TRUE(b.ns.ok());
  s = b.sync(snapshot(cluster(1, false)), SyncKind::kFull);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(a.view(Table::kNat), b.view(Table::kNat));
  EXPECT_EQ(a.view(Table::kFilter), b.view(Table::kFilter));
  EXPECT_NE(a.view(Table::kNat).find("-m sctp --dport 36412"), std::string::npos) << a.view(Table::kNat);
}

TEST_P(IptablesProxierKernel, ARestartRemovesTheLeftoversOfThePreviousRun) {
  Node a(GetParam(), std::string(kTag) + "a");
  ASSERT_TRUE(a.ns.ok());
  ASSERT_TRUE(a.sync(snapshot(cluster(3, true)), SyncKind::kFull).ok());
  // A new process (a new IptablesProxier on the same tables) syncs a smaller cluster.
  IptablesProxier restarted(a.runner, options());
  Status s = restarted.sync(proxier::SyncRequest{snapshot(cluster(1, false)), {}, SyncKind::kFull, a.node});
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_GT(restarted.last_figures().deleted_chains, 0u);
  Node b(GetParam(), std::string(kTag) + "b");
  ASSERT_TRUE(b.sync(snapshot(cluster(1, false)), SyncKind::kFull).ok());
  EXPECT_EQ(a.view(Table::kNat), b.view(Table::kNat));
}

// The lean layout (docs/iptables.md, "Lean endpoint rules") on the kernel: the KUBE-LOOP-BACK
// set is created before the rules that match it, partial syncs end where a full sync ends (set
// included), the kernel keeps the two "-m recent" matches of the affinity rules, and
// --cleanup removes the set after the rules.
struct LeanNode {
  LeanNode(IptablesFlavour flavour, const std::string& tag)
      : ns(tag),
        runner(ExecIptablesOptions{flavour, kernel::IpFamily::kIPv4, {"ip", "netns", "exec", ns.name()}}),
        ipsets(kernel::ExecIpsetOptions{{"ip", "netns", "exec", ns.name()}}),
        proxier(runner, lean_options(), &ipsets) {}
  static IptablesProxierOptions lean_options() {
    IptablesProxierOptions o = options();
    o.render.lean_endpoints = true;
    return o;
  }
  Status sync(const proxier::Snapshot& s, SyncKind kind, std::set<proxier::ServicePortName> changed = {}) {
    return proxier.sync(proxier::SyncRequest{s, changed, kind, node});
  }
  std::string view(Table t) {
    auto saved = runner.save(t);
    EXPECT_TRUE(saved.ok()) << saved.error();
    return saved.ok() ? kernel::kube_chains_view(*saved) : std::string();
  }
  std::vector<std::string> loop_back() {
    auto l = ipsets.list(kLoopBackSet);
    EXPECT_TRUE(l.ok()) << l.error();
    return l.ok() && l->has_value() ? **l : std::vector<std::string>{"<no set>"};
  }

  Netns ns;
  ExecIptablesRunner runner;
  kernel::ExecIpsetRunner ipsets;
  proxier::NodeFacts node{"node1", ""};
  IptablesProxier proxier;
};

TEST_P(IptablesProxierKernel, LeanLayoutWithItsIpset) {
  LeanNode a(GetParam(), std::string(kTag) + "a");
  ASSERT_TRUE(a.ns.ok());
  Status s = a.sync(snapshot(cluster(3, true)), SyncKind::kFull);
  ASSERT_TRUE(s.ok()) << s.message();
  ASSERT_TRUE(a.proxier.last_rendered().has_value());
  EXPECT_EQ(a.loop_back(), a.proxier.last_rendered()->ipsets.at(0)->entries);
  EXPECT_EQ(a.loop_back().size(), 6u);  // web's 3, mme's 2 (SCTP), lb's 1
  const std::string nat = a.view(Table::kNat);
  EXPECT_EQ(nat.find(":KUBE-SEP-"), std::string::npos) << nat;
  EXPECT_NE(nat.find("-m set --match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE"), std::string::npos) << nat;
  bool rcheck_and_set = false;  // the kernel keeps both "-m recent" matches of an affinity rule
  for (std::size_t pos = 0, end; pos < nat.size(); pos = end + 1) {
    end = nat.find('\n', pos);
    if (end == std::string::npos) end = nat.size();
    const std::string line = nat.substr(pos, end - pos);
    if (line.find("--rcheck") != std::string::npos && line.find("--set") != std::string::npos &&
        line.find("-j DNAT") != std::string::npos) {
      rcheck_and_set = true;
    }
  }
  EXPECT_TRUE(rcheck_and_set) << nat;

  s = a.sync(snapshot(cluster(1, true)), SyncKind::kPartial, {cluster(1, true)[0].info().name});
  ASSERT_TRUE(s.ok()) << s.message();
  s = a.sync(snapshot(cluster(1, false)), SyncKind::kPartial, {cluster(1, true)[3].info().name});
  ASSERT_TRUE(s.ok()) << s.message();

  LeanNode b(GetParam(), std::string(kTag) + "b");
  ASSERT_TRUE(b.ns.ok());
  s = b.sync(snapshot(cluster(1, false)), SyncKind::kFull);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(a.view(Table::kNat), b.view(Table::kNat));
  EXPECT_EQ(a.view(Table::kFilter), b.view(Table::kFilter));
  EXPECT_EQ(a.loop_back(), b.loop_back());
  EXPECT_EQ(a.loop_back().size(), 3u);

  // A restarted proxier reads the set back and leaves it alone when unchanged.
  IptablesProxier restarted(a.runner, LeanNode::lean_options(), &a.ipsets);
  s = restarted.sync(proxier::SyncRequest{snapshot(cluster(1, false)), {}, SyncKind::kFull, a.node});
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(restarted.last_figures().ipset_applies, 0u);

  s = cleanup(a.runner, &a.ipsets);
  ASSERT_TRUE(s.ok()) << s.message();
  auto gone = a.ipsets.list(kLoopBackSet);
  ASSERT_TRUE(gone.ok()) << gone.error();
  EXPECT_FALSE(gone->has_value());
  EXPECT_EQ(a.view(Table::kNat).find("KUBE-SVC-"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Flavours, IptablesProxierKernel,
                         ::testing::Values(IptablesFlavour::kNft, IptablesFlavour::kLegacy),
                         [](const auto& info) { return std::string(kernel::flavour_name(info.param)); });

}  // namespace
}  // namespace kproxy::iptables
