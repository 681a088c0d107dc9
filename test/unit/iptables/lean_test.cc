// The lean layout (kKproxy with lean endpoint rules): golden text, the same outcomes as
// kube-proxy's layout for every packet (the tracer evaluates the KUBE-LOOP-BACK set), the
// proxier's ipset handling against the fakes, --cleanup, and the size at scale.
#include <gtest/gtest.h>

#include <tuple>

#include <cstdlib>
#include <random>

#include "fake_iptables.h"
#include "fake_ipset.h"
#include "kproxy/iptables/maintenance.h"
#include "kproxy/iptables/proxier.h"
#include "kproxy/iptables/render.h"
#include "kproxy/iptables/tracer.h"
#include "service_builder.h"

namespace kproxy::iptables {
namespace {

using testing::cidr;
using testing::ip;
using testing::ServiceBuilder;
using testing::snapshot;
constexpr auto kTcp = model::Protocol::kTcp;
constexpr auto kUdp = model::Protocol::kUdp;
constexpr auto kSctp = model::Protocol::kSctp;

RenderOptions kube_proxy_options() { return testing::render_options(); }
RenderOptions lean_options() {
  RenderOptions o = kube_proxy_options();
  o.layout = RenderOptions::Layout::kKproxy;
  o.lean_endpoints = true;
  return o;
}

std::string chain_text(const RenderedRules& rules, Table table, const std::string& name) {
  const Chain* chain = rules.find(table, name);
  if (chain == nullptr) return "<no chain " + name + ">";
  std::string out;
  for (const Rule& r : chain->rules) out += "-A " + name + " " + rule_spec(r) + "\n";
  return out;
}

TEST(LeanLayout, SetMatchText) {
  EXPECT_EQ(rule_spec(Rule{{SetMatch{"KUBE-LOOP-BACK", "dst,dst,src"}}, Masquerade{true}}),
            "-m set --match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE --random-fully");
}

TEST(LeanLayout, GoldenEndpointRulesAndHairpin) {
  auto svc1 = ServiceBuilder("ns1", "svc1", "p80", kTcp, "172.30.0.41", 80)
                  .endpoint({"10.180.0.1", 80, "node2"})
                  .endpoint({"10.180.0.2", 80, "node2"});
  const auto rules = render(snapshot({svc1}), lean_options());
  const std::string svc = service_chain_name(svc1.info().name);
  EXPECT_EQ(chain_text(rules, Table::kNat, svc),
            "-A " + svc + " -m comment --comment \"ns1/svc1:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ\n"
            "-A " + svc + " -m comment --comment \"ns1/svc1:p80 -> 10.180.0.1:80\" -m statistic --mode random --probability 0.5000000000 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80\n"
            "-A " + svc + " -m comment --comment \"ns1/svc1:p80 -> 10.180.0.2:80\" -m tcp -p tcp -j DNAT --to-destination 10.180.0.2:80\n");
  for (const auto& [name, port] : rules.ports) {
    for (const Chain& c : port->chains) EXPECT_FALSE(c.name.starts_with("KUBE-SEP-")) << c.name;
  }
  EXPECT_EQ(chain_text(rules, Table::kNat, kPostroutingChain),
            "-A KUBE-POSTROUTING -m comment --comment \"Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose\" -m conntrack --ctstate DNAT -m set --match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE --random-fully\n"
            "-A KUBE-POSTROUTING -m mark ! --mark 0x004000/0x004000 -j RETURN\n"
            "-A KUBE-POSTROUTING -j MARK --xor-mark 0x004000\n"
            "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully\n");
  EXPECT_EQ(chain_text(rules, Table::kFilter, kForwardChain),
            "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP\n"
            "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark --mark 0x004000/0x004000 -j ACCEPT\n"
            "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules for hairpin traffic\" -m conntrack --ctstate DNAT -m set --match-set KUBE-LOOP-BACK dst,dst,src -j ACCEPT\n"
            "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n");
  ASSERT_EQ(rules.ipsets.size(), 1u);
  EXPECT_EQ(*rules.ipsets[0], (kernel::IpsetSpec{"KUBE-LOOP-BACK", "hash:ip,port,ip", kernel::IpFamily::kIPv4,
                                                {"10.180.0.1,tcp:80,10.180.0.1", "10.180.0.2,tcp:80,10.180.0.2"}}));
  // kube-proxy's layout is untouched by the option.
  auto kp = kube_proxy_options();
  kp.lean_endpoints = true;
  const auto flat = render(snapshot({svc1}), kp);
  EXPECT_TRUE(flat.ipsets.empty());
  EXPECT_EQ(restore_payload(sync_blocks(flat, nullptr, {})),
            restore_payload(sync_blocks(render(snapshot({svc1}), kube_proxy_options()), nullptr, {})));
}

TEST(LeanLayout, GoldenAffinityAndSctp) {
  auto svc = ServiceBuilder("core", "mme", "s1ap", kSctp, "10.96.0.20", 36412)
                 .affinity(300)
                 .endpoint({"10.180.0.20", 36412, "node1"})
                 .endpoint({"10.180.1.20", 36412, "node2"});
  const auto rules = render(snapshot({svc}), lean_options());
  const std::string chain = service_chain_name(svc.info().name);
  const std::string a = endpoint_chain_name(svc.info().name, svc.info().endpoints[0]);
  const std::string b = endpoint_chain_name(svc.info().name, svc.info().endpoints[1]);
  EXPECT_EQ(chain_text(rules, Table::kNat, chain),
            "-A " + chain + " -m comment --comment \"core/mme:s1ap cluster IP\" -m sctp -p sctp -d 10.96.0.20 --dport 36412 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ\n"
            "-A " + chain + " -m comment --comment \"core/mme:s1ap -> 10.180.0.20:36412\" -m recent --name " + a + " --rcheck --seconds 300 --reap -m recent --name " + a + " --set -m sctp -p sctp -j DNAT --to-destination 10.180.0.20:36412\n"
            "-A " + chain + " -m comment --comment \"core/mme:s1ap -> 10.180.1.20:36412\" -m recent --name " + b + " --rcheck --seconds 300 --reap -m recent --name " + b + " --set -m sctp -p sctp -j DNAT --to-destination 10.180.1.20:36412\n"
            "-A " + chain + " -m comment --comment \"core/mme:s1ap -> 10.180.0.20:36412\" -m statistic --mode random --probability 0.5000000000 -m recent --name " + a + " --set -m sctp -p sctp -j DNAT --to-destination 10.180.0.20:36412\n"
            "-A " + chain + " -m comment --comment \"core/mme:s1ap -> 10.180.1.20:36412\" -m recent --name " + b + " --set -m sctp -p sctp -j DNAT --to-destination 10.180.1.20:36412\n");
  EXPECT_EQ(rules.ipsets.at(0)->entries,
            (std::vector<std::string>{"10.180.0.20,sctp:36412,10.180.0.20", "10.180.1.20,sctp:36412,10.180.1.20"}));
}

// Many Services of every kind and policy, endpoints shared between Services, some on this node.
std::vector<ServiceBuilder> mixed_cluster(int n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<ServiceBuilder> out;
  const model::Protocol protos[] = {kTcp, kUdp, kSctp};
  for (int i = 0; i < n; ++i) {
    ServiceBuilder b("ns", "s" + std::to_string(i), "p", protos[i % 3],
                     "10.96." + std::to_string(i / 200) + "." + std::to_string(i % 200 + 1),
                     static_cast<std::uint16_t>(80 + i % 4));
    if (i % 4 == 1) b.node_port(static_cast<std::uint16_t>(30000 + i));
    if (i % 7 == 2) b.external_ip("203.0.113." + std::to_string(i % 250 + 1));
    if (i % 6 == 3) b.lb_ip("198.51.100." + std::to_string(i % 250 + 1));
    if (i % 12 == 3) b.source_range("203.0.113.0/25");
    if (i % 5 == 4) b.etp_local();
    if (i % 9 == 5) b.itp_local();
    if (i % 8 == 6) b.affinity(600);
    const int endpoints = static_cast<int>(rng() % 5);  // 0..4
    for (int e = 0; e < endpoints; ++e) {
      const bool here = rng() % 2 == 0;
      const std::string epip = std::string(here ? "10.180.0." : "10.180.1.") + std::to_string(rng() % 20 + 2);
      const bool terminating = rng() % 7 == 0;
      b.endpoint({epip, static_cast<std::uint16_t>(8080 + rng() % 2), here ? "node1" : "node2", !terminating, true,
                  terminating});
    }
    out.push_back(b);
  }
  return out;
}

TEST(LeanLayout, EveryPacketHasTheSameOutcomeAsInKubeProxysLayout) {
  const auto services = mixed_cluster(300, 17);
  const auto s = snapshot(services);
  const auto kp_opts = kube_proxy_options();
  const auto lean_opts = lean_options();
  const auto kp = render(s, kp_opts);
  const auto lean = render(s, lean_opts);
  TraceEnvironment env;
  env.local_addresses = {ip("192.168.0.2")};
  std::vector<std::pair<IpAddress, std::string>> sources{{ip("10.180.9.9"), "veth1"},
                                                         {ip("10.180.1.7"), "eth0"},
                                                         {ip("203.0.113.100"), "eth0"},
                                                         {ip("192.168.0.2"), ""}};
  std::size_t hairpins = 0;
  std::size_t traced = 0;
  for (const auto& b : services) {
    const auto& info = b.info();
    std::vector<std::pair<IpAddress, std::uint16_t>> dsts{{info.cluster_ip, info.port}};
    for (const auto& e : info.external_ips) dsts.emplace_back(e, info.port);
    for (const auto& l : info.load_balancer_vips) dsts.emplace_back(l, info.port);
    if (info.node_port != 0) dsts.emplace_back(ip("192.168.0.2"), info.node_port);
    auto srcs = sources;
    // Each endpoint as the client: hairpin to itself, not to the others.
    for (const auto& ep : info.endpoints) srcs.emplace_back(ep.ip, ep.is_local ? "veth9" : "eth0");
    for (const auto& [dst, port] : dsts) {
      for (const auto& [src, iface] : srcs) {
        for (auto proto : {info.name.protocol, info.name.protocol == kTcp ? kUdp : kTcp}) {
          Packet p{src, dst, proto, port, iface, iface.empty()};
          for (int affinity = 0; affinity < 2; ++affinity) {
            TraceEnvironment e = env;
            if (affinity == 1) {
              if (info.session_affinity != model::SessionAffinity::kClientIP || info.endpoints.empty()) continue;
              e.recent = {endpoint_chain_name(info.name, info.endpoints.back())};
            }
            const auto a = trace(kp, builtin_jumps(kp_opts), p, e);
            const auto l = trace(lean, builtin_jumps(lean_opts), p, e);
            ++traced;
            ASSERT_EQ(a.size(), l.size()) << proxier::to_string(info.name) << " " << dst.to_string() << ":" << port;
            for (std::size_t i = 0; i < a.size(); ++i) {
              EXPECT_EQ(a[i].summary(), l[i].summary())
                  << proxier::to_string(info.name) << " from " << src.to_string() << " to " << dst.to_string() << ":"
                  << port;
              EXPECT_DOUBLE_EQ(a[i].probability, l[i].probability);
              EXPECT_EQ(a[i].recent_set, l[i].recent_set);
              if (a[i].masqueraded && a[i].dnat_ip == src) ++hairpins;
            }
          }
        }
      }
    }
  }
  EXPECT_GT(traced, 3000u);
  EXPECT_GT(hairpins, 50u) << "the hairpin case is covered";
}

// ---- The proxier with the fakes ---------------------------------------------------------

class LeanProxierTest : public ::testing::Test {
 protected:
  static IptablesProxierOptions opts() {
    IptablesProxierOptions o;
    o.render = lean_options();
    return o;
  }
  Status sync(const std::vector<ServiceBuilder>& s, proxier::SyncKind kind,
              std::set<proxier::ServicePortName> changed = {}) {
    return proxier_.sync(proxier::SyncRequest{snapshot(s), changed, kind, node_});
  }
  kernel::FakeIptables fake_;
  kernel::FakeIpset sets_;
  proxier::NodeFacts node_{"node1", ""};
  IptablesProxier proxier_{fake_, opts(), &sets_};
};

ServiceBuilder web(int endpoints) {
  ServiceBuilder b("ns", "web", "http", kTcp, "10.96.0.10", 80);
  for (int i = 0; i < endpoints; ++i) b.endpoint({"10.180.0." + std::to_string(10 + i), 8080, "node1"});
  return b;
}

TEST_F(LeanProxierTest, SetAppliedBeforeTheRulesAndOnlyWhenItChanges) {
  std::vector<int> restores_at_apply;
  sets_.on_apply = [&](const kernel::IpsetSpec&) { restores_at_apply.push_back(fake_.restore_calls()); };
  ASSERT_TRUE(sync({web(2)}, proxier::SyncKind::kFull).ok());
  EXPECT_EQ(restores_at_apply, std::vector<int>{0}) << "the set exists before the rules that reference it";
  EXPECT_EQ(sets_.sets().at(kLoopBackSet).entries,
            (std::vector<std::string>{"10.180.0.10,tcp:8080,10.180.0.10", "10.180.0.11,tcp:8080,10.180.0.11"}));
  EXPECT_EQ(proxier_.last_figures().ipset_applies, 1u);
  for (const auto& [name, chain] : fake_.table(Table::kNat).chains) EXPECT_FALSE(name.starts_with("KUBE-SEP-"));

  // Same endpoints: no ipset call.
  ASSERT_TRUE(sync({web(2)}, proxier::SyncKind::kFull).ok());
  EXPECT_EQ(sets_.apply_calls() + sets_.change_calls(), 1);
  EXPECT_EQ(proxier_.last_figures().ipset_applies, 0u);

  // An endpoint added: one change adding just it, before the restore.
  std::vector<std::pair<std::vector<std::string>, std::vector<std::string>>> changes;
  std::vector<int> restores_at_change;
  sets_.on_change = [&](const std::vector<std::string>& add, const std::vector<std::string>& remove) {
    changes.emplace_back(add, remove);
    restores_at_change.push_back(fake_.restore_calls());
  };
  const int restores = fake_.restore_calls();
  ASSERT_TRUE(sync({web(3)}, proxier::SyncKind::kPartial, {web(3).info().name}).ok());
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].first, std::vector<std::string>{"10.180.0.12,tcp:8080,10.180.0.12"});
  EXPECT_TRUE(changes[0].second.empty());
  EXPECT_EQ(restores_at_change.back(), restores) << "before the partial sync's restore";

