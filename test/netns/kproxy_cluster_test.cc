// kproxy itself in the two-node namespace cluster (test/support/cluster.h): the daemon runs
// in node 1's namespace, watches the in-process fake API server (started inside that
// namespace, so kproxy reaches it on 127.0.0.1) and programs iptables there; real TCP, UDP
// and SCTP (usrsctp) traffic from kproxy-testpeer proves the Service semantics.
//
// One cluster, one fake API server and one kproxy per test suite (SetUpTestSuite, about 1 s;
// ctest runs every test in a process of its own, so there it is once per test): every Service
// and EndpointSlice is created before kproxy starts, so its first sync programs all of them,
// and tests that change objects (endpoint churn, deletions, objects added at run time) use
// Services of their own. Tests wait by polling with traffic (deadlines, never sleeps) and
// never assert timing. The main suite runs kproxy on iptables-nft (its choice on a node
// without kubelet's chains); a second suite repeats a smoke test on iptables-legacy.
//
// The cluster: node 1 (192.168.77.11, pods 10.244.1.0/24) runs kproxy; pod "a1" on node 1 and
// pod "b2" on node 2 serve port 8080 over TCP, UDP and SCTP; pod "c1" on node 1 is a client;
// the outside client (192.168.77.100) routes 203.0.113.0/24 to node 1 and reaches node
// ports on 192.168.77.11. Service cluster IPs are in 10.96.0.0/16: pods and node 1 route
// them (by default) through node 1's netfilter.
//
// SCTP and REJECT: usrsctp reads no ICMP (raw sockets only), so an ICMP port unreachable
// from a REJECT rule is a timeout for an SCTP client, not "refused": the no-endpoints test
// checks REJECT for TCP and UDP only.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cluster.h"
#include "fakeapi/fake_api_server.h"

namespace kproxy::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kTag = "kproxy";
constexpr int kPodPort = 8080;
constexpr int kServicePort = 80;
constexpr const Proto kAllProtos[] = {Proto::kTcp, Proto::kUdp, Proto::kSctp};
constexpr auto kConverge = 10s;  // how long a test waits for kproxy to program a change

std::string upper(Proto p) {
  switch (p) {
    case Proto::kTcp:
      return "TCP";
    case Proto::kUdp:
      return "UDP";
    case Proto::kSctp:
      return "SCTP";
  }
  return "?";
}

int proto_index(Proto p) { return p == Proto::kTcp ? 0 : p == Proto::kUdp ? 1 : 2; }

std::string joined(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

// "<server> <source ip>:<port>" -> server, source ip.
std::string server_of(const std::string& line) { return line.substr(0, line.find(' ')); }
std::string source_of(const std::string& line) {
  const auto space = line.find(' ');
  const auto colon = line.rfind(':');
  if (space == std::string::npos || colon == std::string::npos || colon < space) return "";
  return line.substr(space + 1, colon - space - 1);
}
std::set<std::string> servers(const RequestResult& r) {
  std::set<std::string> s;
  for (const auto& l : r.lines) s.insert(server_of(l));
  return s;
}
std::set<std::string> sources(const RequestResult& r) {
  std::set<std::string> s;
  for (const auto& l : r.lines) s.insert(source_of(l));
  return s;
}

std::string describe(const RequestResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\nreplies:\n" + joined(r.lines) + "stderr: " + r.err;
}

// ---- API objects, written as the API server returns them ---------------------------------

struct Ep {
  std::string ip;
  int node = 1;
  bool ready = true;
  bool serving = true;
  bool terminating = false;
};

struct SvcSpec {
  std::string name{};
  std::string cluster_ip{};  // "None" for headless
  std::string type = "ClusterIP";
  int node_port_base = 0;  // NodePort / LoadBalancer: nodePort = base + protocol index
  std::string external_traffic_policy = "Cluster";
  std::string internal_traffic_policy = "Cluster";
  int health_check_node_port = 0;
  std::vector<std::string> external_ips{};
  std::vector<std::string> lb_ingress_ips{};
  std::vector<std::string> source_ranges{};
  bool client_ip_affinity = false;
  std::map<std::string, std::string> labels{};
};

json service_json(const SvcSpec& s) {
  json ports = json::array();
  for (Proto p : kAllProtos) {
    json port = {{"name", proto_name(p)}, {"protocol", upper(p)}, {"port", kServicePort}, {"targetPort", kPodPort}};
    if (s.type == "NodePort" || s.type == "LoadBalancer") port["nodePort"] = s.node_port_base + proto_index(p);
    ports.push_back(port);
  }
  json labels = {{"app", s.name}};
  for (const auto& [k, v] : s.labels) labels[k] = v;
  json spec = {
      {"type", s.type},
      {"clusterIP", s.cluster_ip},
      {"clusterIPs", {s.cluster_ip}},
      {"ipFamilies", {"IPv4"}},
      {"ipFamilyPolicy", "SingleStack"},
      {"internalTrafficPolicy", s.internal_traffic_policy},
      {"ports", ports},
      {"selector", {{"app", s.name}}},
      {"sessionAffinity", s.client_ip_affinity ? "ClientIP" : "None"},
  };
  if (s.client_ip_affinity) spec["sessionAffinityConfig"] = {{"clientIP", {{"timeoutSeconds", 10800}}}};
  if (s.type == "NodePort" || s.type == "LoadBalancer") spec["externalTrafficPolicy"] = s.external_traffic_policy;
  if (s.type == "LoadBalancer") spec["allocateLoadBalancerNodePorts"] = true;
  if (s.health_check_node_port != 0) spec["healthCheckNodePort"] = s.health_check_node_port;
  if (!s.external_ips.empty()) spec["externalIPs"] = s.external_ips;
  if (!s.source_ranges.empty()) spec["loadBalancerSourceRanges"] = s.source_ranges;
  json ingress = json::array();
  for (const auto& ip : s.lb_ingress_ips) ingress.push_back({{"ip", ip}, {"ipMode", "VIP"}});
  json status = {{"loadBalancer", json::object()}};
  if (!ingress.empty()) status["loadBalancer"]["ingress"] = ingress;
  return {
      {"apiVersion", "v1"},
      {"kind", "Service"},
      {"metadata", {{"name", s.name}, {"namespace", "default"}, {"labels", labels}}},
      {"spec", spec},
      {"status", status},
  };
}

json slice_json(const std::string& service, const std::vector<Ep>& endpoints, const std::string& suffix = "x7k2p") {
  json eps = json::array();
  for (const auto& e : endpoints) {
    eps.push_back({
        {"addresses", {e.ip}},
        {"conditions", {{"ready", e.ready}, {"serving", e.serving}, {"terminating", e.terminating}}},
        {"nodeName", "node" + std::to_string(e.node)},
        {"targetRef",
         {{"kind", "Pod"}, {"namespace", "default"}, {"name", service + "-pod-" + std::to_string(eps.size())}}},
    });
  }
  json ports = json::array();
  for (Proto p : kAllProtos) ports.push_back({{"name", proto_name(p)}, {"protocol", upper(p)}, {"port", kPodPort}});
  return {
      {"apiVersion", "discovery.k8s.io/v1"},
      {"kind", "EndpointSlice"},
      {"metadata",
       {{"name", service + "-" + suffix},
        {"namespace", "default"},
        {"generateName", service + "-"},
        {"labels",
         {{"kubernetes.io/service-name", service},
          {"endpointslice.kubernetes.io/managed-by", "endpointslice-controller.k8s.io"}}}}},
      {"addressType", "IPv4"},
      {"endpoints", eps},
      {"ports", ports},
  };
}

json node_json() {
  return {
      {"apiVersion", "v1"},
      {"kind", "Node"},
      {"metadata",
       {{"name", "node1"}, {"labels", {{"kubernetes.io/hostname", "node1"}, {"kubernetes.io/os", "linux"}}}}},
      {"spec", {{"podCIDR", "10.244.1.0/24"}, {"podCIDRs", {"10.244.1.0/24"}}}},
      {"status",
       {{"addresses",
         {{{"type", "InternalIP"}, {"address", "192.168.77.11"}}, {{"type", "Hostname"}, {"address", "node1"}}}},
        {"conditions", {{{"type", "Ready"}, {"status", "True"}, {"reason", "KubeletReady"}}}}}},
  };
}

// ---- The Services of the suite ---------------------------------------------------------------

// Node ports: base + 0 (TCP), + 1 (UDP), + 2 (SCTP).
constexpr int kWebNodePorts = 30080;
constexpr int kLocalNodePorts = 30180;
constexpr int kLocalHealthPort = 30190;
constexpr int kRemoteNodePorts = 30280;
constexpr int kRemoteHealthPort = 30290;
constexpr int kLbAllowNodePorts = 30380;
constexpr int kLbDenyNodePorts = 30480;

constexpr const char* kWebIp = "10.96.0.10";
constexpr const char* kLocalIp = "10.96.0.11";
constexpr const char* kRemoteIp = "10.96.0.12";
constexpr const char* kExtIp = "10.96.0.13";
constexpr const char* kLbAllowIp = "10.96.0.14";
constexpr const char* kLbDenyIp = "10.96.0.15";
constexpr const char* kStickyIp = "10.96.0.16";
constexpr const char* kItpLocalIp = "10.96.0.17";
constexpr const char* kEmptyIp = "10.96.0.18";
constexpr const char* kTerminatingIp = "10.96.0.19";
constexpr const char* kChurnIp = "10.96.0.20";
constexpr const char* kOtherProxyIp = "10.96.0.21";
constexpr const char* kNeighbourIp = "10.96.0.22";
constexpr const char* kBadEndpointIp = "10.96.0.23";
constexpr const char* kLateIp = "10.96.0.24";
constexpr const char* kGoneIp = "10.96.0.26";

constexpr const char* kExternalIp = "203.0.113.10";
constexpr const char* kLbAllowIngress = "203.0.113.20";
constexpr const char* kLbDenyIngress = "203.0.113.21";
constexpr const char* kLocalIngress = "203.0.113.30";

// ---- The fixture -------------------------------------------------------------------------------

struct Suite {
  std::unique_ptr<TestCluster> cluster;
  std::unique_ptr<fakeapi::FakeApiServer> api;
  BackgroundProcess* kproxy = nullptr;
  Pod* a1 = nullptr;  // backend on node 1
  Pod* b2 = nullptr;  // backend on node 2
  Pod* c1 = nullptr;  // client pod on node 1
  std::string kubeconfig;
  std::string error;  // why the suite could not be set up
};

Suite* g_suite = nullptr;
// Which iptables kproxy is made to use: nft (its default on a node without kubelet's chains)
// or legacy (kubelet's KUBE-IPTABLES-HINT chain in legacy mangle, as iptables-wrappers detects).
bool g_legacy = false;

// iptables-save of node 1 in kproxy's flavour (optionally one table).
// One of namespace ns's IP counters (/proc/net/snmp): InReceives, FragCreates, ...
long ip_counter(const std::string& ns, const std::string& name) {
  std::istringstream in(TestCluster::exec(ns, {"cat", "/proc/net/snmp"}).out);
  std::vector<std::string> names;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Ip: ", 0) != 0) continue;
    std::istringstream fields(line.substr(4));
    std::vector<std::string> row{std::istream_iterator<std::string>(fields), std::istream_iterator<std::string>()};
    if (names.empty()) {
      names = row;
      continue;
    }
    for (std::size_t i = 0; i < names.size() && i < row.size(); ++i) {
      if (names[i] == name) return std::stol(row[i]);
    }
  }
  return -1;
}

