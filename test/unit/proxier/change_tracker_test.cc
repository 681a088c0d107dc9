// ChangeTracker: Services and EndpointSlices in, snapshots and changed service ports out.
// Behaviour follows kube-proxy's servicechangetracker.go, endpointslicecache.go and
// serviceport.go (newBaseServiceInfo).
#include "kproxy/proxier/change_tracker.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace kproxy::proxier {
namespace {

using model::Protocol;

IpAddress ip(const char* text) { return IpAddress::parse(text).value(); }

std::shared_ptr<const model::Service> service(const char* ns, const char* name,
                                              std::vector<model::ServicePort> ports,
                                              void (*edit)(model::Service&) = nullptr) {
  model::Service s;
  s.meta.ns = ns;
  s.meta.name = name;
  s.cluster_ips = {ip("10.96.0.10")};
  s.ip_families = {IpFamily::kIPv4};
  s.ports = std::move(ports);
  if (edit) edit(s);
  return std::make_shared<const model::Service>(std::move(s));
}

struct Ep {
  const char* address;
  const char* node = nullptr;
  bool ready = true;
};

std::shared_ptr<const model::EndpointSlice> slice(const char* ns, const char* name, const char* service_name,
                                                  std::vector<model::EndpointPort> ports, std::vector<Ep> endpoints,
                                                  model::AddressType type = model::AddressType::kIPv4) {
  model::EndpointSlice s;
  s.meta.ns = ns;
  s.meta.name = name;
  s.service_name = service_name;
  s.address_type = type;
  s.ports = std::move(ports);
  for (const Ep& e : endpoints) {
    model::Endpoint endpoint;
    endpoint.address = ip(e.address);
    if (e.node) endpoint.node_name = e.node;
    endpoint.ready = e.ready;
    endpoint.serving = e.ready;
    s.endpoints.push_back(std::move(endpoint));
  }
  return std::make_shared<const model::EndpointSlice>(std::move(s));
}

model::ServicePort port(const char* name, std::uint16_t number, Protocol protocol = Protocol::kTcp) {
  return model::ServicePort{name, protocol, number, 0};
}

model::EndpointPort slice_port(const char* name, std::uint16_t number, Protocol protocol = Protocol::kTcp) {
  return model::EndpointPort{name, protocol, number};
}

ServicePortName spn(const char* ns, const char* name, const char* port_name, Protocol protocol = Protocol::kTcp) {
  return ServicePortName{ns, name, port_name, protocol};
}

std::vector<std::string> endpoints_of(const Snapshot& snapshot, const ServicePortName& name) {
  std::vector<std::string> out;
  const ServicePortInfo* info = snapshot.find(name);
  if (!info) return out;
  for (const Endpoint& endpoint : info->endpoints) out.push_back(endpoint.to_string() + (endpoint.is_local ? "*" : ""));
  return out;
}

class ChangeTrackerTest : public ::testing::Test {
 protected:
  ChangeTracker tracker{ChangeTrackerOptions{IpFamily::kIPv4, "node-1", true}};
  InformerHandler<model::Service>& services = tracker.service_handler();
  InformerHandler<model::EndpointSlice>& slices = tracker.endpoint_slice_handler();
};

TEST_F(ChangeTrackerTest, SkipsHeadlessExternalNameAndUnallocatedServices) {
  services.on_add(service("ns", "headless", {port("p", 80)}, [](model::Service& s) {
    s.headless = true;
    s.cluster_ips.clear();
  }));
  services.on_add(service("ns", "external", {port("p", 80)}, [](model::Service& s) {
    s.type = model::ServiceType::kExternalName;
    s.cluster_ips.clear();
    s.external_name = "example.com";
  }));
  services.on_add(service("ns", "unallocated", {port("p", 80)}, [](model::Service& s) { s.cluster_ips.clear(); }));
  services.on_add(service("ns", "v6only", {port("p", 80)}, [](model::Service& s) {
    s.cluster_ips = {ip("fd00::10")};
    s.ip_families = {IpFamily::kIPv6};
  }));
  services.on_add(service("ns", "web", {port("p", 80)}));
  auto checkout = tracker.checkout();
  ASSERT_EQ(checkout.snapshot->service_ports.size(), 1u);
  EXPECT_NE(checkout.snapshot->find(spn("ns", "web", "p")), nullptr);
  EXPECT_EQ(checkout.changed, (std::set<ServicePortName>{spn("ns", "web", "p")}));
}

TEST_F(ChangeTrackerTest, ShouldSkipServiceMatchesKubeProxy) {
  EXPECT_FALSE(should_skip_service(*service("ns", "web", {})));
  EXPECT_TRUE(should_skip_service(*service("ns", "h", {}, [](model::Service& s) {
    s.headless = true;
    s.cluster_ips.clear();
  })));
  EXPECT_TRUE(should_skip_service(
      *service("ns", "x", {}, [](model::Service& s) { s.type = model::ServiceType::kExternalName; })));
}

TEST_F(ChangeTrackerTest, CopiesEveryFieldABackendNeedsForItsFamily) {
  services.on_add(service("ns", "lb", {model::ServicePort{"http", Protocol::kTcp, 80, 30080}}, [](model::Service& s) {
    s.type = model::ServiceType::kLoadBalancer;
    s.cluster_ips = {ip("10.96.0.10"), ip("fd00::10")};
    s.ip_families = {IpFamily::kIPv4, IpFamily::kIPv6};
    s.external_ips = {ip("192.0.2.1"), ip("2001:db8::1")};
    s.load_balancer_ingress = {{ip("198.51.100.1"), model::LoadBalancerIPMode::kVIP},
                               {ip("198.51.100.2"), model::LoadBalancerIPMode::kProxy},
                               {ip("2001:db8::2"), model::LoadBalancerIPMode::kVIP}};
    s.load_balancer_source_ranges = {Cidr::parse("203.0.113.0/25").value(), Cidr::parse("2001:db8::/64").value()};
    s.session_affinity = model::SessionAffinity::kClientIP;
    s.session_affinity_timeout_seconds = 600;
    s.external_traffic_policy = model::TrafficPolicy::kLocal;
    s.health_check_node_port = 31000;
    s.traffic_distribution = model::TrafficDistribution::kPreferSameZone;
  }));
  auto snapshot = tracker.checkout().snapshot;
  const ServicePortInfo* info = snapshot->find(spn("ns", "lb", "http"));
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->cluster_ip, ip("10.96.0.10"));
  EXPECT_EQ(info->port, 80);
  EXPECT_EQ(info->node_port, 30080);
  EXPECT_EQ(info->external_ips, std::vector<IpAddress>{ip("192.0.2.1")});
  // ipMode Proxy is not captured by kube-proxy; the other family is another proxier's.
  EXPECT_EQ(info->load_balancer_vips, std::vector<IpAddress>{ip("198.51.100.1")});
  EXPECT_EQ(info->load_balancer_source_ranges, std::vector<Cidr>{Cidr::parse("203.0.113.0/25").value()});
  EXPECT_EQ(info->session_affinity, model::SessionAffinity::kClientIP);
  EXPECT_EQ(info->sticky_max_age_seconds, 600u);
  EXPECT_TRUE(info->external_policy_local);
  EXPECT_FALSE(info->internal_policy_local);
  EXPECT_EQ(info->health_check_node_port, 31000);
  EXPECT_EQ(info->traffic_distribution, model::TrafficDistribution::kPreferSameZone);
}

