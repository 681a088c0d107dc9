// The dispatch tree (kKproxy layout): same packets, same outcomes as kube-proxy's layout, with
// rule evaluations growing with log(n) instead of n, and a shape that changes locally.
#include <gtest/gtest.h>

#include <random>

#include "kproxy/iptables/proxier.h"
#include "kproxy/iptables/render.h"
#include "kproxy/iptables/tracer.h"
#include "fake_iptables.h"
#include "service_builder.h"

namespace kproxy::iptables {
namespace {

using testing::cidr;
using testing::ip;
using testing::ServiceBuilder;
using testing::snapshot;

RenderOptions options(RenderOptions::Layout layout) { return testing::render_options(layout); }

std::string ipv4(std::uint32_t v) { return IpAddress::from_v4(v).to_string(); }

// n Services with cluster IPs spread over 10.96.0.0/12 (as the API server allocates them at
// random), every fifth with an external IP, one endpoint each.
std::vector<ServiceBuilder> cluster(int n, std::uint32_t seed = 1) {
  std::mt19937 rng(seed);
  std::set<std::uint32_t> used;
  std::vector<ServiceBuilder> out;
  const std::uint32_t base = ip("10.96.0.0").v4_host_order();
  for (int i = 0; i < n; ++i) {
    std::uint32_t a;
    do a = base + 1 + rng() % ((1u << 20) - 2);
    while (!used.insert(a).second);
    ServiceBuilder b("ns", "s" + std::to_string(i), "", i % 3 == 2 ? model::Protocol::kUdp : model::Protocol::kTcp,
                     ipv4(a), static_cast<std::uint16_t>(80 + i % 2));
    if (i % 5 == 0) b.external_ip(ipv4(ip("203.0.113.0").v4_host_order() + static_cast<std::uint32_t>(i % 250)));
    b.endpoint({ipv4(ip("10.180.0.0").v4_host_order() + static_cast<std::uint32_t>(i + 2)), 8080, "node2"});
    out.push_back(b);
  }
  return out;
}

TEST(DispatchTree, ChainsStayShortAndKeepEveryRule) {
  const auto s = snapshot(cluster(2000));
  const auto flat = render(s, options(RenderOptions::Layout::kKubeProxy));
  const auto tree = render(s, options(RenderOptions::Layout::kKproxy));
  EXPECT_TRUE(flat.nat_dispatch.empty());
  ASSERT_FALSE(tree.nat_dispatch.empty());
  std::size_t leaf_rules = 0;
  for (const auto& chain : tree.nat_dispatch) {
    const Chain& c = *chain;
    const bool leaf = c.name.starts_with(std::string(kDispatchChainPrefix) + "6-");
    if (!leaf) {
      EXPECT_LE(c.rules.size(), 4u) << c.name;
    }
    EXPECT_TRUE(c.name.starts_with(kDispatchChainPrefix)) << c.name;
    EXPECT_LE(c.name.size(), 28u);
    for (const Rule& r : c.rules) leaf_rules += std::holds_alternative<Jump>(r.target) &&
                                                !std::get<Jump>(r.target).chain.starts_with(kDispatchChainPrefix);
  }
  const Chain* root = tree.find(Table::kNat, kServicesChain);
  ASSERT_NE(root, nullptr);
  EXPECT_LE(root->rules.size(), 5u) << "four subtrees and the NodePort tail";
  for (const Rule& r : root->rules) leaf_rules += !std::get<Jump>(r.target).chain.starts_with(kDispatchChainPrefix);
  // Every service rule of the flat KUBE-SERVICES is somewhere in the tree (the tail counted in both).
  EXPECT_EQ(leaf_rules, flat.find(Table::kNat, kServicesChain)->rules.size());
  // Service chains are untouched.
  ASSERT_EQ(tree.ports.size(), flat.ports.size());
  for (const auto& [name, port] : tree.ports) EXPECT_EQ(*port, *flat.ports.at(name)) << proxier::to_string(name);
}

TEST(DispatchTree, EveryPacketHasTheSameOutcomeAsInKubeProxysLayout) {
  const auto services = cluster(600, 7);
  const auto s = snapshot(services);
  const auto flat_opts = options(RenderOptions::Layout::kKubeProxy);
  const auto tree_opts = options(RenderOptions::Layout::kKproxy);
  const auto flat = render(s, flat_opts);
  const auto tree = render(s, tree_opts);
  TraceEnvironment env;
  env.local_addresses = {ip("192.168.0.2")};
  std::vector<Packet> packets;
  for (const auto& b : services) {
    const auto& info = b.info();
    for (const auto& dst : std::vector<IpAddress>{info.cluster_ip}) {
      for (std::uint16_t port : {info.port, static_cast<std::uint16_t>(info.port + 1)}) {
        for (auto proto : {model::Protocol::kTcp, model::Protocol::kUdp}) {
          packets.push_back(Packet{ip("10.180.9.9"), dst, proto, port, "veth1", false});
        }
      }
    }
    for (const auto& ext : info.external_ips) packets.push_back(Packet{ip("198.51.100.7"), ext, info.name.protocol, info.port, "eth0", false});
  }
  // Addresses near service IPs that no Service has, and the node itself.
  std::mt19937 rng(3);
  for (int i = 0; i < 500; ++i) {
    packets.push_back(Packet{ip("10.180.9.9"), IpAddress::from_v4(ip("10.96.0.0").v4_host_order() + rng() % (1u << 20)),
                             model::Protocol::kTcp, 80, "veth1", false});
  }
  packets.push_back(Packet{ip("198.51.100.7"), ip("192.168.0.2"), model::Protocol::kTcp, 30080, "eth0", false});
  for (const Packet& p : packets) {
    auto a = trace(flat, builtin_jumps(flat_opts), p, env);
    auto b = trace(tree, builtin_jumps(tree_opts), p, env);
    ASSERT_EQ(a.size(), b.size()) << p.destination.to_string();
    for (std::size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].summary(), b[i].summary()) << p.destination.to_string() << ":" << p.destination_port;
      EXPECT_DOUBLE_EQ(a[i].probability, b[i].probability);
    }
  }
}

