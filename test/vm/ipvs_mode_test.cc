// Runs inside the vm tier's guest (test/vm/run; label vm-guest): kproxy --proxy-mode=ipvs on
// node 1 of the namespace cluster, from manifests, on Debian's kernel where ip_vs is a module.
// TCP, UDP and SCTP NodePort Services with endpoints on both nodes are reached through their
// cluster IPs from a pod and through their NodePorts from outside the cluster (which needs the
// IPVS layout's masquerade for the endpoint on node 2); IPVS, kube-ipvs0, the sets and the
// rules read as kube-proxy's IPVS mode writes them; kernel-SCTP associations (plain SCTP
// sockets) go through an SCTP Service too; dual-stack Services answer on both families (an
// IpvsMode per family); then --cleanup leaves none of them, in either family.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <set>
#include <sstream>
#include <utility>
#include <vector>
#include <string>
#include <thread>

#include "cluster.h"
#include "vm_guest.h"

namespace kproxy::testing {
namespace {

using namespace std::chrono_literals;

constexpr int kTimeoutMs = 8000;  // TCG emulation: generous, bounded
constexpr int kPodPort = 8080;
constexpr int kKernelSctpPort = 3868;  // kproxy-vm-sctp: kernel SCTP sockets

std::string service(const std::string& name, const std::string& proto, const std::string& ip, int node_port,
                    const Pod& a, const Pod& c, int pod_port = kPodPort, const std::string& extra_spec = "",
                    const std::string& status = "") {
  return "apiVersion: v1\nkind: Service\nmetadata: {name: " + name + ", namespace: ns}\n" + status +
         "spec:\n  type: " + (status.empty() ? "NodePort" : "LoadBalancer") + "\n" + extra_spec +
         "  clusterIP: " + ip + "\n  clusterIPs: [" + ip + "]\n  ipFamilies: [IPv4]\n  ports:\n  - {name: p, protocol: " +
         proto + ", port: 80, targetPort: " + std::to_string(pod_port) + ", nodePort: " + std::to_string(node_port) +
         "}\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: " + name +
         "-x\n  namespace: ns\n  labels: {kubernetes.io/service-name: " + name + "}\naddressType: IPv4\nports:\n"
         "- {name: p, protocol: " + proto + ", port: " + std::to_string(pod_port) + "}\nendpoints:\n- addresses: [" +
         a.ip + "]\n  conditions: {ready: true}\n  nodeName: node1\n- addresses: [" + c.ip +
         "]\n  conditions: {ready: true}\n  nodeName: node2\n---\n";
}

// A dual-stack NodePort Service (issue 10): an IPv4 and an IPv6 cluster IP, one
// EndpointSlice per family, endpoints a (node 1) and c (node 2) on both.
std::string dual_stack_service(const std::string& name, const std::string& proto, const std::string& ip4,
                               const std::string& ip6, int node_port, const Pod& a, const Pod& c) {
  std::string out = "apiVersion: v1\nkind: Service\nmetadata: {name: " + name + ", namespace: ns}\n"
                    "spec:\n  type: NodePort\n  clusterIP: " + ip4 + "\n  clusterIPs: [" + ip4 + ", \"" + ip6 +
                    "\"]\n  ipFamilies: [IPv4, IPv6]\n  ipFamilyPolicy: RequireDualStack\n  ports:\n"
                    "  - {name: p, protocol: " + proto + ", port: 80, targetPort: " + std::to_string(kPodPort) +
                    ", nodePort: " + std::to_string(node_port) + "}\n---\n";
  for (const bool v6 : {false, true}) {
    out += "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: " + name + (v6 ? "-v6" : "-v4") +
           "\n  namespace: ns\n  labels: {kubernetes.io/service-name: " + name + "}\naddressType: " +
           (v6 ? "IPv6" : "IPv4") + "\nports:\n- {name: p, protocol: " + proto + ", port: " +
           std::to_string(kPodPort) + "}\nendpoints:\n- addresses: [\"" + (v6 ? a.ip6 : a.ip) +
           "\"]\n  conditions: {ready: true}\n  nodeName: node1\n- addresses: [\"" + (v6 ? c.ip6 : c.ip) +
           "\"]\n  conditions: {ready: true}\n  nodeName: node2\n---\n";
  }
  return out;
}

class IpvsModeVmTest : public ::testing::TestWithParam<Proto> {
 protected:
  static void SetUpTestSuite() {
    if (!in_vm_guest() || !can_create_netns()) return;
    cluster_ = std::make_unique<TestCluster>("ipvsm");
    if (!cluster_->ok()) return;
    a_ = &cluster_->add_pod(1, "a");
    c_ = &cluster_->add_pod(2, "c");
    b_ = &cluster_->add_pod(1, "b");  // the client pod
    // Kernel-SCTP servers get pods of their own: a usrsctp stack in the same namespace would
    // answer their INITs with ABORT (it sees every SCTP packet there).
    d_ = &cluster_->add_pod(1, "d");
    e_ = &cluster_->add_pod(2, "e");
    for (Pod* p : {a_, c_}) {
      if (!cluster_->ok() || !cluster_->start_peer(*p, {{kPodPort}, {kPodPort}, {kPodPort}})) return;
    }
    const std::string dir = "/run/kproxy-ipvs-manifests";
    ::mkdir(dir.c_str(), 0755);
    std::ofstream(dir + "/node.yaml") << "apiVersion: v1\nkind: Node\nmetadata: {name: node1}\nspec:\n  podCIDRs: [\""
                                      << cluster_->pod_cidr(1) << "\", \"" << cluster_->pod_cidr6(1)
                                      << "\"]\nstatus:\n  addresses:\n  - {type: InternalIP, "
                                      << "address: " << cluster_->node_ip(1) << "}\n  - {type: InternalIP, address: \""
                                      << cluster_->node_ip6(1) << "\"}\n";
    std::ofstream(dir + "/svc.yaml") << service("web", "TCP", "10.96.0.10", 30080, *a_, *c_)
                                     << service("dns", "UDP", "10.96.0.11", 30081, *a_, *c_)
                                     << service("amf", "SCTP", "10.96.0.12", 30082, *a_, *c_)
                                     << service("diameter", "SCTP", "10.96.0.13", 30083, *d_, *e_, kKernelSctpPort)
                                     // An external IP, and two load balancers whose source ranges let
                                     // the outside client in, or not.
                                     << service("ext", "TCP", "10.96.0.14", 30084, *a_, *c_, kPodPort,
                                                "  externalIPs: [203.0.113.14]\n")
                                     << service("lb-open", "TCP", "10.96.0.15", 30085, *a_, *c_, kPodPort,
                                                "  loadBalancerSourceRanges: [192.168.77.0/24]\n",
                                                "status: {loadBalancer: {ingress: [{ip: 203.0.113.15}]}}\n")
                                     << service("lb-shut", "TCP", "10.96.0.16", 30086, *a_, *c_, kPodPort,
                                                "  loadBalancerSourceRanges: [198.51.100.0/24]\n",
                                                "status: {loadBalancer: {ingress: [{ip: 203.0.113.16}]}}\n")
                                     // Dual-stack, one per protocol (the IPv6 side of the node).
                                     << dual_stack_service("web-ds", "TCP", "10.96.0.20", "fd00:10:96::20", 30090, *a_, *c_)
                                     << dual_stack_service("dns-ds", "UDP", "10.96.0.21", "fd00:10:96::21", 30091, *a_, *c_)
                                     << dual_stack_service("amf-ds", "SCTP", "10.96.0.22", "fd00:10:96::22", 30092, *a_, *c_);
    kproxy_ = &cluster_->start(cluster_->node_ns(1),
                               {KPROXY_BINARY, "--proxy-mode=ipvs", "--manifests=" + dir, "--hostname-override=node1",
                                "--cluster-cidr=10.244.0.0/16,fd00:10:244::/48", "--v=2"});
    for (const auto deadline = std::chrono::steady_clock::now() + 60s; std::chrono::steady_clock::now() < deadline;
         std::this_thread::sleep_for(100ms)) {
      if (kproxy_->stderr_text().find("ipvs full sync of IPv4") != std::string::npos) {
        ready_ = true;
        return;
      }
      if (!kproxy_->running()) return;
    }
  }
  static void TearDownTestSuite() { cluster_.reset(); }

