// The incremental Renderer: after any sequence of changes its result is what a fresh render()
// of the same snapshot gives, and it re-renders only the ports that changed and rebuilds only
// the dispatch chains whose rules changed.
#include <gtest/gtest.h>

#include <random>

#include "kproxy/iptables/render.h"
#include "service_builder.h"

namespace kproxy::iptables {
namespace {

using proxier::ServicePortInfo;
using proxier::ServicePortName;
using proxier::Snapshot;
using testing::ip;
using testing::ServiceBuilder;

std::string ipv4(std::uint32_t v) { return IpAddress::from_v4(v).to_string(); }

RenderOptions lean_options() {
  auto o = testing::render_options(RenderOptions::Layout::kKproxy);
  o.lean_endpoints = true;
  return o;
}

// One random Service port: cluster IP in 10.96.0.0/12, 1-4 endpoints, sometimes a NodePort,
// an external IP, an LB IP with source ranges, affinity or a local traffic policy.
ServiceBuilder random_port(std::mt19937& rng, int i) {
  const std::uint32_t base = ip("10.96.0.0").v4_host_order();
  const auto proto = std::array{model::Protocol::kTcp, model::Protocol::kUdp, model::Protocol::kSctp}[rng() % 3];
  ServiceBuilder b("ns", "s" + std::to_string(i), "p", proto, ipv4(base + 1 + rng() % ((1u << 20) - 2)),
                   static_cast<std::uint16_t>(80 + rng() % 3));
  if (rng() % 4 == 0) b.node_port(static_cast<std::uint16_t>(30000 + i));
  if (rng() % 5 == 0) b.external_ip(ipv4(ip("203.0.113.0").v4_host_order() + rng() % 200));
  if (rng() % 6 == 0) b.lb_ip(ipv4(ip("198.51.100.0").v4_host_order() + rng() % 200)).source_range("192.0.2.0/24");
  if (rng() % 7 == 0) b.affinity(600);
  if (rng() % 8 == 0) b.etp_local();
  if (rng() % 9 == 0) b.itp_local();
  const int endpoints = static_cast<int>(rng() % 5);
  for (int e = 0; e < endpoints; ++e) {
    b.endpoint({ipv4(ip("10.180.0.0").v4_host_order() + rng() % 4096), 8080, rng() % 2 ? "node1" : "node2"});
  }
  return b;
}

void expect_same(const RenderedRules& got, const RenderedRules& want, const std::string& step) {
  EXPECT_EQ(got.filter, want.filter) << step;
  EXPECT_EQ(got.nat, want.nat) << step;
  ASSERT_EQ(got.ports.size(), want.ports.size()) << step;
  for (const auto& [name, port] : want.ports) {
    auto it = got.ports.find(name);
    ASSERT_NE(it, got.ports.end()) << step << ": " << proxier::to_string(name);
    EXPECT_EQ(*it->second, *port) << step << ": " << proxier::to_string(name);
  }
  ASSERT_EQ(got.nat_dispatch.size(), want.nat_dispatch.size()) << step;
  for (std::size_t i = 0; i < want.nat_dispatch.size(); ++i) {
    EXPECT_EQ(*got.nat_dispatch[i], *want.nat_dispatch[i]) << step;
  }
  ASSERT_EQ(got.ipsets.size(), want.ipsets.size()) << step;
  for (std::size_t i = 0; i < want.ipsets.size(); ++i) EXPECT_EQ(got.ipsets[i]->entries, want.ipsets[i]->entries) << step;
  EXPECT_EQ(got.stats.total_endpoints, want.stats.total_endpoints) << step;
  EXPECT_EQ(got.stats.large_cluster_mode, want.stats.large_cluster_mode) << step;
  EXPECT_EQ(got.stats.no_local_endpoints_internal, want.stats.no_local_endpoints_internal) << step;
  EXPECT_EQ(got.stats.no_local_endpoints_external, want.stats.no_local_endpoints_external) << step;
}

// Random adds, removals, replacements and option changes, in both layouts: the incremental
// result always equals a fresh render.
TEST(Renderer, IncrementalRenderEqualsAFreshOne) {
  for (const bool lean : {false, true}) {
    std::mt19937 rng(lean ? 7 : 3);
    RenderOptions options = lean ? lean_options() : testing::render_options(RenderOptions::Layout::kKproxy);
    options.large_cluster_endpoints_threshold = 150;  // crossed back and forth below
    Snapshot s;
    int next = 0;
    for (; next < 60; ++next) {
      const auto b = random_port(rng, next);
      s.service_ports[b.info().name] = std::make_shared<ServicePortInfo>(b.info());
    }
    Renderer renderer;
    for (int step = 0; step < 120; ++step) {
      const int what = static_cast<int>(rng() % 10);
      if (what < 3 || s.service_ports.empty()) {  // a new port
        const auto b = random_port(rng, next++);
        s.service_ports[b.info().name] = std::make_shared<ServicePortInfo>(b.info());
      } else if (what < 5) {  // a removed one
        auto it = std::next(s.service_ports.begin(), static_cast<long>(rng() % s.service_ports.size()));
        s.service_ports.erase(it);
      } else if (what < 8) {  // new endpoints for one
        auto it = std::next(s.service_ports.begin(), static_cast<long>(rng() % s.service_ports.size()));
        auto changed = std::make_shared<ServicePortInfo>(*it->second);
        changed->endpoints = random_port(rng, 0).info().endpoints;
        it->second = changed;
      } else if (what < 9) {  // a new cluster IP for one (it moves to another dispatch leaf)
        auto it = std::next(s.service_ports.begin(), static_cast<long>(rng() % s.service_ports.size()));
        auto changed = std::make_shared<ServicePortInfo>(*it->second);
        changed->cluster_ip = ip(ipv4(ip("10.96.0.0").v4_host_order() + 1 + rng() % 4000));
        it->second = changed;
      } else {  // an option change (the node's zone, then the NodePort addresses)
        options.node.zone = options.node.zone.empty() ? "zone-a" : "";
        if (step % 2 == 0) options.node_port_ips = std::vector<IpAddress>{ip("192.168.0.2"), ip("10.96.3.7")};
      }
      const RenderedRules got = renderer.render(s, options);
      expect_same(got, render(s, options), "step " + std::to_string(step));
      if (::testing::Test::HasFailure()) return;
    }
  }
}

// One endpoint changed among 500 ports: one port is rendered, every other port's rules and
// every dispatch chain are the same objects as before (an endpoint change does not touch the
// dispatch tree), and a new cluster IP rebuilds only its old and new leaves and their parents.
TEST(Renderer, RendersOnlyWhatChanged) {
  std::mt19937 rng(11);
  Snapshot s;
  for (int i = 0; i < 500; ++i) {
    const auto b = random_port(rng, i);
    s.service_ports[b.info().name] = std::make_shared<ServicePortInfo>(b.info());
  }
  const RenderOptions options = lean_options();
  Renderer renderer;
  const RenderedRules first = renderer.render(s, options);
  EXPECT_EQ(renderer.last_rendered_ports(), 500u);

  // The same snapshot again, and an equal copy of it (as a relist delivers): nothing rendered.
  const RenderedRules again = renderer.render(s, options);
  EXPECT_EQ(renderer.last_rendered_ports(), 0u);
  Snapshot copy;
  for (const auto& [name, port] : s.service_ports) copy.service_ports[name] = std::make_shared<ServicePortInfo>(*port);
  renderer.render(copy, options);
  EXPECT_EQ(renderer.last_rendered_ports(), 0u);

  // A port that has endpoints already (a first endpoint would add its cluster IP rule).
  auto it = std::next(s.service_ports.begin(), 250);
  while (it->second->endpoints.empty() || it->second->internal_policy_local || it->second->external_policy_local) ++it;
  const ServicePortName changed_name = it->first;
  auto changed = std::make_shared<ServicePortInfo>(*it->second);
  proxier::Endpoint added;
  added.ip = ip("10.181.0.9");
  added.port = 8080;
  added.ready = added.serving = true;
  added.node_name = "node2";
  changed->endpoints.push_back(added);
  it->second = changed;
  const RenderedRules after = renderer.render(s, options);
  EXPECT_EQ(renderer.last_rendered_ports(), 1u);
  for (const auto& [name, port] : after.ports) {
    if (name == changed_name) {
      EXPECT_NE(port, first.ports.at(name));
    } else {
      EXPECT_EQ(port, first.ports.at(name)) << proxier::to_string(name);
    }
  }
  ASSERT_EQ(after.nat_dispatch.size(), first.nat_dispatch.size());
  for (std::size_t i = 0; i < after.nat_dispatch.size(); ++i) {
    EXPECT_EQ(after.nat_dispatch[i], first.nat_dispatch[i]) << after.nat_dispatch[i]->name;
  }

  // A new cluster IP: the chains that differ are at most two leaves and their ancestors.
  auto moved = std::make_shared<ServicePortInfo>(*changed);
  moved->cluster_ip = ip("10.96.255.254");
  s.service_ports[changed_name] = moved;
  const RenderedRules relocated = renderer.render(s, options);
  EXPECT_EQ(renderer.last_rendered_ports(), 1u);
  std::map<std::string, const Chain*> before_chains;
  for (const auto& c : after.nat_dispatch) before_chains[c->name] = c.get();
  std::size_t new_objects = 0;
  for (const auto& c : relocated.nat_dispatch) {
    auto b = before_chains.find(c->name);
    if (b == before_chains.end() || b->second != c.get()) ++new_objects;
  }
  EXPECT_GE(new_objects, 1u);
  EXPECT_LE(new_objects, 2u * static_cast<std::size_t>(options.dispatch_depth));
  expect_same(relocated, render(s, options), "relocated");
}

}  // namespace
}  // namespace kproxy::iptables