// IPv6: the tree tests the low 32 bits of the address ("-d ::2/::3"), where Service CIDRs
// allocate. The same cluster, mirrored into fd00:96::/108 (cluster IPs), 2001:db8:113::/64
// (external IPs) and fd00:10:180::/64 (endpoints): every packet meets the same fate in the tree
// as in the flat layout, and the first Service is reached in far fewer evaluations.
std::string ipv6(const char* prefix, std::uint32_t low) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s%x:%x", prefix, low >> 16, low & 0xffff);
  return buf;
}
std::vector<ServiceBuilder> cluster6(int n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::set<std::uint32_t> used;
  std::vector<ServiceBuilder> out;
  for (int i = 0; i < n; ++i) {
    std::uint32_t a;
    do a = 1 + rng() % ((1u << 20) - 2);
    while (!used.insert(a).second);
    ServiceBuilder b("ns", "s" + std::to_string(i), "", i % 3 == 2 ? model::Protocol::kUdp : model::Protocol::kTcp,
                     ipv6("fd00:96::", a), static_cast<std::uint16_t>(80 + i % 2));
    if (i % 5 == 0) b.external_ip(ipv6("2001:db8:113::", static_cast<std::uint32_t>(i % 250)));
    b.endpoint({ipv6("fd00:10:180::", static_cast<std::uint32_t>(i + 2)), 8080, "node2"});
    out.push_back(b);
  }
  return out;
}
RenderOptions options6(RenderOptions::Layout layout) {
  RenderOptions o = options(layout);
  o.family = IpFamily::kIPv6;
  o.node_ip = ip("fd00:77::11");
  o.local_detector = {LocalDetector::Mode::kCidr, cidr("fd00:10::/32"), ""};
  return o;
}

TEST(DispatchTree, Ipv6PacketsHaveTheSameOutcomeAsInTheFlatLayoutInFewerEvaluations) {
  const auto services = cluster6(600, 7);
  auto s = snapshot(services);
  s.family = IpFamily::kIPv6;
  const auto flat_opts = options6(RenderOptions::Layout::kKubeProxy);
  const auto tree_opts = options6(RenderOptions::Layout::kKproxy);
  const auto flat = render(s, flat_opts);
  const auto tree = render(s, tree_opts);
  ASSERT_FALSE(tree.nat_dispatch.empty());
  EXPECT_NE(rule_spec(tree.find(Table::kNat, kServicesChain)->rules[0]).find("-d ::/::3"), std::string::npos);
  TraceEnvironment env;
  env.local_addresses = {ip("fd00:77::11")};
  std::vector<Packet> packets;
  for (const auto& b : services) {
    const auto& info = b.info();
    for (std::uint16_t port : {info.port, static_cast<std::uint16_t>(info.port + 1)}) {
      packets.push_back(Packet{ip("fd00:10:180::9:9"), info.cluster_ip, info.name.protocol, port, "veth1", false});
    }
    for (const auto& ext : info.external_ips) {
      packets.push_back(Packet{ip("2001:db8:5::7"), ext, info.name.protocol, info.port, "eth0", false});
    }
  }
  std::mt19937 rng(3);
  for (int i = 0; i < 300; ++i) {
    packets.push_back(Packet{ip("fd00:10:180::9:9"), ip(ipv6("fd00:96::", rng() % (1u << 20)).c_str()),
                             model::Protocol::kTcp, 80, "veth1", false});
  }
  packets.push_back(Packet{ip("2001:db8:5::7"), ip("fd00:77::11"), model::Protocol::kTcp, 30080, "eth0", false});
  std::size_t flat_evaluations = 0, tree_evaluations = 0;
  for (const Packet& p : packets) {
    auto a = trace(flat, builtin_jumps(flat_opts), p, env);
    auto b = trace(tree, builtin_jumps(tree_opts), p, env);
    ASSERT_EQ(a.size(), b.size()) << p.destination.to_string();
    for (std::size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].summary(), b[i].summary()) << p.destination.to_string() << ":" << p.destination_port;
      EXPECT_DOUBLE_EQ(a[i].probability, b[i].probability);
      flat_evaluations += a[i].rules_evaluated;
      tree_evaluations += b[i].rules_evaluated;
    }
  }
  EXPECT_LT(tree_evaluations * 4, flat_evaluations) << "tree " << tree_evaluations << ", flat " << flat_evaluations;
}

