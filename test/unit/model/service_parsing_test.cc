#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "kproxy/model/parse.h"
#include "model_test_support.h"

namespace kproxy::model {
namespace {

using testing::base_service;
using testing::describe;
using testing::find_rejection;
using testing::json;
using testing::model_fixture;
using testing::model_fixture_text;
using testing::patched;
using testing::with;

IpAddress ip(std::string_view text) { return *IpAddress::parse(text); }
Cidr cidr(std::string_view text) { return *Cidr::parse(text); }

Service parse_ok(const json& object) {
  auto result = parse_service(object);
  EXPECT_TRUE(result.ok()) << describe(result.rejections);
  return result.value.value_or(Service{});
}

// Every realistic fixture parses without a rejection, and the JSON-text entry point agrees
// with the JSON-value one.
class ServiceFixture : public ::testing::TestWithParam<const char*> {};

TEST_P(ServiceFixture, ParsesWithoutRejectionsFromTextAndJson) {
  auto from_text = parse_service_json(model_fixture_text(GetParam()));
  ASSERT_TRUE(from_text.ok()) << describe(from_text.rejections);
  EXPECT_TRUE(from_text.rejections.empty()) << describe(from_text.rejections);
  auto from_json = parse_service(model_fixture(GetParam()));
  EXPECT_EQ(from_text.value, from_json.value);
}

INSTANTIATE_TEST_SUITE_P(RealCluster, ServiceFixture,
                         ::testing::Values("service-clusterip.json", "service-nodeport.json",
                                           "service-loadbalancer-vip.json", "service-loadbalancer-proxy.json",
                                           "service-headless.json", "service-externalname.json",
                                           "service-dualstack.json", "service-sctp-mme.json",
                                           "service-sctp-kep-example.json"));

TEST(ServiceParsing, ReadsAClusterIPService) {
  Service svc = parse_ok(model_fixture("service-clusterip.json"));
  EXPECT_EQ(svc.meta.ns, "default");
  EXPECT_EQ(svc.meta.name, "web");
  EXPECT_EQ(svc.meta.key(), "default/web");
  EXPECT_EQ(svc.meta.uid, "6a1f0a5e-2c4b-4f7e-9d61-0b8f3c2e7a91");
  EXPECT_EQ(svc.meta.resource_version, "48213");
  EXPECT_EQ(svc.meta.labels.at("app.kubernetes.io/part-of"), "shop");
  EXPECT_EQ(svc.meta.annotations.at("prometheus.io/scrape"), "true");
  EXPECT_EQ(svc.meta.annotations.count("kubectl.kubernetes.io/last-applied-configuration"), 0u);
  EXPECT_FALSE(svc.meta.deletion_timestamp);
  EXPECT_EQ(svc.type, ServiceType::kClusterIP);
  EXPECT_FALSE(svc.headless);
  EXPECT_EQ(svc.cluster_ips, std::vector<IpAddress>{ip("10.96.12.34")});
  EXPECT_EQ(svc.ip_families, std::vector<IpFamily>{IpFamily::kIPv4});
  EXPECT_EQ(svc.ports, (std::vector<ServicePort>{{"http", Protocol::kTcp, 80, 0}, {"https", Protocol::kTcp, 443, 0}}));
  EXPECT_EQ(svc.session_affinity, SessionAffinity::kNone);
  EXPECT_EQ(svc.session_affinity_timeout_seconds, kDefaultSessionAffinityTimeoutSeconds);
  EXPECT_EQ(svc.external_traffic_policy, TrafficPolicy::kCluster);
  EXPECT_EQ(svc.internal_traffic_policy, TrafficPolicy::kCluster);
  EXPECT_EQ(svc.traffic_distribution, TrafficDistribution::kPreferSameZone);
  EXPECT_TRUE(svc.external_ips.empty());
  EXPECT_TRUE(svc.load_balancer_ingress.empty());
}

TEST(ServiceParsing, ReadsNodePortsExternalIPsAndClientIPAffinity) {
  Service svc = parse_ok(model_fixture("service-nodeport.json"));
  EXPECT_EQ(svc.type, ServiceType::kNodePort);
  EXPECT_EQ(svc.ports,
            (std::vector<ServicePort>{{"http", Protocol::kTcp, 8080, 30080}, {"metrics", Protocol::kTcp, 9091, 30091}}));
  EXPECT_EQ(svc.external_ips, std::vector<IpAddress>{ip("192.0.2.10")});
  EXPECT_EQ(svc.session_affinity, SessionAffinity::kClientIP);
  EXPECT_EQ(svc.session_affinity_timeout_seconds, 3600u);
}

TEST(ServiceParsing, ReadsALoadBalancerWithVIPIngressSourceRangesAndLocalPolicy) {
  Service svc = parse_ok(model_fixture("service-loadbalancer-vip.json"));
  EXPECT_EQ(svc.type, ServiceType::kLoadBalancer);
  EXPECT_EQ(svc.load_balancer_ingress,
            (std::vector<LoadBalancerIngress>{{ip("198.51.100.80"), LoadBalancerIPMode::kVIP}}));
  EXPECT_EQ(svc.load_balancer_source_ranges,
            (std::vector<Cidr>{cidr("203.0.113.0/24"), cidr("198.51.100.0/25")}));
  EXPECT_EQ(svc.external_traffic_policy, TrafficPolicy::kLocal);
  EXPECT_EQ(svc.health_check_node_port, 32001);
  EXPECT_EQ(svc.ports[1], (ServicePort{"https", Protocol::kTcp, 443, 31443}));
}

TEST(ServiceParsing, KeepsProxyModeIngressAndSkipsHostnameOnlyEntries) {
  Service svc = parse_ok(model_fixture("service-loadbalancer-proxy.json"));
  // Entry 0 is hostname-only; entry 2 has no ipMode, which means VIP.
  EXPECT_EQ(svc.load_balancer_ingress,
            (std::vector<LoadBalancerIngress>{{ip("52.18.44.201"), LoadBalancerIPMode::kProxy},
                                              {ip("52.18.44.202"), LoadBalancerIPMode::kVIP}}));
  // allocateLoadBalancerNodePorts: false
  EXPECT_EQ(svc.ports, (std::vector<ServicePort>{{"https", Protocol::kTcp, 443, 0}}));
}

TEST(ServiceParsing, ReadsAHeadlessServiceWithoutClusterIPs) {
  Service svc = parse_ok(model_fixture("service-headless.json"));
  EXPECT_TRUE(svc.headless);
  EXPECT_TRUE(svc.cluster_ips.empty());
  EXPECT_EQ(svc.ip_families, (std::vector<IpFamily>{IpFamily::kIPv4, IpFamily::kIPv6}));
  EXPECT_EQ(svc.ports.size(), 1u);
  EXPECT_EQ(svc.meta.labels.at("service.kubernetes.io/headless"), "");
}

TEST(ServiceParsing, ReadsAnExternalNameServiceWithoutClusterIPs) {
  Service svc = parse_ok(model_fixture("service-externalname.json"));
  EXPECT_EQ(svc.type, ServiceType::kExternalName);
  EXPECT_EQ(svc.external_name, "api.search.example.com");
  EXPECT_TRUE(svc.cluster_ips.empty());
  EXPECT_FALSE(svc.headless);
}

TEST(ServiceParsing, ReadsBothFamiliesOfADualStackService) {
  Service svc = parse_ok(model_fixture("service-dualstack.json"));
  EXPECT_EQ(svc.cluster_ips, (std::vector<IpAddress>{ip("10.96.0.77"), ip("fd00:10:96::4d2")}));
  EXPECT_EQ(svc.ip_families, (std::vector<IpFamily>{IpFamily::kIPv4, IpFamily::kIPv6}));
  ASSERT_EQ(svc.load_balancer_ingress.size(), 2u);
  EXPECT_EQ(svc.load_balancer_ingress[1].ip.to_string(), "2001:db8::12");  // canonical text
  EXPECT_EQ(svc.load_balancer_source_ranges, (std::vector<Cidr>{cidr("0.0.0.0/0"), cidr("2001:db8:abcd::/48")}));
  EXPECT_EQ(svc.internal_traffic_policy, TrafficPolicy::kLocal);
  EXPECT_EQ(svc.traffic_distribution, TrafficDistribution::kPreferClose);
  EXPECT_EQ(svc.health_check_node_port, 31999);
}

TEST(ServiceParsing, ReadsSctpPortsAndAllowsOnePortNumberForTwoProtocols) {
  Service svc = parse_ok(model_fixture("service-sctp-mme.json"));
  EXPECT_EQ(svc.ports, (std::vector<ServicePort>{{"s1ap", Protocol::kSctp, 36412, 30412},
                                                 {"diameter-sctp", Protocol::kSctp, 3868, 30868},
                                                 {"diameter-tcp", Protocol::kTcp, 3868, 30868}}));
  EXPECT_EQ(svc.session_affinity, SessionAffinity::kClientIP);
  EXPECT_EQ(svc.session_affinity_timeout_seconds, 10800u);
}

TEST(ServiceParsing, ReadsTheSctpProposalExampleWithApiDefaults) {
  // KEP-0015 (SCTP support): no type, no clusterIPs, no ipFamilies, an unnamed port.
  Service svc = parse_ok(model_fixture("service-sctp-kep-example.json"));
  EXPECT_EQ(svc.type, ServiceType::kClusterIP);
  EXPECT_EQ(svc.cluster_ips, std::vector<IpAddress>{ip("10.96.77.80")});
  EXPECT_EQ(svc.ip_families, std::vector<IpFamily>{IpFamily::kIPv4});
  EXPECT_EQ(svc.ports, (std::vector<ServicePort>{{"", Protocol::kSctp, 80, 0}}));
}

TEST(ServiceParsing, DefaultsAMissingProtocolToTcp) {
  auto object = base_service();
  object["spec"]["ports"][0].erase("protocol");
  Service svc = parse_ok(object);
  EXPECT_EQ(svc.ports[0].protocol, Protocol::kTcp);
}

TEST(ServiceParsing, ReadsLeadingZeroIPv4OctetsAsDecimal) {
  // CVE-2021-29923: the API server stores such values and Kubernetes reads them as decimal.
  auto object = patched(base_service(), json::parse(R"({"spec": {
      "clusterIP": "010.096.000.010", "clusterIPs": ["010.096.000.010"],
      "externalIPs": ["192.000.002.010"], "loadBalancerSourceRanges": ["010.0.0.0/8"]}})"));
  Service svc = parse_ok(object);
  EXPECT_EQ(svc.cluster_ips[0].to_string(), "10.96.0.10");
  EXPECT_EQ(svc.external_ips[0].to_string(), "192.0.2.10");
  EXPECT_EQ(svc.load_balancer_source_ranges[0].to_string(), "10.0.0.0/8");
}

TEST(ServiceParsing, TrimsWhitespaceAroundSourceRangesAsKubeProxyDoes) {
  Service svc = parse_ok(with(base_service(), "/spec/loadBalancerSourceRanges", {" 10.0.0.0/8 ", "\t192.168.0.0/16"}));
  EXPECT_EQ(svc.load_balancer_source_ranges, (std::vector<Cidr>{cidr("10.0.0.0/8"), cidr("192.168.0.0/16")}));
}

// An empty list means "no firewall": a list whose entries were all refused must not read as
// one, so the Service says that its list is incomplete and backends fail closed.
TEST(ServiceParsing, MarksSourceRangesIncompleteWhenAnEntryIsRefused) {
  EXPECT_TRUE(parse_ok(base_service()).load_balancer_source_ranges_complete);
  EXPECT_TRUE(parse_ok(with(base_service(), "/spec/loadBalancerSourceRanges", {"10.0.0.0/8"}))
                  .load_balancer_source_ranges_complete);

  auto all_bad = parse_service(with(base_service(), "/spec/loadBalancerSourceRanges", {"10.0.0.0/33", "nope"}));
  ASSERT_TRUE(all_bad.ok());
  EXPECT_TRUE(all_bad.value->load_balancer_source_ranges.empty());
  EXPECT_FALSE(all_bad.value->load_balancer_source_ranges_complete);

  auto one_bad = parse_service(with(base_service(), "/spec/loadBalancerSourceRanges", {"10.0.0.0/8", "nope"}));
  ASSERT_TRUE(one_bad.ok());
  EXPECT_EQ(one_bad.value->load_balancer_source_ranges, std::vector<Cidr>{cidr("10.0.0.0/8")});
  EXPECT_FALSE(one_bad.value->load_balancer_source_ranges_complete);

  auto not_a_list = parse_service(with(base_service(), "/spec/loadBalancerSourceRanges", "10.0.0.0/8"));
  ASSERT_TRUE(not_a_list.ok());
  EXPECT_FALSE(not_a_list.value->load_balancer_source_ranges_complete);
}

TEST(ServiceParsing, DerivesClusterIPsFromClusterIPWhenTheListIsAbsent) {
  auto object = base_service();
  object["spec"].erase("clusterIPs");
  object["spec"].erase("ipFamilies");
  Service svc = parse_ok(object);
  EXPECT_EQ(svc.cluster_ips, std::vector<IpAddress>{ip("10.96.0.10")});
  EXPECT_EQ(svc.ip_families, std::vector<IpFamily>{IpFamily::kIPv4});
}

TEST(ServiceParsing, KeepsAServiceWhoseClusterIPIsNotAllocatedYet) {
  // A manifest without clusterIP: valid, but kube-proxy has nothing to proxy.
  auto object = base_service();
  object["spec"].erase("clusterIP");
  object["spec"].erase("clusterIPs");
  object["spec"].erase("ipFamilies");
  Service svc = parse_ok(object);
  EXPECT_TRUE(svc.cluster_ips.empty());
  EXPECT_FALSE(svc.headless);
}

TEST(ServiceParsing, IgnoresUnknownFieldsAndReadsNullAsAbsent) {
  auto object = patched(base_service(), json::parse(R"({"spec": {"futureField": {"x": 1}},
      "status": {"newStatus": [1, 2]}})"));
  // A merge patch deletes on null, so set the nulls directly.
  object["spec"]["externalIPs"] = nullptr;
  object["spec"]["sessionAffinity"] = nullptr;
  object["metadata"]["labels"] = nullptr;
  object["spec"]["ports"][0]["protocol"] = nullptr;
  auto result = parse_service(object);
  ASSERT_TRUE(result.ok()) << describe(result.rejections);
  EXPECT_TRUE(result.rejections.empty()) << describe(result.rejections);
  EXPECT_EQ(result.value->ports[0].protocol, Protocol::kTcp);
}

TEST(ServiceParsing, KeepsValidPortsWhenOneProtocolIsUnknown) {
  auto result = parse_service(with(base_service(), "/spec/ports/1/protocol", "QUIC"));
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value->ports, (std::vector<ServicePort>{{"http", Protocol::kTcp, 80, 0}}));
  ASSERT_EQ(result.rejections.size(), 1u) << describe(result.rejections);
  const Rejection& r = result.rejections[0];
  EXPECT_EQ(r.kind, "Service");
  EXPECT_EQ(r.object, "default/web");
  EXPECT_EQ(r.field, "spec.ports[1].protocol");
  EXPECT_EQ(r.value, "\"QUIC\"");
  EXPECT_EQ(r.reason, RejectReason::kUnknownValue);
  EXPECT_EQ(r.message(), "service default/web: spec.ports[1].protocol: \"QUIC\" is not TCP, UDP or SCTP");
}

