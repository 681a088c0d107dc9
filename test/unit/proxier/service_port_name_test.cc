// ServicePortName text and kube-proxy's chain-name hashes. The expected hashes are copied from
// kube-proxy's own tests (pkg/proxy/iptables/proxier_test.go and the linux cleanup test), so
// a difference here means kproxy's chains would not carry kube-proxy's names.
#include "kproxy/proxier/service_port_name.h"

#include <gtest/gtest.h>

namespace kproxy::proxier {
namespace {

ServicePortName tcp(std::string ns, std::string name, std::string port) {
  return ServicePortName{std::move(ns), std::move(name), std::move(port), model::Protocol::kTcp};
}

TEST(ServicePortName, PrintsNamespaceNameAndPort) {
  EXPECT_EQ(to_string(tcp("ns1", "svc1", "p80")), "ns1/svc1:p80");
}

TEST(ServicePortName, DropsTheColonForAnUnnamedPort) { EXPECT_EQ(to_string(tcp("default", "web", "")), "default/web"); }

TEST(ServicePortName, OrdersByNamespaceThenNameThenPortThenProtocol) {
  EXPECT_LT(tcp("a", "z", "z"), tcp("b", "a", "a"));
  EXPECT_LT(tcp("a", "a", "z"), tcp("a", "b", ""));
  EXPECT_LT(tcp("a", "a", ""), tcp("a", "a", "p"));
  EXPECT_LT(tcp("a", "a", "p"), (ServicePortName{"a", "a", "p", model::Protocol::kUdp}));
}

struct HashCase {
  ServicePortName name;
  const char* hash;
};

TEST(ServicePortHash, MatchesKubeProxyChainNames) {
  const HashCase cases[] = {
      {tcp("ns1", "svc1", "p80"), "XPGD46QRK7WJZT7O"},  // KUBE-SVC-XPGD46QRK7WJZT7O
      {tcp("ns2", "svc2", "p80"), "GNZBNJ2PO5MGZ6GT"},
      {tcp("ns3", "svc3", "p80"), "X27LE4BHSL4DOUIK"},
      {tcp("ns4", "svc4", "p80"), "4SW47YFZTEDKD3PK"},
      {tcp("ns5", "svc5", "p80"), "NUKIZ6OKUXPJNT4C"},
  };
  for (const HashCase& c : cases) EXPECT_EQ(service_port_hash(c.name), c.hash) << to_string(c.name);
}

TEST(ServicePortHash, DependsOnTheProtocol) {
  ServicePortName udp{"ns1", "svc1", "p80", model::Protocol::kUdp};
  // Expected value from Python's hashlib/base64 over "ns1/svc1:p80udp".
  EXPECT_EQ(service_port_hash(udp), "OJWW7NSBVZTDHXNW");
}

TEST(EndpointHash, MatchesKubeProxySepChainNames) {
  struct Case {
    ServicePortName name;
    const char* ip;
    std::uint16_t port;
    const char* hash;
  };
  const Case cases[] = {
      {tcp("ns1", "svc1", "p80"), "10.180.0.1", 80, "SXIVWICOYRO3J4NJ"},  // KUBE-SEP-SXIVWICOYRO3J4NJ
      {tcp("ns2", "svc2", "p80"), "10.180.0.2", 80, "RS4RBKLTHTF2IUXJ"},
      {tcp("ns3", "svc3", "p80"), "10.180.0.3", 80, "OYPFS5VJICHGATKP"},
      {tcp("ns4", "svc4", "p80"), "10.180.0.4", 80, "UKSFD7AGPMPPLUHC"},
      {tcp("ns4", "svc4", "p80"), "10.180.0.5", 80, "C6EBXVWJJZMIWKLZ"},
      {tcp("ns5", "svc5", "p80"), "10.180.0.3", 80, "I77PXRDZVX7PMWMN"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(endpoint_hash(c.name, IpAddress::parse(c.ip).value(), c.port), c.hash) << to_string(c.name) << " " << c.ip;
  }
}

TEST(EndpointHash, BracketsIPv6AddressesAsJoinHostPortDoes) {
  // Expected value from Python's hashlib/base64 over "ns1/svc1:p80tcp[fd00::1]:80".
  const IpAddress ip = IpAddress::parse("fd00::1").value();
  EXPECT_EQ(endpoint_hash(tcp("ns1", "svc1", "p80"), ip, 80), "T5UNFIPVCZXM3U7X");
}

}  // namespace
}  // namespace kproxy::proxier
