// kproxy on dual-stack and IPv6 nodes (issue 10), in the two-node namespace cluster whose
// links all carry IPv4 and IPv6 (test/support/cluster.h). The daemon runs in node 1 and
// watches the in-process fake API server; real TCP, UDP and SCTP (usrsctp over raw IPv6)
// traffic from kproxy-testpeer proves the Service semantics on each family.
//
// Suites (each one cluster, one API server and one kproxy; ctest runs each test in its own
// process):
//  - DualStack: a dual-stack node (--cluster-cidr with one CIDR per family, a Node with an
//    address and a pod CIDR of each family). A RequireDualStack Service reached on both
//    families from a pod and from outside; IPv6 single-stack Services with both traffic
//    policies, affinity and no endpoints; the health-check node port answered on both
//    families; malformed family data refused with the rest working; per-family metrics and
//    health; --cleanup clearing both families.
//  - Ipv6Only: a single-stack IPv6 cluster (IPv6 cluster CIDR, Node and Services only).
//  - SctpUserspaceDualStack: --sctp-userspace-mode on a dual-stack node.
//  - NoIpv6: a node whose ip6tables does not work (a PATH entry that shadows it): kproxy
//    serves IPv4, says once that it ignores IPv6, and IPv6 Services get no rules.
//
// SCTP and REJECT: usrsctp reads no ICMP, so REJECT is checked with TCP and UDP only.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <set>
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

constexpr int kPodPort = 8080;
constexpr int kServicePort = 80;
constexpr const Proto kAllProtos[] = {Proto::kTcp, Proto::kUdp, Proto::kSctp};
constexpr auto kConverge = 10s;

std::string upper(Proto p) { return p == Proto::kTcp ? "TCP" : p == Proto::kUdp ? "UDP" : "SCTP"; }
int proto_index(Proto p) { return p == Proto::kTcp ? 0 : p == Proto::kUdp ? 1 : 2; }
bool is_v6(const std::string& ip) { return ip.find(':') != std::string::npos; }

// "IP:port" or "[IP]:port".
std::string at(const std::string& ip, int port = kServicePort) {
  return (is_v6(ip) ? "[" + ip + "]" : ip) + ":" + std::to_string(port);
}