TEST(ServiceParsing, KeepsValidExternalIPsAndDropsEachBadOne) {
  auto result = parse_service(with(base_service(), "/spec/externalIPs",
                                   {"192.0.2.1", "not-an-ip", "127.0.0.1", "169.254.169.254", "224.0.0.1",
                                    "0.0.0.0", "::ffff:192.0.2.2", "2001:db8::1"}));
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value->external_ips, (std::vector<IpAddress>{ip("192.0.2.1"), ip("2001:db8::1")}));
  const std::pair<const char*, RejectReason> expected[] = {
      {"spec.externalIPs[1]", RejectReason::kInvalidIp},
      {"spec.externalIPs[2]", RejectReason::kForbiddenAddress},
      {"spec.externalIPs[3]", RejectReason::kForbiddenAddress},
      {"spec.externalIPs[4]", RejectReason::kForbiddenAddress},
      {"spec.externalIPs[5]", RejectReason::kForbiddenAddress},
      {"spec.externalIPs[6]", RejectReason::kForbiddenAddress},
  };
  ASSERT_EQ(result.rejections.size(), std::size(expected)) << describe(result.rejections);
  for (std::size_t i = 0; i < std::size(expected); ++i) {
    EXPECT_EQ(result.rejections[i].field, expected[i].first);
    EXPECT_EQ(result.rejections[i].reason, expected[i].second) << result.rejections[i].message();
  }
}