  // Endpoints removed: their entries stay until the rules no longer DNAT to them.
  ASSERT_TRUE(sync({web(1)}, proxier::SyncKind::kPartial, {web(1).info().name}).ok());
  ASSERT_EQ(changes.size(), 2u) << "nothing to add: only the removal after the restore";
  EXPECT_TRUE(changes[1].first.empty());
  EXPECT_EQ(changes[1].second.size(), 2u);
  EXPECT_EQ(restores_at_change.back(), restores + 2) << "after the second partial sync's restore";
  EXPECT_EQ(sets_.sets().at(kLoopBackSet).entries.size(), 1u);
  EXPECT_EQ(sets_.apply_calls(), 1) << "the set is never rewritten whole once it exists";
  EXPECT_EQ(sets_.list_calls(), 1) << "after the first sync the renderer's difference is written, nothing is read";
}

TEST_F(LeanProxierTest, AddAndRemoveInOneSyncKeepsTheUnionDuringTheRestore) {
  ASSERT_TRUE(sync({web(1)}, proxier::SyncKind::kFull).ok());
  auto other = ServiceBuilder("ns", "web", "http", kTcp, "10.96.0.10", 80).endpoint({"10.180.0.99", 8080, "node1"});
  std::vector<std::tuple<std::size_t, std::size_t, int>> changes;  // (added, removed, restores so far)
  const int base = fake_.restore_calls();
  sets_.on_change = [&](const std::vector<std::string>& add, const std::vector<std::string>& remove) {
    changes.emplace_back(add.size(), remove.size(), fake_.restore_calls());
  };
  ASSERT_TRUE(sync({other}, proxier::SyncKind::kPartial, {other.info().name}).ok());
  EXPECT_EQ(changes, (std::vector<std::tuple<std::size_t, std::size_t, int>>{{1u, 0u, base}, {0u, 1u, base + 1}}));
  EXPECT_EQ(sets_.sets().at(kLoopBackSet).entries, std::vector<std::string>{"10.180.0.99,tcp:8080,10.180.0.99"});
}