std::string joined(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}
std::string describe(const RequestResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\nreplies:\n" + joined(r.lines) + "stderr: " + r.err;
}
// "<server> <source ip>:<port>" / "<server> [<source ip>]:<port>" -> server, source ip.
std::string server_of(const std::string& line) { return line.substr(0, line.find(' ')); }
std::string source_of(const std::string& line) {
  const auto space = line.find(' ');
  const auto colon = line.rfind(':');
  if (space == std::string::npos || colon == std::string::npos || colon < space) return "";
  std::string s = line.substr(space + 1, colon - space - 1);
  if (s.size() > 2 && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
  return s;
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
bool answered(const RequestResult& r, std::size_t count) { return r.exit_code == 0 && r.lines.size() == count; }

RequestResult eventually(const std::string& ns, Proto proto, const std::string& to, int count,
                         const std::function<bool(const RequestResult&)>& done, int timeout_ms = 1000) {
  const auto deadline = std::chrono::steady_clock::now() + kConverge;
  for (;;) {
    RequestResult r = TestCluster::request(ns, proto, to, timeout_ms, count);
    if (done(r) || std::chrono::steady_clock::now() > deadline) return r;
  }
}
RequestResult reaches(const std::string& ns, Proto proto, const std::string& to, int count,
                      const std::set<std::string>& want) {
  return eventually(ns, proto, to, count, [&](const RequestResult& r) {
    return answered(r, static_cast<std::size_t>(count)) && servers(r) == want;
  });
}

// ---- API objects -------------------------------------------------------------------------------

struct Ep {
  std::string ip;
  int node = 1;
};

struct Svc {
  std::string name{};
  std::vector<std::string> cluster_ips{};  // one per family, in ipFamilies order
  std::vector<std::string> families{};     // "IPv4", "IPv6"; empty: derived from cluster_ips
  std::string type = "ClusterIP";
  int node_port_base = 0;  // nodePort = base + protocol index
  std::string external_traffic_policy = "Cluster";
  std::string internal_traffic_policy = "Cluster";
  int health_check_node_port = 0;
  std::vector<std::string> lb_ingress_ips{};
  bool client_ip_affinity = false;
};

json service_json(const Svc& s) {
  json ports = json::array();
  for (Proto p : kAllProtos) {
    json port = {{"name", proto_name(p)}, {"protocol", upper(p)}, {"port", kServicePort}, {"targetPort", kPodPort}};
    if (s.type != "ClusterIP") port["nodePort"] = s.node_port_base + proto_index(p);
    ports.push_back(port);
  }
  std::vector<std::string> families = s.families;
  if (families.empty()) {
    for (const auto& ip : s.cluster_ips) families.push_back(is_v6(ip) ? "IPv6" : "IPv4");
  }
  json spec = {
      {"type", s.type},
      {"clusterIP", s.cluster_ips.front()},
      {"clusterIPs", s.cluster_ips},
      {"ipFamilies", families},
      {"ipFamilyPolicy", s.cluster_ips.size() == 2 ? "RequireDualStack" : "SingleStack"},
      {"internalTrafficPolicy", s.internal_traffic_policy},
      {"ports", ports},
      {"selector", {{"app", s.name}}},
      {"sessionAffinity", s.client_ip_affinity ? "ClientIP" : "None"},
  };
  if (s.client_ip_affinity) spec["sessionAffinityConfig"] = {{"clientIP", {{"timeoutSeconds", 10800}}}};
  if (s.type != "ClusterIP") spec["externalTrafficPolicy"] = s.external_traffic_policy;
  if (s.health_check_node_port != 0) spec["healthCheckNodePort"] = s.health_check_node_port;
  json status = {{"loadBalancer", json::object()}};
  for (const auto& ip : s.lb_ingress_ips) status["loadBalancer"]["ingress"].push_back({{"ip", ip}, {"ipMode", "VIP"}});
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata", {{"name", s.name}, {"namespace", "default"}}},
          {"spec", spec},
          {"status", status}};
}

json slice_json(const std::string& service, const std::string& address_type, const std::vector<Ep>& endpoints,
                const std::string& suffix) {
  json eps = json::array();
  for (const auto& e : endpoints) {
    eps.push_back({{"addresses", {e.ip}},
                   {"conditions", {{"ready", true}, {"serving", true}, {"terminating", false}}},
                   {"nodeName", "node" + std::to_string(e.node)}});
  }
  json ports = json::array();
  for (Proto p : kAllProtos) ports.push_back({{"name", proto_name(p)}, {"protocol", upper(p)}, {"port", kPodPort}});
  return {{"apiVersion", "discovery.k8s.io/v1"},
          {"kind", "EndpointSlice"},
          {"metadata",
           {{"name", service + "-" + suffix},
            {"namespace", "default"},
            {"labels", {{"kubernetes.io/service-name", service}}}}},
          {"addressType", address_type},
          {"endpoints", eps},
          {"ports", ports}};
}

json node_json(const std::vector<std::string>& addresses, const std::vector<std::string>& pod_cidrs) {
  json addrs = json::array();
  for (const auto& a : addresses) addrs.push_back({{"type", "InternalIP"}, {"address", a}});
  addrs.push_back({{"type", "Hostname"}, {"address", "node1"}});
  return {{"apiVersion", "v1"},
          {"kind", "Node"},
          {"metadata", {{"name", "node1"}, {"labels", {{"kubernetes.io/hostname", "node1"}}}}},
          {"spec", {{"podCIDR", pod_cidrs.front()}, {"podCIDRs", pod_cidrs}}},
          {"status", {{"addresses", addrs}}}};
}

// ---- One cluster with kproxy in node 1 ------------------------------------------------------

struct Env {
  std::unique_ptr<TestCluster> cluster;
  std::unique_ptr<fakeapi::FakeApiServer> api;
  BackgroundProcess* kproxy = nullptr;
  Pod* a1 = nullptr;  // backend on node 1
  Pod* b2 = nullptr;  // backend on node 2
  Pod* c1 = nullptr;  // client pod on node 1
  std::string kubeconfig;
  std::string path_dir;  // a PATH entry shadowing ip6tables (NoIpv6)
  std::string error;

  ~Env() {
    if (kproxy != nullptr) kproxy->stop();
    if (api) api->stop();
    cluster.reset();
    if (!kubeconfig.empty()) ::unlink(kubeconfig.c_str());
    if (!path_dir.empty()) std::system(("rm -rf " + path_dir).c_str());
  }

  std::string node1() const { return cluster->node_ns(1); }
  std::string outside() const { return cluster->client_ns(); }

  // Sets up the cluster and the API server, creates the objects `objects` makes, starts
  // kproxy with `extra` flags (and `env_path` prepended to PATH) and waits until `ready_to`
  // answers TCP from pod c1. Returns "" or why it failed.
  std::string start(const std::string& tag, const std::function<void(Env&)>& objects,
                    const std::vector<std::string>& extra, const std::string& ready_to) {
    cluster = std::make_unique<TestCluster>(tag);
    if (!cluster->ok()) return cluster->error();
    TestCluster& c = *cluster;
    a1 = &c.add_pod(1, "a1");
    b2 = &c.add_pod(2, "b2");
    c1 = &c.add_pod(1, "c1");
    if (!c.ok()) return c.error();
    const PeerPorts serve{{kPodPort}, {kPodPort}, {kPodPort}};
    if (c.start_peer(*a1, serve) == nullptr || c.start_peer(*b2, serve) == nullptr) return "a peer did not start";
    api = std::make_unique<fakeapi::FakeApiServer>();
    {
      ScopedNetnsEntry in_node1(c.node_ns(1));
      if (!in_node1.ok()) return in_node1.error();
      if (Status st = api->start(); !st.ok()) return "fake API server: " + st.message();
    }
    kubeconfig = "/tmp/kpt-" + tag + "-" + std::to_string(getpid()) + ".kubeconfig";
    if (Status st = api->write_kubeconfig(kubeconfig, false); !st.ok()) return "kubeconfig: " + st.message();
    objects(*this);
    std::vector<std::string> argv = {KPROXY_BINARY, "--kubeconfig=" + kubeconfig, "--hostname-override=node1",
                                     "--healthz-bind-address=127.0.0.1:10256",
                                     "--metrics-bind-address=127.0.0.1:10249", "--iptables-min-sync-period=100ms",
                                     "--v=2"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    if (!path_dir.empty()) {
      argv.insert(argv.begin(), {"env", "PATH=" + path_dir + ":" + std::string(std::getenv("PATH"))});
    }
    kproxy = &c.start(c.node_ns(1), argv);
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    for (;;) {
      RequestResult r = TestCluster::request(c1->ns, Proto::kTcp, at(ready_to), 500);
      // Ready when `ready_to` answers and every served family's first sync has finished (its
      // metrics and health set): the families sync at once, and either may finish first.
      const std::string err = kproxy->stderr_text();
      const bool both_synced = err.find("service ports of IPv4") != std::string::npos &&
                               (!path_dir.empty() || err.find("service ports of IPv6") != std::string::npos);
      if (r.exit_code == 0 && both_synced) return "";
      if (!kproxy->running()) return "kproxy exited\n" + kproxy->describe();
      if (std::chrono::steady_clock::now() > deadline) {
        return "kproxy did not program " + ready_to + " within 20 s: " + describe(r) + "\nkproxy stderr:\n" +
               kproxy->stderr_text();
      }
    }
  }

  void dump_on_failure() const {
    if (!cluster) return;
    std::string err = kproxy != nullptr ? kproxy->stderr_text() : "(not started)";
    if (err.size() > 20000) err = "...\n" + err.substr(err.size() - 20000);
    std::fprintf(stderr, "---- kproxy stderr:\n%s\n---- ip6tables-save in node 1:\n%s\n", err.c_str(),
                 TestCluster::exec(node1(), {"ip6tables-nft-save"}).out.c_str());
  }

  std::string http(const std::string& url) const {
    RunResult r = TestCluster::exec(node1(), {"curl", "-g", "-sS", "-m", "2", "-w", "\nHTTP %{http_code}", url});
    return r.out + r.err;
  }
};

// ---- Dual-stack node ----------------------------------------------------------------------------

constexpr const char* kDualIp4 = "10.96.1.10";
constexpr const char* kDualIp6 = "fd00:96::10";
constexpr int kDualNodePorts = 31080;
constexpr const char* kV6OnlyIp = "fd00:96::11";
constexpr const char* kV6LocalIp = "fd00:96::12";
constexpr const char* kV6LocalIngress = "2001:db8:113::30";
constexpr int kV6LocalNodePorts = 31180;
constexpr int kV6LocalHealthPort = 31190;
constexpr const char* kV6ItpIp = "fd00:96::13";
constexpr const char* kV6EmptyIp = "fd00:96::14";
constexpr const char* kV6StickyIp = "fd00:96::15";
constexpr const char* kV6NeighbourIp = "fd00:96::16";
constexpr const char* kV6ChurnIp = "fd00:96::17";
constexpr const char* kMismatchIp4 = "10.96.1.20";
constexpr const char* kMismatchIp6 = "fd00:96::20";
constexpr const char* kMappedIp = "::ffff:10.96.1.21";
constexpr const char* kZonedIp = "fd00:96::21%eth0";
constexpr const char* kBadSliceIp = "10.96.1.22";

class DualStack : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!can_create_netns()) return;
    env_ = new Env;
    env_->error = env_->start(
        "kpds",
        [](Env& e) {
          fakeapi::FakeApiServer& api = *e.api;
          const auto& c = *e.cluster;
          api.upsert("nodes", node_json({c.node_ip(1), c.node_ip6(1)}, {c.pod_cidr(1), c.pod_cidr6(1)}));
          const std::vector<Ep> v4 = {{e.a1->ip, 1}, {e.b2->ip, 2}};
          const std::vector<Ep> v6 = {{e.a1->ip6, 1}, {e.b2->ip6, 2}};
          auto add = [&](const Svc& s, const std::optional<std::vector<Ep>>& eps4,
                         const std::optional<std::vector<Ep>>& eps6) {
            api.upsert("services", service_json(s));
            if (eps4) api.upsert("endpointslices", slice_json(s.name, "IPv4", *eps4, "v4"));
            if (eps6) api.upsert("endpointslices", slice_json(s.name, "IPv6", *eps6, "v6"));
          };
          add(Svc{.name = "dual", .cluster_ips = {kDualIp4, kDualIp6}, .type = "NodePort",
                  .node_port_base = kDualNodePorts},
              v4, v6);
          add(Svc{.name = "v6only", .cluster_ips = {kV6OnlyIp}}, std::nullopt, v6);
          add(Svc{.name = "v6local", .cluster_ips = {kV6LocalIp}, .type = "LoadBalancer",
                  .node_port_base = kV6LocalNodePorts, .external_traffic_policy = "Local",
                  .health_check_node_port = kV6LocalHealthPort, .lb_ingress_ips = {kV6LocalIngress}},
              std::nullopt, v6);
          add(Svc{.name = "v6itp", .cluster_ips = {kV6ItpIp}, .internal_traffic_policy = "Local"}, std::nullopt, v6);
          add(Svc{.name = "v6empty", .cluster_ips = {kV6EmptyIp}}, std::nullopt, std::nullopt);
          add(Svc{.name = "v6sticky", .cluster_ips = {kV6StickyIp}, .client_ip_affinity = true}, std::nullopt, v6);
          add(Svc{.name = "v6churn", .cluster_ips = {kV6ChurnIp}}, std::nullopt, v6);
          // Malformed family data next to a good IPv6 Service.
          add(Svc{.name = "v6neighbour", .cluster_ips = {kV6NeighbourIp}}, std::nullopt, v6);
          add(Svc{.name = "mismatch", .cluster_ips = {kMismatchIp4, kMismatchIp6}, .families = {"IPv6", "IPv4"}}, v4,
              v6);
          add(Svc{.name = "mapped", .cluster_ips = {kMappedIp}, .families = {"IPv6"}}, std::nullopt, v6);
          add(Svc{.name = "zoned", .cluster_ips = {kZonedIp}, .families = {"IPv6"}}, std::nullopt, v6);
          add(Svc{.name = "bad-slice", .cluster_ips = {kBadSliceIp}}, std::nullopt, std::nullopt);
          // An IPv6 address in an IPv4 slice: the slice is refused; its IPv4 sibling serves.
          api.upsert("endpointslices", slice_json("bad-slice", "IPv4", {{e.a1->ip6, 1}}, "wrong"));
          api.upsert("endpointslices", slice_json("bad-slice", "IPv4", {{e.b2->ip, 2}}, "right"));
        },
        {"--cluster-cidr=10.244.0.0/16,fd00:10:244::/48", "--iptables-sync-period=2s"}, kV6OnlyIp);
  }
  static void TearDownTestSuite() {
    delete env_;
    env_ = nullptr;
  }
  void SetUp() override {
    if (!can_create_netns()) GTEST_SKIP() << "needs root and iproute2 (netns tier)";
    ASSERT_NE(env_, nullptr);
    ASSERT_EQ(env_->error, "") << "suite setup failed";
  }
  void TearDown() override {
    if (HasFailure() && env_ != nullptr) env_->dump_on_failure();
  }
  static Env& env() { return *env_; }
  static TestCluster& cluster() { return *env_->cluster; }

  static Env* env_;
};
Env* DualStack::env_ = nullptr;