TEST_F(ChangeTrackerTest, IgnoresExternalTrafficPolicyOfAClusterIPServiceWithoutExternalIPs) {
  services.on_add(service("ns", "web", {port("p", 80)}, [](model::Service& s) {
    s.external_traffic_policy = model::TrafficPolicy::kLocal;
    s.health_check_node_port = 31000;
  }));
  const ServicePortInfo* info = tracker.checkout().snapshot->find(spn("ns", "web", "p"));
  ASSERT_NE(info, nullptr);
  EXPECT_FALSE(info->external_policy_local);
  EXPECT_EQ(info->health_check_node_port, 0);
  EXPECT_EQ(info->sticky_max_age_seconds, 0u);
}

TEST_F(ChangeTrackerTest, MergesTheEndpointsOfEverySliceSortedByAddressText) {
  services.on_add(service("ns", "web", {port("http", 80)}));
  slices.on_add(slice("ns", "web-a", "web", {slice_port("http", 8080)}, {{"10.0.0.9"}, {"10.0.0.10"}}));
  slices.on_add(slice("ns", "web-b", "web", {slice_port("http", 8080)}, {{"10.0.0.1"}}));
  auto snapshot = tracker.checkout().snapshot;
  // String order, as kube-proxy's byEndpoint: '0' sorts before ':', so "10.0.0.10:8080"
  // comes before "10.0.0.1:8080", and both before "10.0.0.9:8080".
  EXPECT_EQ(endpoints_of(*snapshot, spn("ns", "web", "http")),
            (std::vector<std::string>{"10.0.0.10:8080", "10.0.0.1:8080", "10.0.0.9:8080"}));
}

