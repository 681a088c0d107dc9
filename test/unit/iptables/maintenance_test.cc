// The canary and --cleanup against the stateful fake.
#include "kproxy/iptables/maintenance.h"

#include <gtest/gtest.h>

#include "fake_iptables.h"
#include "kproxy/iptables/proxier.h"
#include "service_builder.h"

namespace kproxy::iptables {
namespace {

using testing::ip;
using testing::ServiceBuilder;
using testing::snapshot;

TEST(Canary, NoticesAFlushOfAnyTableAndEnsureRepairsIt) {
  kernel::FakeIptables fake;
  Canary canary(fake);
  EXPECT_FALSE(*canary.intact()) << "no canary before ensure()";
  ASSERT_TRUE(canary.ensure().ok());
  EXPECT_TRUE(*canary.intact());
  ASSERT_TRUE(canary.ensure().ok()) << "idempotent";
  EXPECT_EQ(fake.chain(Table::kNat, kCanaryChain)->rules.size(), 1u);

  fake.flush_table(Table::kNat);
  std::vector<std::string> which;
  EXPECT_FALSE(*canary.intact(&which));
  EXPECT_EQ(which, std::vector<std::string>{"nat"});
  ASSERT_TRUE(canary.ensure().ok());
  EXPECT_TRUE(*canary.intact());

  // A deleted chain (iptables -X after -F) counts too.
  ASSERT_TRUE(fake.restore("*mangle\n:KUBE-PROXY-CANARY - [0:0]\n-X KUBE-PROXY-CANARY\nCOMMIT\n", {}).ok());
  which.clear();
  EXPECT_FALSE(*canary.intact(&which));
  EXPECT_EQ(which, std::vector<std::string>{"mangle"});
}

TEST(Cleanup, RemovesEverythingKproxyWroteAndNothingElse) {
  kernel::FakeIptables fake;
  // What a node has before kproxy: kubelet's chains and an operator's rule.
  ASSERT_TRUE(fake.restore("*filter\n:KUBE-FIREWALL - [0:0]\n:OPERATOR - [0:0]\n"
                           "-A KUBE-FIREWALL -m comment --comment \"block incoming localnet connections\" -d 127.0.0.0/8 "
                           "! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP\n"
                           "-A INPUT -j KUBE-FIREWALL\n-A OUTPUT -j KUBE-FIREWALL\n-A INPUT -j OPERATOR\n"
                           "-A OPERATOR -p tcp --dport 22 -j ACCEPT\nCOMMIT\n"
                           "*mangle\n:KUBE-IPTABLES-HINT - [0:0]\n:KUBE-KUBELET-CANARY - [0:0]\nCOMMIT\n",
                           {})
                  .ok());
  std::map<Table, std::string> before;
  for (Table t : {Table::kFilter, Table::kNat, Table::kMangle}) before[t] = *fake.save(t);

  IptablesProxierOptions o;
  o.render.node_ip = ip("192.168.0.2");
  IptablesProxier proxier(fake, o);
  auto web = ServiceBuilder("ns", "web", "", model::Protocol::kTcp, "10.96.0.10", 80)
                 .node_port(30080)
                 .lb_ip("203.0.113.5")
                 .source_range("10.0.0.0/8")
                 .endpoint({"10.180.0.10", 8080, "node1"});
  const proxier::NodeFacts node{"node1", ""};
  ASSERT_TRUE(proxier.sync(proxier::SyncRequest{snapshot({web}), {}, proxier::SyncKind::kFull, node}).ok());
  ASSERT_TRUE(Canary(fake).ensure().ok());
  ASSERT_NE(*fake.save(Table::kNat), before[Table::kNat]);

  const Status s = cleanup(fake);
  ASSERT_TRUE(s.ok()) << s.message();
  for (Table t : {Table::kFilter, Table::kNat, Table::kMangle}) {
    EXPECT_EQ(*fake.save(t), before[t]) << kernel::table_name(t);
  }
  // A second cleanup finds nothing to do and succeeds.
  EXPECT_TRUE(cleanup(fake).ok());
}

TEST(Cleanup, OnATableKproxyNeverTouchedSucceedsAndChangesNothing) {
  kernel::FakeIptables fake;
  std::map<Table, std::string> before;
  for (Table t : {Table::kFilter, Table::kNat, Table::kMangle}) before[t] = *fake.save(t);
  const Status s = cleanup(fake);
  EXPECT_TRUE(s.ok()) << s.message();
  for (Table t : {Table::kFilter, Table::kNat, Table::kMangle}) EXPECT_EQ(*fake.save(t), before[t]);
}

TEST(Cleanup, FailsNamingWhatStayedWhenAForeignRuleStillUsesAChain) {
  kernel::FakeIptables fake;
  IptablesProxier proxier(fake, IptablesProxierOptions{});
  const proxier::NodeFacts node{"node1", ""};
  ASSERT_TRUE(proxier.sync(proxier::SyncRequest{snapshot({}), {}, proxier::SyncKind::kFull, node}).ok());
  ASSERT_TRUE(fake.restore("*nat\n:MINE - [0:0]\n-A MINE -j KUBE-MARK-MASQ\nCOMMIT\n", {}).ok());
  const Status s = cleanup(fake);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("could not remove everything"), std::string::npos) << s.message();
  EXPECT_NE(fake.chain(Table::kNat, "MINE"), nullptr);
}

}  // namespace
}  // namespace kproxy::iptables