// A RequireDualStack Service: its cluster IP of each family reaches both backends over that
// family from a pod, unmasqueraded; its NodePort answers on the node's address of each family
// from outside, masqueraded to node 1's address of that family.
TEST_F(DualStack, DualStackServiceAnswersOnBothFamiliesFromPodsAndOutside) {
  const Env& e = env();
  for (Proto proto : kAllProtos) {
    SCOPED_TRACE(proto_name(proto));
    for (const bool v6 : {false, true}) {
      SCOPED_TRACE(v6 ? "IPv6" : "IPv4");
      RequestResult in = reaches(e.c1->ns, proto, at(v6 ? kDualIp6 : kDualIp4), 16, {"a1", "b2"});
      ASSERT_TRUE(answered(in, 16)) << describe(in);
      EXPECT_EQ(servers(in), (std::set<std::string>{"a1", "b2"})) << describe(in);
      EXPECT_EQ(sources(in), std::set<std::string>{v6 ? e.c1->ip6 : e.c1->ip}) << describe(in);

      const std::string node_port = at(v6 ? cluster().node_ip6(1) : cluster().node_ip(1),
                                       kDualNodePorts + proto_index(proto));
      RequestResult out = reaches(e.outside(), proto, node_port, 12, {"a1", "b2"});
      ASSERT_TRUE(answered(out, 12)) << describe(out);
      EXPECT_EQ(sources(out).count(v6 ? cluster().client_ip6() : cluster().client_ip()), 0u)
          << "not masqueraded\n" << describe(out);
    }
  }
}