  void SetUp() override {
    if (!in_vm_guest()) GTEST_SKIP() << "runs inside the vm tier's guest (test/vm/run); label vm-guest";
    if (!can_create_netns()) GTEST_SKIP() << "needs root and iproute2";
    ASSERT_TRUE(ready_) << "kproxy did not sync" << (cluster_ ? ": " + cluster_->error() : "")
                        << (kproxy_ != nullptr ? "\n" + kproxy_->describe() : "");
  }

  int index() const { return GetParam() == Proto::kTcp ? 0 : GetParam() == Proto::kUdp ? 1 : 2; }
  std::string cluster_ip() const { return "10.96.0.1" + std::to_string(index()) + ":80"; }
  std::string node_port() const { return cluster_->node_ip(1) + ":3008" + std::to_string(index()); }

  // The pods that answer `count` new connections (one client process each) to `to` from `ns`.
  std::set<std::string> answering(const std::string& ns, const std::string& to, int count) const {
    std::set<std::string> out;
    for (int i = 0; i < count && out.size() < 2; ++i) {
      const RequestResult r = TestCluster::request(ns, GetParam(), to, kTimeoutMs);
      EXPECT_EQ(r.exit_code, 0) << to << " (request " << i << "): " << r.err
                                << TestCluster::exec(cluster_->node_ns(1), {"ipvsadm", "-Lnc"}).out
                                << TestCluster::exec(cluster_->node_ns(1), {"iptables-save", "-c"}).out
                                << TestCluster::exec(cluster_->node_ns(1), {"conntrack", "-L"}).out;
      for (const auto& line : r.lines) out.insert(line.substr(0, line.find(' ')));
    }
    return out;
  }

