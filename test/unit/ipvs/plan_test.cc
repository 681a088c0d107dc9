// What IPVS should hold for a snapshot, and the plan from the kernel's state to it.
#include "kproxy/ipvs/plan.h"

#include <gtest/gtest.h>

#include "../iptables/service_builder.h"

namespace kproxy::ipvs {
namespace {

using iptables::testing::ip;
using iptables::testing::ServiceBuilder;
using iptables::testing::snapshot;
using kernel::IpvsChange;
using kernel::IpvsDestination;
using kernel::IpvsService;
using Kind = IpvsChange::Kind;
constexpr auto kTcp = model::Protocol::kTcp;
constexpr auto kUdp = model::Protocol::kUdp;
constexpr auto kSctp = model::Protocol::kSctp;

IpvsOptions options() {
  IpvsOptions o;
  o.node = {"node1", ""};
  o.node_port_addresses = {ip("192.168.0.2"), ip("10.0.2.15")};
  return o;
}

std::string text(const VirtualServer& vs) {
  std::string s = to_string(vs.service) + " " + vs.service.scheduler;
  if (vs.service.flags & kernel::kIpvsPersistent) s += " persistent " + std::to_string(vs.service.timeout);
  for (const auto& d : vs.destinations) s += " -> " + to_string(d);
  return s;
}
std::vector<std::string> texts(const DesiredState& d) {
  std::vector<std::string> out;
  for (const auto& vs : d.servers) out.push_back(text(vs));
  return out;
}
std::vector<std::string> texts(const Plan& p) {
  std::vector<std::string> out;
  for (const auto& c : p.changes) out.push_back(to_string(c));
  return out;
}

TEST(IpvsDesired, EveryFrontendOfAPortGetsAVirtualServiceWithItsPolicysEndpoints) {
  auto web = ServiceBuilder("ns", "web", "http", kTcp, "10.96.0.10", 80)
                 .node_port(30080)
                 .external_ip("203.0.113.10")
                 .lb_ip("203.0.113.11")
                 .etp_local()
                 .endpoint({"10.244.1.5", 8080, "node1"})
                 .endpoint({"10.244.2.5", 8080, "node2"});
  const DesiredState d = build_desired(snapshot({web}), options());
  EXPECT_EQ(texts(d), (std::vector<std::string>{
                          // Cluster policy inside, Local policy outside: only node1's endpoint.
                          "TCP 10.0.2.15:30080 rr -> 10.244.1.5:8080",
                          "TCP 10.96.0.10:80 rr -> 10.244.1.5:8080 -> 10.244.2.5:8080",
                          "TCP 192.168.0.2:30080 rr -> 10.244.1.5:8080",
                          "TCP 203.0.113.10:80 rr -> 10.244.1.5:8080",
                          "TCP 203.0.113.11:80 rr -> 10.244.1.5:8080",
                      }));
  // Node addresses are never bound to kube-ipvs0.
  EXPECT_EQ(d.bound_addresses, (std::vector<IpAddress>{ip("10.96.0.10"), ip("203.0.113.10"), ip("203.0.113.11")}));
  EXPECT_EQ(d.servers.front().owner.name, "web");
}

TEST(IpvsDesired, AffinitySchedulerAndSctpUserspaceMode) {
  auto sticky = ServiceBuilder("ns", "sticky", "", kUdp, "10.96.0.11", 53)
                    .affinity(600)
                    .endpoint({"10.244.1.6", 5353, "node1"});
  auto amf = ServiceBuilder("core", "amf", "ngap", kSctp, "10.96.0.12", 38412).endpoint({"10.244.2.7", 38412, "node2"});
  auto o = options();
  o.scheduler = "mh";
  DesiredState d = build_desired(snapshot({sticky, amf}), o);
  ASSERT_EQ(d.servers.size(), 2u);
  EXPECT_EQ(text(d.servers[0]), "UDP 10.96.0.11:53 mh persistent 600 -> 10.244.1.6:5353");
  EXPECT_EQ(d.servers[0].service.flags, kernel::kIpvsPersistent | kernel::kIpvsSched2);
  EXPECT_EQ(d.servers[0].service.netmask, 0xffffffffu);
  EXPECT_EQ(text(d.servers[1]), "SCTP 10.96.0.12:38412 mh -> 10.244.2.7:38412");
  // --sctp-userspace-mode: SCTP never becomes an IPVS service.
  o.skip_sctp = true;
  d = build_desired(snapshot({sticky, amf}), o);
  EXPECT_EQ(texts(d), (std::vector<std::string>{"UDP 10.96.0.11:53 mh persistent 600 -> 10.244.1.6:5353"}));
  EXPECT_EQ(d.bound_addresses, (std::vector<IpAddress>{ip("10.96.0.11")}));
}

TEST(IpvsDesired, NoEndpointsLeaveAnEmptyServiceAndIpv6UsesAPrefixLength) {
  auto empty = ServiceBuilder("ns", "empty", "", kTcp, "fd00::10", 80);
  IpvsOptions o;
  o.family = IpFamily::kIPv6;
  const DesiredState d = build_desired(snapshot({empty}), o);
  ASSERT_EQ(d.servers.size(), 1u);
  EXPECT_TRUE(d.servers[0].destinations.empty());
  EXPECT_EQ(d.servers[0].service.netmask, 128u);
  EXPECT_EQ(to_string(d.servers[0].service), "TCP [fd00::10]:80");
}

TEST(IpvsDesired, AnIpv6ProxierProgramsIpv6FrontendsAndEndpointsOnly) {
  // What the IPv6 side of a dual-stack node gets: the Service's IPv6 cluster IP, external and
  // load-balancer IPs, NodePorts on the node's IPv6 addresses, the IPv6 endpoints. An IPv4
  // address that slipped into its snapshot is neither a virtual service, nor a destination,
  // nor bound to kube-ipvs0.
  auto web = ServiceBuilder("ns", "web", "http", kTcp, "fd00:10:96::10", 80)
                 .node_port(30080)
                 .affinity(10800)
                 .external_ip("2001:db8:113::10")
                 .external_ip("203.0.113.10")
                 .lb_ip("2001:db8:113::11")
                 .endpoint({"fd00:10:244:1::5", 8080, "node1"})
                 .endpoint({"fd00:10:244:2::5", 8080, "node2"})
                 .endpoint({"10.244.1.5", 8080, "node1"});
  IpvsOptions o;
  o.family = IpFamily::kIPv6;
  o.node = {"node1", ""};
  o.node_port_addresses = {ip("fd00:77::11")};
  const DesiredState d = build_desired(snapshot({web}), o);
  const std::string dests = " -> [fd00:10:244:1::5]:8080 -> [fd00:10:244:2::5]:8080";
  EXPECT_EQ(texts(d), (std::vector<std::string>{
                          "TCP [2001:db8:113::10]:80 rr persistent 10800" + dests,
                          "TCP [2001:db8:113::11]:80 rr persistent 10800" + dests,
                          "TCP [fd00:10:96::10]:80 rr persistent 10800" + dests,
                          "TCP [fd00:77::11]:30080 rr persistent 10800" + dests,
                      }));
  for (const auto& vs : d.servers) EXPECT_EQ(vs.service.netmask, 128u) << to_string(vs.service);
  EXPECT_EQ(d.bound_addresses,
            (std::vector<IpAddress>{ip("2001:db8:113::10"), ip("2001:db8:113::11"), ip("fd00:10:96::10")}));
  // And the IPv4 proxier, given the same snapshot, programs only the IPv4 external IP.
  IpvsOptions v4 = options();
  v4.node_port_addresses = {ip("192.168.0.2")};
  const DesiredState d4 = build_desired(snapshot({web}), v4);
  EXPECT_EQ(texts(d4), (std::vector<std::string>{"TCP 192.168.0.2:30080 rr persistent 10800 -> 10.244.1.5:8080",
                                                 "TCP 203.0.113.10:80 rr persistent 10800 -> 10.244.1.5:8080"}));
  EXPECT_EQ(d4.bound_addresses, (std::vector<IpAddress>{ip("203.0.113.10")}));
}

// The kernel's view of a desired state, as if it had been applied.
std::vector<KernelServer> applied(const DesiredState& d) {
  std::vector<KernelServer> out;
  for (const auto& vs : d.servers) out.push_back({vs.service, vs.destinations});
  return out;
}

TEST(IpvsPlan, FromNothingEverythingIsAddedServicesFirstAndARightKernelIsNotTouched) {
  auto web = ServiceBuilder("ns", "web", "http", kTcp, "10.96.0.10", 80)
                 .endpoint({"10.244.1.5", 8080, "node1"})
                 .endpoint({"10.244.2.5", 8080, "node2"});
  auto dns = ServiceBuilder("ns", "dns", "", kUdp, "10.96.0.11", 53).endpoint({"10.244.1.6", 53, "node1"});
  const DesiredState d = build_desired(snapshot({web, dns}), options());
  const Plan p = plan(d, {}, {});
  EXPECT_EQ(texts(p), (std::vector<std::string>{
                          "add service TCP 10.96.0.10:80 (rr)",
                          "add service UDP 10.96.0.11:53 (rr)",
                          "add 10.244.1.5:8080 to TCP 10.96.0.10:80 (weight 1)",
                          "add 10.244.2.5:8080 to TCP 10.96.0.10:80 (weight 1)",
                          "add 10.244.1.6:53 to UDP 10.96.0.11:53 (weight 1)",
                      }));
  // A restart finds the kernel right (with live connections): nothing is sent.
  std::vector<KernelServer> kernel = applied(d);
  kernel[0].destinations[0].active_connections = 7;
  EXPECT_TRUE(plan(d, kernel, {}).changes.empty());
}

TEST(IpvsPlan, RemovedTcpDestinationsDrainAtWeightZeroOthersGoAtOnce) {
  auto web = ServiceBuilder("ns", "web", "", kTcp, "10.96.0.10", 80).endpoint({"10.244.1.5", 8080, "node1"});
  auto dns = ServiceBuilder("ns", "dns", "", kUdp, "10.96.0.11", 53).endpoint({"10.244.1.6", 53, "node1"});
  auto amf = ServiceBuilder("core", "amf", "", kSctp, "10.96.0.12", 38412).endpoint({"10.244.1.7", 38412, "node1"});
  const DesiredState d = build_desired(snapshot({web, dns, amf}), options());
  std::vector<KernelServer> kernel = applied(d);
  auto extra = [](const std::string& a, std::uint16_t port, std::uint32_t active, std::uint32_t inactive) {
    IpvsDestination x;
    x.address = ip(a);
    x.port = port;
    x.active_connections = active;
    x.inactive_connections = inactive;
    return x;
  };
  kernel[0].destinations.push_back(extra("10.244.2.5", 8080, 2, 1));  // TCP, connections: drains
  kernel[0].destinations.push_back(extra("10.244.2.6", 8080, 0, 0));  // TCP, idle: deleted
  kernel[1].destinations.push_back(extra("10.244.2.8", 53, 4, 0));    // UDP: deleted at once
  kernel[2].destinations.push_back(extra("10.244.2.9", 38412, 1, 0));  // SCTP: deleted at once
  Plan p = plan(d, kernel, {});
  EXPECT_EQ(texts(p), (std::vector<std::string>{
                          "set 10.244.2.5:8080 of TCP 10.96.0.10:80 to weight 0",
                          "delete 10.244.2.6:8080 from TCP 10.96.0.10:80",
                          "delete 10.244.2.8:53 from UDP 10.96.0.11:53",
                          "delete 10.244.2.9:38412 from SCTP 10.96.0.12:38412",
                      }));
  EXPECT_EQ(p.draining, 1u);
  // Still connected at weight 0: nothing to send, still draining; once idle, deleted.
  kernel = applied(d);
  kernel[0].destinations.push_back(extra("10.244.2.5", 8080, 0, 3));
  kernel[0].destinations.back().weight = 0;
  p = plan(d, kernel, {});
  EXPECT_TRUE(p.changes.empty());
  EXPECT_EQ(p.draining, 1u);
  kernel[0].destinations.back().inactive_connections = 0;
  p = plan(d, kernel, {});
  EXPECT_EQ(texts(p), (std::vector<std::string>{"delete 10.244.2.5:8080 from TCP 10.96.0.10:80"}));
  EXPECT_EQ(p.draining, 0u);
}

TEST(IpvsPlan, AnEndpointBackWhileDrainingReturnsToWeightOne) {
  auto web = ServiceBuilder("ns", "web", "", kTcp, "10.96.0.10", 80).endpoint({"10.244.1.5", 8080, "node1"});
  const DesiredState d = build_desired(snapshot({web}), options());
  std::vector<KernelServer> kernel = applied(d);
  kernel[0].destinations[0].weight = 0;
  kernel[0].destinations[0].active_connections = 1;
  EXPECT_EQ(texts(plan(d, kernel, {})),
            (std::vector<std::string>{"set 10.244.1.5:8080 of TCP 10.96.0.10:80 to weight 1"}));
}

TEST(IpvsPlan, ChangedSettingsUpdateTheServiceAndStaleServicesGoUnlessExcludedOrOfTheOtherFamily) {
  auto web = ServiceBuilder("ns", "web", "", kTcp, "10.96.0.10", 80).affinity(10800).endpoint({"10.244.1.5", 8080, "node1"});
  const DesiredState d = build_desired(snapshot({web}), options());
  std::vector<KernelServer> kernel = applied(d);
  kernel[0].service.flags = 0;  // affinity was turned on since
  kernel[0].service.timeout = 0;
  auto stale = [](const std::string& a) {
    IpvsService s;
    s.address = ip(a);
    s.port = 80;
    return KernelServer{s, {}};
  };
  kernel.push_back(stale("10.96.0.99"));    // a Service that is gone: deleted
  kernel.push_back(stale("172.16.0.5"));    // --ipvs-exclude-cidrs: someone else's
  kernel.push_back(stale("fd00::99"));      // the IPv6 proxier's
  PlanOptions o;
  o.exclude_cidrs = {*Cidr::parse("172.16.0.0/12")};
  EXPECT_EQ(texts(plan(d, kernel, o)), (std::vector<std::string>{
                                           "update service TCP 10.96.0.10:80 (rr)",
                                           "delete service TCP 10.96.0.99:80",
                                       }));
}

TEST(IpvsPlan, AnIpv6PlanLeavesEveryIpv4ServiceAloneAndDeletesStaleIpv6Ones) {
  auto web = ServiceBuilder("ns", "web", "", kUdp, "fd00:10:96::10", 53).endpoint({"fd00:10:244:1::5", 53, "node1"});
  IpvsOptions d_options;
  d_options.family = IpFamily::kIPv6;
  const DesiredState d = build_desired(snapshot({web}), d_options);
  auto stale = [](const std::string& a) {
    IpvsService s;
    s.address = ip(a);
    s.protocol = kUdp;
    s.port = 53;
    return KernelServer{s, {}};
  };
  std::vector<KernelServer> kernel;
  kernel.push_back(stale("10.96.0.10"));       // the IPv4 proxier's: untouched
  kernel.push_back(stale("fd00:10:96::99"));   // a Service that is gone: deleted
  kernel.push_back(stale("2001:db8:ffff::1"));  // --ipvs-exclude-cidrs: someone else's
  PlanOptions o;
  o.family = IpFamily::kIPv6;
  o.exclude_cidrs = {*Cidr::parse("172.16.0.0/12"), *Cidr::parse("2001:db8:ffff::/48")};
  EXPECT_EQ(texts(plan(d, kernel, o)), (std::vector<std::string>{
                                           "add service UDP [fd00:10:96::10]:53 (rr)",
                                           "add [fd00:10:244:1::5]:53 to UDP [fd00:10:96::10]:53 (weight 1)",
                                           "delete service UDP [fd00:10:96::99]:53",
                                       }));
}

}  // namespace
}  // namespace kproxy::ipvs