std::string save_iptables(const std::string& node_ns, const std::string& table = "") {
  std::vector<std::string> argv = {g_legacy ? "iptables-legacy-save" : "iptables-nft-save"};
  if (!table.empty()) argv.insert(argv.end(), {"-t", table});
  return TestCluster::exec(node_ns, argv).out;
}

class KproxyClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!can_create_netns()) return;
    g_suite = new Suite;
    Suite& s = *g_suite;
    s.error = set_up(s);
  }

  static void TearDownTestSuite() {
    if (g_suite == nullptr) return;
    Suite& s = *g_suite;
    if (s.kproxy != nullptr) s.kproxy->stop();  // before the API server it watches
    if (s.api) s.api->stop();
    s.cluster.reset();
    if (!s.kubeconfig.empty()) ::unlink(s.kubeconfig.c_str());
    s.api.reset();
    delete g_suite;
    g_suite = nullptr;
  }

  static std::vector<std::string> kproxy_argv(const Suite& s) {
    return {KPROXY_BINARY, "--kubeconfig=" + s.kubeconfig, "--hostname-override=node1",
            "--cluster-cidr=10.244.0.0/16", "--healthz-bind-address=127.0.0.1:10256",
            "--metrics-bind-address=127.0.0.1:10249", "--iptables-min-sync-period=100ms", "--v=2"};
  }

  static std::string set_up(Suite& s) {
    s.cluster = std::make_unique<TestCluster>(kTag);
    if (!s.cluster->ok()) return s.cluster->error();
    TestCluster& c = *s.cluster;
    s.a1 = &c.add_pod(1, "a1");
    s.b2 = &c.add_pod(2, "b2");
    s.c1 = &c.add_pod(1, "c1");
    if (!c.ok()) return c.error();
    const PeerPorts serve{{kPodPort}, {kPodPort}, {kPodPort}};
    if (c.start_peer(*s.a1, serve) == nullptr || c.start_peer(*s.b2, serve) == nullptr) return "a peer did not start";

    // The fake API server listens inside node 1's namespace: kproxy, there, reaches it on
    // 127.0.0.1. Its threads and sockets stay there after this thread returns.
    s.api = std::make_unique<fakeapi::FakeApiServer>();
    {
      ScopedNetnsEntry in_node1(c.node_ns(1));
      if (!in_node1.ok()) return in_node1.error();
      if (Status st = s.api->start(); !st.ok()) return "fake API server: " + st.message();
    }
    s.kubeconfig = "/tmp/kpt-kproxy-" + std::to_string(getpid()) + ".kubeconfig";
    if (Status st = s.api->write_kubeconfig(s.kubeconfig, false); !st.ok()) return "kubeconfig: " + st.message();

    create_objects(s);
    if (g_legacy &&
        TestCluster::exec(c.node_ns(1), {"iptables-legacy", "-t", "mangle", "-N", "KUBE-IPTABLES-HINT"}).exit_code !=
            0) {
      return "could not create KUBE-IPTABLES-HINT in legacy mangle";
    }

    s.kproxy = &c.start(c.node_ns(1), kproxy_argv(s));
    // Ready when the first full sync is in the kernel: the plain ClusterIP Service answers.
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    for (;;) {
      RequestResult r = TestCluster::request(s.c1->ns, Proto::kTcp, std::string(kWebIp) + ":80", 500);
      if (r.exit_code == 0) break;
      if (!s.kproxy->running()) return "kproxy exited\n" + s.kproxy->describe();
      if (std::chrono::steady_clock::now() > deadline) {
        return "kproxy did not program " + std::string(kWebIp) + " within 20 s: " + describe(r) + "\nkproxy stderr:\n" +
               s.kproxy->stderr_text() + "\niptables-save:\n" + save_iptables(c.node_ns(1));
      }
    }
    return "";
  }

  static void create_objects(Suite& s) {
    fakeapi::FakeApiServer& api = *s.api;
    const std::string a = s.a1->ip, b = s.b2->ip;
    api.upsert("nodes", node_json());
    auto add = [&](const SvcSpec& spec, const std::optional<std::vector<Ep>>& endpoints) {
      api.upsert("services", service_json(spec));
      if (endpoints) api.upsert("endpointslices", slice_json(spec.name, *endpoints));
    };
    const std::vector<Ep> both = {{a, 1}, {b, 2}};

    SvcSpec web{.name = "web", .cluster_ip = kWebIp, .type = "NodePort", .node_port_base = kWebNodePorts};
    add(web, both);
    SvcSpec local{.name = "local", .cluster_ip = kLocalIp, .type = "LoadBalancer", .node_port_base = kLocalNodePorts};
    local.external_traffic_policy = "Local";
    local.health_check_node_port = kLocalHealthPort;
    local.lb_ingress_ips = {kLocalIngress};
    add(local, both);
    SvcSpec remote{
        .name = "remote", .cluster_ip = kRemoteIp, .type = "LoadBalancer", .node_port_base = kRemoteNodePorts};
    remote.external_traffic_policy = "Local";
    remote.health_check_node_port = kRemoteHealthPort;
    add(remote, std::vector<Ep>{{b, 2}});
    SvcSpec ext{.name = "ext", .cluster_ip = kExtIp};
    ext.external_ips = {kExternalIp};
    add(ext, both);
    SvcSpec lb_allow{
        .name = "lb-allow", .cluster_ip = kLbAllowIp, .type = "LoadBalancer", .node_port_base = kLbAllowNodePorts};
    lb_allow.lb_ingress_ips = {kLbAllowIngress};
    lb_allow.source_ranges = {"192.168.77.100/32"};
    add(lb_allow, both);
    SvcSpec lb_deny{
        .name = "lb-deny", .cluster_ip = kLbDenyIp, .type = "LoadBalancer", .node_port_base = kLbDenyNodePorts};
    lb_deny.lb_ingress_ips = {kLbDenyIngress};
    lb_deny.source_ranges = {"198.51.100.0/24"};
    add(lb_deny, both);
    SvcSpec sticky{.name = "sticky", .cluster_ip = kStickyIp};
    sticky.client_ip_affinity = true;
    add(sticky, both);
    SvcSpec itp{.name = "itp-local", .cluster_ip = kItpLocalIp};
    itp.internal_traffic_policy = "Local";
    add(itp, both);
    add(SvcSpec{.name = "empty", .cluster_ip = kEmptyIp}, std::nullopt);
    add(SvcSpec{.name = "terminating", .cluster_ip = kTerminatingIp},
        std::vector<Ep>{{a, 1, false, true, true}, {b, 2, false, true, true}});
    add(SvcSpec{.name = "churn", .cluster_ip = kChurnIp}, both);
    add(SvcSpec{.name = "gone", .cluster_ip = kGoneIp}, both);

    // Not kproxy's: another proxy's Service and a headless one.
    SvcSpec other{.name = "other-proxy", .cluster_ip = kOtherProxyIp};
    other.labels["service.kubernetes.io/service-proxy-name"] = "other-proxy";
    add(other, both);
    SvcSpec headless{.name = "headless", .cluster_ip = "None"};
    add(headless, both);

    // Malformed objects next to good ones.
    add(SvcSpec{.name = "bad-ip", .cluster_ip = "10.96.0.999"}, both);
    add(SvcSpec{.name = "neighbour", .cluster_ip = kNeighbourIp}, both);
    add(SvcSpec{.name = "bad-endpoint", .cluster_ip = kBadEndpointIp},
        std::vector<Ep>{{"10.244.2.999", 2}, {a, 1}, {"127.0.0.1", 1}});
    json bad_slice = slice_json("neighbour", {{b, 2}}, "broken");
    bad_slice["addressType"] = "IP";  // deprecated, refused: the slice is ignored
    api.upsert("endpointslices", bad_slice);
  }

  void SetUp() override {
    if (!can_create_netns()) GTEST_SKIP() << "needs root and iproute2 (netns tier)";
    ASSERT_NE(g_suite, nullptr);
    ASSERT_EQ(g_suite->error, "") << "suite setup failed";
  }

  void TearDown() override {
    if (!HasFailure() || g_suite == nullptr || !g_suite->cluster) return;
    std::string err = g_suite->kproxy != nullptr ? g_suite->kproxy->stderr_text() : "(not started)";
    if (err.size() > 20000) err = "...\n" + err.substr(err.size() - 20000);
    std::fprintf(stderr, "---- kproxy %s; its stderr:\n%s\n---- iptables-save in node 1:\n%s\n",
                 g_suite->kproxy != nullptr && g_suite->kproxy->running() ? "running" : "NOT running", err.c_str(),
                 save_iptables(cluster().node_ns(1)).c_str());
  }

  static TestCluster& cluster() { return *g_suite->cluster; }
  static fakeapi::FakeApiServer& api() { return *g_suite->api; }
  static const Pod& a1() { return *g_suite->a1; }
  static const Pod& b2() { return *g_suite->b2; }
  static const Pod& c1() { return *g_suite->c1; }
  static std::string node1() { return cluster().node_ns(1); }
  static std::string outside() { return cluster().client_ns(); }

  static std::string at(const std::string& ip, int port = kServicePort) { return ip + ":" + std::to_string(port); }

  // Repeats the request until `done` holds for its result or kConverge passes; returns the
  // last result (which the caller asserts on).
  static RequestResult eventually(const std::string& ns, Proto proto, const std::string& to, int count,
                                  const std::function<bool(const RequestResult&)>& done, int timeout_ms = 1000) {
    const auto deadline = std::chrono::steady_clock::now() + kConverge;
    for (;;) {
      RequestResult r = TestCluster::request(ns, proto, to, timeout_ms, count);
      if (done(r) || std::chrono::steady_clock::now() > deadline) return r;
    }
  }

  static bool answered(const RequestResult& r, size_t count) { return r.exit_code == 0 && r.lines.size() == count; }

  // `count` requests answered, from exactly the backends `want`.
  static RequestResult reaches(const std::string& ns, Proto proto, const std::string& to, int count,
                               const std::set<std::string>& want) {
    return eventually(ns, proto, to, count, [&](const RequestResult& r) {
      return answered(r, static_cast<size_t>(count)) && servers(r) == want;
    });
  }

  static std::string nat_table() { return save_iptables(node1(), "nat"); }

  // Endpoint changes reach the kernel through partial syncs (one Service chain rewritten);
  // run on nft by iptables-restore and on legacy by libiptc.
  static void endpoint_churn_moves_traffic();

  static std::string health_check(int port) {
    RunResult r = TestCluster::exec(node1(), {"curl", "-sS", "-m", "2", "-w", "\nHTTP %{http_code}",
                                              "http://127.0.0.1:" + std::to_string(port) + "/"});
    return r.out + r.err;
  }
};