TEST(ServiceParsing, DropsOnlyTheBadIngressEntry) {
  auto object = with(base_service(), "/status/loadBalancer/ingress",
                     json::parse(R"([{"ip": "1.2.3"}, {"ip": "198.51.100.1", "ipMode": "Tunnel"},
                                     {"ip": "198.51.100.2", "ipMode": "Proxy"}, {"hostname": "lb.example.com"}])"));
  auto result = parse_service(object);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value->load_balancer_ingress,
            (std::vector<LoadBalancerIngress>{{ip("198.51.100.2"), LoadBalancerIPMode::kProxy}}));
  ASSERT_NE(find_rejection(result.rejections, "status.loadBalancer.ingress[0].ip"), nullptr);
  ASSERT_NE(find_rejection(result.rejections, "status.loadBalancer.ingress[1].ipMode"), nullptr);
  EXPECT_EQ(result.rejections.size(), 2u) << describe(result.rejections);
}

// One row per rule: an edit to a valid Service, the field and reason it must be rejected
// with, and whether the Service as a whole is refused.
struct RejectionCase {
  const char* name;
  const char* merge_patch;  // RFC 7386 against base_service()
  const char* field;
  RejectReason reason;
  bool refused;
};

class ServiceRejection : public ::testing::TestWithParam<RejectionCase> {};