TEST_F(ChangeTrackerTest, DeDuplicatesAnAddressInTwoSlicesPreferringTheLocalCopy) {
  for (bool local_first : {true, false}) {
    ChangeTracker t{ChangeTrackerOptions{IpFamily::kIPv4, "node-1", true}};
    t.service_handler().on_add(service("ns", "web", {port("http", 80)}));
    auto local = slice("ns", local_first ? "a" : "b", "web", {slice_port("http", 8080)}, {{"10.0.0.1", "node-1"}});
    auto remote = slice("ns", local_first ? "b" : "a", "web", {slice_port("http", 8080)}, {{"10.0.0.1", "node-2"}});
    t.endpoint_slice_handler().on_add(local);
    t.endpoint_slice_handler().on_add(remote);
    EXPECT_EQ(endpoints_of(*t.checkout().snapshot, spn("ns", "web", "http")),
              std::vector<std::string>{"10.0.0.1:8080*"})
        << "local slice first: " << local_first;
  }
}

TEST_F(ChangeTrackerTest, MatchesSlicePortsToServicePortsByNameAndProtocol) {
  services.on_add(service("kube-system", "dns", {port("dns", 53, Protocol::kUdp), port("dns-tcp", 53, Protocol::kTcp),
                                                 port("metrics", 9153, Protocol::kTcp)}));
  // "dns" over TCP names no Service port; "metrics" arrives with another slice.
  slices.on_add(slice("kube-system", "dns-1", "dns",
                      {slice_port("dns", 5353, Protocol::kUdp), slice_port("dns-tcp", 5354, Protocol::kTcp),
                       slice_port("dns", 5355, Protocol::kTcp)},
                      {{"10.0.0.1"}}));
  auto snapshot = tracker.checkout().snapshot;
  EXPECT_EQ(endpoints_of(*snapshot, spn("kube-system", "dns", "dns", Protocol::kUdp)),
            std::vector<std::string>{"10.0.0.1:5353"});
  EXPECT_EQ(endpoints_of(*snapshot, spn("kube-system", "dns", "dns-tcp", Protocol::kTcp)),
            std::vector<std::string>{"10.0.0.1:5354"});
  EXPECT_EQ(snapshot->find(spn("kube-system", "dns", "dns", Protocol::kTcp)), nullptr);
  ASSERT_NE(snapshot->find(spn("kube-system", "dns", "metrics")), nullptr);
  EXPECT_TRUE(snapshot->find(spn("kube-system", "dns", "metrics"))->endpoints.empty());
}

