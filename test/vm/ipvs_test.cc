// Runs inside the vm tier's guest (test/vm/run; label vm-guest): Debian's stock kernel with
// ip_vs as a loadable module. IPVS virtual services for TCP, UDP and SCTP, programmed with
// ipvsadm in node 1 of the namespace cluster (test/support/cluster.h) the way kube-proxy's
// IPVS mode lays them out (the service address on a dummy kube-ipvs0, NAT forwarding,
// masquerading of IPVS traffic), carry real traffic from the outside client to pods on both
// nodes. Every module (ip_vs, ip_vs_rr, dummy, xt_ipvs, nf_nat...) loads on demand.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <utility>

#include "cluster.h"
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

  // ipvsadm's service flag for the protocol: -t, -u or --sctp-service.
  std::string service_flag() const {
    return GetParam() == Proto::kTcp ? "-t" : GetParam() == Proto::kUdp ? "-u" : "--sctp-service";
  }

  static void node1(const std::vector<std::string>& argv) { TestCluster::exec_ok(cluster_->node_ns(1), argv); }

  static inline std::unique_ptr<TestCluster> cluster_;
  static inline std::vector<Pod*> pods_;
  static inline bool ready_ = false;
};

TEST_P(IpvsTest, VirtualServiceSpreadsConnectionsRoundRobinOverPodsOnBothNodes) {
  const std::string vip_port = std::string(kVip) + ":" + std::to_string(kVipPort);
  node1({"ipvsadm", "-A", service_flag(), vip_port, "-s", "rr"});
  for (const Pod* pod : pods_) {
    node1({"ipvsadm", "-a", service_flag(), vip_port, "-r", pod->ip + ":" + std::to_string(kPodPort), "-m"});
  }
  ASSERT_FALSE(HasFailure());

  // Round robin over three pods: three new connections (each request is a new client
  // process, so a new source port and a new IPVS connection) reach each pod once.
  std::map<std::string, int> answers;
  for (int i = 0; i < 3; ++i) {
    const RequestResult r = TestCluster::request(cluster_->client_ns(), GetParam(), vip_port, kRequestTimeoutMs);
    ASSERT_EQ(r.exit_code, 0) << "request " << i << ": " << r.err << joined(r.lines);
    ASSERT_EQ(r.lines.size(), 1u) << joined(r.lines);
    answers[r.lines[0].substr(0, r.lines[0].find(' '))]++;
  }
  const RunResult list = TestCluster::exec(cluster_->node_ns(1), {"ipvsadm", "-Ln", "--stats"});
  EXPECT_EQ(answers, (std::map<std::string, int>{{"a", 1}, {"b", 1}, {"c", 1}})) << list.out;
  EXPECT_NE(list.out.find(vip_port), std::string::npos) << list.out;
  if (GetParam() == Proto::kSctp) {
    // IPVS forwards SCTP by itself (ip_vs_proto_sctp) and the pods speak usrsctp over raw IP:
    // nothing here needs, or loads, the kernel's SCTP module.
    EXPECT_FALSE(sctp_module_loaded()) << "an IPVS SCTP service loaded the kernel sctp module";
  }
  node1({"ipvsadm", "-D", service_flag(), vip_port});
}

INSTANTIATE_TEST_SUITE_P(Protocols, IpvsTest, ::testing::Values(Proto::kTcp, Proto::kUdp, Proto::kSctp),
                         [](const auto& info) { return std::string(proto_name(info.param)); });

}  // namespace
}  // namespace kproxy::testing