// The IPv6 side's rules live in ip6tables only, the IPv4 side's in iptables only.
TEST_F(DualStack, EachFamilysRulesAreInItsOwnTables) {
  const std::string v4 = TestCluster::exec(env().node1(), {"iptables-nft-save", "-t", "nat"}).out;
  const std::string v6 = TestCluster::exec(env().node1(), {"ip6tables-nft-save", "-t", "nat"}).out;
  EXPECT_NE(v4.find(std::string("-d ") + kDualIp4 + "/32"), std::string::npos) << v4;
  EXPECT_NE(v6.find(std::string("-d ") + kDualIp6 + "/128"), std::string::npos) << v6;
  EXPECT_NE(v6.find(std::string("-d ") + kV6OnlyIp + "/128"), std::string::npos) << v6;
  EXPECT_EQ(v4.find("fd00:"), std::string::npos) << v4;
  EXPECT_EQ(v6.find("10.96."), std::string::npos) << v6;
  EXPECT_NE(v6.find("KUBE-6-LOOP-BACK"), std::string::npos) << v6;
  // No route_localnet counterpart on IPv6: NodePorts skip ::1, and no KUBE-FIREWALL of kproxy.
  EXPECT_NE(v6.find("-A KUBE-SERVICES ! -d ::1/128 "), std::string::npos) << v6;
  const std::string sets = TestCluster::exec(env().node1(), {"ipset", "list", "-n"}).out;
  EXPECT_NE(sets.find("KUBE-LOOP-BACK"), std::string::npos) << sets;
  EXPECT_NE(sets.find("KUBE-6-LOOP-BACK"), std::string::npos) << sets;
}