TEST_F(ChangeTrackerTest, CopiesEndpointConditionsZoneAndHints) {
  services.on_add(service("ns", "web", {port("", 80)}));
  model::EndpointSlice s = *slice("ns", "web-a", "web", {slice_port("", 8080)}, {{"10.0.0.1", "node-2"}});
  s.endpoints[0].ready = false;
  s.endpoints[0].serving = true;
  s.endpoints[0].terminating = true;
  s.endpoints[0].zone = "zone-a";
  s.endpoints[0].zone_hints = {"zone-b", "zone-a", "zone-a"};
  s.endpoints[0].node_hints = {"node-2"};
  slices.on_add(std::make_shared<const model::EndpointSlice>(s));
  const ServicePortInfo* info = tracker.checkout().snapshot->find(spn("ns", "web", ""));
  ASSERT_NE(info, nullptr);
  ASSERT_EQ(info->endpoints.size(), 1u);
  const Endpoint& e = info->endpoints[0];
  EXPECT_FALSE(e.ready);
  EXPECT_TRUE(e.serving);
  EXPECT_TRUE(e.terminating);
  EXPECT_FALSE(e.is_local);
  EXPECT_EQ(e.node_name, "node-2");
  EXPECT_EQ(e.zone, "zone-a");
  EXPECT_EQ(e.zone_hints, (std::vector<std::string>{"zone-a", "zone-b"}));
  EXPECT_EQ(e.node_hints, std::vector<std::string>{"node-2"});
}

TEST_F(ChangeTrackerTest, LeavesNodeHintsOutWhenTheirFeatureIsOff) {
  ChangeTracker t{ChangeTrackerOptions{IpFamily::kIPv4, "node-1", false}};
  t.service_handler().on_add(service("ns", "web", {port("", 80)}));
  model::EndpointSlice s = *slice("ns", "web-a", "web", {slice_port("", 8080)}, {{"10.0.0.1"}});
  s.endpoints[0].node_hints = {"node-1"};
  t.endpoint_slice_handler().on_add(std::make_shared<const model::EndpointSlice>(s));
  EXPECT_TRUE(t.checkout().snapshot->find(spn("ns", "web", ""))->endpoints[0].node_hints.empty());
}

TEST_F(ChangeTrackerTest, IgnoresSlicesOfTheOtherFamilyAndUsesAnIPv6TrackerForThem) {
  auto dual = service("ns", "web", {port("http", 80)}, [](model::Service& s) {
    s.cluster_ips = {ip("10.96.0.10"), ip("fd00::10")};
    s.ip_families = {IpFamily::kIPv4, IpFamily::kIPv6};
  });
  auto v4 = slice("ns", "web-v4", "web", {slice_port("http", 8080)}, {{"10.0.0.1"}});
  auto v6 = slice("ns", "web-v6", "web", {slice_port("http", 8080)}, {{"fd00::1"}}, model::AddressType::kIPv6);
  ChangeTracker v6_tracker{ChangeTrackerOptions{IpFamily::kIPv6, "node-1", true}};
  for (ChangeTracker* t : {&tracker, &v6_tracker}) {
    t->service_handler().on_add(dual);
    t->endpoint_slice_handler().on_add(v4);
    t->endpoint_slice_handler().on_add(v6);
  }
  auto s4 = tracker.checkout().snapshot;
  auto s6 = v6_tracker.checkout().snapshot;
  EXPECT_EQ(endpoints_of(*s4, spn("ns", "web", "http")), std::vector<std::string>{"10.0.0.1:8080"});
  EXPECT_EQ(endpoints_of(*s6, spn("ns", "web", "http")), std::vector<std::string>{"[fd00::1]:8080"});
  EXPECT_EQ(s6->find(spn("ns", "web", "http"))->cluster_ip, ip("fd00::10"));
  EXPECT_EQ(s6->family, IpFamily::kIPv6);
}