// 1. ClusterIP: a pod on node 1 reaches both backends (one per node), unmasqueraded; node 1
// itself reaches them masqueraded.
TEST_F(KproxyClusterTest, ClusterIpReachesBothBackendsFromPodsAndTheNode) {
  for (Proto proto : kAllProtos) {
    SCOPED_TRACE(proto_name(proto));
    RequestResult from_pod = reaches(c1().ns, proto, at(kWebIp), 16, {"a1", "b2"});
    ASSERT_TRUE(answered(from_pod, 16)) << describe(from_pod);
    EXPECT_EQ(servers(from_pod), (std::set<std::string>{"a1", "b2"})) << describe(from_pod);
    EXPECT_EQ(sources(from_pod), std::set<std::string>{c1().ip}) << "pod traffic is not masqueraded\n"
                                                                 << describe(from_pod);

    RequestResult from_node = reaches(node1(), proto, at(kWebIp), 16, {"a1", "b2"});
    ASSERT_TRUE(answered(from_node, 16)) << describe(from_node);
    EXPECT_EQ(servers(from_node), (std::set<std::string>{"a1", "b2"})) << describe(from_node);
    for (const auto& line : from_node.lines) {
      // Masqueraded to the outgoing interface's address: 10.244.1.1 towards a1,
      // 192.168.77.11 towards b2; never a pod's address.
      const std::string src = source_of(line);
      EXPECT_TRUE(src == cluster().pod_gateway(1) || src == cluster().node_ip(1)) << line;
    }
  }
}

// 2. NodePort (externalTrafficPolicy Cluster) from outside: answered, masqueraded.
TEST_F(KproxyClusterTest, NodePortFromOutsideIsMasqueraded) {
  for (Proto proto : kAllProtos) {
    SCOPED_TRACE(proto_name(proto));
    const std::string to = at(cluster().node_ip(1), kWebNodePorts + proto_index(proto));
    RequestResult r = reaches(outside(), proto, to, 12, {"a1", "b2"});
    ASSERT_TRUE(answered(r, 12)) << describe(r);
    EXPECT_EQ(servers(r), (std::set<std::string>{"a1", "b2"})) << describe(r);
    EXPECT_EQ(sources(r).count(cluster().client_ip()), 0u) << "not masqueraded\n" << describe(r);
    for (const std::string& ip : {cluster().node_ip(1), std::string("127.0.0.1")}) {
      SCOPED_TRACE("from node 1 to " + ip + " (127.0.0.1: localhostNodePorts, route_localnet)");
      const std::string local_to = at(ip, kWebNodePorts + proto_index(proto));
      RequestResult n = eventually(node1(), proto, local_to, 4, [](const RequestResult& r) { return answered(r, 4); });
      ASSERT_TRUE(answered(n, 4)) << describe(n);
      EXPECT_EQ(sources(n).count("127.0.0.1"), 0u) << "not masqueraded\n" << describe(n);
    }
  }
}