TEST_F(LeanProxierTest, FailuresAreReportedAndRetried) {
  sets_.fail_next_apply("ipset: no memory");
  const Status failed = sync({web(1)}, proxier::SyncKind::kFull);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.message().find("no memory"), std::string::npos);
  EXPECT_EQ(fake_.restore_calls(), 0) << "no rule may reference a set that is not there";
  ASSERT_TRUE(sync({web(1)}, proxier::SyncKind::kFull).ok());
  EXPECT_EQ(sets_.sets().at(kLoopBackSet).entries.size(), 1u);
  // A failed restore makes the next sync apply the set again.
  fake_.fail_next_restore("lock");
  ASSERT_FALSE(sync({web(1)}, proxier::SyncKind::kFull).ok());
  const int before = sets_.apply_calls() + sets_.change_calls();
  const int lists = sets_.list_calls();
  ASSERT_TRUE(sync({web(1)}, proxier::SyncKind::kFull).ok());
  EXPECT_EQ(sets_.apply_calls() + sets_.change_calls(), before) << "read back, unchanged: not applied";
  EXPECT_EQ(sets_.list_calls(), lists + 1) << "after a failure the set is read from the kernel again";
  // An entry added behind kproxy's back while a restore fails is removed by the next sync.
  fake_.fail_next_restore("lock");
  ASSERT_FALSE(sync({web(2)}, proxier::SyncKind::kFull).ok());
  EXPECT_EQ(sets_.sets().at(kLoopBackSet).entries.size(), 2u) << "added before the failed restore";
  ASSERT_TRUE(sync({web(1)}, proxier::SyncKind::kFull).ok());
  EXPECT_EQ(sets_.sets().at(kLoopBackSet).entries.size(), 1u);

  kernel::FakeIptables fake;
  IptablesProxier without(fake, opts());
  const Status s = without.sync(proxier::SyncRequest{snapshot({web(1)}), {}, proxier::SyncKind::kFull, node_});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("KUBE-LOOP-BACK"), std::string::npos);
}

