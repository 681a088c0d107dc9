// Runs inside the vm tier's guest (test/vm/run; label vm-guest): Debian's stock kernel with
// ip_vs as a loadable module. IPVS virtual services for TCP, UDP and SCTP, programmed by
// kproxy's generic-netlink client (NetlinkIpvs) in node 1 of the namespace cluster
// (test/support/cluster.h) the way kube-proxy's IPVS mode lays them out (the service address
// on a dummy kube-ipvs0, NAT forwarding, masquerading of IPVS traffic), carry real traffic from
// the outside client to pods on both nodes; ipvsadm, which has its own netlink code, is the
// independent reader of what was programmed. The last test does the same over IPv6, with
// kernel-SCTP peers (kproxy-vm-sctp) for SCTP. Every module (ip_vs, ip_vs_rr, dummy, xt_ipvs,
// nf_nat...) loads on demand.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <thread>
#include <memory>
#include <utility>

#include "cluster.h"
#include "../unit/iptables/service_builder.h"
#include "kproxy/ipvs/netlink_ipvs.h"
#include "kproxy/ipvs/proxier.h"
#include "netns.h"
#include "vm_guest.h"

namespace kproxy::testing {
namespace {

constexpr const char* kTag = "ipvs";
constexpr int kPodPort = 8080;
constexpr const char* kVip = "203.0.113.10";
constexpr int kVipPort = 80;
// TCG emulation is slow and shares the host: generous, bounded waits.
constexpr int kRequestTimeoutMs = 8000;

std::string joined(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

// One cluster for the whole suite (building it is the slow part under emulation): pods a and b
// on node 1 and c on node 2 serve kPodPort over TCP, UDP and SCTP; node 1 carries
// kube-proxy's IPVS layout: the service address on a dummy kube-ipvs0 (so IPVS sees the
// packets in LOCAL_IN), conntrack for IPVS connections and masquerading of IPVS traffic (so
// that replies from node 2 come back through node 1). Each test adds its protocol's virtual
// service with NAT ("masquerading") forwarding to the three pods.
class IpvsTest : public ::testing::TestWithParam<Proto> {
 protected:
  static void SetUpTestSuite() {
    if (!in_vm_guest() || !can_create_netns()) return;
    cluster_ = std::make_unique<TestCluster>(kTag);
    if (!cluster_->ok()) return;
    for (auto [node, name] : {std::pair{1, "a"}, {1, "b"}, {2, "c"}}) {
      Pod& pod = cluster_->add_pod(node, name);
      if (!cluster_->ok() || !cluster_->start_peer(pod, {{kPodPort}, {kPodPort}, {kPodPort}})) return;
      pods_.push_back(&pod);
    }
    const std::string node1 = cluster_->node_ns(1);
    for (const std::vector<std::string>& argv : std::vector<std::vector<std::string>>{
             {"ip", "link", "add", "kube-ipvs0", "type", "dummy"},
             {"ip", "addr", "add", std::string(kVip) + "/32", "dev", "kube-ipvs0"},
             {"ipvsadm", "-Ln"},  // loads ip_vs, which brings the net.ipv4.vs sysctls
             {"sysctl", "-qw", "net.ipv4.vs.conntrack=1"},
             {"iptables", "-w", "-t", "nat", "-A", "POSTROUTING", "-m", "ipvs", "--vaddr", std::string(kVip) + "/32",
              "--vport", std::to_string(kVipPort), "-j", "MASQUERADE"}}) {
      if (TestCluster::exec_ok(node1, argv).exit_code != 0) return;
    }
    // kproxy's client, its socket opened in node 1's namespace (it stays there).
    ScopedNetnsEntry in_node1(node1);
    if (!in_node1.ok()) return;
    auto ipvs = ipvs::NetlinkIpvs::open();
    if (!ipvs) {
      open_error_ = ipvs.error();
      return;
    }
    ipvs_ = std::move(*ipvs);
    ready_ = true;
  }
  static void TearDownTestSuite() {
    ipvs_.reset();
    pods_.clear();
    cluster_.reset();
  }

  void SetUp() override {
    if (!in_vm_guest()) GTEST_SKIP() << "runs inside the vm tier's guest (test/vm/run); label vm-guest";
    if (!can_create_netns()) GTEST_SKIP() << "needs root and iproute2";
    ASSERT_TRUE(ready_) << "the cluster could not be set up" << (cluster_ ? ": " + cluster_->error() : "")
                        << open_error_;
  }

  // ipvsadm's service flag for the protocol: -t, -u or --sctp-service.
  std::string service_flag() const {
    return GetParam() == Proto::kTcp ? "-t" : GetParam() == Proto::kUdp ? "-u" : "--sctp-service";
  }

  static void node1(const std::vector<std::string>& argv) { TestCluster::exec_ok(cluster_->node_ns(1), argv); }

  model::Protocol protocol() const {
    return GetParam() == Proto::kTcp ? model::Protocol::kTcp
           : GetParam() == Proto::kUdp ? model::Protocol::kUdp
                                       : model::Protocol::kSctp;
  }
  kernel::IpvsService vip_service() const {
    kernel::IpvsService s;
    s.address = *IpAddress::parse(kVip);
    s.protocol = protocol();
    s.port = kVipPort;
    return s;
  }
  static kernel::IpvsDestination pod_destination(const Pod& pod) {
    kernel::IpvsDestination d;
    d.address = *IpAddress::parse(pod.ip);
    d.port = kPodPort;
    return d;
  }
  // Applies changes with kproxy's client; every one must succeed.
  static void apply(const std::vector<kernel::IpvsChange>& changes) {
    const auto results = ipvs_->apply(changes);
    ASSERT_EQ(results.size(), changes.size());
    for (const Status& r : results) EXPECT_TRUE(r.ok()) << r.message();
  }
  // Which pod answers each of n new connections.
  std::map<std::string, int> spread(int n) const {
    std::map<std::string, int> answers;
    const std::string vip_port = std::string(kVip) + ":" + std::to_string(kVipPort);
    for (int i = 0; i < n; ++i) {
      const RequestResult r = TestCluster::request(cluster_->client_ns(), GetParam(), vip_port, kRequestTimeoutMs);
      EXPECT_EQ(r.exit_code, 0) << "request " << i << ": " << r.err << joined(r.lines);
      if (r.lines.size() == 1) answers[r.lines[0].substr(0, r.lines[0].find(' '))]++;
    }
    return answers;
  }

  static inline std::unique_ptr<TestCluster> cluster_;
  static inline std::unique_ptr<ipvs::NetlinkIpvs> ipvs_;
  static inline std::string open_error_;
  static inline std::vector<Pod*> pods_;
  static inline bool ready_ = false;
};

TEST_P(IpvsTest, VirtualServiceSpreadsConnectionsRoundRobinOverPodsOnBothNodes) {
  const std::string vip_port = std::string(kVip) + ":" + std::to_string(kVipPort);
  using Kind = kernel::IpvsChange::Kind;
  const kernel::IpvsService svc = vip_service();
  std::vector<kernel::IpvsChange> batch{{Kind::kAddService, svc, {}}};
  for (const Pod* pod : pods_) batch.push_back({Kind::kAddDestination, svc, pod_destination(*pod)});
  apply(batch);
  ASSERT_FALSE(HasFailure());

  // What kproxy reads back is what it wrote, and what ipvsadm reads too.
  auto services = ipvs_->services();
  ASSERT_TRUE(services.ok()) << services.error();
  ASSERT_EQ(services->size(), 1u);
  EXPECT_EQ(services->front(), svc);
  auto dests = ipvs_->destinations(svc);
  ASSERT_TRUE(dests.ok()) << dests.error();
  ASSERT_EQ(dests->size(), 3u);
  for (const auto& d : *dests) {
    const auto pod = std::find_if(pods_.begin(), pods_.end(), [&](const Pod* p) { return p->ip == d.address.to_string(); });
    ASSERT_NE(pod, pods_.end()) << to_string(d);
    EXPECT_TRUE(d.same_settings(pod_destination(**pod))) << to_string(d);
  }
  const RunResult listed = TestCluster::exec(cluster_->node_ns(1), {"ipvsadm", "-Ln"});
  EXPECT_NE(listed.out.find(vip_port + " rr"), std::string::npos) << listed.out;
  for (const Pod* pod : pods_) {
    // "  -> 10.244.1.2:8080   Masq   1   0   0"
    const auto at = listed.out.find(pod->ip + ":" + std::to_string(kPodPort));
    ASSERT_NE(at, std::string::npos) << listed.out;
    const std::string line = listed.out.substr(at, listed.out.find('\n', at) - at);
    EXPECT_NE(line.find("Masq"), std::string::npos) << line;
  }

  // Round robin over three pods: three new connections (each request is a new client
  // process, so a new source port and a new IPVS connection) reach each pod once.
  const std::map<std::string, int> answers = spread(3);
  const RunResult list = TestCluster::exec(cluster_->node_ns(1), {"ipvsadm", "-Ln", "--stats"});
  EXPECT_EQ(answers, (std::map<std::string, int>{{"a", 1}, {"b", 1}, {"c", 1}})) << list.out;
  if (GetParam() == Proto::kSctp) {
    // IPVS forwards SCTP by itself (ip_vs_proto_sctp) and the pods speak usrsctp over raw IP:
    // nothing here needs, or loads, the kernel's SCTP module.
    EXPECT_FALSE(sctp_module_loaded()) << "an IPVS SCTP service loaded the kernel sctp module";
  }

  // Weight 0 takes a pod out of new connections (graceful termination's first step); a
  // deleted destination is gone.
  kernel::IpvsDestination drained = pod_destination(*pods_[0]);
  drained.weight = 0;
  apply({{Kind::kUpdateDestination, svc, drained}, {Kind::kDeleteDestination, svc, pod_destination(*pods_[1])}});
  const std::map<std::string, int> after = spread(2);
  EXPECT_EQ(after, (std::map<std::string, int>{{"c", 2}}));
  dests = ipvs_->destinations(svc);
  ASSERT_TRUE(dests.ok()) << dests.error();
  EXPECT_EQ(dests->size(), 2u);

  apply({{Kind::kDeleteService, svc, {}}});
  services = ipvs_->services();
  ASSERT_TRUE(services.ok()) << services.error();
  EXPECT_TRUE(services->empty());
}

TEST_P(IpvsTest, PersistenceAndSchedulerAreUpdatedInPlace) {
  using Kind = kernel::IpvsChange::Kind;
  kernel::IpvsService svc = vip_service();
  std::vector<kernel::IpvsChange> batch{{Kind::kAddService, svc, {}}};
  for (const Pod* pod : pods_) batch.push_back({Kind::kAddDestination, svc, pod_destination(*pod)});
  apply(batch);
  // sessionAffinity ClientIP: persistence with its timeout; every new connection of the client
  // then reaches one pod.
  svc.flags = kernel::kIpvsPersistent;
  svc.timeout = 10800;
  svc.scheduler = "sh";
  apply({{Kind::kUpdateService, svc, {}}});
  auto services = ipvs_->services();
  ASSERT_TRUE(services.ok()) << services.error();
  ASSERT_EQ(services->size(), 1u);
  EXPECT_EQ(services->front(), svc);
  const RunResult listed = TestCluster::exec(cluster_->node_ns(1), {"ipvsadm", "-Ln"});
  EXPECT_NE(listed.out.find("sh persistent 10800"), std::string::npos) << listed.out;
  EXPECT_EQ(spread(3).size(), 1u) << "persistence sent one client to several pods";
  apply({{Kind::kDeleteService, svc, {}}});
}

TEST_P(IpvsTest, ARefusedChangeIsReportedAndTheRestOfTheBatchApplies) {
  if (GetParam() != Proto::kTcp) GTEST_SKIP() << "protocol-independent";
  using Kind = kernel::IpvsChange::Kind;
  kernel::IpvsService bad = vip_service();
  bad.port = 81;
  bad.scheduler = "no-such-scheduler";
  const kernel::IpvsService good = vip_service();
  const auto results = ipvs_->apply({{Kind::kAddService, bad, {}}, {Kind::kAddService, good, {}},
                                     {Kind::kAddService, good, {}}});  // the second add of one service
  ASSERT_EQ(results.size(), 3u);
  ASSERT_FALSE(results[0].ok());
  EXPECT_NE(results[0].message().find("add service TCP 203.0.113.10:81 (no-such-scheduler)"), std::string::npos)
      << results[0].message();
  EXPECT_TRUE(results[1].ok()) << results[1].message();
  ASSERT_FALSE(results[2].ok());
  EXPECT_NE(results[2].message().find("File exists"), std::string::npos) << results[2].message();
  auto services = ipvs_->services();
  ASSERT_TRUE(services.ok()) << services.error();
  EXPECT_EQ(services->size(), 1u);
  // Timeouts: set, read back, and ipvsadm agrees.
  ASSERT_TRUE(ipvs_->set_timeouts({900, 120, 300}).ok());
  auto t = ipvs_->timeouts();
  ASSERT_TRUE(t.ok()) << t.error();
  EXPECT_EQ(*t, (kernel::IpvsTimeouts{900, 120, 300}));
  const RunResult listed = TestCluster::exec(cluster_->node_ns(1), {"ipvsadm", "-L", "--timeout"});
  EXPECT_NE(listed.out.find("900 120 300"), std::string::npos) << listed.out;
  // Flush empties the table (what --cleanup does).
  ASSERT_TRUE(ipvs_->flush().ok());
  services = ipvs_->services();
  ASSERT_TRUE(services.ok()) << services.error();
  EXPECT_TRUE(services->empty());
}

// kproxy's IPVS proxier on the real kernel (netlink for IPVS, rtnetlink for kube-ipvs0), fed
// snapshots directly (the daemon's wiring is tested with the rest of the mode): a removed TCP
// endpoint with a connection drains at weight 0 while a removed UDP or SCTP endpoint goes at
// once; a restarted proxier sends nothing and a held SCTP association survives it; a deleted
// kube-ipvs0 comes back with its address; cleanup leaves no service and no device.
TEST_P(IpvsTest, TheProxierDrainsTcpSurvivesARestartAndCleansUp) {
  using iptables::testing::ServiceBuilder;
  using iptables::testing::snapshot;
  const std::string node1 = cluster_->node_ns(1);
  auto service = [&](bool with_c) {
    ServiceBuilder b("ns", "svc", "p", protocol(), kVip, kVipPort);
    for (const Pod* pod : pods_) {
      if (pod->name == "c" && !with_c) continue;
      b.endpoint({pod->ip, static_cast<std::uint16_t>(kPodPort), "node" + std::to_string(pod->node)});
    }
    return b;
  };
  std::set<proxier::ServicePortName> changed;
  const proxier::NodeFacts node{"node1", ""};
  kernel::NetlinkLinks links;
  auto sync = [&](ipvs::IpvsProxier& p, const proxier::Snapshot& snap) {
    ScopedNetnsEntry in_node1(node1);  // rtnetlink sockets open in the calling thread's namespace
    return p.sync(proxier::SyncRequest{snap, changed, proxier::SyncKind::kPartial, node, nullptr});
  };
  ipvs::IpvsProxier proxier(*ipvs_, links, {});
  Status s = sync(proxier, snapshot({service(true)}));
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(spread(3).size(), 3u);

  // Pod c leaves. TCP: it keeps the connection the spread made (IPVS counts it inactive while
  // it closes), so it stays at weight 0; UDP and SCTP: deleted at once.
  s = sync(proxier, snapshot({service(false)}));
  ASSERT_TRUE(s.ok()) << s.message();
  const RunResult listed = TestCluster::exec(node1, {"ipvsadm", "-Ln"});
  const std::string c_ip = pods_[2]->ip + ":" + std::to_string(kPodPort);
  if (GetParam() == Proto::kTcp) {
    EXPECT_EQ(proxier.last_sync().draining, 1u) << listed.out;
    const auto at = listed.out.find(c_ip);
    ASSERT_NE(at, std::string::npos) << listed.out;
    const std::string line = listed.out.substr(at, listed.out.find('\n', at) - at);
    EXPECT_NE(line.find("Masq    0"), std::string::npos) << line;
  } else {
    EXPECT_EQ(listed.out.find(c_ip), std::string::npos) << listed.out;
  }
  const auto after = spread(4);
  EXPECT_EQ(after.count("c"), 0u) << "a removed endpoint still got new connections";

  // A restart: a new proxier finds the kernel right and sends nothing, and an association held
  // across it is not disturbed.
  std::unique_ptr<BackgroundProcess> held;
  if (GetParam() == Proto::kSctp) {
    held = std::make_unique<BackgroundProcess>(
        std::vector<std::string>{testpeer_binary(), "request", "--proto", "sctp", "--to",
                                 std::string(kVip) + ":" + std::to_string(kVipPort), "--timeout-ms", "8000",
                                 "--hold-ms", "3000"},
        cluster_->client_ns());
    ASSERT_TRUE(held->wait_for([](const std::vector<std::string>& l) { return !l.empty(); }, std::chrono::seconds(10)))
        << held->describe();
  }
  ipvs::IpvsProxier restarted(*ipvs_, links, {});
  s = sync(restarted, snapshot({service(false)}));
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(restarted.last_sync().changes, 0u) << "a restart rewrote IPVS";
  if (held) {
    for (const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
         held->running() && std::chrono::steady_clock::now() < deadline;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_FALSE(held->running()) << held->describe();
    EXPECT_EQ(held->exit_code(), 0) << "the association held across the restart failed\n" << held->describe();
  }

  // kube-ipvs0 deleted under kproxy: the next sync creates it again with the address.
  TestCluster::exec_ok(node1, {"ip", "link", "del", "kube-ipvs0"});
  s = sync(restarted, snapshot({service(false)}));
  ASSERT_TRUE(s.ok()) << s.message();
  const RunResult addr = TestCluster::exec(node1, {"ip", "-o", "addr", "show", "dev", "kube-ipvs0"});
  EXPECT_NE(addr.out.find(std::string(kVip) + "/32"), std::string::npos) << addr.out;
  EXPECT_EQ(spread(2).size(), 2u);

  // --cleanup's part: no virtual service, no kube-ipvs0.
  {
    ScopedNetnsEntry in_node1(node1);
    s = ipvs::IpvsProxier::cleanup(*ipvs_, links);
  }
  ASSERT_TRUE(s.ok()) << s.message();
  auto services = ipvs_->services();
  ASSERT_TRUE(services.ok()) << services.error();
  EXPECT_TRUE(services->empty());
  EXPECT_NE(TestCluster::exec(node1, {"ip", "link", "show", "kube-ipvs0"}).exit_code, 0);
  // Back to the suite's layout for the next test.
  TestCluster::exec_ok(node1, {"ip", "link", "add", "kube-ipvs0", "type", "dummy"});
  TestCluster::exec_ok(node1, {"ip", "addr", "add", std::string(kVip) + "/32", "dev", "kube-ipvs0"});
}

// A dual-stack node (issue 10): kproxy's IPVS proxiers for both families, one per family as
// the daemon runs them, sharing one netlink handle and one kube-ipvs0, on the real kernel. An
// IPv6 virtual service carries real TCP and UDP (testpeer) and kernel-SCTP (kproxy-vm-sctp,
// plain IPPROTO_SCTP sockets over IPv6, in pods of their own) traffic from the outside client
// to pods on both nodes, next to the IPv4 one; persistence with the IPv6 netmask (128) is
// accepted by the kernel and holds a client to one pod; the IPv6 address is a /128 on
// kube-ipvs0; each family's full syncs leave the other family's services and addresses alone.
// Defined last: its SCTP case loads the kernel's sctp module, which would disturb the usrsctp
// pods of the tests above (gtest runs each test of a pattern for every protocol in turn).
TEST_P(IpvsTest, Ipv6VirtualServicesCarryTrafficNextToIpv4OnesFromTheirOwnProxier) {
  using iptables::testing::ServiceBuilder;
  using iptables::testing::snapshot;
  constexpr const char* kVip6 = "2001:db8:113::10";  // TestCluster::kExternalCidr6, routed via node 1
  const std::string node1 = cluster_->node_ns(1);
  const std::string vip6_port = std::string("[") + kVip6 + "]:" + std::to_string(kVipPort);

  // The IPv6 servers: testpeer in a, b, c (it listens on both families) for TCP and UDP;
  // kernel-SCTP servers in pods of their own (a usrsctp stack in the same namespace would
  // answer their INITs with ABORT), on both nodes.
  std::vector<std::pair<std::string, std::string>> backends;  // name, IPv6 address
  if (GetParam() == Proto::kSctp) {
    for (auto [node, name] : {std::pair{1, "ks6a"}, {2, "ks6c"}}) {
      Pod& pod = cluster_->add_pod(node, name);
      ASSERT_TRUE(cluster_->ok()) << cluster_->error();
      BackgroundProcess& server = cluster_->start(
          pod.ns, {KPROXY_VM_SCTP, "serve", "--name", pod.name, "--port", std::to_string(kPodPort), "--bind", "::"});
      ASSERT_TRUE(server.wait_for_line("ready", std::chrono::seconds(20))) << server.describe();
      backends.emplace_back(pod.name, pod.ip6);
    }
  } else {
    for (const Pod* pod : pods_) backends.emplace_back(pod->name, pod->ip6);
  }
  // kube-proxy's IPVS layout for IPv6: masquerading of IPVS traffic in ip6tables (replies
  // from node 2 come back through node 1).
  const std::vector<std::string> masquerade{"-t", "nat", "POSTROUTING", "-m", "ipvs", "--vaddr",
                                            std::string(kVip6) + "/128", "--vport", std::to_string(kVipPort),
                                            "-j", "MASQUERADE"};
  auto ip6tables = [&](const char* op) {
    std::vector<std::string> argv{"ip6tables", "-w", masquerade[0], masquerade[1], op};
    argv.insert(argv.end(), masquerade.begin() + 2, masquerade.end());
    return TestCluster::exec(node1, argv);
  };
  ASSERT_EQ(ip6tables("-A").exit_code, 0);

  auto service4 = [&] {
    ServiceBuilder b("ns", "svc", "p", protocol(), kVip, kVipPort);
    for (const Pod* pod : pods_) {
      b.endpoint({pod->ip, static_cast<std::uint16_t>(kPodPort), "node" + std::to_string(pod->node)});
    }
    return b;
  };
  auto service6 = [&](bool affinity) {
    ServiceBuilder b("ns", "svc", "p", protocol(), kVip6, kVipPort);
    for (const auto& backend : backends) {
      b.endpoint({backend.second, static_cast<std::uint16_t>(kPodPort), "node1"});
    }
    if (affinity) b.affinity(10800);
    return b;
  };
  std::set<proxier::ServicePortName> changed;
  const proxier::NodeFacts node{"node1", ""};
  kernel::NetlinkLinks links;
  auto sync = [&](ipvs::IpvsProxier& p, const proxier::Snapshot& snap) {
    ScopedNetnsEntry in_node1(node1);
    return p.sync(proxier::SyncRequest{snap, changed, proxier::SyncKind::kFull, node, nullptr});
  };
  ipvs::IpvsProxierOptions o6;
  o6.family = IpFamily::kIPv6;
  ipvs::IpvsProxier v4(*ipvs_, links, {});
  ipvs::IpvsProxier v6(*ipvs_, links, o6);
  Status s = sync(v4, snapshot({service4()}));
  ASSERT_TRUE(s.ok()) << s.message();
  s = sync(v6, snapshot({service6(false)}));
  ASSERT_TRUE(s.ok()) << s.message();

  // ipvsadm reads the IPv6 service and its IPv6 destinations back; kube-ipvs0 holds both
  // families' addresses, the IPv6 one as a /128.
  RunResult listed = TestCluster::exec(node1, {"ipvsadm", "-Ln"});
  EXPECT_NE(listed.out.find(vip6_port + " rr"), std::string::npos) << listed.out;
  for (const auto& backend : backends) {
    EXPECT_NE(listed.out.find("[" + backend.second + "]:" + std::to_string(kPodPort)), std::string::npos)
        << listed.out;
  }
  EXPECT_NE(listed.out.find(std::string(kVip) + ":" + std::to_string(kVipPort)), std::string::npos) << listed.out;
  const RunResult addr = TestCluster::exec(node1, {"ip", "-o", "addr", "show", "dev", "kube-ipvs0"});
  EXPECT_NE(addr.out.find(std::string(kVip6) + "/128"), std::string::npos) << addr.out;
  EXPECT_EQ(addr.out.find("tentative"), std::string::npos) << addr.out;
  EXPECT_NE(addr.out.find(std::string(kVip) + "/32"), std::string::npos) << addr.out;

  // Real traffic over IPv6 from outside the cluster: each new connection (association) to
  // the next pod, round robin.
  auto request6 = [&]() -> std::pair<std::string, std::string> {  // (answering pod, error)
    if (GetParam() == Proto::kSctp) {
      const RunResult r = TestCluster::exec(cluster_->client_ns(), {KPROXY_VM_SCTP, "request", "--to", vip6_port,
                                                                    "--timeout-ms", std::to_string(kRequestTimeoutMs)});
      if (r.exit_code != 0) return {"", "exit " + std::to_string(r.exit_code) + ": " + r.err + r.out};
      return {r.out.substr(0, r.out.find(' ')), ""};
    }
    RequestResult r = TestCluster::request(cluster_->client_ns(), GetParam(), vip6_port, kRequestTimeoutMs);
    if (r.exit_code != 0) {
      // The first IPv6 connection of a namespace whose link just came up may fail: once more.
      r = TestCluster::request(cluster_->client_ns(), GetParam(), vip6_port, kRequestTimeoutMs);
    }
    if (r.exit_code != 0 || r.lines.size() != 1) {
      return {"", "exit " + std::to_string(r.exit_code) + ": " + r.err + joined(r.lines)};
    }
    return {r.lines[0].substr(0, r.lines[0].find(' ')), ""};
  };
  std::set<std::string> answered;
  for (std::size_t i = 0; i < backends.size(); ++i) {
    const auto [pod, error] = request6();
    EXPECT_TRUE(error.empty()) << "IPv6 request " << i << ": " << error
                               << TestCluster::exec(node1, {"ipvsadm", "-Ln", "--stats"}).out;
    answered.insert(pod);
  }
  std::set<std::string> all;
  for (const auto& backend : backends) all.insert(backend.first);
  EXPECT_EQ(answered, all) << "round robin over the IPv6 service's pods on both nodes";
  if (GetParam() == Proto::kSctp) {
    EXPECT_TRUE(sctp_module_loaded()) << "the kernel-SCTP peers did not load the sctp module";
  } else {
    // The IPv4 service still answers, next to it.
    EXPECT_EQ(spread(1).size(), 1u);
  }

  // sessionAffinity ClientIP over IPv6: persistence with netmask 128, updated in place; the
  // client then stays with one pod.
  s = sync(v6, snapshot({service6(true)}));
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(v6.last_sync().changes, 1u) << "affinity is one service update";
  listed = TestCluster::exec(node1, {"ipvsadm", "-Ln"});
  {
    // ipvsadm names an IPv6 netmask only when it is not 128: none means the kernel holds 128.
    const auto at = listed.out.find(vip6_port);
    ASSERT_NE(at, std::string::npos) << listed.out;
    const std::string line = listed.out.substr(at, listed.out.find('\n', at) - at);
    EXPECT_NE(line.find("persistent 10800"), std::string::npos) << line;
    EXPECT_EQ(line.find("mask"), std::string::npos) << line;
  }
  std::set<std::string> sticky;
  for (int i = 0; i < 3; ++i) {
    const auto [pod, error] = request6();
    EXPECT_TRUE(error.empty()) << error;
    sticky.insert(pod);
  }
  EXPECT_EQ(sticky.size(), 1u) << "persistence sent one IPv6 client to several pods";

  // Each family's full sync leaves the other's alone: the IPv4 proxier, resynced, does not
  // touch the IPv6 service; the IPv6 proxier, emptied, removes its service and address only.
  s = sync(v4, snapshot({service4()}));
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(v4.last_sync().changes, 0u);
  auto services = ipvs_->services();
  ASSERT_TRUE(services.ok()) << services.error();
  EXPECT_EQ(services->size(), 2u);
  s = sync(v6, proxier::Snapshot{});
  ASSERT_TRUE(s.ok()) << s.message();
  services = ipvs_->services();
  ASSERT_TRUE(services.ok()) << services.error();
  ASSERT_EQ(services->size(), 1u);
  EXPECT_EQ(services->front().address.to_string(), kVip);
  const RunResult after = TestCluster::exec(node1, {"ip", "-o", "addr", "show", "dev", "kube-ipvs0"});
  EXPECT_EQ(after.out.find(kVip6), std::string::npos) << after.out;
  EXPECT_NE(after.out.find(std::string(kVip) + "/32"), std::string::npos) << after.out;
  if (GetParam() != Proto::kSctp) {
    EXPECT_EQ(spread(1).size(), 1u);
  }

  // Back to the suite's layout.
  ASSERT_TRUE(ipvs_->flush().ok());
  EXPECT_EQ(ip6tables("-D").exit_code, 0);
}

INSTANTIATE_TEST_SUITE_P(Protocols, IpvsTest, ::testing::Values(Proto::kTcp, Proto::kUdp, Proto::kSctp),
                         [](const auto& info) { return std::string(proto_name(info.param)); });

}  // namespace
}  // namespace kproxy::testing
