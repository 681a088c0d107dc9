// The two-node namespace cluster (test/support/cluster.h) with real packets, for TCP, UDP
// and SCTP (usrsctp over raw IP): pod to pod on one node and across nodes, node to pod, an
// outside client through a hand-written DNAT on node 1 (what kproxy will program), REJECT
// and DROP, and that nothing is left behind.
#include <gtest/gtest.h>

#include <signal.h>

#include <memory>

#include "cluster.h"

namespace kproxy::testing {
namespace {

constexpr const char* kTag = "cluster";
constexpr int kPodPort = 8080;
constexpr const char* kExternalIp = "203.0.113.10";

std::string joined(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

std::vector<std::string> leftover_namespaces() {
  std::vector<std::string> left;
  const std::string prefix = std::string("kpt-") + kTag + "-";
  const std::string suffix = "-" + std::to_string(getpid());
  for (const auto& n : Netns::list()) {
    if (n.rfind(prefix, 0) == 0 && n.size() > suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0) {
      left.push_back(n);
    }
  }
  return left;
}

class ClusterTest : public ::testing::TestWithParam<Proto> {
 protected:
  void SetUp() override {
    if (!can_create_netns()) GTEST_SKIP() << "needs root and iproute2 (netns tier)";
    cluster_ = std::make_unique<TestCluster>(kTag);
    ASSERT_TRUE(cluster_->ok()) << cluster_->error();
  }
  void TearDown() override {
    cluster_.reset();
    EXPECT_EQ(leftover_namespaces(), std::vector<std::string>{});
  }

  Proto proto() const { return GetParam(); }
  std::string proto_arg() const { return proto_name(GetParam()); }

  // A pod with a peer serving kPodPort over the test's protocol.
  Pod& serving_pod(int node, const std::string& name) {
    Pod& pod = cluster_->add_pod(node, name);
    EXPECT_TRUE(cluster_->ok()) << cluster_->error();
    PeerPorts ports;
    (proto() == Proto::kTcp ? ports.tcp : proto() == Proto::kUdp ? ports.udp : ports.sctp).push_back(kPodPort);
    EXPECT_NE(cluster_->start_peer(pod, ports), nullptr);
    return pod;
  }

  // Expects `count` answers from `server`, each of which saw `source` as the client's address.
  void expect_answer(const RequestResult& r, const std::string& server, const std::string& source, size_t count = 1) {
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_EQ(r.lines.size(), count) << joined(r.lines);
    for (const auto& line : r.lines) {
      EXPECT_EQ(line.rfind(server + " " + source + ":", 0), 0u)
          << "reply: " << line << "\nexpected from " << server << " seeing " << source;
    }
  }

  void iptables(int node, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"iptables", "-w"};
    argv.insert(argv.end(), args.begin(), args.end());
    TestCluster::exec_ok(cluster_->node_ns(node), argv);
  }

  std::unique_ptr<TestCluster> cluster_;
};

TEST_P(ClusterTest, PodsReachPodsOnTheirNodeAndAcrossNodesAndNodesReachPods) {
  Pod& a = serving_pod(1, "a");
  Pod& b = serving_pod(1, "b");
  Pod& c = serving_pod(2, "c");
  ASSERT_FALSE(HasFailure());
  const std::string port = ":" + std::to_string(kPodPort);
  {
    SCOPED_TRACE("pod to pod on the same node");
    expect_answer(TestCluster::request(a.ns, proto(), b.ip + port), "b", a.ip);
  }
  {
    SCOPED_TRACE("pod to pod across nodes, both ways");
    expect_answer(TestCluster::request(a.ns, proto(), c.ip + port, 2000, 2), "c", a.ip, 2);
    expect_answer(TestCluster::request(c.ns, proto(), a.ip + port), "a", c.ip);
  }
  {
    SCOPED_TRACE("node 2 to a pod on node 1, node 1 to its own pod");
    expect_answer(TestCluster::request(cluster_->node_ns(2), proto(), a.ip + port), "a", cluster_->node_ip(2));
    expect_answer(TestCluster::request(cluster_->node_ns(1), proto(), b.ip + port), "b", cluster_->pod_gateway(1));
  }
  {
    SCOPED_TRACE("the outside client has no route to pods");
    RequestResult r = TestCluster::request(cluster_->client_ns(), proto(), c.ip + port, 500);
    EXPECT_NE(r.exit_code, 0) << joined(r.lines);
  }
}

// What kproxy will do for externalIPs / load-balancer IPs, written by hand: DNAT on node 1 to
// a pod on node 2. Without masquerading the pod answers the client directly through node 2,
// bypassing node 1's conntrack, so the client never sees a reply from the address it called.
TEST_P(ClusterTest, OutsideClientReachesAPodOnTheOtherNodeThroughDnatAndMasquerade) {
  Pod& a = serving_pod(1, "a");
  Pod& c = serving_pod(2, "c");
  ASSERT_FALSE(HasFailure());
  const std::string target = c.ip + ":" + std::to_string(kPodPort);
  for (const char* chain : {"PREROUTING", "OUTPUT"}) {
    iptables(1, {"-t", "nat", "-A", chain, "-d", kExternalIp, "-p", proto_arg(), "-m", proto_arg(), "--dport", "80",
                 "-j", "DNAT", "--to-destination", target});
  }
  const std::string external = std::string(kExternalIp) + ":80";
  {
    SCOPED_TRACE("without masquerade");
    RequestResult r = TestCluster::request(cluster_->client_ns(), proto(), external, 700);
    EXPECT_EQ(r.exit_code, 3) << joined(r.lines) << r.err;
  }
  {
    SCOPED_TRACE("a pod on node 1 and node 1 itself need no masquerade: the replies come back through node 1");
    expect_answer(TestCluster::request(a.ns, proto(), external), "c", a.ip);
    expect_answer(TestCluster::request(cluster_->node_ns(1), proto(), external), "c", cluster_->node_ip(1));
  }
  iptables(1, {"-t", "nat", "-A", "POSTROUTING", "-m", "conntrack", "--ctstate", "DNAT", "-s", cluster_->client_ip(),
               "-j", "MASQUERADE"});
  {
    SCOPED_TRACE("with masquerade the pod sees node 1's address");
    expect_answer(TestCluster::request(cluster_->client_ns(), proto(), external, 2000, 2), "c", cluster_->node_ip(1), 2);
  }
  const RunResult ct = TestCluster::exec(cluster_->node_ns(1), {"conntrack", "-L", "-p", proto_arg()});
  if (ct.exit_code == 0) {
    EXPECT_NE(ct.out.find("dst=" + std::string(kExternalIp)), std::string::npos) << ct.out;
  }
}

// REJECT (ICMP port unreachable) is "refused" (2) for TCP and UDP; DROP is a timeout (3).
TEST_P(ClusterTest, RejectRefusesAndDropTimesOut) {
  Pod& a = serving_pod(1, "a");
  Pod& c = serving_pod(2, "c");
  ASSERT_FALSE(HasFailure());
  const std::string target = c.ip + ":" + std::to_string(kPodPort);
  const std::vector<std::string> match = {"-d", c.ip, "-p", proto_arg(), "-m", proto_arg(), "--dport",
                                          std::to_string(kPodPort)};
  auto rule = [&](const std::string& op, const std::string& verdict) {
    std::vector<std::string> args = {op, "FORWARD"};
    args.insert(args.end(), match.begin(), match.end());
    args.insert(args.end(), {"-j", verdict});
    iptables(1, args);
  };
  rule("-A", "REJECT");
  RequestResult rejected = TestCluster::request(a.ns, proto(), target, 700);
  if (proto() == Proto::kSctp) {
    // usrsctp reads no ICMP (raw sockets only): an ICMP port unreachable is a timeout.
    EXPECT_EQ(rejected.exit_code, 3) << rejected.err;
  } else {
    EXPECT_EQ(rejected.exit_code, 2) << rejected.err;
  }
  rule("-D", "REJECT");
  rule("-A", "DROP");
  RequestResult dropped = TestCluster::request(a.ns, proto(), target, 500);
  EXPECT_EQ(dropped.exit_code, 3) << dropped.err;
  rule("-D", "DROP");
  expect_answer(TestCluster::request(a.ns, proto(), target), "c", a.ip);
}

// A port nobody serves: TCP RST, UDP ICMP port unreachable, SCTP ABORT from the pod's stack.
TEST_P(ClusterTest, ClosedPortIsRefused) {
  Pod& a = serving_pod(1, "a");
  Pod& c = serving_pod(2, "c");
  ASSERT_FALSE(HasFailure());
  RequestResult r = TestCluster::request(a.ns, proto(), c.ip + ":9", 1000);
  EXPECT_EQ(r.exit_code, 2) << r.err;
}

INSTANTIATE_TEST_SUITE_P(Protocols, ClusterTest, ::testing::Values(Proto::kTcp, Proto::kUdp, Proto::kSctp),
                         [](const auto& info) { return std::string(proto_name(info.param)); });

TEST(ClusterCleanup, DestructorStopsPeersAndDeletesEveryNamespace) {
  if (!can_create_netns()) GTEST_SKIP() << "needs root and iproute2 (netns tier)";
  pid_t peer_pid = -1;
  {
    TestCluster cluster(kTag);
    ASSERT_TRUE(cluster.ok()) << cluster.error();
    Pod& pod = cluster.add_pod(2, "p");
    ASSERT_TRUE(cluster.ok()) << cluster.error();
    BackgroundProcess* peer = cluster.start_peer(pod, {{1}, {2}, {3}});
    ASSERT_NE(peer, nullptr);
    peer_pid = peer->pid();
    EXPECT_EQ(leftover_namespaces().size(), 5u);
  }
  EXPECT_EQ(leftover_namespaces(), std::vector<std::string>{});
  EXPECT_NE(kill(peer_pid, 0), 0) << "peer " << peer_pid << " still running";
}

TEST(ClusterCleanup, FailedSetupStillDeletesWhatItCreated) {
  if (!can_create_netns()) GTEST_SKIP() << "needs root and iproute2 (netns tier)";
  {
    TestCluster cluster(kTag);
    ASSERT_TRUE(cluster.ok()) << cluster.error();
    cluster.add_pod(1, "x");
    cluster.add_pod(2, "y");
    cluster.add_pod(1, "x");  // a second pod of that name
    EXPECT_FALSE(cluster.ok());
    EXPECT_NE(cluster.error().find("x exists"), std::string::npos) << cluster.error();
  }
  EXPECT_EQ(leftover_namespaces(), std::vector<std::string>{});
}

}  // namespace
}  // namespace kproxy::testing