  static inline std::unique_ptr<TestCluster> cluster_;
  static inline BackgroundProcess* kproxy_ = nullptr;
  static inline Pod* a_ = nullptr;
  static inline Pod* b_ = nullptr;
  static inline Pod* c_ = nullptr;
  static inline Pod* d_ = nullptr;
  static inline Pod* e_ = nullptr;
  static inline bool ready_ = false;
};

TEST_P(IpvsModeVmTest, ClusterIpFromAPodAndNodePortFromOutsideReachBothNodesEndpoints) {
  EXPECT_EQ(answering(b_->ns, cluster_ip(), 8), (std::set<std::string>{"a", "c"})) << kproxy_->stderr_text();
  EXPECT_EQ(answering(cluster_->client_ns(), node_port(), 8), (std::set<std::string>{"a", "c"}))
      << TestCluster::exec(cluster_->node_ns(1), {"ipvsadm", "-Ln"}).out
      << TestCluster::exec(cluster_->node_ns(1), {"iptables-save"}).out;
}

TEST_P(IpvsModeVmTest, TheKernelHoldsKubeProxysIpvsLayout) {
  if (GetParam() != Proto::kTcp) GTEST_SKIP() << "one look is enough";
  const std::string node1 = cluster_->node_ns(1);
  const std::string ipvs = TestCluster::exec(node1, {"ipvsadm", "-Ln"}).out;
  for (const char* vs : {"10.96.0.10:80 rr", "10.96.0.11:80 rr", "10.96.0.12:80 rr"}) {
    EXPECT_NE(ipvs.find(vs), std::string::npos) << vs << "\n" << ipvs;
  }
  const std::string addrs = TestCluster::exec(node1, {"ip", "-o", "addr", "show", "dev", "kube-ipvs0"}).out;
  for (const char* a : {"10.96.0.10/32", "10.96.0.11/32", "10.96.0.12/32"}) {
    EXPECT_NE(addrs.find(a), std::string::npos) << a << "\n" << addrs;
  }
  const std::string sets = TestCluster::exec(node1, {"ipset", "save"}).out;
  for (const char* e : {"add KUBE-CLUSTER-IP 10.96.0.10,tcp:80", "add KUBE-NODE-PORT-TCP 30080",
                        "add KUBE-NODE-PORT-UDP 30081", "add KUBE-IPVS-IPS 10.96.0.12",
                        "add KUBE-LOOP-BACK " /* a's entries */}) {
    EXPECT_NE(sets.find(e), std::string::npos) << e << "\n" << sets;
  }
  const std::string rules = TestCluster::exec(node1, {"iptables-save"}).out;
  for (const char* r : {"-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
                        "-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT",
                        "--match-set KUBE-NODE-PORT-TCP dst -j KUBE-MARK-MASQ",
                        "-A INPUT -m comment --comment \"kubernetes ipvs access filter\" -j KUBE-IPVS-FILTER"}) {
    EXPECT_NE(rules.find(r), std::string::npos) << r << "\n" << rules;
  }
  // No iptables-mode rule: IPVS does the DNAT.
  EXPECT_EQ(rules.find("KUBE-SVC-"), std::string::npos) << rules;
}

// From outside: the external IP answers from both nodes' endpoints; a load balancer whose
// source ranges hold the client answers, one whose ranges do not drops the client
// (KUBE-PROXY-FIREWALL, KUBE-LOAD-BALANCER-FW, KUBE-LOAD-BALANCER-SOURCE-CIDR).
TEST_P(IpvsModeVmTest, ExternalIpsAndLoadBalancerSourceRangesFromOutside) {
  if (GetParam() != Proto::kTcp) GTEST_SKIP() << "TCP only";
  EXPECT_EQ(answering(cluster_->client_ns(), "203.0.113.14:80", 8), (std::set<std::string>{"a", "c"}));
  EXPECT_EQ(answering(cluster_->client_ns(), "203.0.113.15:80", 8), (std::set<std::string>{"a", "c"}));
  const RequestResult shut = TestCluster::request(cluster_->client_ns(), Proto::kTcp, "203.0.113.16:80", 2000);
  EXPECT_NE(shut.exit_code, 0) << "a client outside the source ranges was answered";
  EXPECT_TRUE(shut.lines.empty());
}

// Dual-stack (issue 10): kproxy serves both families, an IpvsMode per family sharing one
// IPVS and one kube-ipvs0. A dual-stack Service answers on its IPv6 cluster IP from a pod and
// on the node's IPv6 address (NodePort) from outside, from both nodes' endpoints, as on its
// IPv4 cluster IP; IPVS, kube-ipvs0, the KUBE-6- sets and ip6tables hold the IPv6 layout, and
// iptables none of it. (Before the kernel-SCTP test: SCTP here is usrsctp.)
TEST_P(IpvsModeVmTest, DualStackServicesAnswerOnBothFamilies) {
  const std::string n = std::to_string(index());
  const std::string v6_cluster = "[fd00:10:96::2" + n + "]:80";
  const std::string v6_node_port = "[" + cluster_->node_ip6(1) + "]:3009" + n;
  EXPECT_EQ(answering(b_->ns, "10.96.0.2" + n + ":80", 8), (std::set<std::string>{"a", "c"}));
  EXPECT_EQ(answering(b_->ns, v6_cluster, 8), (std::set<std::string>{"a", "c"})) << kproxy_->stderr_text();
  EXPECT_EQ(answering(cluster_->client_ns(), v6_node_port, 8), (std::set<std::string>{"a", "c"}))
      << TestCluster::exec(cluster_->node_ns(1), {"ipvsadm", "-Ln"}).out
      << TestCluster::exec(cluster_->node_ns(1), {"ip6tables-save"}).out;
  if (GetParam() != Proto::kTcp) return;
  const std::string node1 = cluster_->node_ns(1);
  const std::string ipvs = TestCluster::exec(node1, {"ipvsadm", "-Ln"}).out;
  for (const std::string& vs : std::vector<std::string>{"[fd00:10:96::20]:80 rr", "[" + cluster_->node_ip6(1) + "]:30090 rr",
                                                         "10.96.0.20:80 rr"}) {
    EXPECT_NE(ipvs.find(vs), std::string::npos) << vs << "\n" << ipvs;
  }
  const std::string addrs = TestCluster::exec(node1, {"ip", "-o", "addr", "show", "dev", "kube-ipvs0"}).out;
  for (const char* a : {"fd00:10:96::20/128", "10.96.0.20/32", "10.96.0.10/32"}) {
    EXPECT_NE(addrs.find(a), std::string::npos) << a << "\n" << addrs;
  }
  const std::string sets = TestCluster::exec(node1, {"ipset", "save"}).out;
  for (const char* e : {"create KUBE-6-CLUSTER-IP hash:ip,port family inet6", "add KUBE-6-CLUSTER-IP fd00:10:96::20,tcp:80",
                        "add KUBE-6-NODE-PORT-TCP 30090", "add KUBE-6-IPVS-IPS fd00:10:96::20",
                        "add KUBE-CLUSTER-IP 10.96.0.20,tcp:80"}) {
    EXPECT_NE(sets.find(e), std::string::npos) << e << "\n" << sets;
  }
  EXPECT_EQ(sets.find("add KUBE-CLUSTER-IP fd00"), std::string::npos) << sets;
  const std::string rules6 = TestCluster::exec(node1, {"ip6tables-save"}).out;
  for (const char* r : {"-A KUBE-SERVICES -s ::1/128 -j RETURN", "--match-set KUBE-6-NODE-PORT-TCP dst -j KUBE-MARK-MASQ",
                        "--match-set KUBE-6-IPVS-IPS dst -j REJECT",
                        "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"}) {
    EXPECT_NE(rules6.find(r), std::string::npos) << r << "\n" << rules6;
  }
  const std::string rules4 = TestCluster::exec(node1, {"iptables-save"}).out;
  EXPECT_EQ(rules4.find("KUBE-6-"), std::string::npos) << rules4;
}

// Kernel SCTP through IPVS: kproxy-vm-sctp servers (plain SCTP sockets, which load the sctp
// module; after the usrsctp tests, which a loaded module would disturb) behind an SCTP
// Service, from a pod and from outside.
TEST_P(IpvsModeVmTest, KernelSctpAssociationsReachBothNodesEndpoints) {
  if (GetParam() != Proto::kSctp) GTEST_SKIP() << "SCTP only";
  for (Pod* p : {d_, e_}) {
    BackgroundProcess& server =
        cluster_->start(p->ns, {KPROXY_VM_SCTP, "serve", "--name", p->name, "--port", std::to_string(kKernelSctpPort)});
    ASSERT_TRUE(server.wait_for_line("ready", 30s)) << server.describe();
  }
  for (const auto& [ns, to] : std::vector<std::pair<std::string, std::string>>{
           {b_->ns, "10.96.0.13:80"}, {cluster_->client_ns(), cluster_->node_ip(1) + ":30083"}}) {
    SCOPED_TRACE(to);
    std::set<std::string> seen;
    for (int i = 0; i < 8 && seen.size() < 2; ++i) {
      const RunResult r =
          TestCluster::exec(ns, {KPROXY_VM_SCTP, "request", "--to", to, "--count", "2", "--timeout-ms", "8000"});
      EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
      std::istringstream lines(r.out);
      for (std::string line; std::getline(lines, line);) {
        if (!line.empty()) seen.insert(line.substr(0, line.find(' ')));
      }
    }
    EXPECT_EQ(seen, (std::set<std::string>{"d", "e"}));
  }
}

// Last (tests run in the order they are defined): the daemon stops, --cleanup
// removes IPVS services, kube-ipvs0, the layout's chains and its sets.
TEST_P(IpvsModeVmTest, ZCleanupLeavesNothing) {
  if (GetParam() != Proto::kTcp) GTEST_SKIP() << "once";
  EXPECT_EQ(kproxy_->stop(), 0) << kproxy_->describe();
  const std::string node1 = cluster_->node_ns(1);
  const RunResult cleanup = TestCluster::exec(node1, {KPROXY_BINARY, "--cleanup", "--v=2"});
  EXPECT_EQ(cleanup.exit_code, 0) << cleanup.err;
  const std::string ipvs = TestCluster::exec(node1, {"ipvsadm", "-Ln"}).out;
  EXPECT_EQ(ipvs.find("10.96.0."), std::string::npos) << ipvs;
  EXPECT_NE(TestCluster::exec(node1, {"ip", "link", "show", "kube-ipvs0"}).exit_code, 0);
  const std::string sets = TestCluster::exec(node1, {"ipset", "list", "-n"}).out;
  EXPECT_EQ(sets.find("KUBE-"), std::string::npos) << sets;
  for (const char* save : {"iptables-save", "ip6tables-save"}) {
    const std::string rules = TestCluster::exec(node1, {save}).out;
    EXPECT_EQ(rules.find("KUBE-IPVS-FILTER"), std::string::npos) << save << "\n" << rules;
    EXPECT_EQ(rules.find("KUBE-SERVICES"), std::string::npos) << save << "\n" << rules;
  }
  EXPECT_EQ(ipvs.find("fd00:10:96::"), std::string::npos) << ipvs;
}

INSTANTIATE_TEST_SUITE_P(Protocols, IpvsModeVmTest, ::testing::Values(Proto::kTcp, Proto::kUdp, Proto::kSctp),
                         [](const auto& info) { return std::string(proto_name(info.param)); });

}  // namespace
}  // namespace kproxy::testing
