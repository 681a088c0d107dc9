// The libiptc applier on the real kernel (legacy iptables, throwaway namespaces): the same
// syncs written by iptables-legacy-restore in one namespace and by libiptc in another leave
// identical iptables-legacy-save output, for a rule set using every match and target kproxy
// writes; partial syncs through libiptc end where a full sync ends; a failing table is not
// half-applied.
#include "kproxy/iptables/libiptc_applier.h"

#include <gtest/gtest.h>

#include "kproxy/iptables/proxier.h"
#include "kproxy/kernel/exec_iptables_runner.h"
#include "kproxy/kernel/ipset_runner.h"
#include "kproxy/text.h"
#include "netns.h"
#include "service_builder.h"

namespace kproxy::iptables {
namespace {

using kernel::ExecIptablesOptions;
using kernel::ExecIptablesRunner;
using kernel::IptablesFlavour;
using kproxy::testing::Netns;
using kproxy::testing::ScopedNetnsEntry;
using proxier::SyncKind;
using testing::cidr;
using testing::ip;
using testing::ServiceBuilder;
using testing::snapshot;

constexpr const char* kTag = "iptclib";

IptablesProxierOptions options(bool lean) {
  IptablesProxierOptions o;
  o.render.node_ip = ip("192.168.0.2");
  o.render.local_detector = {LocalDetector::Mode::kCidr, cidr("10.0.0.0/8"), ""};
  o.render.layout = RenderOptions::Layout::kKproxy;
  o.render.lean_endpoints = lean;
  return o;
}

// Applies through libiptc from inside the node's namespace: libiptc talks to the kernel of
// the calling thread's namespace.
class InNamespaceApplier final : public RuleApplier {
 public:
  explicit InNamespaceApplier(std::string ns) : ns_(std::move(ns)) {}
  Expected<std::size_t> apply(const std::vector<TableBlock>& blocks) override {
    ScopedNetnsEntry enter(ns_);
    if (!enter.ok()) return Error(enter.error());
    return inner_.apply(blocks);
  }
  Expected<std::size_t> ensure_jumps(const std::vector<BuiltinJump>& jumps) override {
    ScopedNetnsEntry enter(ns_);
    if (!enter.ok()) return Error(enter.error());
    return inner_.ensure_jumps(jumps);
  }
  std::string_view name() const override { return inner_.name(); }

 private:
  std::string ns_;
  LibiptcApplier inner_;
};

struct Node {
  Node(const std::string& tag, bool libiptc, bool lean)
      : ns(tag),
        runner(ExecIptablesOptions{IptablesFlavour::kLegacy, kernel::IpFamily::kIPv4, {"ip", "netns", "exec", ns.name()}}),
        ipsets(kernel::ExecIpsetOptions{{"ip", "netns", "exec", ns.name()}}),
        applier(ns.name()),
        proxier(runner, options(lean), &ipsets, libiptc ? &applier : nullptr) {}
  Status sync(const proxier::Snapshot& s, SyncKind kind, std::set<proxier::ServicePortName> changed = {}) {
    return proxier.sync(proxier::SyncRequest{s, changed, kind, node});
  }
  // iptables-legacy-save of a table without its comment lines and chain counters.
  std::string saved(Table t) {
    auto out = runner.save(t);
    EXPECT_TRUE(out.ok()) << out.error();
    const std::string text = out.ok() ? *out : "";
    std::string view;
    for (std::string_view line : split_lines(text)) {
      if (line.starts_with("#")) continue;
      if (line.starts_with(":")) line = line.substr(0, line.find(" ["));
      view += std::string(line) + "\n";
    }
    return view;
  }

  Netns ns;
  ExecIptablesRunner runner;
  kernel::ExecIpsetRunner ipsets;
  InNamespaceApplier applier;
  proxier::NodeFacts node{"node1", ""};
  IptablesProxier proxier;
};

class LibiptcApplierKernel : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (!kproxy::testing::can_create_netns()) GTEST_SKIP() << "needs root and iproute2 (netns tier)";
    Netns::remove_stale(std::string(kTag) + "a");
    Netns::remove_stale(std::string(kTag) + "b");
  }
  bool lean() const { return GetParam(); }
};

// Every Service feature the renderer has: affinity, NodePorts, both local policies, no
// endpoints (REJECT), LB IPs with source ranges (KUBE-FW-, DROP), external IPs, SCTP, UDP.
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
  s.push_back(ServiceBuilder("ns", "dns", "dns", model::Protocol::kUdp, "10.96.0.53", 53).itp_local());
  for (int i = 0; i < 40; ++i) {  // enough Services for the dispatch tree to branch
    s.push_back(ServiceBuilder("bulk", "s" + std::to_string(i), "p", model::Protocol::kTcp,
                               "10.96.1." + std::to_string(i + 1), 8000)
                    .endpoint({"10.180.2." + std::to_string(i + 1), 8000, "node2"}));
  }
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