// The other family's objects leave a tracker idle: no pending change, so that family's
// proxier does not sync for them. A Service that gains a cluster IP of the family (a
// SingleStack Service made PreferDualStack) or loses it does make it dirty.
TEST_F(ChangeTrackerTest, TheOtherFamilysObjectsLeaveItIdle) {
  auto v6_only = service("ns", "v6", {port("http", 80)}, [](model::Service& s) {
    s.cluster_ips = {ip("fd00::20")};
    s.ip_families = {IpFamily::kIPv6};
  });
  auto v6_slice = slice("ns", "v6-a", "v6", {slice_port("http", 8080)}, {{"fd00::1"}}, model::AddressType::kIPv6);
  services.on_add(v6_only);
  slices.on_add(v6_slice);
  slices.on_update(v6_slice, v6_slice);
  slices.on_delete(v6_slice);
  EXPECT_FALSE(tracker.has_pending_changes());
  services.on_delete(v6_only);
  EXPECT_FALSE(tracker.has_pending_changes());

  services.on_add(v6_only);
  auto dual = service("ns", "v6", {port("http", 80)}, [](model::Service& s) {
    s.cluster_ips = {ip("fd00::20"), ip("10.96.0.20")};
    s.ip_families = {IpFamily::kIPv6, IpFamily::kIPv4};
  });
  services.on_update(v6_only, dual);
  ASSERT_TRUE(tracker.has_pending_changes());
  EXPECT_EQ(tracker.checkout().changed, (std::set<ServicePortName>{spn("ns", "v6", "http")}));
  services.on_update(dual, v6_only);
  ASSERT_TRUE(tracker.has_pending_changes());
  auto gone = tracker.checkout();
  EXPECT_EQ(gone.changed, (std::set<ServicePortName>{spn("ns", "v6", "http")}));
  EXPECT_EQ(gone.snapshot->find(spn("ns", "v6", "http")), nullptr);
}

TEST_F(ChangeTrackerTest, KeepsASliceThatArrivesBeforeItsService) {
  slices.on_add(slice("ns", "web-a", "web", {slice_port("http", 8080)}, {{"10.0.0.1"}}));
  EXPECT_TRUE(tracker.checkout().changed.empty());
  services.on_add(service("ns", "web", {port("http", 80)}));
  auto checkout = tracker.checkout();
  EXPECT_EQ(checkout.changed, (std::set<ServicePortName>{spn("ns", "web", "http")}));
  EXPECT_EQ(endpoints_of(*checkout.snapshot, spn("ns", "web", "http")), std::vector<std::string>{"10.0.0.1:8080"});
}

TEST_F(ChangeTrackerTest, ReportsOnlyTheServicePortsThatChanged) {
  auto web = service("ns", "web", {port("http", 80), port("https", 443)});
  auto api = service("ns", "api", {port("", 8080)});
  auto web_slice = slice("ns", "web-a", "web", {slice_port("http", 8080)}, {{"10.0.0.1"}});
  services.on_add(web);
  services.on_add(api);
  slices.on_add(web_slice);
  EXPECT_EQ(tracker.checkout().changed.size(), 3u);

  // Nothing happened.
  EXPECT_FALSE(tracker.has_pending_changes());
  EXPECT_TRUE(tracker.checkout().changed.empty());

  // A new endpoint for "http" changes that port only.
  auto web_slice2 = slice("ns", "web-a", "web", {slice_port("http", 8080)}, {{"10.0.0.1"}, {"10.0.0.2"}});
  slices.on_update(web_slice, web_slice2);
  EXPECT_TRUE(tracker.has_pending_changes());
  auto checkout = tracker.checkout();
  EXPECT_EQ(checkout.changed, (std::set<ServicePortName>{spn("ns", "web", "http")}));

  // An update that changes nothing a proxy uses reports nothing.
  auto web_relabelled = service("ns", "web", {port("http", 80), port("https", 443)},
                                [](model::Service& s) { s.meta.labels["team"] = "a"; });
  services.on_update(web, web_relabelled);
  EXPECT_TRUE(tracker.checkout().changed.empty());

  // Removing a port reports it.
  auto web_http_only = service("ns", "web", {port("http", 80)});
  services.on_update(web_relabelled, web_http_only);
  checkout = tracker.checkout();
  EXPECT_EQ(checkout.changed, (std::set<ServicePortName>{spn("ns", "web", "https")}));
  EXPECT_EQ(checkout.snapshot->find(spn("ns", "web", "https")), nullptr);

  // Deleting the slice empties the port; deleting the Service removes it.
  slices.on_delete(web_slice2);
  checkout = tracker.checkout();
  EXPECT_EQ(checkout.changed, (std::set<ServicePortName>{spn("ns", "web", "http")}));
  EXPECT_TRUE(endpoints_of(*checkout.snapshot, spn("ns", "web", "http")).empty());
  services.on_delete(web_http_only);
  checkout = tracker.checkout();
  EXPECT_EQ(checkout.changed, (std::set<ServicePortName>{spn("ns", "web", "http")}));
  EXPECT_EQ(checkout.snapshot->service_ports.size(), 1u);
  EXPECT_NE(checkout.snapshot->find(spn("ns", "api", "")), nullptr);
}