std::size_t evaluations_to_first_service(int n, RenderOptions::Layout layout) {
  const auto services = cluster(n, 11);
  const auto opts = options(layout);
  const auto rules = render(snapshot(services), opts);
  TraceEnvironment env;
  env.local_addresses = {ip("192.168.0.2")};
  // The mean over (up to 200) Services' cluster IPs: the path of a new connection.
  std::size_t total = 0;
  std::size_t traced = 0;
  for (std::size_t i = 0; i < services.size(); i += std::max<std::size_t>(1, services.size() / 200)) {
    const auto& b = services[i];
    ++traced;
    const auto& info = b.info();
    const auto outcomes = trace(rules, builtin_jumps(opts), Packet{ip("10.180.9.9"), info.cluster_ip, info.name.protocol, info.port, "veth1", false}, env);
    EXPECT_EQ(outcomes.size(), 1u);
    EXPECT_TRUE(outcomes[0].dnat_ip.has_value()) << info.cluster_ip.to_string();
    total += outcomes[0].rules_evaluated;
  }
  return total / traced;
}

TEST(DispatchTree, EvaluationsGrowLogarithmically) {
  const double tree_10 = static_cast<double>(evaluations_to_first_service(10, RenderOptions::Layout::kKproxy));
  const double tree_10k = static_cast<double>(evaluations_to_first_service(10000, RenderOptions::Layout::kKproxy));
  const double flat_10 = static_cast<double>(evaluations_to_first_service(10, RenderOptions::Layout::kKubeProxy));
  const double flat_10k = static_cast<double>(evaluations_to_first_service(10000, RenderOptions::Layout::kKubeProxy));
  RecordProperty("tree_10", std::to_string(tree_10));
  RecordProperty("tree_10k", std::to_string(tree_10k));
  EXPECT_LT(tree_10k / tree_10, 1.5) << tree_10 << " -> " << tree_10k;
  EXPECT_GT(flat_10k / flat_10, 100.0) << flat_10 << " -> " << flat_10k << ": kube-proxy's scan is linear";
}

TEST(DispatchTree, AddingAServiceRewritesOnlyAFewDispatchChains) {
  auto services = cluster(3000, 5);
  kernel::FakeIptables fake;
  IptablesProxierOptions o;
  o.render = options(RenderOptions::Layout::kKproxy);
  IptablesProxier proxier(fake, o);
  const proxier::NodeFacts node{"node1", ""};
  ASSERT_TRUE(proxier.sync(proxier::SyncRequest{snapshot(services), {}, proxier::SyncKind::kFull, node}).ok());
  const std::size_t full_bytes = proxier.last_figures().payload_bytes;
  services.push_back(ServiceBuilder("ns", "new", "", model::Protocol::kTcp, "10.100.200.7", 80)
                         .endpoint({"10.180.50.5", 8080, "node2"}));
  const std::set<proxier::ServicePortName> changed{services.back().info().name};
  ASSERT_TRUE(proxier.sync(proxier::SyncRequest{snapshot(services), changed, proxier::SyncKind::kPartial, node}).ok());
  const auto& f = proxier.last_figures();
  EXPECT_LT(f.payload_bytes, full_bytes / 50) << "bytes follow the change: " << f.payload_bytes << " of " << full_bytes;
  EXPECT_LE(f.nat_chains, 4u + 2u + 3u) << "top-level, the new service's SVC and SEP, at most a few dispatch chains";
  // And the result equals a full sync of the same state.
  kernel::FakeIptables fresh;
  IptablesProxier full(fresh, o);
  ASSERT_TRUE(full.sync(proxier::SyncRequest{snapshot(services), {}, proxier::SyncKind::kFull, node}).ok());
  EXPECT_EQ(kernel::kube_chains_view(*fake.save(Table::kNat)), kernel::kube_chains_view(*fresh.save(Table::kNat)));
}

}  // namespace
}  // namespace kproxy::iptables