TEST_F(LeanProxierTest, TakingOverKubeProxysLayoutRemovesTheSepChains) {
  IptablesProxierOptions kp;
  kp.render = kube_proxy_options();
  IptablesProxier old(fake_, kp);
  ASSERT_TRUE(old.sync(proxier::SyncRequest{snapshot({web(2)}), {}, proxier::SyncKind::kFull, node_}).ok());
  ASSERT_TRUE(sync({web(2)}, proxier::SyncKind::kFull).ok());
  EXPECT_EQ(proxier_.last_figures().deleted_chains, 2u);
  for (const auto& [name, chain] : fake_.table(Table::kNat).chains) EXPECT_FALSE(name.starts_with("KUBE-SEP-"));
}

TEST_F(LeanProxierTest, CleanupDestroysTheSetAfterTheRules) {
  ASSERT_TRUE(sync({web(2)}, proxier::SyncKind::kFull).ok());
  ASSERT_TRUE(sets_.sets().contains(kLoopBackSet));
  const Status s = cleanup(fake_, &sets_);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_FALSE(sets_.sets().contains(kLoopBackSet));
  EXPECT_EQ(fake_.chain(Table::kNat, kPostroutingChain), nullptr);
  EXPECT_TRUE(cleanup(fake_, &sets_).ok()) << "nothing left: still fine";
  // A set still in use (kube-proxy's IPVS mode) is reported.
  ASSERT_TRUE(sets_.apply(kernel::IpsetSpec{kLoopBackSet, kLoopBackSetType, kernel::IpFamily::kIPv4, {}}).ok());
  sets_.referenced.insert(kLoopBackSet);
  const Status busy = cleanup(fake_, &sets_);
  ASSERT_FALSE(busy.ok());
  EXPECT_NE(busy.message().find("in use"), std::string::npos);
}