TEST_P(LibiptcApplierKernel, LeavesTheSameTablesAsIptablesRestore) {
  Node a(std::string(kTag) + "a", false, lean());
  Node b(std::string(kTag) + "b", true, lean());
  ASSERT_TRUE(a.ns.ok() && b.ns.ok());
  for (Node* n : {&a, &b}) {
    Status s = n->sync(snapshot(cluster(3, true)), SyncKind::kFull);
    ASSERT_TRUE(s.ok()) << s.message();
  }
  EXPECT_EQ(b.proxier.last_figures().nat_rules, a.proxier.last_figures().nat_rules);
  EXPECT_EQ(b.proxier.last_figures().jumps_inserted, a.proxier.last_figures().jumps_inserted);
  EXPECT_GT(b.proxier.last_figures().jumps_inserted, 0u);
  // A second full sync finds every jump in place (libiptc's check compares as "iptables -C").
  ASSERT_TRUE(b.sync(snapshot(cluster(3, true)), SyncKind::kFull).ok());
  EXPECT_EQ(b.proxier.last_figures().jumps_inserted, 0u);
  const std::string nat = a.saved(Table::kNat);
  const std::string filter = a.saved(Table::kFilter);
  EXPECT_EQ(b.saved(Table::kNat), nat);
  EXPECT_EQ(b.saved(Table::kFilter), filter);
  // The comparison covers what matters: the rules exist, with their extensions.
  for (const char* needle : {"-m sctp --dport 36412", "-m recent --rcheck --seconds 300 --reap", "-m statistic",
                             "-j DNAT --to-destination", "-j MARK --set-xmark 0x4000/0x4000", "--random-fully",
                             "-m addrtype --dst-type LOCAL", "-j REJECT", "KUBE-FW-", "-m conntrack --ctstate"}) {
    EXPECT_TRUE(nat.find(needle) != std::string::npos || filter.find(needle) != std::string::npos)
        << needle << " in\n" << nat << filter;
  }
  if (lean()) {
    EXPECT_NE(nat.find("-m set --match-set KUBE-LOOP-BACK dst,dst,src"), std::string::npos) << nat;
  }
}

TEST_P(LibiptcApplierKernel, PartialSyncsEndWhereOneFullSyncEnds) {
  Node a(std::string(kTag) + "a", true, lean());
  ASSERT_TRUE(a.ns.ok());
  ASSERT_TRUE(a.sync(snapshot(cluster(3, true)), SyncKind::kFull).ok());
  Status s = a.sync(snapshot(cluster(1, true)), SyncKind::kPartial, {cluster(1, true)[0].info().name});
  ASSERT_TRUE(s.ok()) << s.message();
  s = a.sync(snapshot(cluster(1, false)), SyncKind::kPartial, {cluster(1, true).back().info().name});
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_GT(a.proxier.last_figures().deleted_chains, 0u);

  Node b(std::string(kTag) + "b", false, lean());
  ASSERT_TRUE(b.ns.ok());
  ASSERT_TRUE(b.sync(snapshot(cluster(1, false)), SyncKind::kFull).ok());
  EXPECT_EQ(a.saved(Table::kNat), b.saved(Table::kNat));
  EXPECT_EQ(a.saved(Table::kFilter), b.saved(Table::kFilter));
}

TEST_P(LibiptcApplierKernel, AFailingTableIsNotHalfApplied) {
  Netns ns(std::string(kTag) + "a");
  ASSERT_TRUE(ns.ok());
  Chain good{"KUBE-TEST-GOOD", {Rule{{Comment{"first rule"}}, Verdict{Verdict::Kind::kAccept}}}};
  Chain bad{"KUBE-TEST-BAD",
            {Rule{{Protocol{model::Protocol::kTcp}, DestinationPort{80}}, Jump{"KUBE-NO-SUCH-CHAIN"}}}};
  InNamespaceApplier applier(ns.name());
  auto written = applier.apply({TableBlock{Table::kNat, {&good, &bad}, {}}});
  ASSERT_FALSE(written.ok());
  EXPECT_NE(written.error().find("KUBE-TEST-BAD"), std::string::npos) << written.error();
  EXPECT_NE(written.error().find("KUBE-NO-SUCH-CHAIN"), std::string::npos) << written.error();
  auto saved = ns.exec({"iptables-legacy-save", "-t", "nat"});
  EXPECT_EQ(saved.out.find("KUBE-TEST-GOOD"), std::string::npos) << saved.out;
}