TEST_P(ServiceRejection, NamesTheField) {
  const auto& c = GetParam();
  const json object = patched(base_service(), json::parse(c.merge_patch));
  auto result = parse_service(object);
  const Rejection* r = find_rejection(result.rejections, c.field);
  ASSERT_NE(r, nullptr) << "no rejection for " << c.field << describe(result.rejections);
  EXPECT_EQ(r->reason, c.reason) << r->message();
  EXPECT_EQ(result.ok(), !c.refused) << describe(result.rejections);
  EXPECT_THAT(r->message(), ::testing::HasSubstr(c.field));
  EXPECT_TRUE(testing::rejections_name_their_fields(result, object));
}

const RejectionCase kServiceRejections[] = {
    // Ports: the port is dropped, the Service kept.
    {"PortAsString", R"({"spec": {"ports": [{"name": "http", "port": "80"}]}})", "spec.ports[0].port",
     RejectReason::kWrongType, false},
    {"PortAsFloat", R"({"spec": {"ports": [{"name": "http", "port": 80.5}]}})", "spec.ports[0].port",
     RejectReason::kWrongType, false},
    {"PortZero", R"({"spec": {"ports": [{"name": "http", "port": 0}]}})", "spec.ports[0].port",
     RejectReason::kOutOfRange, false},
    {"PortTooHigh", R"({"spec": {"ports": [{"name": "http", "port": 65536}]}})", "spec.ports[0].port",
     RejectReason::kOutOfRange, false},
    {"PortNegative", R"({"spec": {"ports": [{"name": "http", "port": -80}]}})", "spec.ports[0].port",
     RejectReason::kOutOfRange, false},
    {"PortBeyondInt64", R"({"spec": {"ports": [{"name": "http", "port": 18446744073709551615}]}})",
     "spec.ports[0].port", RejectReason::kOutOfRange, false},
    {"PortMissing", R"({"spec": {"ports": [{"name": "http"}]}})", "spec.ports[0].port", RejectReason::kMissingField,
     false},
    {"NodePortTooHigh", R"({"spec": {"ports": [{"name": "http", "port": 80, "nodePort": 65536}]}})",
     "spec.ports[0].nodePort", RejectReason::kOutOfRange, false},
    {"ProtocolLowerCase", R"({"spec": {"ports": [{"name": "http", "port": 80, "protocol": "tcp"}]}})",
     "spec.ports[0].protocol", RejectReason::kUnknownValue, false},
    {"ProtocolNotAString", R"({"spec": {"ports": [{"name": "http", "port": 80, "protocol": 6}]}})",
     "spec.ports[0].protocol", RejectReason::kWrongType, false},
    {"PortNameNotALabel", R"({"spec": {"ports": [{"name": "HTTP_1", "port": 80}]}})", "spec.ports[0].name",
     RejectReason::kMalformed, false},
    {"PortNameWithNewline", R"({"spec": {"ports": [{"name": "a\n-A INPUT -j ACCEPT", "port": 80}]}})",
     "spec.ports[0].name", RejectReason::kMalformed, false},
    {"DuplicatePortName", R"({"spec": {"ports": [{"name": "a", "port": 80}, {"name": "a", "port": 81}]}})",
     "spec.ports[1].name", RejectReason::kConflict, false},
    {"TwoUnnamedPorts", R"({"spec": {"ports": [{"port": 80}, {"port": 81}]}})", "spec.ports[1].name",
     RejectReason::kMissingField, false},
    {"DuplicatePortAndProtocol", R"({"spec": {"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 80}]}})",
     "spec.ports[1].port", RejectReason::kConflict, false},
    {"DuplicateNodePort",
     R"({"spec": {"ports": [{"name": "a", "port": 80, "nodePort": 30001}, {"name": "b", "port": 81, "nodePort": 30001}]}})",
     "spec.ports[1].nodePort", RejectReason::kConflict, false},
    {"PortsNotAList", R"({"spec": {"ports": {"name": "http", "port": 80}}})", "spec.ports", RejectReason::kWrongType,
     false},
    {"PortEntryNotAnObject", R"({"spec": {"ports": [80]}})", "spec.ports[0]", RejectReason::kWrongType, false},
    // Cluster IPs: the Service is refused.
    {"ClusterIPInvalid", R"({"spec": {"clusterIP": "10.96.0.300", "clusterIPs": null}})", "spec.clusterIP",
     RejectReason::kInvalidIp, true},
    {"ClusterIPZoneScoped", R"({"spec": {"clusterIP": "fd00::1%eth0", "clusterIPs": ["fd00::1%eth0"]}})",
     "spec.clusterIPs[0]", RejectReason::kInvalidIp, true},
    {"ClusterIPLoopback", R"({"spec": {"clusterIP": "127.0.0.1", "clusterIPs": ["127.0.0.1"]}})",
     "spec.clusterIPs[0]", RejectReason::kForbiddenAddress, true},
    {"ClusterIPv4Mapped", R"({"spec": {"clusterIP": "::ffff:10.96.0.10", "clusterIPs": ["::ffff:10.96.0.10"]}})",
     "spec.clusterIPs[0]", RejectReason::kForbiddenAddress, true},
    {"ClusterIPDisagreesWithClusterIPs", R"({"spec": {"clusterIP": "10.96.0.11"}})", "spec.clusterIP",
     RejectReason::kConflict, true},
    {"ClusterIPsSameFamilyTwice", R"({"spec": {"clusterIPs": ["10.96.0.10", "10.96.0.11"]}})", "spec.clusterIPs[1]",
     RejectReason::kFamilyMismatch, true},
    {"ClusterIPsTooMany", R"({"spec": {"clusterIPs": ["10.96.0.10", "fd00::10", "10.96.0.12"]}})",
     "spec.clusterIPs", RejectReason::kTooLarge, true},
    {"ClusterIPsNoneWithAnIP", R"({"spec": {"clusterIP": "None", "clusterIPs": ["None", "fd00::10"]}})",
     "spec.clusterIPs[1]", RejectReason::kMalformed, true},
    {"IPFamiliesDisagreeWithClusterIPs", R"({"spec": {"ipFamilies": ["IPv6"]}})", "spec.ipFamilies[0]",
     RejectReason::kFamilyMismatch, true},
    {"DualStackIPFamiliesInTheWrongOrder",
     R"({"spec": {"clusterIPs": ["10.96.0.10", "fd00::10"], "ipFamilies": ["IPv6", "IPv4"]}})",
     "spec.ipFamilies[0]", RejectReason::kFamilyMismatch, true},
    {"DualStackWithOneFamilyListed", R"({"spec": {"clusterIPs": ["10.96.0.10", "fd00::10"], "ipFamilies": ["IPv4"]}})",
     "spec.ipFamilies", RejectReason::kFamilyMismatch, true},
    {"IPFamilyUnknown", R"({"spec": {"ipFamilies": ["IPv5"]}})", "spec.ipFamilies[0]", RejectReason::kUnknownValue,
     true},
    {"IPFamilyRepeated", R"({"spec": {"clusterIP": "None", "clusterIPs": ["None"], "ipFamilies": ["IPv4", "IPv4"]}})",
     "spec.ipFamilies[1]", RejectReason::kConflict, true},
    // The type and the object itself: refused.
    {"TypeUnknown", R"({"spec": {"type": "Ingress"}})", "spec.type", RejectReason::kUnknownValue, true},
    {"SpecNotAnObject", R"({"spec": ["ClusterIP"]})", "spec", RejectReason::kWrongType, true},
    {"NameMissing", R"({"metadata": {"name": null}})", "metadata.name", RejectReason::kMissingField, true},
    {"NameEmpty", R"({"metadata": {"name": ""}})", "metadata.name", RejectReason::kMissingField, true},
    {"NameNotALabel", R"({"metadata": {"name": "Web_1"}})", "metadata.name", RejectReason::kMalformed, true},
    {"NamespaceMissing", R"({"metadata": {"namespace": null}})", "metadata.namespace", RejectReason::kMissingField,
     true},
    {"MetadataMissing", R"({"metadata": null})", "metadata", RejectReason::kMissingField, true},
    {"KindIsAnother", R"({"kind": "Pod"})", "kind", RejectReason::kUnknownValue, true},
    {"ApiVersionIsAnother", R"({"apiVersion": "v2"})", "apiVersion", RejectReason::kUnknownValue, true},
    // Other fields: the entry is dropped or the default used, the Service kept.
    {"ExternalIPInvalid", R"({"spec": {"externalIPs": ["1.2.3.4.5"]}})", "spec.externalIPs[0]",
     RejectReason::kInvalidIp, false},
    {"ExternalIPsNotAList", R"({"spec": {"externalIPs": "192.0.2.1"}})", "spec.externalIPs", RejectReason::kWrongType,
     false},
    {"SourceRangeInvalid", R"({"spec": {"loadBalancerSourceRanges": ["10.0.0.0/33"]}})",
     "spec.loadBalancerSourceRanges[0]", RejectReason::kInvalidIp, false},
    {"SourceRangeNull", R"({"spec": {"loadBalancerSourceRanges": [null]}})", "spec.loadBalancerSourceRanges[0]",
     RejectReason::kWrongType, false},
    {"SessionAffinityUnknown", R"({"spec": {"sessionAffinity": "Sticky"}})", "spec.sessionAffinity",
     RejectReason::kUnknownValue, false},
    {"SessionAffinityTimeoutZero",
     R"({"spec": {"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 0}}}})",
     "spec.sessionAffinityConfig.clientIP.timeoutSeconds", RejectReason::kOutOfRange, false},
    {"SessionAffinityTimeoutOverADay",
     R"({"spec": {"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 86401}}}})",
     "spec.sessionAffinityConfig.clientIP.timeoutSeconds", RejectReason::kOutOfRange, false},
    {"ExternalTrafficPolicyUnknown", R"({"spec": {"externalTrafficPolicy": "Global"}})",
     "spec.externalTrafficPolicy", RejectReason::kUnknownValue, false},
    {"InternalTrafficPolicyUnknown", R"({"spec": {"internalTrafficPolicy": "Node"}})", "spec.internalTrafficPolicy",
     RejectReason::kUnknownValue, false},
    {"HealthCheckNodePortTooHigh", R"({"spec": {"healthCheckNodePort": 70000}})", "spec.healthCheckNodePort",
     RejectReason::kOutOfRange, false},
    {"TrafficDistributionUnknown", R"({"spec": {"trafficDistribution": "PreferRegion"}})",
     "spec.trafficDistribution", RejectReason::kUnknownValue, false},
    {"LabelNotAString", R"({"metadata": {"labels": {"app": 7}}})", "metadata.labels[app]", RejectReason::kWrongType,
     false},
    {"DeletionTimestampMalformed", R"({"metadata": {"deletionTimestamp": "yesterday"}})",
     "metadata.deletionTimestamp", RejectReason::kMalformed, false},
    {"StatusNotAnObject", R"({"status": "ready"})", "status", RejectReason::kWrongType, false},
};