// IPv6 single-stack: externalTrafficPolicy Local keeps the client's address and uses only
// node 1's endpoint for outside traffic; internalTrafficPolicy Local only node-local ones.
TEST_F(DualStack, Ipv6TrafficPoliciesLocal) {
  const Env& e = env();
  for (Proto proto : kAllProtos) {
    SCOPED_TRACE(proto_name(proto));
    for (const std::string& to :
         {at(cluster().node_ip6(1), kV6LocalNodePorts + proto_index(proto)), at(kV6LocalIngress)}) {
      SCOPED_TRACE(to);
      RequestResult r = reaches(e.outside(), proto, to, 8, {"a1"});
      ASSERT_TRUE(answered(r, 8)) << describe(r);
      EXPECT_EQ(sources(r), std::set<std::string>{cluster().client_ip6()}) << describe(r);
    }
    RequestResult itp = reaches(e.c1->ns, proto, at(kV6ItpIp), 8, {"a1"});
    ASSERT_TRUE(answered(itp, 8)) << describe(itp);
    EXPECT_EQ(servers(itp), std::set<std::string>{"a1"}) << describe(itp);
  }
}

// The health-check node port of an IPv6 Service answers on both families (one server; a
// wildcard listener is dual-stack), counting node 1's one local endpoint.
TEST_F(DualStack, HealthCheckNodePortAnswersOnBothFamilies) {
  for (const std::string& host : {std::string("127.0.0.1"), cluster().node_ip(1), "[" + cluster().node_ip6(1) + "]"}) {
    SCOPED_TRACE(host);
    std::string body;
    const auto deadline = std::chrono::steady_clock::now() + kConverge;
    do {
      body = env().http("http://" + host + ":" + std::to_string(kV6LocalHealthPort) + "/");
    } while (body.find("HTTP 200") == std::string::npos && std::chrono::steady_clock::now() < deadline);
    EXPECT_NE(body.find("\"localEndpoints\": 1"), std::string::npos) << body;
    EXPECT_NE(body.find("HTTP 200"), std::string::npos) << body;
  }
}

// No endpoints: REJECT over IPv6, an ICMPv6 port unreachable (ip6tables' default, as
// kube-proxy writes it). UDP sees it at once. Linux TCP over IPv6 takes it as a soft error
// while connecting and reports ECONNREFUSED at the first SYN retransmission (about 1 s; checked
// on 6.18 with a bare ip6tables REJECT, no kproxy), so TCP gets 4 s.
// ClientIP affinity pins an IPv6 client to one backend.
TEST_F(DualStack, Ipv6RejectWithoutEndpointsAndAffinity) {
  const Env& e = env();
  for (Proto proto : {Proto::kTcp, Proto::kUdp}) {
    SCOPED_TRACE(proto_name(proto));
    RequestResult r = TestCluster::request(e.c1->ns, proto, at(kV6EmptyIp), 4000);
    EXPECT_EQ(r.exit_code, 2) << describe(r);
  }
  for (Proto proto : kAllProtos) {
    SCOPED_TRACE(proto_name(proto));
    RequestResult r = eventually(e.c1->ns, proto, at(kV6StickyIp), 12, [](const RequestResult& r) {
      return answered(r, 12);
    });
    ASSERT_TRUE(answered(r, 12)) << describe(r);
    EXPECT_EQ(servers(r).size(), 1u) << describe(r);
  }
}