// 3. externalTrafficPolicy Local: only the node-1 backend answers outside traffic, and it sees
// the client's address; without a local endpoint outside traffic is dropped, while pods still
// reach the Service through its cluster IP.
TEST_F(KproxyClusterTest, ExternalTrafficPolicyLocalKeepsTheClientAddressAndDropsWithoutLocalEndpoints) {
  for (Proto proto : kAllProtos) {
    SCOPED_TRACE(proto_name(proto));
    for (const std::string& to : {at(cluster().node_ip(1), kLocalNodePorts + proto_index(proto)), at(kLocalIngress)}) {
      SCOPED_TRACE(to);
      RequestResult r = reaches(outside(), proto, to, 8, {"a1"});
      ASSERT_TRUE(answered(r, 8)) << describe(r);
      EXPECT_EQ(servers(r), std::set<std::string>{"a1"}) << describe(r);
      EXPECT_EQ(sources(r), std::set<std::string>{cluster().client_ip()}) << describe(r);
    }
    {
      SCOPED_TRACE("no local endpoint");
      // Programmed: the cluster IP works from a pod (the endpoint is on node 2) ...
      RequestResult in = reaches(c1().ns, proto, at(kRemoteIp), 2, {"b2"});
      ASSERT_TRUE(answered(in, 2)) << describe(in);
      // ... and the node port drops outside traffic.
      RequestResult out =
          TestCluster::request(outside(), proto, at(cluster().node_ip(1), kRemoteNodePorts + proto_index(proto)), 700);
      EXPECT_EQ(out.exit_code, 3) << describe(out);
      // Node 1 itself and its pods are not "external": they go to the cluster-wide endpoints.
      const std::string node_port = at(cluster().node_ip(1), kRemoteNodePorts + proto_index(proto));
      for (const std::string& ns : {node1(), c1().ns}) {
        SCOPED_TRACE("from " + ns);
        RequestResult r = reaches(ns, proto, node_port, 2, {"b2"});
        ASSERT_TRUE(answered(r, 2)) << describe(r);
        EXPECT_EQ(servers(r), std::set<std::string>{"b2"}) << describe(r);
      }
    }
  }
}

// 3b. The health-check node port of a LoadBalancer Service with externalTrafficPolicy Local.
TEST_F(KproxyClusterTest, HealthCheckNodePortCountsLocalEndpoints) {
  std::string local, remote;
  const auto deadline = std::chrono::steady_clock::now() + kConverge;
  do {
    local = health_check(kLocalHealthPort);
    remote = health_check(kRemoteHealthPort);
  } while ((local.find("HTTP 200") == std::string::npos || remote.find("HTTP 503") == std::string::npos) &&
           std::chrono::steady_clock::now() < deadline);
  EXPECT_NE(local.find("HTTP 200"), std::string::npos) << local;
  EXPECT_NE(local.find("\"localEndpoints\": 1"), std::string::npos) << local;
  EXPECT_NE(local.find("\"name\": \"local\""), std::string::npos) << local;
  EXPECT_NE(remote.find("HTTP 503"), std::string::npos) << remote;
  EXPECT_NE(remote.find("\"localEndpoints\": 0"), std::string::npos) << remote;

  // A local endpoint appears, then goes again.
  api().upsert("endpointslices", slice_json("remote", {{b2().ip, 2}, {a1().ip, 1}}));
  auto wait_for = [&](const std::string& want) {
    const auto until = std::chrono::steady_clock::now() + kConverge;
    std::string got;
    do {
      got = health_check(kRemoteHealthPort);
    } while (got.find(want) == std::string::npos && std::chrono::steady_clock::now() < until);
    return got;
  };
  remote = wait_for("HTTP 200");
  EXPECT_NE(remote.find("HTTP 200"), std::string::npos) << remote;
  EXPECT_NE(remote.find("\"localEndpoints\": 1"), std::string::npos) << remote;
  api().upsert("endpointslices", slice_json("remote", {{b2().ip, 2}}));
  remote = wait_for("HTTP 503");
  EXPECT_NE(remote.find("HTTP 503"), std::string::npos) << remote;
  // kproxy's own /healthz (--healthz-bind-address 127.0.0.1:10256) after its syncs.
  RunResult healthz = TestCluster::exec(
      node1(), {"curl", "-sS", "-m", "2", "-w", "\nHTTP %{http_code}", "http://127.0.0.1:10256/healthz"});
  EXPECT_NE(healthz.out.find("HTTP 200"), std::string::npos) << healthz.out << healthz.err;
}

// 4. externalIPs and load-balancer IPs from outside; loadBalancerSourceRanges.
TEST_F(KproxyClusterTest, ExternalAndLoadBalancerIpsHonourSourceRanges) {
  for (Proto proto : kAllProtos) {
    SCOPED_TRACE(proto_name(proto));
    {
      SCOPED_TRACE("external IP");
      RequestResult r =
          eventually(outside(), proto, at(kExternalIp), 4, [](const RequestResult& r) { return answered(r, 4); });
      ASSERT_TRUE(answered(r, 4)) << describe(r);
      EXPECT_EQ(sources(r).count(cluster().client_ip()), 0u) << "not masqueraded\n" << describe(r);
    }
    {
      SCOPED_TRACE("load-balancer IP, source range allows the client");
      RequestResult r =
          eventually(outside(), proto, at(kLbAllowIngress), 4, [](const RequestResult& r) { return answered(r, 4); });
      ASSERT_TRUE(answered(r, 4)) << describe(r);
      EXPECT_EQ(sources(r).count(cluster().client_ip()), 0u) << "not masqueraded\n" << describe(r);
    }
    {
      SCOPED_TRACE("load-balancer IP, source range excludes the client");
      // The same sync programmed lb-deny as lb-allow (above), so this is the firewall's DROP.
      RequestResult r = TestCluster::request(outside(), proto, at(kLbDenyIngress), 700);
      EXPECT_EQ(r.exit_code, 3) << describe(r);
      // Its cluster IP still works from a pod.
      RequestResult in =
          eventually(c1().ns, proto, at(kLbDenyIp), 2, [](const RequestResult& r) { return answered(r, 2); });
      EXPECT_TRUE(answered(in, 2)) << describe(in);
    }
  }
  const std::string nat = nat_table();
  EXPECT_NE(nat.find(std::string("-d ") + kLbDenyIngress + "/32"), std::string::npos) << nat;
}

// 5. sessionAffinity ClientIP: every request of one client reaches the same backend.
TEST_F(KproxyClusterTest, ClientIpAffinityPinsTheBackend) {
  for (Proto proto : kAllProtos) {
    SCOPED_TRACE(proto_name(proto));
    RequestResult r =
        eventually(c1().ns, proto, at(kStickyIp), 10, [](const RequestResult& r) { return answered(r, 10); });
    ASSERT_TRUE(answered(r, 10)) << describe(r);
    EXPECT_EQ(servers(r).size(), 1u) << describe(r);
  }
}

// 6. internalTrafficPolicy Local: a pod on node 1 reaches only the node-1 backend.
TEST_F(KproxyClusterTest, InternalTrafficPolicyLocalUsesOnlyNodeLocalEndpoints) {
  for (Proto proto : kAllProtos) {
    SCOPED_TRACE(proto_name(proto));
    RequestResult r = reaches(c1().ns, proto, at(kItpLocalIp), 10, {"a1"});
    ASSERT_TRUE(answered(r, 10)) << describe(r);
    EXPECT_EQ(servers(r), std::set<std::string>{"a1"}) << describe(r);
  }
}