INSTANTIATE_TEST_SUITE_P(Rules, ServiceRejection, ::testing::ValuesIn(kServiceRejections),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(ServiceParsing, FallsBackToDefaultsWhenAffinityOrPolicyValuesAreUnknown) {
  auto object = patched(base_service(), json::parse(R"({"spec": {"sessionAffinity": "ClientIP",
      "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 0}}, "externalTrafficPolicy": "Global",
      "trafficDistribution": "PreferRegion"}})"));
  auto result = parse_service(object);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value->session_affinity, SessionAffinity::kClientIP);
  EXPECT_EQ(result.value->session_affinity_timeout_seconds, kDefaultSessionAffinityTimeoutSeconds);
  EXPECT_EQ(result.value->external_traffic_policy, TrafficPolicy::kCluster);
  EXPECT_FALSE(result.value->traffic_distribution);
}

TEST(ServiceParsing, KeepsADeletingServiceWhoseTimestampIsUnreadable) {
  auto result = parse_service(with(base_service(), "/metadata/deletionTimestamp", "yesterday"));
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value->meta.deletion_timestamp, Timestamp{});
}

TEST(ServiceParsing, ReportsEverythingWrongInOnePass) {
  auto object = patched(base_service(), json::parse(R"({"spec": {"type": "Ingress", "clusterIP": "x",
      "clusterIPs": null, "externalIPs": ["y"]}})"));
  object["spec"]["ports"][1]["protocol"] = "QUIC";
  auto result = parse_service(object);
  EXPECT_FALSE(result.ok());
  EXPECT_NE(find_rejection(result.rejections, "spec.type"), nullptr);
  EXPECT_NE(find_rejection(result.rejections, "spec.clusterIP"), nullptr);
  EXPECT_NE(find_rejection(result.rejections, "spec.externalIPs[0]"), nullptr);
  EXPECT_NE(find_rejection(result.rejections, "spec.ports[1].protocol"), nullptr);
}

