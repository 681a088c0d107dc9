#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "kproxy/model/parse.h"
#include "model_test_support.h"

namespace kproxy::model {
namespace {

using testing::base_slice;
using testing::describe;
using testing::find_rejection;
using testing::json;
using testing::model_fixture;
using testing::model_fixture_text;
using testing::patched;
using testing::with;

IpAddress ip(std::string_view text) { return *IpAddress::parse(text); }

EndpointSlice parse_ok(const json& object) {
  auto result = parse_endpoint_slice(object);
  EXPECT_TRUE(result.ok()) << describe(result.rejections);
  return result.value.value_or(EndpointSlice{});
}

class EndpointSliceFixture : public ::testing::TestWithParam<const char*> {};

TEST_P(EndpointSliceFixture, ParsesWithoutRejectionsFromTextAndJson) {
  auto from_text = parse_endpoint_slice_json(model_fixture_text(GetParam()));
  ASSERT_TRUE(from_text.ok()) << describe(from_text.rejections);
  EXPECT_TRUE(from_text.rejections.empty()) << describe(from_text.rejections);
  EXPECT_EQ(from_text.value, parse_endpoint_slice(model_fixture(GetParam())).value);
}

INSTANTIATE_TEST_SUITE_P(RealCluster, EndpointSliceFixture,
                         ::testing::Values("endpointslice-web-ipv4.json", "endpointslice-frontend-ipv6.json",
                                           "endpointslice-mme-sctp.json", "endpointslice-manual.json",
                                           "endpointslice-fqdn.json"));

TEST(EndpointSliceParsing, ReadsConditionsHintsNodesAndZones) {
  EndpointSlice slice = parse_ok(model_fixture("endpointslice-web-ipv4.json"));
  EXPECT_EQ(slice.meta.key(), "default/web-8rx2c");
  EXPECT_EQ(slice.service_name, "web");
  EXPECT_EQ(slice.address_type, AddressType::kIPv4);
  ASSERT_EQ(slice.endpoints.size(), 4u);

  const Endpoint& serving = slice.endpoints[0];
  EXPECT_EQ(serving.address, ip("10.244.1.17"));
  EXPECT_TRUE(serving.ready);
  EXPECT_TRUE(serving.serving);
  EXPECT_FALSE(serving.terminating);
  EXPECT_EQ(serving.node_name, "node-a");
  EXPECT_EQ(serving.zone, "europe-west1-b");
  EXPECT_EQ(serving.zone_hints, std::vector<std::string>{"europe-west1-b"});
  EXPECT_TRUE(serving.node_hints.empty());

  const Endpoint& terminating = slice.endpoints[2];
  EXPECT_FALSE(terminating.ready);
  EXPECT_TRUE(terminating.serving);
  EXPECT_TRUE(terminating.terminating);

  const Endpoint& not_ready = slice.endpoints[3];
  EXPECT_FALSE(not_ready.ready);
  EXPECT_FALSE(not_ready.serving);
  EXPECT_FALSE(not_ready.terminating);
  EXPECT_TRUE(not_ready.zone_hints.empty());

  EXPECT_EQ(slice.ports,
            (std::vector<EndpointPort>{{"http", Protocol::kTcp, 8080}, {"https", Protocol::kTcp, 8443}}));
  EXPECT_EQ(slice.last_change_trigger_time, *parse_rfc3339("2024-05-14T09:40:02Z"));
}

TEST(EndpointSliceParsing, ReadsAnIPv6SliceWithCanonicalAddressesAndNodeHints) {
  EndpointSlice slice = parse_ok(model_fixture("endpointslice-frontend-ipv6.json"));
  EXPECT_EQ(slice.address_type, AddressType::kIPv6);
  ASSERT_EQ(slice.endpoints.size(), 2u);
  EXPECT_EQ(slice.endpoints[0].address.to_string(), "fd00:10:244:1::1a");
  // Written "FD00:0010:0244:0002:0000:0000:0000:002B" in the object.
  EXPECT_EQ(slice.endpoints[1].address.to_string(), "fd00:10:244:2::2b");
  EXPECT_EQ(slice.endpoints[1].node_hints, std::vector<std::string>{"node-b"});
  EXPECT_EQ(slice.endpoints[1].zone_hints, std::vector<std::string>{"zone-2"});
  // RFC3339Nano, kept to the microsecond.
  EXPECT_EQ(format_rfc3339(*slice.last_change_trigger_time), "2024-08-19T06:45:30.123456Z");
}

TEST(EndpointSliceParsing, ReadsSctpPorts) {
  EndpointSlice slice = parse_ok(model_fixture("endpointslice-mme-sctp.json"));
  EXPECT_EQ(slice.ports, (std::vector<EndpointPort>{{"s1ap", Protocol::kSctp, 36412},
                                                    {"diameter-sctp", Protocol::kSctp, 3868},
                                                    {"diameter-tcp", Protocol::kTcp, 3868}}));
  EXPECT_EQ(slice.endpoints.size(), 2u);
}

TEST(EndpointSliceParsing, ReadsMissingConditionsAsKubeProxyDoes) {
  // ready nil => true, serving nil => true, terminating nil => false (endpointslicecache.go).
  EndpointSlice slice = parse_ok(model_fixture("endpointslice-manual.json"));
  ASSERT_EQ(slice.endpoints.size(), 2u);
  for (const auto& e : slice.endpoints) {
    EXPECT_TRUE(e.ready);
    EXPECT_TRUE(e.serving);
    EXPECT_FALSE(e.terminating);
    EXPECT_FALSE(e.node_name);
    EXPECT_FALSE(e.zone);
  }
  // An unnamed port with no protocol: the Service's single unnamed TCP port.
  EXPECT_EQ(slice.ports, (std::vector<EndpointPort>{{"", Protocol::kTcp, 5432}}));
}

TEST(EndpointSliceParsing, ReadsLeadingZeroIPv4OctetsAsDecimal) {
  EndpointSlice slice = parse_ok(model_fixture("endpointslice-manual.json"));
  EXPECT_EQ(slice.endpoints[1].address.to_string(), "192.168.10.22");  // "192.168.010.022"
}

TEST(EndpointSliceParsing, KeepsAnFqdnSliceWithoutEndpoints) {
  EndpointSlice slice = parse_ok(model_fixture("endpointslice-fqdn.json"));
  EXPECT_EQ(slice.address_type, AddressType::kFQDN);
  EXPECT_TRUE(slice.endpoints.empty());
  EXPECT_EQ(slice.ports.size(), 1u);
}

TEST(EndpointSliceParsing, ReadsOnlyTheFirstAddressOfAnEndpoint) {
  // kube-proxy uses addresses[0] only; a bad second address does not drop the endpoint.
  EndpointSlice slice = parse_ok(with(base_slice(), "/endpoints/0/addresses", {"10.244.1.5", "127.0.0.1"}));
  ASSERT_EQ(slice.endpoints.size(), 2u);
  EXPECT_EQ(slice.endpoints[0].address, ip("10.244.1.5"));
}

TEST(EndpointSliceParsing, KeepsOtherEndpointsWhenOneAddressIsLoopback) {
  auto result = parse_endpoint_slice(with(base_slice(), "/endpoints/0/addresses/0", "127.0.0.1"));
  ASSERT_TRUE(result.ok());
  ASSERT_EQ(result.value->endpoints.size(), 1u);
  EXPECT_EQ(result.value->endpoints[0].address, ip("10.244.2.6"));
  ASSERT_EQ(result.rejections.size(), 1u) << describe(result.rejections);
  EXPECT_EQ(result.rejections[0].message(),
            "endpointslice default/web-abc12: endpoints[0].addresses[0]: \"127.0.0.1\" is a loopback address");
}

TEST(EndpointSliceParsing, NamesALongSliceInFullInRejections) {
  const std::string name = std::string(120, 'w') + "." + std::string(132, 'x');  // 253: the longest valid
  auto object = with(base_slice(), "/metadata/name", name);
  object["ports"][0]["port"] = 0;
  auto result = parse_endpoint_slice(object);
  ASSERT_TRUE(result.ok());
  ASSERT_EQ(result.rejections.size(), 1u);
  EXPECT_EQ(result.rejections[0].object, "default/" + name);
}

TEST(EndpointSliceParsing, KeepsOtherPortsWhenOneIsInvalid) {
  auto result = parse_endpoint_slice(with(base_slice(), "/ports/0/port", 0));
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.value->ports, (std::vector<EndpointPort>{{"sig", Protocol::kSctp, 3868}}));
  EXPECT_EQ(result.value->endpoints.size(), 2u);
}

struct RejectionCase {
  const char* name;
  const char* pointer;  // JSON pointer into base_slice() ...
  const char* value;    // ... set to this JSON text ("<delete>" removes it)
  const char* field;
  RejectReason reason;
  bool refused;
};

class EndpointSliceRejection : public ::testing::TestWithParam<RejectionCase> {};

TEST_P(EndpointSliceRejection, NamesTheField) {
  const auto& c = GetParam();
  json object = base_slice();
  if (std::string_view(c.value) == "<delete>") {
    const json::json_pointer pointer(c.pointer);
    object[pointer.parent_pointer()].erase(pointer.back());
  } else {
    object[json::json_pointer(c.pointer)] = json::parse(c.value);
  }
  auto result = parse_endpoint_slice(object);
  const Rejection* r = find_rejection(result.rejections, c.field);
  ASSERT_NE(r, nullptr) << "no rejection for " << c.field << describe(result.rejections);
  EXPECT_EQ(r->reason, c.reason) << r->message();
  EXPECT_EQ(result.ok(), !c.refused) << describe(result.rejections);
  if (result.ok() && std::string_view(c.field).rfind("endpoints[", 0) == 0) {
    EXPECT_EQ(result.value->endpoints.size(), 1u) << "only the bad endpoint is dropped";
  }
  if (result.ok() && std::string_view(c.field).rfind("ports[", 0) == 0) {
    EXPECT_EQ(result.value->ports.size(), 1u) << "only the bad port is dropped";
  }
  EXPECT_TRUE(testing::rejections_name_their_fields(result, object));
}

std::string many(const char* item, std::size_t n) {
  std::string out = "[";
  for (std::size_t i = 0; i < n; ++i) out += (i ? "," : "") + std::string(item);
  return out + "]";
}

const std::string kTooManyAddresses = many("\"10.0.0.1\"", kMaxEndpointAddresses + 1);
const std::string kTooManyEndpoints = many(R"({"addresses": ["10.0.0.1"]})", kMaxSliceEndpoints + 1);
const std::string kTooManyZoneHints = many(R"({"name": "z"})", kMaxEndpointHints + 1);

const RejectionCase kSliceRejections[] = {
    // CVE-2021-25737 and friends: the endpoint is dropped.
    {"Loopback", "/endpoints/0/addresses/0", R"("127.0.0.2")", "endpoints[0].addresses[0]",
     RejectReason::kForbiddenAddress, false},
    {"LinkLocalMetadataService", "/endpoints/0/addresses/0", R"("169.254.169.254")", "endpoints[0].addresses[0]",
     RejectReason::kForbiddenAddress, false},
    {"Unspecified", "/endpoints/1/addresses/0", R"("0.0.0.0")", "endpoints[1].addresses[0]",
     RejectReason::kForbiddenAddress, false},
    {"Multicast", "/endpoints/1/addresses/0", R"("224.0.0.251")", "endpoints[1].addresses[0]",
     RejectReason::kForbiddenAddress, false},
    {"IPv6InIPv4Slice", "/endpoints/0/addresses/0", R"("fd00::5")", "endpoints[0].addresses[0]",
     RejectReason::kFamilyMismatch, false},
    {"IPv4MappedIPv6", "/endpoints/0/addresses/0", R"("::ffff:10.244.1.5")", "endpoints[0].addresses[0]",
     RejectReason::kForbiddenAddress, false},
    {"ZoneScopedIPv6", "/endpoints/0/addresses/0", R"("fd00::5%eth0")", "endpoints[0].addresses[0]",
     RejectReason::kInvalidIp, false},
    {"NotAnIP", "/endpoints/0/addresses/0", R"("pod-1.example.com")", "endpoints[0].addresses[0]",
     RejectReason::kInvalidIp, false},
    {"AddressNotAString", "/endpoints/0/addresses/0", "167772161", "endpoints[0].addresses[0]",
     RejectReason::kWrongType, false},
    {"NoAddresses", "/endpoints/0/addresses", "[]", "endpoints[0].addresses", RejectReason::kMissingField, false},
    {"AddressesMissing", "/endpoints/0/addresses", "<delete>", "endpoints[0].addresses", RejectReason::kMissingField,
     false},
    {"TooManyAddresses", "/endpoints/0/addresses", kTooManyAddresses.c_str(), "endpoints[0].addresses",
     RejectReason::kTooLarge, false},
    {"ReadyNotABool", "/endpoints/0/conditions/ready", R"("yes")", "endpoints[0].conditions.ready",
     RejectReason::kWrongType, false},
    {"TerminatingNotABool", "/endpoints/0/conditions/terminating", "1", "endpoints[0].conditions.terminating",
     RejectReason::kWrongType, false},
    {"ConditionsNotAnObject", "/endpoints/0/conditions", "[]", "endpoints[0].conditions", RejectReason::kWrongType,
     false},
    {"NodeNameMalformed", "/endpoints/0/nodeName", R"("Node_A")", "endpoints[0].nodeName", RejectReason::kMalformed,
     false},
    {"ZoneMalformed", "/endpoints/0/zone", R"("zone 1")", "endpoints[0].zone", RejectReason::kMalformed, false},
    {"TooManyZoneHints", "/endpoints/0/hints/forZones", kTooManyZoneHints.c_str(), "endpoints[0].hints.forZones",
     RejectReason::kTooLarge, false},
    {"ZoneHintWithoutName", "/endpoints/0/hints/forZones", R"([{}])", "endpoints[0].hints.forZones[0].name",
     RejectReason::kMissingField, false},
    {"NodeHintMalformed", "/endpoints/0/hints/forNodes", R"([{"name": "-node"}])",
     "endpoints[0].hints.forNodes[0].name", RejectReason::kMalformed, false},
    {"EndpointNull", "/endpoints/0", "null", "endpoints[0]", RejectReason::kWrongType, false},
    // Ports: the port is dropped.
    {"PortWithoutName", "/ports/0/name", "<delete>", "ports[0].name", RejectReason::kMissingField, false},
    {"PortWithoutNumber", "/ports/0/port", "<delete>", "ports[0].port", RejectReason::kMissingField, false},
    {"PortZero", "/ports/0/port", "0", "ports[0].port", RejectReason::kOutOfRange, false},
    {"PortTooHigh", "/ports/1/port", "65536", "ports[1].port", RejectReason::kOutOfRange, false},
    {"PortProtocolUnknown", "/ports/0/protocol", R"("ICMP")", "ports[0].protocol", RejectReason::kUnknownValue,
     false},
    {"PortNameMalformed", "/ports/0/name", R"("Http")", "ports[0].name", RejectReason::kMalformed, false},
    {"PortNameRepeated", "/ports/1/name", R"("http")", "ports[1].name", RejectReason::kConflict, false},
    // The slice as a whole: refused.
    {"NoServiceNameLabel", "/metadata/labels", "{}", "metadata.labels[kubernetes.io/service-name]",
     RejectReason::kMissingField, true},
    {"ServiceNameLabelMalformed", "/metadata/labels/kubernetes.io~1service-name", R"("Web!")",
     "metadata.labels[kubernetes.io/service-name]", RejectReason::kMalformed, true},
    {"AddressTypeDeprecatedIP", "/addressType", R"("IP")", "addressType", RejectReason::kUnknownValue, true},
    {"AddressTypeMissing", "/addressType", "<delete>", "addressType", RejectReason::kMissingField, true},
    {"TooManyEndpoints", "/endpoints", kTooManyEndpoints.c_str(), "endpoints", RejectReason::kTooLarge, true},
    {"NameMalformed", "/metadata/name", R"("web_abc")", "metadata.name", RejectReason::kMalformed, true},
    {"ApiVersionBeta", "/apiVersion", R"("discovery.k8s.io/v1beta1")", "apiVersion", RejectReason::kUnknownValue,
     true},
    // Kept, with the value dropped.
    {"TriggerTimeMalformed", "/metadata/annotations",
     R"({"endpoints.kubernetes.io/last-change-trigger-time": "soon"})",
     "metadata.annotations[endpoints.kubernetes.io/last-change-trigger-time]", RejectReason::kMalformed, false},
    {"EndpointsNotAList", "/endpoints", R"({"addresses": ["10.0.0.1"]})", "endpoints", RejectReason::kWrongType,
     false},
};

INSTANTIATE_TEST_SUITE_P(Rules, EndpointSliceRejection, ::testing::ValuesIn(kSliceRejections),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(EndpointSliceParsing, RefusesForbiddenAddressesInIPv6Slices) {
  for (const char* address : {"::1", "fe80::1", "ff02::1", "::", "::ffff:10.0.0.1"}) {
    auto object = patched(base_slice(), json::parse(R"({"addressType": "IPv6"})"));
    object["endpoints"][0]["addresses"][0] = address;
    object["endpoints"][1]["addresses"][0] = "fd00:10:244::6";
    auto result = parse_endpoint_slice(object);
    ASSERT_TRUE(result.ok());
    EXPECT_EQ(result.value->endpoints.size(), 1u) << address;
    const Rejection* r = find_rejection(result.rejections, "endpoints[0].addresses[0]");
    ASSERT_NE(r, nullptr) << address;
    EXPECT_EQ(r->reason, RejectReason::kForbiddenAddress) << r->message();
  }
}

TEST(EndpointSliceParsing, RefusesAnIPv4AddressInAnIPv6Slice) {
  auto object = with(base_slice(), "/addressType", "IPv6");
  object["endpoints"][1]["addresses"][0] = "fd00:10:244::6";
  auto result = parse_endpoint_slice(object);
  ASSERT_TRUE(result.ok());
  const Rejection* r = find_rejection(result.rejections, "endpoints[0].addresses[0]");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->reason, RejectReason::kFamilyMismatch);
  EXPECT_EQ(r->detail, "is an IPv4 address in an IPv6 slice");
}

}  // namespace
}  // namespace kproxy::model
