// Runs inside the vm tier's guest (test/vm/run; label vm-guest): Debian's stock kernel, where
// sctp and xt_sctp are loadable modules as on a real node.
//
// 1. kproxy --sctp-userspace-mode on node 1 relays usrsctp clients to usrsctp servers through
//    an SCTP ClusterIP and NodePort, and /proc/modules before and after shows that nothing
//    kproxy did loaded a module whose name contains "sctp".
// 2. Then kproxy in normal mode, with kernel-SCTP servers and clients (kproxy-vm-sctp), serves
//    the same kind of Service through -p sctp rules; the modules that run loaded are printed
//    (docs/sctp-userspace.md reports both lists).
//
// The tests run in this order in one boot: the first must see a kernel without sctp.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "cluster.h"
#include "vm_guest.h"

namespace kproxy::testing {
namespace {

using namespace std::chrono_literals;

constexpr int kTimeoutMs = 8000;  // TCG emulation: generous, bounded

std::set<std::string> modules() {
  std::ifstream in("/proc/modules");
  std::set<std::string> out;
  for (std::string line; std::getline(in, line);) out.insert(line.substr(0, line.find(' ')));
  return out;
}

std::string joined(const std::set<std::string>& s) {
  std::string out;
  for (const auto& m : s) out += (out.empty() ? "" : " ") + m;
  return out.empty() ? "(none)" : out;
}

std::set<std::string> added(const std::set<std::string>& before, const std::set<std::string>& after) {
  std::set<std::string> out;
  std::set_difference(after.begin(), after.end(), before.begin(), before.end(), std::inserter(out, out.end()));
  return out;
}

// A Node, and an SCTP Service (cluster IP 10.96.0.10:80, NodePort 30082) whose two endpoints
// are the given pods' `target_port`.
std::string write_manifests(const std::string& dir, const TestCluster& c, const Pod& a, const Pod& b,
                            int target_port) {
  ::mkdir(dir.c_str(), 0755);
  std::ofstream node(dir + "/node.yaml");
  node << "apiVersion: v1\nkind: Node\nmetadata: {name: node1}\nspec:\n  podCIDRs: [\"" << c.pod_cidr(1)
       << "\"]\nstatus:\n  addresses:\n  - {type: InternalIP, address: " << c.node_ip(1) << "}\n";
  std::ofstream svc(dir + "/svc.yaml");
  svc << "apiVersion: v1\nkind: Service\nmetadata: {name: diameter, namespace: core}\nspec:\n"
         "  type: NodePort\n  clusterIP: 10.96.0.10\n  clusterIPs: [10.96.0.10]\n  ipFamilies: [IPv4]\n"
         "  ports:\n  - {name: d, protocol: SCTP, port: 80, targetPort: "
      << target_port
      << ", nodePort: 30082}\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
         "metadata:\n  name: diameter-x1\n  namespace: core\n  labels: {kubernetes.io/service-name: diameter}\n"
         "addressType: IPv4\nports:\n- {name: d, protocol: SCTP, port: "
      << target_port << "}\nendpoints:\n- addresses: [" << a.ip
      << "]\n  conditions: {ready: true}\n  nodeName: node1\n- addresses: [" << b.ip
      << "]\n  conditions: {ready: true}\n  nodeName: node2\n";
  return dir;
}

class UserspaceSctpVmTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!in_vm_guest() || !can_create_netns()) return;
    at_boot_ = modules();
    cluster_ = std::make_unique<TestCluster>("usctp");
    if (!cluster_->ok()) return;
    a_ = &cluster_->add_pod(1, "a");
    c_ = &cluster_->add_pod(2, "c");
    b_ = &cluster_->add_pod(1, "b");  // the client pod
    ready_ = cluster_->ok();
  }
  static void TearDownTestSuite() { cluster_.reset(); }

  void SetUp() override {
    if (!in_vm_guest()) GTEST_SKIP() << "runs inside the vm tier's guest (test/vm/run); label vm-guest";
    if (!can_create_netns()) GTEST_SKIP() << "needs root and iproute2";
    ASSERT_TRUE(ready_) << "the cluster could not be set up" << (cluster_ ? ": " + cluster_->error() : "");
  }

  static BackgroundProcess& start_kproxy(const std::string& manifests, bool userspace) {
    std::vector<std::string> argv = {KPROXY_BINARY,          "--manifests=" + manifests, "--hostname-override=node1",
                                     "--cluster-cidr=10.244.0.0/16", "--v=2"};
    if (userspace) argv.push_back("--sctp-userspace-mode");
    return cluster_->start(cluster_->node_ns(1), argv);
  }

  static bool synced(BackgroundProcess& kproxy) {
    for (const auto deadline = std::chrono::steady_clock::now() + 60s; std::chrono::steady_clock::now() < deadline;
         std::this_thread::sleep_for(100ms)) {
      if (kproxy.stderr_text().find("iptables full sync of IPv4") != std::string::npos) return true;
      if (!kproxy.running()) return false;
    }
    return false;
  }

  static inline std::unique_ptr<TestCluster> cluster_;
  static inline Pod* a_ = nullptr;
  static inline Pod* b_ = nullptr;
  static inline Pod* c_ = nullptr;
  static inline bool ready_ = false;
  static inline std::set<std::string> at_boot_;
};