TEST(ServiceParsing, NamesTheObjectByItsRawNameEvenWhenTheNameIsMalformed) {
  auto result = parse_service(with(base_service(), "/metadata/name", "Bad\x01Name"));
  ASSERT_FALSE(result.rejections.empty());
  EXPECT_EQ(result.rejections[0].object, "default/Bad\\x01Name");
}

TEST(ServiceParsing, ComparesEqualOnlyWhenEveryFieldMatches) {
  Service a = parse_ok(base_service());
  Service b = parse_ok(base_service());
  EXPECT_EQ(a, b);
  b.ports[1].protocol = Protocol::kUdp;
  EXPECT_NE(a, b);
}

TEST(ServiceEnums, PrintTheApiSpelling) {
  EXPECT_EQ(to_string(Protocol::kSctp), "SCTP");
  EXPECT_EQ(to_string(ServiceType::kLoadBalancer), "LoadBalancer");
  EXPECT_EQ(to_string(SessionAffinity::kClientIP), "ClientIP");
  EXPECT_EQ(to_string(TrafficPolicy::kLocal), "Local");
  EXPECT_EQ(to_string(LoadBalancerIPMode::kProxy), "Proxy");
  EXPECT_EQ(to_string(TrafficDistribution::kPreferSameNode), "PreferSameNode");
}

}  // namespace
}  // namespace kproxy::model