// Malformed family data is refused, named and counted; the neighbours keep working.
TEST_F(DualStack, MalformedFamilyDataIsRefusedAndNeighboursWork) {
  const Env& e = env();
  RequestResult ok = reaches(e.c1->ns, Proto::kTcp, at(kV6NeighbourIp), 8, {"a1", "b2"});
  EXPECT_TRUE(answered(ok, 8)) << describe(ok);
  // The slice with an IPv6 address in it is refused; its sibling serves the Service alone.
  RequestResult sibling = reaches(e.c1->ns, Proto::kTcp, at(kBadSliceIp), 8, {"b2"});
  EXPECT_EQ(servers(sibling), std::set<std::string>{"b2"}) << describe(sibling);
  // clusterIPs that disagree with ipFamilies, and an IPv4-mapped cluster IP: no rules at all.
  const std::string v4 = TestCluster::exec(e.node1(), {"iptables-nft-save", "-t", "nat"}).out;
  const std::string v6 = TestCluster::exec(e.node1(), {"ip6tables-nft-save", "-t", "nat"}).out;
  for (const std::string& s : {std::string(kMismatchIp4), std::string(kMismatchIp6), std::string("default/mapped"),
                               std::string("default/zoned"), std::string("fd00:96::21")}) {
    EXPECT_EQ(v4.find(s), std::string::npos) << s;
    EXPECT_EQ(v6.find(s), std::string::npos) << s;
  }
  const std::string err = e.kproxy->stderr_text();
  EXPECT_NE(err.find("default/mismatch"), std::string::npos) << err;
  EXPECT_NE(err.find("default/mapped"), std::string::npos) << err;
  EXPECT_NE(err.find("default/zoned"), std::string::npos) << err;
  EXPECT_NE(err.find("bad-slice-wrong"), std::string::npos) << err;
  const std::string metrics = e.http("http://127.0.0.1:10249/metrics");
  EXPECT_NE(metrics.find("kproxy_objects_rejected_total{kind=\"Service\",reason=\"family_mismatch\"}"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("kproxy_objects_rejected_total{kind=\"EndpointSlice\",reason=\"family_mismatch\"}"),
            std::string::npos)
      << metrics;
}

// Metrics carry both families; /healthz reports both.
TEST_F(DualStack, MetricsAndHealthCoverBothFamilies) {
  const std::string metrics = env().http("http://127.0.0.1:10249/metrics");
  for (const char* family : {"IPv4", "IPv6"}) {
    SCOPED_TRACE(family);
    EXPECT_NE(metrics.find(std::string("kubeproxy_sync_proxy_rules_last_timestamp_seconds{ip_family=\"") + family),
              std::string::npos)
        << metrics;
    EXPECT_NE(metrics.find(std::string("kubeproxy_sync_proxy_rules_iptables_total{ip_family=\"") + family +
                           "\",table=\"nat\"}"),
              std::string::npos)
        << metrics;
  }
  const std::string health = env().http("http://127.0.0.1:10256/healthz");
  EXPECT_NE(health.find("\"IPv4\""), std::string::npos) << health;
  EXPECT_NE(health.find("\"IPv6\""), std::string::npos) << health;
  EXPECT_NE(health.find("HTTP 200"), std::string::npos) << health;
}

// Conntrack cleanup on IPv6: a UDP or SCTP flow pinned to an endpoint by its conntrack entry
// moves to the remaining one only because kproxy deletes the entry after the sync that removed
// the endpoint (the removed pod still runs and would keep answering).
TEST_F(DualStack, Ipv6UdpAndSctpFlowsMoveOffARemovedEndpoint) {
  Env& e = env();
  int port = 40000;
  for (Proto proto : {Proto::kUdp, Proto::kSctp}) {
    SCOPED_TRACE(proto_name(proto));
    const std::string from = at(e.c1->ip6, port++);
    auto fixed = [&] {
      return kproxy::testing::run({"ip", "netns", "exec", e.c1->ns, testpeer_binary(), "request", "--proto",
                                   std::string(proto_name(proto)), "--to", at(kV6ChurnIp), "--bind", from, "--count",
                                   "1", "--timeout-ms", "2000"});
    };
    auto server = [](const RunResult& r) { return r.out.substr(0, r.out.find(' ')); };
    const auto first = fixed();
    ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
    const std::string pinned = server(first);
    ASSERT_TRUE(pinned == "a1" || pinned == "b2") << first.out;
    for (int i = 0; i < 3; ++i) {
      const auto again = fixed();
      ASSERT_EQ(again.exit_code, 0) << again.err;
      EXPECT_EQ(server(again), pinned) << again.out;
    }
    const bool drop_a1 = pinned == "a1";
    const std::string other = drop_a1 ? "b2" : "a1";
    e.api->upsert("endpointslices",
                  slice_json("v6churn", "IPv6", {drop_a1 ? Ep{e.b2->ip6, 2} : Ep{e.a1->ip6, 1}}, "v6"));
    std::string last;
    bool moved = false;
    for (auto deadline = std::chrono::steady_clock::now() + 10s; !moved && std::chrono::steady_clock::now() < deadline;) {
      const auto r = fixed();
      last = r.out + r.err;
      moved = r.exit_code == 0 && server(r) == other;
      if (!moved) std::this_thread::sleep_for(200ms);
    }
    EXPECT_TRUE(moved) << "still " << last;
    e.api->upsert("endpointslices", slice_json("v6churn", "IPv6", {{e.a1->ip6, 1}, {e.b2->ip6, 2}}, "v6"));
    reaches(e.c1->ns, proto, at(kV6ChurnIp), 12, {"a1", "b2"});
  }
}

// Each family has its canary: a flush of ip6tables' nat table (another program's doing) is
// noticed and repaired by a full IPv6 sync, while IPv4 keeps working throughout.
TEST_F(DualStack, AFlushedIpv6TableIsRepaired) {
  Env& e = env();
  RunResult flushed = TestCluster::exec(e.node1(), {"ip6tables-nft", "-w", "-t", "nat", "-F"});
  ASSERT_EQ(flushed.exit_code, 0) << flushed.err;
  RequestResult v4 = reaches(e.c1->ns, Proto::kTcp, at(kDualIp4), 4, {"a1", "b2"});
  EXPECT_TRUE(answered(v4, 4)) << describe(v4);
  // The check runs every --iptables-sync-period (2 s here).
  RequestResult v6 = eventually(e.c1->ns, Proto::kTcp, at(kV6OnlyIp), 4, [](const RequestResult& r) {
    return answered(r, 4);
  });
  EXPECT_TRUE(answered(v6, 4)) << describe(v6);
  // Another full sync (the Node arriving after the first one) may repair the rules before the
  // check runs; the canary itself stays empty until the check finds it, within a period.
  bool noticed = false;
  for (const auto deadline = std::chrono::steady_clock::now() + kConverge;
       !noticed && std::chrono::steady_clock::now() < deadline; std::this_thread::sleep_for(50ms)) {
    noticed = e.kproxy->stderr_text().find("IPv6 iptables canary gone from nat") != std::string::npos;
  }
  EXPECT_TRUE(noticed) << e.kproxy->stderr_text();
  RequestResult again = reaches(e.c1->ns, Proto::kTcp, at(kV6OnlyIp), 4, {"a1", "b2"});
  EXPECT_TRUE(answered(again, 4)) << describe(again);
}

// --cleanup after SIGTERM removes kproxy's chains and sets from both families' tables.
TEST_F(DualStack, CleanupClearsBothFamilies) {
  Env& e = env();
  e.kproxy->stop();
  RunResult r = TestCluster::exec(e.node1(), {KPROXY_BINARY, "--cleanup"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  for (const char* save : {"iptables-nft-save", "ip6tables-nft-save"}) {
    SCOPED_TRACE(save);
    const std::string out = TestCluster::exec(e.node1(), {save}).out;
    EXPECT_EQ(out.find("KUBE-SERVICES"), std::string::npos) << out;
    EXPECT_EQ(out.find("KUBE-SVC-"), std::string::npos) << out;
  }
  const std::string sets = TestCluster::exec(e.node1(), {"ipset", "list", "-n"}).out;
  EXPECT_EQ(sets.find("LOOP-BACK"), std::string::npos) << sets;
  e.kproxy = nullptr;  // stopped; nothing else in this suite needs it after this test
}

// ---- Single-stack IPv6 cluster -------------------------------------------------------------

constexpr const char* kV6WebIp = "fd00:96::100";
constexpr int kV6WebNodePorts = 31280;

class Ipv6Only : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!can_create_netns()) GTEST_SKIP() << "needs root and iproute2 (netns tier)";
    env_ = std::make_unique<Env>();
    const std::string error = env_->start(
        "kp6",
        [](Env& e) {
          const auto& c = *e.cluster;
          e.api->upsert("nodes", node_json({c.node_ip6(1)}, {c.pod_cidr6(1)}));
          e.api->upsert("services", service_json(Svc{.name = "web", .cluster_ips = {kV6WebIp}, .type = "NodePort",
                                                     .node_port_base = kV6WebNodePorts}));
          e.api->upsert("endpointslices", slice_json("web", "IPv6", {{e.a1->ip6, 1}, {e.b2->ip6, 2}}, "v6"));
        },
        {"--cluster-cidr=fd00:10:244::/48"}, kV6WebIp);
    ASSERT_EQ(error, "");
  }
  void TearDown() override {
    if (HasFailure() && env_) env_->dump_on_failure();
  }
  std::unique_ptr<Env> env_;
};

