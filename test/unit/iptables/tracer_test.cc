// Service semantics on the rendered rule set, by tracing packets through it: who reaches which
// endpoint, who is masqueraded, what is rejected or dropped. The matrix of sources (a pod on
// this node, a pod elsewhere, a client outside the cluster, the node itself) and destinations
// (cluster IP, NodePort, external IP, load-balancer IP) under each traffic policy follows
// kube-proxy's TestInternalExternalMasquerade (pkg/proxy/iptables/proxier_test.go).
#include "kproxy/iptables/tracer.h"

#include <gtest/gtest.h>

#include <map>

#include "kproxy/proxier/service_port_name.h"

#include "service_builder.h"

namespace kproxy::iptables {
namespace {

using testing::cidr;
using testing::EndpointSpec;
using testing::ip;
using testing::ServiceBuilder;
using testing::snapshot;
constexpr auto kTcp = model::Protocol::kTcp;
constexpr auto kUdp = model::Protocol::kUdp;
constexpr auto kSctp = model::Protocol::kSctp;

// This node: 192.168.0.2 on eth0, pods in 10.180.0.0/24 behind veths; cluster CIDR 10.0.0.0/8.
const char* const kNodeIp = "192.168.0.2";
const char* const kLocalPod = "10.180.0.2";
const char* const kRemotePod = "10.180.1.2";
const char* const kOutside = "203.0.113.100";

enum class From { kLocalPod, kRemotePod, kOutside, kNode };

class Cluster {
 public:
  // Every trace also runs through the lean layout (kKproxy, lean endpoint rules) and must give
  // the same outcomes (docs/iptables.md, "Lean endpoint rules").
  explicit Cluster(std::vector<ServiceBuilder> services, RenderOptions o = default_options())
      : options_(std::move(o)),
        lean_options_(lean(options_)),
        rules_(render(snapshot(services), options_)),
        lean_rules_(render(snapshot(services), lean_options_)),
        jumps_(builtin_jumps(options_)),
        lean_jumps_(builtin_jumps(lean_options_)) {
    env_.local_addresses = {ip(kNodeIp)};
  }
  static RenderOptions lean(RenderOptions o) {
    o.layout = RenderOptions::Layout::kKproxy;
    o.lean_endpoints = true;
    return o;
  }

  static RenderOptions default_options() {
    RenderOptions o;
    o.node = {"node1", "zone-a"};
    o.node_ip = ip(kNodeIp);
    o.local_detector = {LocalDetector::Mode::kCidr, cidr("10.0.0.0/8"), ""};
    return o;
  }

  std::vector<TraceOutcome> send(From from, const std::string& to, std::uint16_t port, model::Protocol proto = kTcp,
                                 const std::string& source_override = "") const {
    Packet p;
    p.destination = ip(to);
    p.destination_port = port;
    p.protocol = proto;
    switch (from) {
      case From::kLocalPod: p.source = ip(kLocalPod), p.in_interface = "veth1234"; break;
      case From::kRemotePod: p.source = ip(kRemotePod), p.in_interface = "eth0"; break;
      case From::kOutside: p.source = ip(kOutside), p.in_interface = "eth0"; break;
      case From::kNode: p.source = ip(kNodeIp), p.locally_generated = true; break;
    }
    if (!source_override.empty()) p.source = ip(source_override);
    auto outcomes = trace(rules_, jumps_, p, env_);
    const auto lean_outcomes = trace(lean_rules_, lean_jumps_, p, env_);
    EXPECT_EQ(outcomes.size(), lean_outcomes.size()) << to << ":" << port;
    for (std::size_t i = 0; i < std::min(outcomes.size(), lean_outcomes.size()); ++i) {
      EXPECT_EQ(outcomes[i].summary(), lean_outcomes[i].summary()) << "lean layout, " << to << ":" << port;
      EXPECT_DOUBLE_EQ(outcomes[i].probability, lean_outcomes[i].probability);
      EXPECT_EQ(outcomes[i].recent_set, lean_outcomes[i].recent_set);
    }
    return outcomes;
  }
  // The one outcome of a deterministic trace.
  TraceOutcome one(From from, const std::string& to, std::uint16_t port, model::Protocol proto = kTcp) const {
    auto all = send(from, to, port, proto);
    EXPECT_EQ(all.size(), 1u);
    return all.front();
  }
  // Endpoint "IP:port" -> probability, plus whether every outcome was masqueraded.
  std::map<std::string, double> spread(From from, const std::string& to, std::uint16_t port) const {
    std::map<std::string, double> m;
    for (const auto& o : send(from, to, port)) m[o.summary()] += o.probability;
    return m;
  }

  TraceEnvironment env_;

