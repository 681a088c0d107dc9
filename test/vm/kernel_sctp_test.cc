// Runs inside the vm tier's guest (test/vm/run; label vm-guest): Debian's stock kernel with
// sctp as a loadable module. A kernel-SCTP client and server (kproxy-vm-sctp, plain
// one-to-one sockets) in the namespace cluster exchange messages through a hand-written
// iptables DNAT on node 1 (what kproxy programs for an SCTP Service on a kernel-SCTP node),
// and opening those sockets loads the sctp module on demand.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <utility>

#include "cluster.h"
#include "vm_guest.h"

namespace kproxy::testing {
namespace {

constexpr const char* kTag = "ksctp";
constexpr int kPodPort = 8080;
constexpr const char* kExternalIp = "203.0.113.10";
constexpr int kTimeoutMs = 8000;  // TCG emulation on a shared host: generous, bounded

// One cluster for the suite (building it is the slow part under emulation): pod a on node 1
// and pod c on node 2 each run a kproxy-vm-sctp server on kPodPort.
class KernelSctpTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!in_vm_guest() || !can_create_netns()) return;
    loaded_before_ = sctp_module_loaded();
    cluster_ = std::make_unique<TestCluster>(kTag);
    if (!cluster_->ok()) return;
    for (auto [node, name] : {std::pair{1, "a"}, {2, "c"}}) {
      Pod& pod = cluster_->add_pod(node, name);
      if (!cluster_->ok()) return;
      BackgroundProcess& server =
          cluster_->start(pod.ns, {KPROXY_VM_SCTP, "serve", "--name", name, "--port", std::to_string(kPodPort)});
      if (!server.wait_for_line("ready", std::chrono::seconds(30))) {
        ADD_FAILURE() << server.describe();
        return;
      }
      pods_.push_back(&pod);
    }
    ready_ = true;
  }
  static void TearDownTestSuite() {
    pods_.clear();
    cluster_.reset();
  }

  void SetUp() override {
    if (!in_vm_guest()) GTEST_SKIP() << "runs inside the vm tier's guest (test/vm/run); label vm-guest";
    if (!can_create_netns()) GTEST_SKIP() << "needs root and iproute2";
    ASSERT_TRUE(ready_) << "the cluster could not be set up" << (cluster_ ? ": " + cluster_->error() : "");
  }

  static RunResult request(const std::string& ns, const std::string& to, int count) {
    return TestCluster::exec(ns, {KPROXY_VM_SCTP, "request", "--to", to, "--count", std::to_string(count),
                                  "--timeout-ms", std::to_string(kTimeoutMs)});
  }

  static void node1(const std::vector<std::string>& argv) { TestCluster::exec_ok(cluster_->node_ns(1), argv); }

  static inline std::unique_ptr<TestCluster> cluster_;
  static inline std::vector<Pod*> pods_;
  static inline bool ready_ = false;
  static inline bool loaded_before_ = false;
};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    const size_t end = text.find('\n', start);
    lines.push_back(text.substr(start, end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return lines;
}

// Each reply is "<server> <source ip>:<port> message-<i>", in order.
void expect_replies(const RunResult& r, const std::string& server, const std::string& source, int count) {
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  const auto lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), static_cast<size_t>(count)) << r.out;
  for (int i = 0; i < count; ++i) {
    const std::string& line = lines[static_cast<size_t>(i)];
    EXPECT_EQ(line.rfind(server + " " + source + ":", 0), 0u) << line << "\nexpected from " << server << " seeing " << source;
    EXPECT_EQ(line.substr(line.rfind(' ') + 1), "message-" + std::to_string(i + 1)) << line;
  }
}

TEST_F(KernelSctpTest, ServersSocketLoadedTheSctpModuleOnDemand) {
  // socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP) made the kernel ask modprobe for sctp's
  // "net-pf-2-proto-132" alias.
  EXPECT_TRUE(sctp_module_loaded()) << "kernel SCTP sockets are open, yet /sys/module/sctp is absent";
  if (!loaded_before_) std::printf("sctp module: not loaded at start, loaded on demand by the servers' socket()\n");
}

TEST_F(KernelSctpTest, ClientAndServerExchangeMessagesThroughIptablesDnat) {
  const Pod& a = *pods_[0];
  const Pod& c = *pods_[1];
  const std::string target = c.ip + ":" + std::to_string(kPodPort);
  for (const char* chain : {"PREROUTING", "OUTPUT"}) {
    node1({"iptables", "-w", "-t", "nat", "-A", chain, "-d", kExternalIp, "-p", "sctp", "-m", "sctp", "--dport", "80",
           "-j", "DNAT", "--to-destination", target});
  }
  node1({"iptables", "-w", "-t", "nat", "-A", "POSTROUTING", "-m", "conntrack", "--ctstate", "DNAT", "-s",
         cluster_->client_ip(), "-j", "MASQUERADE"});
  ASSERT_FALSE(HasFailure());
  const std::string external = std::string(kExternalIp) + ":80";
  {
    SCOPED_TRACE("pod to pod directly");
    expect_replies(request(a.ns, target, 2), "c", a.ip, 2);
  }
  {
    SCOPED_TRACE("outside client through DNAT and masquerade on node 1, several messages on one association");
    expect_replies(request(cluster_->client_ns(), external, 5), "c", cluster_->node_ip(1), 5);
  }
  {
    SCOPED_TRACE("a pod on node 1 through DNAT, no masquerade needed");
    expect_replies(request(a.ns, external, 3), "c", a.ip, 3);
  }
  {
    SCOPED_TRACE("node 1 itself through OUTPUT DNAT");
    expect_replies(request(cluster_->node_ns(1), external, 1), "c", cluster_->node_ip(1), 1);
  }
  const RunResult ct = TestCluster::exec(cluster_->node_ns(1), {"conntrack", "-L", "-p", "sctp"});
  if (ct.exit_code == 0) {
    EXPECT_NE(ct.out.find("dst=" + std::string(kExternalIp)), std::string::npos) << ct.out;
  }
}

TEST_F(KernelSctpTest, InitToAClosedPortIsAbortedAndReportedAsRefused) {
  const Pod& a = *pods_[0];
  const Pod& c = *pods_[1];
  const RunResult r = request(a.ns, c.ip + ":9", 1);
  EXPECT_EQ(r.exit_code, 2) << r.err << r.out;
}

}  // namespace
}  // namespace kproxy::testing