// 7. A Service without endpoints is rejected (TCP and UDP; see the header for SCTP).
TEST_F(KproxyClusterTest, ServiceWithoutEndpointsIsRefused) {
  for (Proto proto : {Proto::kTcp, Proto::kUdp}) {
    SCOPED_TRACE(proto_name(proto));
    // Before kproxy's REJECT the packet would leave node 1 by its default route and time out.
    RequestResult r = eventually(
        c1().ns, proto, at(kEmptyIp), 1, [](const RequestResult& r) { return r.exit_code == 2; }, 700);
    EXPECT_EQ(r.exit_code, 2) << describe(r);
  }
  // SCTP gets the same REJECT rule, but its ICMP is invisible to usrsctp: a timeout.
  RequestResult sctp = TestCluster::request(c1().ns, Proto::kSctp, at(kEmptyIp), 700);
  EXPECT_EQ(sctp.exit_code, 3) << describe(sctp);
  const std::string filter = save_iptables(node1(), "filter");
  EXPECT_NE(filter.find("-A KUBE-SERVICES -d 10.96.0.18/32 -p sctp -m comment --comment \"default/empty:sctp has no "
                        "endpoints\" -m sctp --dport 80 -j REJECT"),
            std::string::npos)
      << filter;
}

// 8. Terminating fallback: with no ready endpoint, serving terminating ones get the traffic.
TEST_F(KproxyClusterTest, ServingTerminatingEndpointsAreUsedWhenNoneIsReady) {
  for (Proto proto : kAllProtos) {
    SCOPED_TRACE(proto_name(proto));
    RequestResult r = reaches(c1().ns, proto, at(kTerminatingIp), 12, {"a1", "b2"});
    ASSERT_TRUE(answered(r, 12)) << describe(r);
    EXPECT_EQ(servers(r), (std::set<std::string>{"a1", "b2"})) << describe(r);
  }
}

// 9. Endpoint churn: a backend removed from the slice stops getting traffic; added back, it
// gets traffic again.
TEST_F(KproxyClusterTest, EndpointChurnMovesTraffic) { endpoint_churn_moves_traffic(); }

void KproxyClusterTest::endpoint_churn_moves_traffic() {
  auto check_all = [&](const std::set<std::string>& want, int count) {
    for (Proto proto : kAllProtos) {
      SCOPED_TRACE(proto_name(proto));
      RequestResult r = reaches(c1().ns, proto, at(kChurnIp), count, want);
      ASSERT_TRUE(answered(r, static_cast<size_t>(count))) << describe(r);
      EXPECT_EQ(servers(r), want) << describe(r);
    }
  };
  {
    SCOPED_TRACE("both endpoints");
    check_all({"a1", "b2"}, 12);
  }
  api().upsert("endpointslices", slice_json("churn", {{a1().ip, 1}}));
  {
    SCOPED_TRACE("b2 removed");
    check_all({"a1"}, 10);
  }
  api().upsert("endpointslices", slice_json("churn", {{a1().ip, 1}, {b2().ip, 2}}));
  {
    SCOPED_TRACE("b2 back");
    check_all({"a1", "b2"}, 12);
  }
  EXPECT_TRUE(g_suite->kproxy->running());
}

// 9b. Hairpin: a pod that reaches itself through its Service is masqueraded (else its reply
// would not come from the cluster IP it called).
TEST_F(KproxyClusterTest, PodReachingItselfThroughItsServiceIsMasqueraded) {
  for (Proto proto : kAllProtos) {
    SCOPED_TRACE(proto_name(proto));
    // internalTrafficPolicy Local on node 1: a1 is the only endpoint a1 can get.
    RequestResult r =
        eventually(a1().ns, proto, at(kItpLocalIp), 2, [](const RequestResult& r) { return answered(r, 2); });
    ASSERT_TRUE(answered(r, 2)) << describe(r);
    EXPECT_EQ(servers(r), std::set<std::string>{"a1"}) << describe(r);
    EXPECT_EQ(sources(r), std::set<std::string>{cluster().pod_gateway(1)}) << describe(r);
  }
}

// 9c. A Service whose slice goes is refused; a deleted Service loses its rules and traffic.
TEST_F(KproxyClusterTest, DeletedSliceAndServiceLoseTheirRules) {
  for (Proto proto : kAllProtos) {
    SCOPED_TRACE(proto_name(proto));
    RequestResult r = eventually(c1().ns, proto, at(kGoneIp), 2, [](const RequestResult& r) { return answered(r, 2); });
    ASSERT_TRUE(answered(r, 2)) << describe(r);
  }
  ASSERT_TRUE(api().remove("endpointslices", "default", "gone-x7k2p"));
  for (Proto proto : {Proto::kTcp, Proto::kUdp}) {
    SCOPED_TRACE(std::string("no slice: ") + proto_name(proto));
    RequestResult r = eventually(
        c1().ns, proto, at(kGoneIp), 1, [](const RequestResult& r) { return r.exit_code == 2; }, 700);
    EXPECT_EQ(r.exit_code, 2) << describe(r);
  }
  ASSERT_TRUE(api().remove("services", "default", "gone"));
  std::string nat, filter;
  const auto deadline = std::chrono::steady_clock::now() + kConverge;
  do {
    nat = nat_table();
    filter = save_iptables(node1(), "filter");
  } while ((nat.find("default/gone") != std::string::npos || filter.find("default/gone") != std::string::npos) &&
           std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(nat.find("default/gone"), std::string::npos) << nat;
  EXPECT_EQ(filter.find("default/gone"), std::string::npos) << filter;
  // No rule left: the packet leaves by node 1's default route and nobody answers.
  RequestResult r = TestCluster::request(c1().ns, Proto::kTcp, at(kGoneIp), 700);
  EXPECT_EQ(r.exit_code, 3) << describe(r);
  EXPECT_TRUE(g_suite->kproxy->running());
}

// 10. Services kproxy must leave alone get no rules: another proxy's and a headless one.
TEST_F(KproxyClusterTest, IgnoredServicesGetNoRules) {
  // Wait for a Service created alongside them, so the sync that would have written them is in.
  RequestResult r =
      eventually(c1().ns, Proto::kTcp, at(kWebIp), 1, [](const RequestResult& r) { return answered(r, 1); });
  ASSERT_TRUE(answered(r, 1)) << describe(r);
  const std::string nat = nat_table();
  EXPECT_NE(nat.find("default/web:tcp"), std::string::npos) << nat;
  EXPECT_EQ(nat.find("default/other-proxy"), std::string::npos) << nat;
  EXPECT_EQ(nat.find(kOtherProxyIp), std::string::npos) << nat;
  EXPECT_EQ(nat.find("default/headless"), std::string::npos) << nat;
}

// 11. Malformed objects are skipped; their neighbours work and kproxy keeps running.
TEST_F(KproxyClusterTest, MalformedObjectsAreSkippedAndNeighboursWork) {
  for (Proto proto : kAllProtos) {
    SCOPED_TRACE(proto_name(proto));
    {
      SCOPED_TRACE("the neighbour of a Service with a bad cluster IP, whose refused second slice adds nothing");
      RequestResult r = reaches(c1().ns, proto, at(kNeighbourIp), 12, {"a1", "b2"});
      ASSERT_TRUE(answered(r, 12)) << describe(r);
      EXPECT_EQ(servers(r), (std::set<std::string>{"a1", "b2"})) << describe(r);
    }
    {
      SCOPED_TRACE("a slice whose bad endpoints are dropped keeps its good one");
      RequestResult r = reaches(c1().ns, proto, at(kBadEndpointIp), 6, {"a1"});
      ASSERT_TRUE(answered(r, 6)) << describe(r);
      EXPECT_EQ(servers(r), std::set<std::string>{"a1"}) << describe(r);
    }
  }
  std::string nat = nat_table();
  EXPECT_EQ(nat.find("default/bad-ip"), std::string::npos) << nat;
  EXPECT_EQ(nat.find("10.244.2.999"), std::string::npos) << nat;

  // At run time: a Service of an unknown type and a slice of garbage, then a good Service.
  json bad = service_json(SvcSpec{.name = "late-bad", .cluster_ip = "10.96.0.25"});
  bad["spec"]["type"] = "Ingress";
  api().upsert("services", bad);
  json garbage = slice_json("late-bad", {{a1().ip, 1}});
  garbage["endpoints"] = "not a list";
  api().upsert("endpointslices", garbage);
  api().upsert("services", service_json(SvcSpec{.name = "late", .cluster_ip = kLateIp}));
  api().upsert("endpointslices", slice_json("late", {{b2().ip, 2}}));
  for (Proto proto : kAllProtos) {
    SCOPED_TRACE(std::string("late: ") + proto_name(proto));
    RequestResult r = reaches(c1().ns, proto, at(kLateIp), 2, {"b2"});
    ASSERT_TRUE(answered(r, 2)) << describe(r);
  }
  nat = nat_table();
  EXPECT_EQ(nat.find("default/late-bad"), std::string::npos) << nat;
  EXPECT_TRUE(g_suite->kproxy->running()) << g_suite->kproxy->describe();
}

}  // namespace
}  // namespace kproxy::testing