// ---- Size -------------------------------------------------------------------------------

struct Size {
  std::size_t chains = 0, rules = 0, bytes = 0, set_entries = 0;
};
Size size_of(const RenderedRules& r) {
  Size s;
  for (const auto& block : sync_blocks(r, nullptr, {})) {
    s.chains += block.chains.size();
    for (const Chain* c : block.chains) s.rules += c->rules.size();
  }
  s.bytes = restore_payload(sync_blocks(r, nullptr, {})).size();
  for (const auto& set : r.ipsets) s.set_entries += set->entries.size();
  return s;
}

std::vector<ServiceBuilder> sized_cluster(int services, int endpoints) {
  std::vector<ServiceBuilder> out;
  for (int i = 0; i < services; ++i) {
    ServiceBuilder b("ns", "s" + std::to_string(i), "p", kTcp, IpAddress::from_v4(ip("10.96.0.1").v4_host_order() + static_cast<std::uint32_t>(i) * 7919u % (1u << 20)).to_string(), 80);
    for (int e = 0; e < endpoints; ++e) {
      b.endpoint({IpAddress::from_v4(ip("10.128.0.2").v4_host_order() + static_cast<std::uint32_t>(i * endpoints + e)).to_string(), 8080,
                  e % 2 == 0 ? "node1" : "node2"});
    }
    out.push_back(b);
  }
  return out;
}