TEST_F(ChangeTrackerTest, SharesUnchangedServicePortsBetweenSnapshotsAndNeverMutatesOldOnes) {
  services.on_add(service("ns", "web", {port("http", 80)}));
  services.on_add(service("ns", "api", {port("", 8080)}));
  auto first = tracker.checkout().snapshot;
  auto web_slice = slice("ns", "web-a", "web", {slice_port("http", 8080)}, {{"10.0.0.1"}});
  slices.on_add(web_slice);
  auto second = tracker.checkout().snapshot;
  EXPECT_EQ(first->service_ports.at(spn("ns", "api", "")), second->service_ports.at(spn("ns", "api", "")));
  EXPECT_TRUE(endpoints_of(*first, spn("ns", "web", "http")).empty());
  EXPECT_EQ(endpoints_of(*second, spn("ns", "web", "http")).size(), 1u);
  EXPECT_EQ(tracker.current(), second);
}

TEST_F(ChangeTrackerTest, MovesEndpointsWhenASliceChangesItsService) {
  services.on_add(service("ns", "a", {port("", 80)}));
  services.on_add(service("ns", "b", {port("", 80)}));
  auto for_a = slice("ns", "s", "a", {slice_port("", 8080)}, {{"10.0.0.1"}});
  auto for_b = slice("ns", "s", "b", {slice_port("", 8080)}, {{"10.0.0.1"}});
  slices.on_add(for_a);
  tracker.checkout();
  slices.on_update(for_a, for_b);
  auto checkout = tracker.checkout();
  EXPECT_EQ(checkout.changed, (std::set<ServicePortName>{spn("ns", "a", ""), spn("ns", "b", "")}));
  EXPECT_TRUE(endpoints_of(*checkout.snapshot, spn("ns", "a", "")).empty());
  EXPECT_EQ(endpoints_of(*checkout.snapshot, spn("ns", "b", "")).size(), 1u);
}

TEST_F(ChangeTrackerTest, DoesNotMixServicesWhoseNamesShareAPrefix) {
  services.on_add(service("ns", "web", {port("", 80)}));
  services.on_add(service("ns", "web2", {port("", 80)}));
  services.on_add(service("ns2", "web", {port("", 80)}));
  tracker.checkout();
  services.on_delete(service("ns", "web", {port("", 80)}));
  auto checkout = tracker.checkout();
  EXPECT_EQ(checkout.changed, (std::set<ServicePortName>{spn("ns", "web", "")}));
  EXPECT_EQ(checkout.snapshot->service_ports.size(), 2u);
}

TEST_F(ChangeTrackerTest, IsSyncedOnlyWhenBothInformersAre) {
  EXPECT_FALSE(tracker.synced());
  services.on_synced();
  EXPECT_FALSE(tracker.synced());
  slices.on_synced();
  EXPECT_TRUE(tracker.synced());
}

}  // namespace
}  // namespace kproxy::proxier