TEST_F(Ipv6Only, ClusterIpAndNodePortCarryTcpUdpAndSctp) {
  Env& e = *env_;
  for (Proto proto : kAllProtos) {
    SCOPED_TRACE(proto_name(proto));
    RequestResult in = reaches(e.c1->ns, proto, at(kV6WebIp), 16, {"a1", "b2"});
    ASSERT_TRUE(answered(in, 16)) << describe(in);
    EXPECT_EQ(sources(in), std::set<std::string>{e.c1->ip6}) << "pod traffic is not masqueraded\n" << describe(in);
    RequestResult node = reaches(e.node1(), proto, at(kV6WebIp), 8, {"a1", "b2"});
    ASSERT_TRUE(answered(node, 8)) << describe(node);
    const std::string node_port = at(e.cluster->node_ip6(1), kV6WebNodePorts + proto_index(proto));
    RequestResult out = reaches(e.outside(), proto, node_port, 12, {"a1", "b2"});
    ASSERT_TRUE(answered(out, 12)) << describe(out);
    EXPECT_EQ(sources(out).count(e.cluster->client_ip6()), 0u) << "not masqueraded\n" << describe(out);
  }
  // The IPv4 side has nothing to serve: no service rule in iptables.
  const std::string v4 = TestCluster::exec(e.node1(), {"iptables-nft-save", "-t", "nat"}).out;
  EXPECT_EQ(v4.find("KUBE-SVC-"), std::string::npos) << v4;
}

// ---- Userspace SCTP on a dual-stack node ---------------------------------------------------

class SctpUserspaceDualStack : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!can_create_netns()) GTEST_SKIP() << "needs root and iproute2 (netns tier)";
    env_ = std::make_unique<Env>();
    const std::string error = env_->start(
        "kpus6",
        [](Env& e) {
          const auto& c = *e.cluster;
          e.api->upsert("nodes", node_json({c.node_ip(1), c.node_ip6(1)}, {c.pod_cidr(1), c.pod_cidr6(1)}));
          e.api->upsert("services", service_json(Svc{.name = "dual", .cluster_ips = {kDualIp4, kDualIp6},
                                                     .type = "NodePort", .node_port_base = kDualNodePorts}));
          e.api->upsert("endpointslices", slice_json("dual", "IPv4", {{e.a1->ip, 1}, {e.b2->ip, 2}}, "v4"));
          e.api->upsert("endpointslices", slice_json("dual", "IPv6", {{e.a1->ip6, 1}, {e.b2->ip6, 2}}, "v6"));
        },
        {"--cluster-cidr=10.244.0.0/16,fd00:10:244::/48", "--sctp-userspace-mode"}, kDualIp6);
    ASSERT_EQ(error, "");
  }
  void TearDown() override {
    if (HasFailure() && env_) env_->dump_on_failure();
  }
  std::unique_ptr<Env> env_;
};