TEST(LeanLayout, FewerChainsAndRules) {
  // 10,000 x 10 with KPROXY_LEAN_SCALE=1 (docs/iptables.md quotes those figures), else 500 x 10.
  const bool big = std::getenv("KPROXY_LEAN_SCALE") != nullptr;
  const auto s = snapshot(sized_cluster(big ? 10000 : 500, 10));
  const Size kp = size_of(render(s, kube_proxy_options()));
  auto tree_opts = lean_options();
  tree_opts.lean_endpoints = false;
  const Size tree = size_of(render(s, tree_opts));
  const Size lean = size_of(render(s, lean_options()));
  std::printf("kube-proxy layout: %zu chains, %zu rules, %zu bytes\n", kp.chains, kp.rules, kp.bytes);
  std::printf("dispatch tree:     %zu chains, %zu rules, %zu bytes\n", tree.chains, tree.rules, tree.bytes);
  std::printf("lean:              %zu chains, %zu rules, %zu bytes, %zu set entries\n", lean.chains, lean.rules,
              lean.bytes, lean.set_entries);
  EXPECT_LT(lean.chains * 2, kp.chains);
  EXPECT_LT(lean.rules * 2, kp.rules);
  EXPECT_LT(lean.bytes, kp.bytes);
}

}  // namespace
}  // namespace kproxy::iptables
