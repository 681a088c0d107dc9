// IptablesProxier against the stateful fake: one restore per sync, jumps ensured on full
// syncs only, partial syncs writing only what changed, stale and leftover chains removed,
// failures leaving the previous rules.
#include "kproxy/iptables/proxier.h"

#include <gtest/gtest.h>

#include "fake_iptables.h"
#include "service_builder.h"

namespace kproxy::iptables {
namespace {

using testing::cidr;
using testing::ip;
using testing::ServiceBuilder;
using testing::snapshot;
constexpr auto kTcp = model::Protocol::kTcp;
using proxier::SyncKind;

IptablesProxierOptions options() {
  IptablesProxierOptions o;
  o.render = testing::render_options();
  return o;
}

class IptablesProxierTest : public ::testing::Test {
 protected:
  Status sync(const proxier::Snapshot& s, SyncKind kind, std::set<proxier::ServicePortName> changed = {}) {
    return proxier_.sync(proxier::SyncRequest{s, changed, kind, node_});
  }
  std::string nat_view() { return kernel::kube_chains_view(*fake_.save(Table::kNat)); }

  kernel::FakeIptables fake_;
  proxier::NodeFacts node_{"node1", ""};
  IptablesProxier proxier_{fake_, options()};
};

ServiceBuilder web(int endpoints) {
  ServiceBuilder b("ns", "web", "http", kTcp, "10.96.0.10", 80);
  for (int i = 0; i < endpoints; ++i) b.endpoint({"10.180.0." + std::to_string(10 + i), 8080, "node1"});
  return b;
}

TEST_F(IptablesProxierTest, FirstSyncIsOneRestoreThenTheJumps) {
  ASSERT_TRUE(sync(snapshot({web(2)}), SyncKind::kFull).ok());
  EXPECT_EQ(fake_.save_calls(), 1) << "one save of nat, at the first sync only";
  EXPECT_EQ(fake_.restore_calls(), 2) << "the rules, then one restore checking every jump (-C), which fails";
  EXPECT_EQ(proxier_.last_figures().jumps_inserted, 14u);
  const auto* prerouting = fake_.chain(Table::kNat, "PREROUTING");
  ASSERT_NE(prerouting, nullptr);
  ASSERT_EQ(prerouting->rules.size(), 1u);
  EXPECT_EQ(prerouting->rules[0], "-m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES");
  // The fake's INPUT holds the jumps in the order a fresh kernel table would.
  const auto* input = fake_.chain(Table::kFilter, "INPUT");
  ASSERT_EQ(input->rules.size(), 4u);
  EXPECT_EQ(input->rules[0], "-j KUBE-FIREWALL");
  EXPECT_NE(input->rules[3].find("KUBE-EXTERNAL-SERVICES"), std::string::npos);
  EXPECT_NE(fake_.chain(Table::kNat, service_chain_name(web(2).info().name)), nullptr);

  // A second full sync neither saves nor duplicates a jump.
  ASSERT_TRUE(sync(snapshot({web(2)}), SyncKind::kFull).ok());
  EXPECT_EQ(fake_.save_calls(), 1);
  EXPECT_EQ(proxier_.last_figures().jumps_inserted, 0u);
  EXPECT_EQ(fake_.restore_calls(), 4) << "the rules, and one restore that finds every jump in place";
  EXPECT_EQ(fake_.chain(Table::kNat, "PREROUTING")->rules.size(), 1u);
}

TEST_F(IptablesProxierTest, PartialSyncWritesOnlyChangedPortsAndDeletesStaleChains) {
  auto other = ServiceBuilder("ns", "other", "", kTcp, "10.96.0.11", 53).endpoint({"10.180.1.10", 53, "node2"});
  ASSERT_TRUE(sync(snapshot({web(3), other}), SyncKind::kFull).ok());
  const std::string before = nat_view();

  auto smaller = web(2);  // one endpoint removed
  ASSERT_TRUE(sync(snapshot({smaller, other}), SyncKind::kPartial, {smaller.info().name}).ok());
  const auto& f = proxier_.last_figures();
  EXPECT_EQ(f.deleted_chains, 1u) << "the removed endpoint's KUBE-SEP chain";
  // Web's SVC and 2 SEP chains; none of other's, and no top-level chain (their rules did not
  // change), so no filter table either.
  EXPECT_EQ(f.nat_chains, 3u);
  EXPECT_EQ(f.filter_rules, 0u);
  const std::string removed = endpoint_chain_name(smaller.info().name, web(3).info().endpoints[2]);
  EXPECT_EQ(fake_.chain(Table::kNat, removed), nullptr);
  EXPECT_NE(fake_.chain(Table::kNat, service_chain_name(other.info().name)), nullptr);

  // The same state reached by a full sync from scratch is identical.
  kernel::FakeIptables fresh;
  IptablesProxier full(fresh, options());
  ASSERT_TRUE(full.sync(proxier::SyncRequest{snapshot({smaller, other}), {}, SyncKind::kFull, node_}).ok());
  EXPECT_EQ(nat_view(), kernel::kube_chains_view(*fresh.save(Table::kNat)));
  EXPECT_NE(nat_view(), before);
}

TEST_F(IptablesProxierTest, PartialSyncRewritesTheTopLevelChainsThatChanged) {
  auto other = ServiceBuilder("ns", "other", "", kTcp, "10.96.0.11", 53).endpoint({"10.180.1.10", 53, "node2"});
  ASSERT_TRUE(sync(snapshot({web(2), other}), SyncKind::kFull).ok());
  // Web loses its endpoints: its cluster IP rule leaves nat KUBE-SERVICES and a REJECT
  // appears in filter KUBE-SERVICES; both are written, the other top-level chains are not.
  auto empty = web(0);
  ASSERT_TRUE(sync(snapshot({empty, other}), SyncKind::kPartial, {empty.info().name}).ok());
  EXPECT_EQ(proxier_.last_figures().filter_rules, 1u);
  EXPECT_EQ(proxier_.last_figures().nat_chains, 1u) << "nat KUBE-SERVICES only";
  kernel::FakeIptables fresh;
  IptablesProxier full(fresh, options());
  ASSERT_TRUE(full.sync(proxier::SyncRequest{snapshot({empty, other}), {}, SyncKind::kFull, node_}).ok());
  EXPECT_EQ(nat_view(), kernel::kube_chains_view(*fresh.save(Table::kNat)));
  EXPECT_EQ(kernel::kube_chains_view(*fake_.save(Table::kFilter)), kernel::kube_chains_view(*fresh.save(Table::kFilter)));
}

TEST_F(IptablesProxierTest, DeletedServiceChainsGoAwayInAPartialSync) {
  ASSERT_TRUE(sync(snapshot({web(2)}), SyncKind::kFull).ok());
  ASSERT_TRUE(sync(snapshot({}), SyncKind::kPartial, {web(2).info().name}).ok());
  EXPECT_EQ(proxier_.last_figures().deleted_chains, 3u);
  for (const auto& [name, chain] : fake_.table(Table::kNat).chains) EXPECT_FALSE(is_service_chain(name)) << name;
}

TEST_F(IptablesProxierTest, LeftoversOfAPreviousRunAreRemovedAndForeignRulesKept) {
  ASSERT_TRUE(fake_
                  .restore("*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-OLDOLDOLDOLDOLD1 - [0:0]\n"
                           ":KUBE-SEP-OLDOLDOLDOLDOLD2 - [0:0]\n:MY-CHAIN - [0:0]\n"
                           "-A KUBE-SERVICES -d 10.96.9.9 -j KUBE-SVC-OLDOLDOLDOLDOLD1\n"
                           "-A KUBE-SVC-OLDOLDOLDOLDOLD1 -j KUBE-SEP-OLDOLDOLDOLDOLD2\n"
                           "-A KUBE-SEP-OLDOLDOLDOLDOLD2 -p tcp -j DNAT --to-destination 10.1.1.1:80\n"
                           "-A MY-CHAIN -j ACCEPT\n"
                           "-A PREROUTING -j MY-CHAIN\nCOMMIT\n",
                           kernel::RestoreFlags{})
                  .ok());
  ASSERT_TRUE(sync(snapshot({web(1)}), SyncKind::kFull).ok());
  EXPECT_EQ(fake_.chain(Table::kNat, "KUBE-SVC-OLDOLDOLDOLDOLD1"), nullptr);
  EXPECT_EQ(fake_.chain(Table::kNat, "KUBE-SEP-OLDOLDOLDOLDOLD2"), nullptr);
  ASSERT_NE(fake_.chain(Table::kNat, "MY-CHAIN"), nullptr);
  const auto& prerouting = fake_.chain(Table::kNat, "PREROUTING")->rules;
  EXPECT_EQ(prerouting.size(), 2u);
  EXPECT_EQ(prerouting.back(), "-j MY-CHAIN");
}

TEST_F(IptablesProxierTest, AFailedRestoreChangesNothingAndTheNextSyncRecovers) {
  ASSERT_TRUE(sync(snapshot({web(2)}), SyncKind::kFull).ok());
  const std::string before = nat_view();
  fake_.fail_next_restore("iptables-restore: lock timeout");
  const Status failed = sync(snapshot({web(1)}), SyncKind::kPartial, {web(1).info().name});
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.message().find("lock timeout"), std::string::npos);
  EXPECT_EQ(nat_view(), before);
  ASSERT_TRUE(sync(snapshot({web(1)}), SyncKind::kFull).ok());
  EXPECT_EQ(proxier_.last_figures().deleted_chains, 1u);
}

TEST_F(IptablesProxierTest, NodePortAddressesSelectLocalAddresses) {
  auto o = options();
  o.node_port_cidrs = {cidr("192.168.0.0/24")};
  o.local_addresses = [] { return std::vector<IpAddress>{ip("127.0.0.1"), ip("192.168.0.2"), ip("10.0.5.1")}; };
  kernel::FakeIptables fake;
  IptablesProxier p(fake, o);
  ASSERT_TRUE(p.sync(proxier::SyncRequest{snapshot({}), {}, SyncKind::kFull, node_}).ok());
  const auto& services = fake.chain(Table::kNat, kServicesChain)->rules;
  ASSERT_EQ(services.size(), 1u);
  EXPECT_NE(services[0].find("-d 192.168.0.2 -j KUBE-NODEPORTS"), std::string::npos);
}

TEST(ServiceChainsInSave, ReadsOnlyServiceChainDeclarations) {
  EXPECT_EQ(service_chains_in_save("*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-AB - [0:0]\n"
                                   ":KUBE-SEP-CD - [5:300]\n-A KUBE-SVC-AB -j KUBE-SEP-CD\n:KUBE-FW-EF - [0:0]\nCOMMIT\n"),
            (std::set<std::string>{"KUBE-FW-EF", "KUBE-SEP-CD", "KUBE-SVC-AB"}));
}

}  // namespace
}  // namespace kproxy::iptables