namespace kproxy::testing {
namespace {

TEST(BackgroundProcess, CollectsLinesAndStderrAndStopsWithSigterm) {
  BackgroundProcess p({"sh", "-c", "echo one; echo oops >&2; echo ready; exec sleep 30"});
  ASSERT_TRUE(p.started());
  ASSERT_TRUE(p.wait_for_line("ready", std::chrono::seconds(5))) << p.describe();
  EXPECT_TRUE(p.running());
  EXPECT_EQ(p.stop(), 128 + SIGTERM);
  EXPECT_EQ(p.stdout_lines(), (std::vector<std::string>{"one", "ready"}));
  EXPECT_EQ(p.stderr_text(), "oops\n");
}

TEST(BackgroundProcess, WaitEndsWhenTheProgramExits) {
  BackgroundProcess p({"sh", "-c", "echo partial-line-without-newline | tr -d '\\n'; exit 4"});
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(p.wait_for_line("never", std::chrono::seconds(10)));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_FALSE(p.running());
  EXPECT_EQ(p.exit_code(), 4);
  EXPECT_EQ(p.stdout_lines(), (std::vector<std::string>{"partial-line-without-newline"}));
}

TEST(BackgroundProcess, SigkillsAProgramThatIgnoresSigterm) {
  BackgroundProcess p({"sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.1; done"});
  ASSERT_TRUE(p.wait_for_line("ready", std::chrono::seconds(5))) << p.describe();
  EXPECT_EQ(p.stop(std::chrono::milliseconds(200)), 128 + SIGKILL);
}

TEST(BackgroundProcess, MissingProgramExitsWith127) {
  BackgroundProcess p({"/nonexistent/kproxy-nope"});
  EXPECT_FALSE(p.wait_for_line("x", std::chrono::seconds(5)));
  EXPECT_EQ(p.stop(), 127);
}

}  // namespace
}  // namespace kproxy::testing