 private:
  RenderOptions options_;
  RenderOptions lean_options_;
  RenderedRules rules_;
  RenderedRules lean_rules_;
  std::vector<BuiltinJump> jumps_;
  std::vector<BuiltinJump> lean_jumps_;
};

// A Service of every externally reachable kind, with one endpoint here and one on node2.
ServiceBuilder everywhere(const std::string& name, const std::string& cluster_ip, std::uint16_t node_port,
                          const std::string& external_ip, const std::string& lb_ip) {
  return ServiceBuilder("ns", name, "", kTcp, cluster_ip, 80)
      .node_port(node_port)
      .external_ip(external_ip)
      .lb_ip(lb_ip)
      .endpoint({"10.180.0.10", 8080, "node1"})
      .endpoint({"10.180.1.10", 8080, "node2"});
}

const std::string kHere = "DNAT 10.180.0.10:8080";
const std::string kThere = "DNAT 10.180.1.10:8080";

TEST(Tracer, ClusterIpBalancesEvenlyOverEndpoints) {
  std::vector<ServiceBuilder> s{ServiceBuilder("ns", "web", "", kTcp, "10.96.0.10", 80)
                                    .endpoint({"10.180.0.10", 80, "node1"})
                                    .endpoint({"10.180.0.11", 80, "node1"})
                                    .endpoint({"10.180.1.10", 80, "node2"})
                                    .endpoint({"10.180.1.11", 80, "node2"})};
  Cluster c(s);
  const auto m = c.spread(From::kLocalPod, "10.96.0.10", 80);
  ASSERT_EQ(m.size(), 4u);
  double total = 0;
  for (const auto& [what, p] : m) {
    EXPECT_NEAR(p, 0.25, 1e-9) << what;
    EXPECT_EQ(what.find("masq"), std::string::npos) << "pod traffic to a cluster IP keeps its source";
    total += p;
  }
  EXPECT_NEAR(total, 1.0, 1e-9);
}

TEST(Tracer, MasqueradeMatrixUnderClusterPolicies) {
  Cluster c({everywhere("svc", "10.96.0.20", 30020, "203.0.113.1", "203.0.113.2")});
  // Cluster IP: masqueraded unless the source is in the cluster CIDR.
  for (const auto& o : c.send(From::kLocalPod, "10.96.0.20", 80)) EXPECT_FALSE(o.masqueraded) << o.summary();
  for (const auto& o : c.send(From::kRemotePod, "10.96.0.20", 80)) EXPECT_FALSE(o.masqueraded) << o.summary();
  for (const auto& o : c.send(From::kOutside, "10.96.0.20", 80)) EXPECT_TRUE(o.masqueraded) << o.summary();
  for (const auto& o : c.send(From::kNode, "10.96.0.20", 80)) EXPECT_TRUE(o.masqueraded) << o.summary();
  // External destinations under externalTrafficPolicy Cluster: always masqueraded.
  for (From from : {From::kLocalPod, From::kRemotePod, From::kOutside, From::kNode}) {
    for (const auto& [dst, port] : std::vector<std::pair<std::string, std::uint16_t>>{
             {kNodeIp, 30020}, {"203.0.113.1", 80}, {"203.0.113.2", 80}}) {
      const auto outcomes = c.send(from, dst, port);
      ASSERT_EQ(outcomes.size(), 2u) << dst;
      for (const auto& o : outcomes) {
        EXPECT_TRUE(o.masqueraded) << dst << ":" << port << " " << o.summary();
        EXPECT_TRUE(o.dnat_ip.has_value());
      }
    }
  }
}

TEST(Tracer, ExternalTrafficPolicyLocal) {
  auto svc = everywhere("svc", "10.96.0.21", 30021, "203.0.113.1", "203.0.113.2").etp_local();
  Cluster c({svc});
  for (const auto& [dst, port] : std::vector<std::pair<std::string, std::uint16_t>>{
           {kNodeIp, 30021}, {"203.0.113.1", 80}, {"203.0.113.2", 80}}) {
    // From outside: only the local endpoint, source kept.
    EXPECT_EQ(c.one(From::kOutside, dst, port).summary(), kHere) << dst;
    // From a pod: short-circuited to all endpoints, source kept.
    EXPECT_EQ(c.spread(From::kLocalPod, dst, port), (std::map<std::string, double>{{kHere, 0.5}, {kThere, 0.5}}))
        << dst;
    // From the node itself: all endpoints, masqueraded.
    EXPECT_EQ(c.spread(From::kNode, dst, port),
              (std::map<std::string, double>{{kHere + " masq", 0.5}, {kThere + " masq", 0.5}}))
        << dst;
  }
}

TEST(Tracer, ExternalTrafficPolicyLocalWithoutLocalEndpointsDropsOutsideTrafficOnly) {
  auto svc = ServiceBuilder("ns", "svc", "", kTcp, "10.96.0.22", 80)
                 .node_port(30022)
                 .lb_ip("203.0.113.2")
                 .etp_local()
                 .endpoint({"10.180.1.10", 8080, "node2"});
  Cluster c({svc});
  EXPECT_EQ(c.one(From::kOutside, kNodeIp, 30022).summary(), "DROP");
  EXPECT_EQ(c.one(From::kOutside, "203.0.113.2", 80).summary(), "DROP");
  EXPECT_EQ(c.one(From::kLocalPod, "203.0.113.2", 80).summary(), kThere);
  EXPECT_EQ(c.one(From::kNode, kNodeIp, 30022).summary(), kThere + " masq");
  EXPECT_EQ(c.one(From::kLocalPod, "10.96.0.22", 80).summary(), kThere) << "the cluster IP still uses every endpoint";
}

TEST(Tracer, InternalTrafficPolicyLocal) {
  auto svc = everywhere("svc", "10.96.0.23", 30023, "203.0.113.1", "203.0.113.2").itp_local();
  Cluster c({svc});
  EXPECT_EQ(c.one(From::kLocalPod, "10.96.0.23", 80).summary(), kHere);
  EXPECT_EQ(c.one(From::kNode, "10.96.0.23", 80).summary(), kHere + " masq");
  // External destinations still use every endpoint.
  EXPECT_EQ(c.spread(From::kOutside, kNodeIp, 30023).size(), 2u);

  auto remote_only = ServiceBuilder("ns", "r", "", kTcp, "10.96.0.24", 80).itp_local().endpoint({"10.180.1.10", 8080, "node2"});
  Cluster d({remote_only});
  EXPECT_EQ(d.one(From::kLocalPod, "10.96.0.24", 80).summary(), "DROP");
}

TEST(Tracer, HairpinIsMasqueraded) {
  Cluster c({ServiceBuilder("ns", "self", "", kTcp, "10.96.0.25", 80).endpoint({kLocalPod, 8080, "node1"})});
  EXPECT_EQ(c.one(From::kLocalPod, "10.96.0.25", 80).summary(), "DNAT 10.180.0.2:8080 masq");
}

TEST(Tracer, HairpinOnlyForThePodReachingItself) {
  for (auto proto : {kTcp, kUdp, kSctp}) {
    Cluster c({ServiceBuilder("ns", "two", "", proto, "10.96.0.32", 80)
                   .endpoint({kLocalPod, 8080, "node1"})
                   .endpoint({"10.180.0.3", 8080, "node1"})});
    std::map<std::string, double> expected{{"DNAT 10.180.0.2:8080 masq", 0.5}, {"DNAT 10.180.0.3:8080", 0.5}};
    std::map<std::string, double> got;
    for (const auto& o : c.send(From::kLocalPod, "10.96.0.32", 80, proto)) got[o.summary()] += o.probability;
    EXPECT_EQ(got, expected) << proxier::lower_case_protocol(proto);
  }
}

TEST(Tracer, NoEndpointsRejectsEveryDestination) {
  Cluster c({ServiceBuilder("ns", "none", "", kUdp, "10.96.0.26", 53)
                 .node_port(30026)
                 .external_ip("203.0.113.1")
                 .lb_ip("203.0.113.2")});
  EXPECT_EQ(c.one(From::kLocalPod, "10.96.0.26", 53, kUdp).summary(), "REJECT");
  EXPECT_EQ(c.one(From::kNode, "10.96.0.26", 53, kUdp).summary(), "REJECT");
  EXPECT_EQ(c.one(From::kOutside, kNodeIp, 30026, kUdp).summary(), "REJECT");
  EXPECT_EQ(c.one(From::kOutside, "203.0.113.1", 53, kUdp).summary(), "REJECT");
  EXPECT_EQ(c.one(From::kOutside, "203.0.113.2", 53, kUdp).summary(), "REJECT");
  // Other ports of those addresses are not touched.
  EXPECT_EQ(c.one(From::kLocalPod, "10.96.0.26", 54, kUdp).summary(), "ACCEPT");
}

TEST(Tracer, SourceRanges) {
  auto svc = ServiceBuilder("ns", "fw", "", kTcp, "10.96.0.27", 443)
                 .lb_ip("203.0.113.20")
                 .node_port(30027)
                 .source_range("203.0.113.0/25")
                 .endpoint({"10.180.1.10", 8080, "node2"});
  Cluster c({svc});
  EXPECT_EQ(c.one(From::kOutside, "203.0.113.20", 443).summary(), kThere + " masq");
  auto denied = c.send(From::kOutside, "203.0.113.20", 443, kTcp, "198.51.100.1");
  ASSERT_EQ(denied.size(), 1u);
  EXPECT_EQ(denied[0].summary(), "DROP");
  // NodePorts ignore source ranges, as in kube-proxy.
  EXPECT_EQ(c.send(From::kOutside, kNodeIp, 30027, kTcp, "198.51.100.1")[0].summary(), kThere + " masq");

  Cluster closed({ServiceBuilder("ns", "fw", "", kTcp, "10.96.0.27", 443)
                      .lb_ip("203.0.113.20")
                      .source_range("203.0.113.0/25")
                      .source_ranges_incomplete()
                      .endpoint({"10.180.1.10", 8080, "node2"})});
  EXPECT_EQ(closed.send(From::kOutside, "203.0.113.20", 443, kTcp, "198.51.100.1")[0].summary(), "DROP");
  EXPECT_EQ(closed.one(From::kOutside, "203.0.113.20", 443).summary(), kThere + " masq")
      << "ranges that survived validation still admit their sources";
}

TEST(Tracer, SessionAffinitySticksToTheRememberedEndpoint) {
  auto svc = ServiceBuilder("ns", "sticky", "", kTcp, "10.96.0.28", 80)
                 .affinity(10800)
                 .endpoint({"10.180.0.10", 8080, "node1"})
                 .endpoint({"10.180.1.10", 8080, "node2"});
  Cluster c({svc});
  const auto first = c.send(From::kLocalPod, "10.96.0.28", 80);
  ASSERT_EQ(first.size(), 2u);
  for (const auto& o : first) ASSERT_EQ(o.recent_set.size(), 1u);
  c.env_.recent = {endpoint_chain_name(svc.info().name, svc.info().endpoints[1])};
  EXPECT_EQ(c.one(From::kLocalPod, "10.96.0.28", 80).summary(), kThere);
}

TEST(Tracer, TerminatingEndpointsServeWhenNothingIsReady) {
  auto svc = ServiceBuilder("ns", "term", "", kTcp, "10.96.0.29", 80)
                 .endpoint({"10.180.0.10", 8080, "node1", false, true, true})
                 .endpoint({"10.180.1.10", 8080, "node2", false, false, true});  // not serving
  Cluster c({svc});
  EXPECT_EQ(c.one(From::kLocalPod, "10.96.0.29", 80).summary(), kHere);
}

TEST(Tracer, ProtocolsDoNotCrossMatch) {
  Cluster c({ServiceBuilder("core", "diameter", "", kSctp, "10.96.0.30", 3868).endpoint({"10.180.1.10", 3868, "node2"})});
  EXPECT_EQ(c.one(From::kLocalPod, "10.96.0.30", 3868, kSctp).summary(), "DNAT 10.180.1.10:3868");
  EXPECT_EQ(c.one(From::kLocalPod, "10.96.0.30", 3868, kTcp).summary(), "ACCEPT");
}

TEST(Tracer, LocalhostNodePortsAndTheLocalnetRule) {
  Cluster c({ServiceBuilder("ns", "np", "", kTcp, "10.96.0.31", 80).node_port(30031).endpoint({"10.180.1.10", 8080, "node2"})});
  EXPECT_EQ(c.one(From::kNode, "127.0.0.1", 30031).summary(), kThere + " masq");
  // A martian packet to 127.0.0.1 from the network that no Service DNATs is dropped.
  EXPECT_EQ(c.one(From::kOutside, "127.0.0.1", 22).summary(), "DROP");

  auto o = Cluster::default_options();
  o.localhost_nodeports = false;
  Cluster off({ServiceBuilder("ns", "np", "", kTcp, "10.96.0.31", 80).node_port(30031).endpoint({"10.180.1.10", 8080, "node2"})},
              o);
  EXPECT_EQ(off.one(From::kNode, "127.0.0.1", 30031).summary(), "ACCEPT local");
}

TEST(Tracer, CountsRuleEvaluations) {
  std::vector<ServiceBuilder> many;
  for (int i = 0; i < 50; ++i) {
    many.push_back(ServiceBuilder("ns", "s" + std::to_string(i), "", kTcp, "10.96.1." + std::to_string(i + 1), 80)
                       .endpoint({"10.180.1.10", 8080, "node2"}));
  }
  Cluster c(many);
  const auto first = c.one(From::kLocalPod, "10.96.1.1", 80);
  const auto last = c.one(From::kLocalPod, "10.96.1.50", 80);
  EXPECT_GT(last.rules_evaluated, first.rules_evaluated + 40) << "kube-proxy's layout is a linear scan";
}

}  // namespace
}  // namespace kproxy::iptables
