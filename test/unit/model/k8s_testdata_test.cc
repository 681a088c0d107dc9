// Kubernetes' fuzzed round-trip fixtures (every field present, values invalid), and a
// deterministic sweep that puts hostile values in every position of every fixture.
#include <functional>

#include <gtest/gtest.h>

#include "kproxy/model/parse.h"
#include "model_test_support.h"

namespace kproxy::model {
namespace {

using testing::describe;
using testing::find_rejection;
using testing::json;
using testing::k8s_fixture_text;
using testing::model_fixture_text;
using testing::rejections_name_their_fields;
using testing::same_result;

TEST(KubernetesTestdata, ServiceIsRefusedWithEveryInvalidFieldNamed) {
  const std::string text = k8s_fixture_text("core.v1.Service.json");
  auto result = parse_service_json(text);
  EXPECT_FALSE(result.ok());
  EXPECT_TRUE(rejections_name_their_fields(result, json::parse(text)));
  const std::pair<const char*, RejectReason> expected[] = {
      {"spec.type", RejectReason::kUnknownValue},
      {"spec.clusterIP", RejectReason::kConflict},  // "24" vs clusterIPs[0] "25"
      {"spec.ipFamilies[0]", RejectReason::kUnknownValue},
      {"spec.ports[0].protocol", RejectReason::kUnknownValue},
      {"spec.ports[0].port", RejectReason::kOutOfRange},
      {"spec.ports[0].nodePort", RejectReason::kOutOfRange},
      {"spec.externalIPs[0]", RejectReason::kInvalidIp},
      {"spec.loadBalancerSourceRanges[0]", RejectReason::kInvalidIp},
      {"spec.sessionAffinity", RejectReason::kUnknownValue},
      {"spec.externalTrafficPolicy", RejectReason::kUnknownValue},
      {"spec.healthCheckNodePort", RejectReason::kOutOfRange},
      {"status.loadBalancer.ingress[0].ip", RejectReason::kInvalidIp},
  };
  for (const auto& [field, reason] : expected) {
    const Rejection* r = find_rejection(result.rejections, field);
    ASSERT_NE(r, nullptr) << field << describe(result.rejections);
    EXPECT_EQ(r->reason, reason) << r->message();
    EXPECT_EQ(r->object, "4/2");
  }
  EXPECT_EQ(result.rejections.size(), std::size(expected)) << describe(result.rejections);
}

TEST(KubernetesTestdata, EndpointSliceIsRefusedWithEveryInvalidFieldNamed) {
  const std::string text = k8s_fixture_text("discovery.k8s.io.v1.EndpointSlice.json");
  auto result = parse_endpoint_slice_json(text);
  EXPECT_FALSE(result.ok());
  EXPECT_TRUE(rejections_name_their_fields(result, json::parse(text)));
  const std::pair<const char*, RejectReason> expected[] = {
      {"metadata.labels[kubernetes.io/service-name]", RejectReason::kMissingField},
      {"addressType", RejectReason::kUnknownValue},
      {"endpoints[0].addresses[0]", RejectReason::kInvalidIp},
      {"ports[0].protocol", RejectReason::kUnknownValue},
      {"ports[0].port", RejectReason::kOutOfRange},
  };
  for (const auto& [field, reason] : expected) {
    const Rejection* r = find_rejection(result.rejections, field);
    ASSERT_NE(r, nullptr) << field << describe(result.rejections);
    EXPECT_EQ(r->reason, reason) << r->message();
  }
  EXPECT_EQ(result.rejections.size(), std::size(expected)) << describe(result.rejections);
}

TEST(KubernetesTestdata, NodeIsRefusedWithEveryInvalidFieldNamed) {
  const std::string text = k8s_fixture_text("core.v1.Node.json");
  auto result = parse_node_json(text);
  EXPECT_FALSE(result.ok());  // "nameValue" is not a DNS-1123 subdomain
  EXPECT_TRUE(rejections_name_their_fields(result, json::parse(text)));
  const std::pair<const char*, RejectReason> expected[] = {
      {"metadata.name", RejectReason::kMalformed},
      {"spec.podCIDRs[0]", RejectReason::kInvalidIp},
      {"spec.taints[0].effect", RejectReason::kUnknownValue},
      {"status.addresses[0].type", RejectReason::kUnknownValue},
  };
  for (const auto& [field, reason] : expected) {
    const Rejection* r = find_rejection(result.rejections, field);
    ASSERT_NE(r, nullptr) << field << describe(result.rejections);
    EXPECT_EQ(r->reason, reason) << r->message();
    EXPECT_EQ(r->object, "nameValue");
  }
  EXPECT_EQ(result.rejections.size(), std::size(expected)) << describe(result.rejections);
}

TEST(KubernetesTestdata, EveryKindParserSurvivesEveryFixture) {
  // Feeding a Node to the Service parser and so on: refused on kind, never a crash.
  for (const char* name : {"core.v1.Service.json", "discovery.k8s.io.v1.EndpointSlice.json", "core.v1.Node.json"}) {
    const std::string text = k8s_fixture_text(name);
    const json object = json::parse(text);
    EXPECT_TRUE(rejections_name_their_fields(parse_service_json(text), object)) << name;
    EXPECT_TRUE(rejections_name_their_fields(parse_endpoint_slice_json(text), object)) << name;
    EXPECT_TRUE(rejections_name_their_fields(parse_node_json(text), object)) << name;
  }
}

// Calls visit(pointer) for every value in the document, containers included.
void for_each_position(const json& value, const json::json_pointer& at,
                       const std::function<void(const json::json_pointer&)>& visit) {
  visit(at);
  if (value.is_object()) {
    for (const auto& [k, v] : value.items()) for_each_position(v, at / k, visit);
  } else if (value.is_array()) {
    for (std::size_t i = 0; i < value.size(); ++i) for_each_position(value[i], at / i, visit);
  }
}

// Values that break assumptions: wrong types, edges of integer ranges, hostile strings.
std::vector<json> hostile_values() {
  return {nullptr,
          json::object(),
          json::array(),
          true,
          0,
          -1,
          65536,
          json(std::numeric_limits<std::uint64_t>::max()),
          json(std::numeric_limits<std::int64_t>::min()),
          1.5,
          "",
          "None",
          "::ffff:10.0.0.1",
          "fe80::1%eth0",
          "127.0.0.1",
          "010.0.0.1/8",
          "\x01\xff\xfe\"\\\n\u202e",
          std::string(300, 'a'),
          json::array({nullptr, 1, "x", json::object()})};
}

// parse: the tree entry point; parse_text: the text entry point of the same kind.
template <typename Parse, typename ParseText>
void sweep(const std::string& text, Parse parse, ParseText parse_text, int& parses) {
  const json original = json::parse(text);
  const auto values = hostile_values();
  for_each_position(original, json::json_pointer(), [&](const json::json_pointer& at) {
    for (const auto& v : values) {
      json mutated = original;
      mutated[at] = v;
      const auto result = parse(mutated);
      ++parses;
      ASSERT_TRUE(rejections_name_their_fields(result, mutated)) << at.to_string() << " = " << v.dump(-1, ' ', false,
                                                                            json::error_handler_t::replace);
      std::string mutated_text;
      try {
        mutated_text = mutated.dump();
      } catch (const json::exception&) {
        continue;  // invalid UTF-8 has no JSON text
      }
      ASSERT_TRUE(same_result(result, parse_text(mutated_text))) << at.to_string() << " = " << v.dump();
    }
  });
}

template <typename T>
using TreeParse = ParseResult<T> (*)(const json&) noexcept;

TEST(HostileValues, NeverCrashAndEveryRejectionNamesAFieldThatExists) {
  const TreeParse<Service> kService = parse_service;
  const TreeParse<EndpointSlice> kSlice = parse_endpoint_slice;
  const TreeParse<Node> kNode = parse_node;
  int parses = 0;
  for (const char* name : {"core.v1.Service.json"}) sweep(k8s_fixture_text(name), kService, parse_service_json, parses);
  for (const char* name : {"discovery.k8s.io.v1.EndpointSlice.json"}) {
    sweep(k8s_fixture_text(name), kSlice, parse_endpoint_slice_json, parses);
  }
  for (const char* name : {"core.v1.Node.json"}) sweep(k8s_fixture_text(name), kNode, parse_node_json, parses);
  for (const char* name : {"service-clusterip.json", "service-dualstack.json", "service-loadbalancer-proxy.json",
                           "service-sctp-mme.json", "service-headless.json", "service-externalname.json"}) {
    sweep(model_fixture_text(name), kService, parse_service_json, parses);
  }
  for (const char* name : {"endpointslice-web-ipv4.json", "endpointslice-frontend-ipv6.json",
                           "endpointslice-manual.json", "endpointslice-fqdn.json"}) {
    sweep(model_fixture_text(name), kSlice, parse_endpoint_slice_json, parses);
  }
  for (const char* name : {"node-dualstack-tainted.json", "node-deleting.json"}) {
    sweep(model_fixture_text(name), kNode, parse_node_json, parses);
  }
  EXPECT_GT(parses, 10000);
}

}  // namespace
}  // namespace kproxy::model