// --sctp-userspace-mode on a dual-stack node: SCTP Service ports of both families are served
// by the usrsctp proxy (IPv6 through its raw IPv6 socket), steered by Service addresses made
// local on lo, while neither iptables nor ip6tables names SCTP; TCP stays in the rules. Both
// families' addresses stay on lo together (each family's sync keeps the other's).
TEST_F(SctpUserspaceDualStack, SctpOnBothFamiliesThroughTheProxyAndNoRuleNamesSctp) {
  Env& e = *env_;
  for (const bool v6 : {false, true}) {
    SCOPED_TRACE(v6 ? "IPv6" : "IPv4");
    RequestResult in = reaches(e.c1->ns, Proto::kSctp, at(v6 ? kDualIp6 : kDualIp4), 12, {"a1", "b2"});
    ASSERT_TRUE(answered(in, 12)) << describe(in);
    const std::string node_port =
        at(v6 ? e.cluster->node_ip6(1) : e.cluster->node_ip(1), kDualNodePorts + proto_index(Proto::kSctp));
    RequestResult out = reaches(e.outside(), Proto::kSctp, node_port, 8, {"a1", "b2"});
    ASSERT_TRUE(answered(out, 8)) << describe(out);
    RequestResult echo =
        TestCluster::request(e.c1->ns, Proto::kSctp, at(v6 ? kDualIp6 : kDualIp4), 5000, 2, {"--echo-check", "1"});
    EXPECT_TRUE(answered(echo, 2)) << describe(echo);
    RequestResult tcp = reaches(e.c1->ns, Proto::kTcp, at(v6 ? kDualIp6 : kDualIp4), 8, {"a1", "b2"});
    EXPECT_TRUE(answered(tcp, 8)) << describe(tcp);
  }
  for (const char* save : {"iptables-nft-save", "ip6tables-nft-save"}) {
    const std::string rules = TestCluster::exec(e.node1(), {save}).out;
    EXPECT_EQ(rules.find("-p sctp"), std::string::npos) << save << "\n" << rules;
    EXPECT_EQ(rules.find("-m sctp"), std::string::npos) << save << "\n" << rules;
  }
  const std::string lo = TestCluster::exec(e.node1(), {"ip", "addr", "show", "dev", "lo"}).out;
  EXPECT_NE(lo.find(std::string(kDualIp4) + "/32"), std::string::npos) << lo;
  EXPECT_NE(lo.find(std::string(kDualIp6) + "/128"), std::string::npos) << lo;
}

// ---- A node without working ip6tables -------------------------------------------------------

class NoIpv6 : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!can_create_netns()) GTEST_SKIP() << "needs root and iproute2 (netns tier)";
    env_ = std::make_unique<Env>();
    // ip6tables that fails as it does where the kernel has no ip6_tables.
    env_->path_dir = "/tmp/kpt-noip6-" + std::to_string(getpid());
    ::mkdir(env_->path_dir.c_str(), 0755);
    for (const char* tool : {"ip6tables-nft", "ip6tables-nft-restore", "ip6tables-nft-save", "ip6tables-legacy",
                             "ip6tables-legacy-restore", "ip6tables-legacy-save"}) {
      const std::string path = env_->path_dir + "/" + tool;
      std::ofstream(path) << "#!/bin/sh\necho \"ip6tables: can't initialize ip6tables table `nat': Table does not "
                             "exist\" >&2\nexit 3\n";
      ::chmod(path.c_str(), 0755);
    }
    const std::string error = env_->start(
        "kpn6",
        [](Env& e) {
          const auto& c = *e.cluster;
          e.api->upsert("nodes", node_json({c.node_ip(1)}, {c.pod_cidr(1)}));
          e.api->upsert("services", service_json(Svc{.name = "dual", .cluster_ips = {kDualIp4, kDualIp6}}));
          e.api->upsert("endpointslices", slice_json("dual", "IPv4", {{e.a1->ip, 1}, {e.b2->ip, 2}}, "v4"));
          e.api->upsert("endpointslices", slice_json("dual", "IPv6", {{e.a1->ip6, 1}, {e.b2->ip6, 2}}, "v6"));
        },
        {"--cluster-cidr=10.244.0.0/16"}, kDualIp4);
    ASSERT_EQ(error, "");
  }
  void TearDown() override {
    if (HasFailure() && env_) env_->dump_on_failure();
  }
  std::unique_ptr<Env> env_;
};

TEST_F(NoIpv6, ServesIpv4AndSaysOnceThatItIgnoresIpv6) {
  Env& e = *env_;
  RequestResult r = reaches(e.c1->ns, Proto::kTcp, at(kDualIp4), 8, {"a1", "b2"});
  EXPECT_TRUE(answered(r, 8)) << describe(r);
  const std::string err = e.kproxy->stderr_text();
  EXPECT_NE(err.find("IPv6 is not available on this node"), std::string::npos) << err;
  EXPECT_NE(err.find("using iptables mode (nft), IPv4\n"), std::string::npos) << err;
  const auto first = err.find("which this single-stack node does not serve");
  EXPECT_NE(first, std::string::npos) << err;
  EXPECT_EQ(err.find("which this single-stack node does not serve", first + 1), std::string::npos) << "said twice\n"
                                                                                                   << err;
  // Nothing was written to the real ip6tables.
  const std::string v6 = TestCluster::exec(e.node1(), {"ip6tables-nft-save"}).out;
  EXPECT_EQ(v6.find("KUBE-"), std::string::npos) << v6;
}

}  // namespace
}  // namespace kproxy::testing