std::set<std::string> servers(const RequestResult& r) {
  std::set<std::string> out;
  for (const auto& line : r.lines) out.insert(line.substr(0, line.find(' ')));
  return out;
}

TEST_F(UserspaceSctpVmTest, UserspaceModeLoadsNoSctpModule) {
  ASSERT_FALSE(sctp_module_loaded()) << "sctp is loaded before the test: " << joined(modules());
  const auto before = modules();
  // Not start_peer(): its rule that keeps a pod's usrsctp stacks apart names SCTP (-m sctp)
  // and would load xt_sctp itself. Each of these pods runs one stack, so none is needed.
  for (Pod* p : {a_, c_}) {
    BackgroundProcess& server = cluster_->start(p->ns, {testpeer_binary(), "serve", "--name", p->name, "--sctp", "8080"});
    ASSERT_TRUE(server.wait_for_line("ready", 30s)) << server.describe();
  }
  BackgroundProcess& kproxy = start_kproxy(write_manifests("/run/kproxy-usctp-manifests", *cluster_, *a_, *c_, 8080), true);
  ASSERT_TRUE(synced(kproxy)) << kproxy.describe();

  std::set<std::string> seen;
  RequestResult r;
  for (int round = 0; round < 5 && seen.size() < 2; ++round) {
    r = TestCluster::request(b_->ns, Proto::kSctp, "10.96.0.10:80", kTimeoutMs, 6);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    for (const auto& s : servers(r)) seen.insert(s);
  }
  EXPECT_EQ(seen, (std::set<std::string>{"a", "c"})) << r.err;
  RequestResult echo = TestCluster::request(b_->ns, Proto::kSctp, "10.96.0.10:80", kTimeoutMs, 2, {"--echo-check", "1"});
  EXPECT_EQ(echo.exit_code, 0) << echo.err;
  RequestResult node_port =
      TestCluster::request(cluster_->client_ns(), Proto::kSctp, cluster_->node_ip(1) + ":30082", kTimeoutMs, 4);
  EXPECT_EQ(node_port.exit_code, 0) << node_port.err;

  for (const char* table : {"filter", "nat"}) {
    const std::string rules = TestCluster::exec(cluster_->node_ns(1), {"iptables-save", "-t", table}).out;
    EXPECT_EQ(rules.find("sctp"), std::string::npos) << rules;
  }
  EXPECT_EQ(kproxy.stop(), 0) << kproxy.describe();

  const auto after = modules();
  const auto loaded = added(before, after);
  std::printf("userspace mode: modules loaded by the run: %s\n", joined(loaded).c_str());
  for (const auto& m : after) EXPECT_EQ(m.find("sctp"), std::string::npos) << "module " << m << " is loaded";
  EXPECT_FALSE(sctp_module_loaded());
}

TEST_F(UserspaceSctpVmTest, NormalModeWithKernelSctpLoadsTheSctpModules) {
  const auto before = modules();
  for (Pod* p : {a_, c_}) {
    BackgroundProcess& server = cluster_->start(p->ns, {KPROXY_VM_SCTP, "serve", "--name", p->name, "--port", "8081"});
    ASSERT_TRUE(server.wait_for_line("ready", 30s)) << server.describe();
  }
  BackgroundProcess& kproxy = start_kproxy(write_manifests("/run/kproxy-ksctp-manifests", *cluster_, *a_, *c_, 8081), false);
  ASSERT_TRUE(synced(kproxy)) << kproxy.describe();
  EXPECT_NE(TestCluster::exec(cluster_->node_ns(1), {"iptables-save", "-t", "nat"}).out.find("-p sctp"), std::string::npos);
  std::set<std::string> seen;
  RunResult r;
  for (int round = 0; round < 5 && seen.size() < 2; ++round) {
    r = TestCluster::exec(b_->ns, {KPROXY_VM_SCTP, "request", "--to", "10.96.0.10:80", "--count", "1", "--timeout-ms",
                                   std::to_string(kTimeoutMs)});
    EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) seen.insert(line.substr(0, line.find(' ')));
  }
  EXPECT_FALSE(seen.empty()) << r.err << r.out;
  EXPECT_EQ(kproxy.stop(), 0) << kproxy.describe();
  const auto loaded = added(before, modules());
  std::printf("normal mode with kernel SCTP: modules loaded by the run: %s\n", joined(loaded).c_str());
  std::printf("modules loaded since boot: %s\n", joined(added(at_boot_, modules())).c_str());
  EXPECT_TRUE(sctp_module_loaded());
}

}  // namespace
}  // namespace kproxy::testing