// Every term and target kproxy models, written by both appliers (one rule each).
TEST(LibiptcApplierTerms, EveryMatchAndTargetReadsBackAsIptablesRestoreWroteIt) {
  if (!kproxy::testing::can_create_netns()) GTEST_SKIP() << "needs root and iproute2 (netns tier)";
  Node a(std::string(kTag) + "a", false, true);
  Node b(std::string(kTag) + "b", true, true);
  ASSERT_TRUE(a.ns.ok() && b.ns.ok());
  using D = Address::Direction;
  using CS = ConntrackState;
  Chain target{"KUBE-TEST-TARGET", {Rule{{}, Verdict{Verdict::Kind::kReturn}}}};
  Chain all{"KUBE-TEST-ALL",
            {
                Rule{{Comment{"a comment with spaces"}, Protocol{model::Protocol::kTcp}, DestinationPort{80}},
                     Jump{"KUBE-TEST-TARGET"}},
                Rule{{Protocol{model::Protocol::kUdp}, DestinationPort{53}, Address{D::kSource, cidr("10.0.0.0/8"), true}},
                     Verdict{Verdict::Kind::kAccept}},
                Rule{{Protocol{model::Protocol::kSctp}, DestinationPort{3868}, Address{D::kDestination, cidr("10.96.0.1/32")}},
                     Verdict{Verdict::Kind::kReturn}},
                Rule{{Protocol{model::Protocol::kSctp}}, NoTarget{}},
                Rule{{AddressBits{D::kDestination, 0x00000002, 0x00000003}}, Jump{"KUBE-TEST-TARGET"}},
                Rule{{InInterface{"eth0", false, false}}, Verdict{Verdict::Kind::kReturn}},
                Rule{{InInterface{"veth", true, true}}, Verdict{Verdict::Kind::kReturn}},
                Rule{{AddrTypeLocal{true}}, NoTarget{}},
                Rule{{AddrTypeLocal{false}}, NoTarget{}},
                Rule{{Mark{0x4000, 0x4000, true}}, Verdict{Verdict::Kind::kReturn}},
                Rule{{ConntrackState{CS::kInvalid, false}}, Verdict{Verdict::Kind::kReturn}},
                Rule{{ConntrackState{CS::kRelated | CS::kEstablished, false}}, Verdict{Verdict::Kind::kAccept}},
                Rule{{ConntrackState{CS::kNew | CS::kDnat, true}}, NoTarget{}},
                Rule{{Probability{0.3333333333}}, NoTarget{}},
                Rule{{Probability{0.5}}, NoTarget{}},
                Rule{{RecentCheck{"KUBE-TEST-AFFINITY", 10800}}, NoTarget{}},
                Rule{{RecentSet{"KUBE-TEST-AFFINITY"}}, NoTarget{}},
                Rule{{SetMatch{kLoopBackSet, "dst,dst,src"}}, Masquerade{true}},
                Rule{{}, Masquerade{false}},
                Rule{{}, SetMark{SetMark::Op::kOr, 0x4000}},
                Rule{{}, SetMark{SetMark::Op::kXor, 0x4000}},
                Rule{{Protocol{model::Protocol::kTcp}}, Dnat{ip("10.180.0.1"), 8080}},
            }};
  // DROP and REJECT belong to filter (iptables refuses DROP in nat).
  Chain filter{"KUBE-TEST-FILTER",
               {Rule{{ConntrackState{CS::kInvalid, false}}, Verdict{Verdict::Kind::kDrop}},
                Rule{{Protocol{model::Protocol::kTcp}}, Verdict{Verdict::Kind::kReject}}}};
  // The set match needs its set; a sync creates it (lean layout) in both namespaces.
  for (Node* n : {&a, &b}) ASSERT_TRUE(n->sync(snapshot(cluster(1, false)), SyncKind::kFull).ok());
  const std::vector<TableBlock> blocks{TableBlock{Table::kFilter, {&filter}, {}},
                                       TableBlock{Table::kNat, {&target, &all}, {}}};
  {
    RestoreApplier restore(a.runner);
    auto w = restore.apply(blocks);
    ASSERT_TRUE(w.ok()) << w.error();
  }
  auto w = b.applier.apply(blocks);
  ASSERT_TRUE(w.ok()) << w.error();
  const std::string nat = a.saved(Table::kNat);
  EXPECT_EQ(b.saved(Table::kNat), nat);
  EXPECT_EQ(b.saved(Table::kFilter), a.saved(Table::kFilter));
  EXPECT_NE(a.saved(Table::kFilter).find("-A KUBE-TEST-FILTER -p tcp -m tcp -j REJECT"), std::string::npos);
  EXPECT_NE(nat.find("-A KUBE-TEST-ALL -m statistic --mode random --probability 0.33333333349"), std::string::npos)
      << nat;

  // And deleting chains: declared (flushed) and removed, as "-X" does.
  const std::vector<TableBlock> removal{TableBlock{Table::kNat, {}, {"KUBE-TEST-ALL", "KUBE-TEST-TARGET"}}};
  w = b.applier.apply(removal);
  ASSERT_TRUE(w.ok()) << w.error();
  EXPECT_EQ(b.saved(Table::kNat).find("KUBE-TEST-"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Layouts, LibiptcApplierKernel, ::testing::Bool(),
                         [](const auto& info) { return std::string(info.param ? "lean" : "kubeproxy_endpoints"); });

}  // namespace
}  // namespace kproxy::iptables