namespace kproxy::testing {
namespace {

// The same daemon on iptables-legacy (kubelet's hint chain in legacy mangle): a smoke test of
// the main paths; the nft suite above covers the semantics.
// Restart without disruption: SIGTERM leaves the rules in the kernel, and the new process
// does not touch them until both caches have synced, then rewrites them in one atomic
// restore. Probes of every protocol run the whole time; not one may fail.
TEST_F(KproxyClusterTest, NoRequestFailsAcrossARestart) {
  std::atomic<bool> stop{false};
  std::atomic<int> answered_count{0};
  std::mutex mu;
  std::vector<std::string> failures;
  std::vector<std::thread> probes;
  for (Proto proto : kAllProtos) {
    probes.emplace_back([&, proto] {
      while (!stop) {
        RequestResult r = TestCluster::request(c1().ns, proto, at(kWebIp), 2000, 1);
        if (answered(r, 1)) {
          ++answered_count;
        } else {
          std::lock_guard lock(mu);
          failures.push_back(std::string(proto_name(proto)) + ": " + describe(r));
        }
      }
    });
  }
  auto wait_answers = [&](int n) {
    const int target = answered_count + n;
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (answered_count < target && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(50ms);
    return answered_count >= target;
  };
  EXPECT_TRUE(wait_answers(6));
  EXPECT_EQ(g_suite->kproxy->stop(), 0) << g_suite->kproxy->describe();
  const int before_down = answered_count;
  EXPECT_TRUE(wait_answers(6)) << "traffic while kproxy is down";
  const int while_down = answered_count - before_down;

  g_suite->kproxy = &cluster().start(node1(), kproxy_argv(*g_suite));
  bool synced = false;
  for (const auto deadline = std::chrono::steady_clock::now() + 20s;
       !synced && std::chrono::steady_clock::now() < deadline; std::this_thread::sleep_for(50ms)) {
    synced = g_suite->kproxy->stderr_text().find("iptables full sync of IPv4") != std::string::npos;
  }
  EXPECT_TRUE(synced) << g_suite->kproxy->describe();
  EXPECT_TRUE(wait_answers(6)) << "traffic after the new process's first sync";
  stop = true;
  for (auto& t : probes) t.join();
  EXPECT_GT(while_down, 0);
  EXPECT_TRUE(failures.empty()) << failures.size() << " failed requests, first: " << failures.front();
}

// Conntrack: UDP and SCTP flows move off a removed endpoint. The client sends from a fixed
// port, so every request is the same conntrack entry, which keeps its DNAT to the backend it
// was first sent to. Only deleting the entry (kproxy does it after the sync that removed the
// endpoint) sends the next request to the remaining backend: the removed pod still runs and
// would keep answering. kube-proxy does this for UDP only; SCTP is kproxy's addition.
TEST_F(KproxyClusterTest, UdpAndSctpFlowsMoveOffARemovedEndpoint) {
  int port = 40000;
  for (Proto proto : {Proto::kUdp, Proto::kSctp}) {
    SCOPED_TRACE(proto_name(proto));
    const std::string from = c1().ip + ":" + std::to_string(port++);
    auto fixed = [&](int count) {
      return kproxy::testing::run({"ip", "netns", "exec", c1().ns, testpeer_binary(), "request", "--proto",
                                   std::string(proto_name(proto)), "--to", at(kChurnIp), "--bind", from, "--count",
                                   std::to_string(count), "--timeout-ms", "2000"});
    };
    auto server_of = [](const kproxy::testing::RunResult& r) { return r.out.substr(0, r.out.find(' ')); };
    const auto first = fixed(1);
    ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
    const std::string pinned = server_of(first);
    ASSERT_TRUE(pinned == "a1" || pinned == "b2") << first.out;
    // Same entry, same backend. (One request per process: a usrsctp stack cannot rebind the
    // port of an association it just closed.)
    for (int i = 0; i < 3; ++i) {
      const auto again = fixed(1);
      ASSERT_EQ(again.exit_code, 0) << again.err;
      EXPECT_EQ(again.out, pinned + " " + from + "\n");
    }

    const bool drop_a1 = pinned == "a1";
    const std::string other = drop_a1 ? "b2" : "a1";
    api().upsert("endpointslices",
                 slice_json("churn", drop_a1 ? std::vector<Ep>{{b2().ip, 2}} : std::vector<Ep>{{a1().ip, 1}}));
    std::string last;
    bool moved = false;
    for (auto deadline = std::chrono::steady_clock::now() + 10s; !moved && std::chrono::steady_clock::now() < deadline;) {
      const auto r = fixed(1);
      last = r.out + r.err;
      moved = r.exit_code == 0 && server_of(r) == other;
      if (!moved) std::this_thread::sleep_for(200ms);
    }
    EXPECT_TRUE(moved) << "still " << last << "\nkproxy:\n" << g_suite->kproxy->stderr_text();
    api().upsert("endpointslices", slice_json("churn", {{a1().ip, 1}, {b2().ip, 2}}));
    reaches(c1().ns, proto, at(kChurnIp), 12, {"a1", "b2"});
  }
}

// --sctp-userspace-mode (issue 8, its first part): kproxy taints its Node through the API
// server, writes no rule that names SCTP (no -p sctp, no -m sctp: the SCTP match and the
// kernel's SCTP handling stay out of the packet path) and keeps TCP and UDP Services as they
// were. Restarted without the mode it removes the taint and SCTP Services work again.
TEST_F(KproxyClusterTest, SctpUserspaceModeTaintsTheNodeAndWritesNoSctpRule) {
  auto has_taint = [] {
    auto node = api().get("nodes", "", "node1");
    if (!node) return false;
    const auto spec = node->find("spec");
    if (spec == node->end() || !spec->contains("taints")) return false;
    for (const auto& t : (*spec)["taints"]) {
      if (t.value("key", "") == "sctp.kproxy.io/userspace" && t.value("value", "") == "true" &&
          t.value("effect", "") == "NoSchedule") {
        return true;
      }
    }
    return false;
  };
  auto wait_for = [](const std::function<bool()>& pred) {
    for (const auto deadline = std::chrono::steady_clock::now() + 20s; std::chrono::steady_clock::now() < deadline;
         std::this_thread::sleep_for(100ms)) {
      if (pred()) return true;
    }
    return pred();
  };
  auto restart = [&](bool userspace, const std::vector<std::string>& extra = {}) {
    EXPECT_EQ(g_suite->kproxy->stop(), 0) << g_suite->kproxy->describe();
    auto argv = kproxy_argv(*g_suite);
    if (userspace) argv.push_back("--sctp-userspace-mode");
    argv.insert(argv.end(), extra.begin(), extra.end());
    g_suite->kproxy = &cluster().start(node1(), argv);
    return wait_for([] { return g_suite->kproxy->stderr_text().find("iptables full sync of IPv4") != std::string::npos; });
  };
  // Whatever fails below, the next tests get the normal daemon back.
  struct Restore {
    std::function<void()> f;
    ~Restore() { f(); }
  } restore{[&] {
    if (g_suite->kproxy->stderr_text().find("SCTP userspace mode") != std::string::npos) restart(false);
  }};
  ASSERT_FALSE(has_taint());

  ASSERT_TRUE(restart(true)) << g_suite->kproxy->describe();
  EXPECT_TRUE(wait_for(has_taint)) << "the Node has no sctp.kproxy.io/userspace=true:NoSchedule taint\n"
                                   << g_suite->kproxy->stderr_text();
  // Removed behind kproxy's back (kubectl taint node node1 sctp.kproxy.io/userspace-): put back.
  {
    auto n = *api().get("nodes", "", "node1");
    n["spec"].erase("taints");
    api().upsert("nodes", n);
  }
  EXPECT_TRUE(wait_for(has_taint)) << "the removed taint was not put back\n" << g_suite->kproxy->stderr_text();
  for (const char* table : {"filter", "nat"}) {
    const std::string rules = save_iptables(node1(), table);
    EXPECT_EQ(rules.find("-p sctp"), std::string::npos) << rules;
    EXPECT_EQ(rules.find("-m sctp"), std::string::npos) << rules;
    EXPECT_EQ(rules.find(" 132 "), std::string::npos) << rules;
  }
  for (Proto proto : {Proto::kTcp, Proto::kUdp}) {
    SCOPED_TRACE(proto_name(proto));
    RequestResult r = reaches(c1().ns, proto, at(kWebIp), 8, {"a1", "b2"});
    EXPECT_TRUE(answered(r, 8) && servers(r) == (std::set<std::string>{"a1", "b2"})) << describe(r);
  }
  // SCTP through kproxy's usrsctp proxy: ClusterIP from a pod and from the node, NodePort from
  // outside, both endpoints; the proxy terminates the client's association, so endpoints see
  // the node's address.
  RequestResult sctp = reaches(c1().ns, Proto::kSctp, at(kWebIp), 12, {"a1", "b2"});
  EXPECT_TRUE(answered(sctp, 12)) << describe(sctp) << g_suite->kproxy->stderr_text();
  RequestResult node_port =
      reaches(outside(), Proto::kSctp, at(cluster().node_ip(1), kWebNodePorts + proto_index(Proto::kSctp)), 8, {"a1", "b2"});
  EXPECT_TRUE(answered(node_port, 8)) << describe(node_port);
  RequestResult sticky = TestCluster::request(c1().ns, Proto::kSctp, at(kStickyIp), 2000, 8);
  EXPECT_TRUE(answered(sticky, 8) && servers(sticky).size() == 1) << "ClientIP affinity\n" << describe(sticky);
  // Message boundaries (1 B to 64 KiB, partial delivery reassembled), stream ids, PPIDs and
  // the unordered flag survive the relay both ways.
  // The proxy sends packets that fit the route's MTU: none of them leaves the node as IP
  // fragments (usrsctp's AF_CONN path MTU excludes the SCTP common header).
  const long fragments_before = ip_counter(node1(), "FragCreates");
  RequestResult echo = TestCluster::request(c1().ns, Proto::kSctp, at(kWebIp), 5000, 4, {"--echo-check", "1"});
  EXPECT_TRUE(answered(echo, 4)) << describe(echo);
  EXPECT_EQ(ip_counter(node1(), "FragCreates"), fragments_before) << "the proxy's packets were fragmented";
  // Pipelined small messages come back bundled: fewer packets reach the client than messages
  // (relayed one message a packet, it is 1.4 packets a message with the SACKs).
  {
    const long received_before = ip_counter(c1().ns, "InReceives");
    const auto bench = TestCluster::exec(c1().ns, {testpeer_binary(), "bench", "--to", at(kWebIp), "--size", "100",
                                                   "--messages", "4000", "--window", "64"});
    ASSERT_EQ(bench.exit_code, 0) << bench.out << bench.err;
    const double per_message = static_cast<double>(ip_counter(c1().ns, "InReceives") - received_before) / 4000;
    EXPECT_LT(per_message, 1.0) << "packets the client received per echoed message: " << per_message << "\n" << bench.out;
  }
  // An endpoint leaves: the association relayed to it is aborted on the client's side too, and
  // new associations avoid it.
  {
    BackgroundProcess held({testpeer_binary(), "request", "--proto", "sctp", "--to", at(kChurnIp), "--timeout-ms",
                            "3000", "--hold-ms", "30000"},
                           c1().ns);
    ASSERT_TRUE(held.wait_for([](const std::vector<std::string>& l) { return !l.empty(); }, 5s)) << held.describe();
    const std::string line = held.stdout_lines().front();
    const std::string server = line.substr(0, line.find(' '));
    ASSERT_TRUE(server == "a1" || server == "b2") << line;
    const std::string other = server == "a1" ? "b2" : "a1";
    api().upsert("endpointslices", slice_json("churn", server == "a1" ? std::vector<Ep>{{b2().ip, 2}}
                                                                       : std::vector<Ep>{{a1().ip, 1}}));
    for (const auto deadline = std::chrono::steady_clock::now() + 10s;
         held.running() && std::chrono::steady_clock::now() < deadline;) {
      std::this_thread::sleep_for(50ms);
    }
    EXPECT_FALSE(held.running()) << "the association to the removed endpoint " << server << " was kept";
    EXPECT_EQ(held.stop(), 2) << held.describe();
    RequestResult after = reaches(c1().ns, Proto::kSctp, at(kChurnIp), 8, {other});
    EXPECT_TRUE(answered(after, 8) && servers(after) == std::set<std::string>{other}) << describe(after);
    api().upsert("endpointslices", slice_json("churn", {{a1().ip, 1}, {b2().ip, 2}}));
  }
  // An endpoint that refuses the association (x1: a usrsctp stack with nothing on the port, so
  // it answers the INIT with ABORT) is replaced by another before the client notices: every
  // request is answered by a1, and the failures are counted.
  auto metric = [&](const std::string& name) {
    const std::string text = TestCluster::exec(node1(), {"curl", "-s", "127.0.0.1:10249/metrics"}).out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
    }
    return -1.0;
  };
  Pod& x1 = cluster().add_pod(1, "x1");
  Pod& s4 = cluster().add_pod(2, "s4");
  ASSERT_TRUE(cluster().ok()) << cluster().error();
  BackgroundProcess& refuser = cluster().start(x1.ns, {testpeer_binary(), "serve", "--name", "x1", "--sctp", "9999"});
  BackgroundProcess& narrow = cluster().start(
      s4.ns, {testpeer_binary(), "serve", "--name", "s4", "--sctp", std::to_string(kPodPort), "--sctp-streams", "4"});
  ASSERT_TRUE(refuser.wait_for_line("ready", 5s) && narrow.wait_for_line("ready", 5s)) << refuser.describe() << narrow.describe();
  api().upsert("services", service_json(SvcSpec{.name = "failover", .cluster_ip = "10.96.0.40"}));
  api().upsert("endpointslices", slice_json("failover", {{x1.ip, 1}, {a1().ip, 1}}));
  api().upsert("services", service_json(SvcSpec{.name = "narrow", .cluster_ip = "10.96.0.41"}));
  api().upsert("endpointslices", slice_json("narrow", {{s4.ip, 2}}));
  // Associations to `to` until the proxy counts a failed endpoint (at most `tries`): every one
  // is answered by a1, the other endpoint being the one that fails.
  auto fails_over_to_a1 = [&](const std::string& to, int tries, int timeout_ms, const std::string& failing) {
    const std::string failures = "kproxy_sctp_userspace_endpoint_connect_failures_total";
    RequestResult first = reaches(c1().ns, Proto::kSctp, to, 1, {"a1"});
    ASSERT_TRUE(answered(first, 1)) << describe(first);
    const double before = metric(failures);
    for (int i = 0; i < tries && metric(failures) <= before; ++i) {
      RequestResult r = TestCluster::request(c1().ns, Proto::kSctp, to, timeout_ms, 1);
      ASSERT_TRUE(answered(r, 1) && servers(r) == std::set<std::string>{"a1"}) << describe(r);
    }
    EXPECT_GT(metric(failures), before) << failing << " was never tried in " << tries << " associations";
  };
  ASSERT_NO_FATAL_FAILURE(fails_over_to_a1("10.96.0.40:80", 30, 5000, "x1"));
  // A silent endpoint (no pod at 10.244.2.99: the INITs go unanswered) is given up after two
  // INITs 1 s apart and the next one is tried; the client is answered, a little later.
  api().upsert("services", service_json(SvcSpec{.name = "silent", .cluster_ip = "10.96.0.43"}));
  api().upsert("endpointslices", slice_json("silent", {{"10.244.2.99", 2}, {a1().ip, 1}}));
  ASSERT_NO_FATAL_FAILURE(fails_over_to_a1("10.96.0.43:80", 10, 8000, "the silent endpoint"));
  // A client's ABORT reaches the endpoint (its server sees the association lost); the SHUTDOWN
  // of every other request above ended theirs without one.
  Pod& ab = cluster().add_pod(2, "ab");
  ASSERT_TRUE(cluster().ok()) << cluster().error();
  BackgroundProcess& ab_server =
      cluster().start(ab.ns, {testpeer_binary(), "serve", "--name", "ab", "--sctp", std::to_string(kPodPort)});
  ASSERT_TRUE(ab_server.wait_for_line("ready", 5s)) << ab_server.describe();
  api().upsert("services", service_json(SvcSpec{.name = "aborts", .cluster_ip = "10.96.0.42"}));
  api().upsert("endpointslices", slice_json("aborts", {{ab.ip, 2}}));
  RequestResult graceful = reaches(c1().ns, Proto::kSctp, "10.96.0.42:80", 1, {"ab"});
  ASSERT_TRUE(answered(graceful, 1)) << describe(graceful);
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(ab_server.wait_for_line("sctp association lost", 10ms)) << "a SHUTDOWN was carried as an ABORT";
  RequestResult aborting =
      TestCluster::request(c1().ns, Proto::kSctp, "10.96.0.42:80", 3000, 1, {"--abort-at-end", "1"});
  ASSERT_TRUE(answered(aborting, 1)) << describe(aborting);
  EXPECT_TRUE(ab_server.wait_for_line("sctp association lost", 5s)) << "the client's ABORT did not reach the endpoint\n"
                                                                    << ab_server.describe() << g_suite->kproxy->stderr_text();
  api().remove("services", "default", "silent");
  api().remove("services", "default", "aborts");
  // An endpoint that grants fewer inbound streams (4) than the client opened (usrsctp's
  // default, 10): the client's association is aborted rather than its streams remapped.
  RequestResult few = TestCluster::request(c1().ns, Proto::kSctp, "10.96.0.41:80", 5000, 1);
  EXPECT_NE(few.exit_code, 0) << describe(few);
  EXPECT_NE(g_suite->kproxy->stderr_text().find("granted 4 streams, the client uses 10"), std::string::npos)
      << g_suite->kproxy->stderr_text();
  // The metrics count what went through.
  EXPECT_GT(metric("kproxy_sctp_userspace_associations_total"), 40);
  EXPECT_GT(metric("kproxy_sctp_userspace_messages_total{direction=\"to_endpoint\"}"), 40);
  EXPECT_GT(metric("kproxy_sctp_userspace_bytes_total{direction=\"to_client\"}"), 1000);
  EXPECT_GT(metric("kproxy_sctp_userspace_rejected_total"), -1);
  // The Service addresses are local to the node (labelled lo:kproxy), and other TCP to them is
  // refused rather than reaching the node's own sockets (a TCP listener on node 1's port 2222).
  EXPECT_NE(TestCluster::exec(node1(), {"ip", "-4", "addr", "show", "dev", "lo"}).out.find("10.96.0.10/32 scope host lo:kproxy"),
            std::string::npos)
      << TestCluster::exec(node1(), {"ip", "-4", "addr", "show", "dev", "lo"}).out;
  BackgroundProcess& node_listener = cluster().start(node1(), {testpeer_binary(), "serve", "--name", "node", "--tcp", "2222"});
  ASSERT_TRUE(node_listener.wait_for_line("ready", 5s)) << node_listener.describe();
  EXPECT_EQ(TestCluster::request(c1().ns, Proto::kTcp, at(cluster().node_ip(1), 2222), 2000).exit_code, 0)
      << "the node's listener answers on its own address";
  RequestResult to_vip = TestCluster::request(c1().ns, Proto::kTcp, std::string(kWebIp) + ":2222", 2000);
  EXPECT_EQ(to_vip.exit_code, 2) << "TCP to a userspace-SCTP Service address reached the node\n" << describe(to_vip);
  node_listener.stop();
  api().remove("services", "default", "failover");
  api().remove("services", "default", "narrow");
  RequestResult empty = TestCluster::request(c1().ns, Proto::kSctp, at(kEmptyIp), 2000);
  EXPECT_EQ(empty.exit_code, 2) << "a Service without endpoints refuses (ABORT)\n" << describe(empty);

  // --sctp-userspace-max-associations: with one association held, the next INIT is refused
  // (ABORT) and counted; once it ends, associations are accepted again.
  ASSERT_TRUE(restart(true, {"--sctp-userspace-max-associations=1"})) << g_suite->kproxy->describe();
  {
    auto one_answer = [](const RequestResult& r) { return answered(r, 1); };
    RequestResult warm = eventually(c1().ns, Proto::kSctp, at(kWebIp), 1, one_answer);
    ASSERT_EQ(warm.exit_code, 0) << describe(warm);
    BackgroundProcess held({testpeer_binary(), "request", "--proto", "sctp", "--to", at(kWebIp), "--timeout-ms", "3000",
                            "--hold-ms", "3000"},
                           c1().ns);
    ASSERT_TRUE(held.wait_for([](const std::vector<std::string>& l) { return !l.empty(); }, 5s)) << held.describe();
    RequestResult over = TestCluster::request(c1().ns, Proto::kSctp, at(kWebIp), 2000);
    EXPECT_EQ(over.exit_code, 2) << "a second association beyond the limit of 1\n" << describe(over);
    EXPECT_GE(metric("kproxy_sctp_userspace_rejected_total"), 1);
    // The held association ends with a SHUTDOWN after its 3 s, freeing the slot.
    for (const auto deadline = std::chrono::steady_clock::now() + 10s;
         held.running() && std::chrono::steady_clock::now() < deadline;) {
      std::this_thread::sleep_for(50ms);
    }
    EXPECT_EQ(held.stop(), 0) << held.describe();
    RequestResult again = eventually(c1().ns, Proto::kSctp, at(kWebIp), 1, one_answer);
    EXPECT_EQ(again.exit_code, 0) << describe(again);
  }

  ASSERT_TRUE(restart(false)) << g_suite->kproxy->describe();
  EXPECT_TRUE(wait_for([&] { return !has_taint(); })) << g_suite->kproxy->stderr_text();
  EXPECT_EQ(TestCluster::exec(node1(), {"ip", "-4", "addr", "show", "dev", "lo"}).out.find("lo:kproxy"), std::string::npos)
      << "the userspace-SCTP addresses outlived the mode";
  RequestResult back = reaches(c1().ns, Proto::kSctp, at(kWebIp), 8, {"a1", "b2"});
  EXPECT_TRUE(answered(back, 8)) << describe(back);
}

class KproxyLegacyClusterTest : public KproxyClusterTest {
 protected:
  static void SetUpTestSuite() {
    g_legacy = true;
    KproxyClusterTest::SetUpTestSuite();
  }
  static void TearDownTestSuite() {
    KproxyClusterTest::TearDownTestSuite();
    g_legacy = false;
  }
};

TEST_F(KproxyLegacyClusterTest, ProgramsLegacyIptables) {
  EXPECT_NE(g_suite->kproxy->stderr_text().find("iptables flavour: legacy"), std::string::npos)
      << g_suite->kproxy->stderr_text();
  // --iptables-applier=auto: libiptc on a legacy node.
  EXPECT_NE(g_suite->kproxy->stderr_text().find("iptables rules written by libiptc"), std::string::npos)
      << g_suite->kproxy->stderr_text();
  // The cluster IP's rule sits in a leaf of the dispatch tree under KUBE-SERVICES.
  EXPECT_NE(save_iptables(node1(), "nat").find(" -d 10.96.0.10/32 -p tcp"), std::string::npos);
  EXPECT_NE(save_iptables(node1(), "nat").find("-A KUBE-SERVICES -d 0.0.0."), std::string::npos);
  EXPECT_EQ(TestCluster::exec(node1(), {"iptables-nft-save", "-t", "nat"}).out.find("KUBE-SERVICES"),
            std::string::npos);
  for (Proto proto : kAllProtos) {
    SCOPED_TRACE(proto_name(proto));
    RequestResult r = reaches(c1().ns, proto, at(kWebIp), 12, {"a1", "b2"});
    ASSERT_TRUE(answered(r, 12)) << describe(r);
    EXPECT_EQ(sources(r), std::set<std::string>{c1().ip}) << describe(r);
    RequestResult np =
        reaches(outside(), proto, at(cluster().node_ip(1), kLocalNodePorts + proto_index(proto)), 4, {"a1"});
    ASSERT_TRUE(answered(np, 4)) << describe(np);
    EXPECT_EQ(sources(np), std::set<std::string>{cluster().client_ip()}) << describe(np);
  }
  RequestResult refused = TestCluster::request(c1().ns, Proto::kTcp, at(kEmptyIp), 1000);
  EXPECT_EQ(refused.exit_code, 2) << describe(refused);
}

TEST_F(KproxyLegacyClusterTest, EndpointChurnMovesTraffic) { endpoint_churn_moves_traffic(); }

}  // namespace
}  // namespace kproxy::testing
