#include "kproxy/health/service_health_server.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <future>
#include <vector>

#include "test_support.h"

namespace kproxy::health {
namespace {

using namespace std::chrono_literals;
using testing::example_time;
using testing::FakeClock;
using testing::free_port;

const NamespacedName kWeb{"default", "web"};
const NamespacedName kDns{"kube-system", "dns"};

httplib::Result probe(std::uint16_t port, const std::string& path = "/", const std::string& host = "127.0.0.1") {
  httplib::Client client(host, port);
  client.set_connection_timeout(10s);
  client.set_read_timeout(10s);
  return client.Get(path);
}

class ServiceHealthServerTest : public ::testing::Test {
 protected:
  void SetUp() override { health_.updated(IpFamily::kIPv4); }

  FakeClock clock_{example_time()};
  ProxyHealth health_{60s, clock_.clock()};
  ServiceHealthServer server_{health_, {*IpAddress::parse("127.0.0.1")}};
};

TEST(ServiceHealthBody, IsKubeProxysTabIndentedTemplate) {
  EXPECT_EQ(service_health_body(kWeb, 2, true),
            "{\n"
            "\t\"service\": {\n"
            "\t\t\"namespace\": \"default\",\n"
            "\t\t\"name\": \"web\"\n"
            "\t},\n"
            "\t\"localEndpoints\": 2,\n"
            "\t\"serviceProxyHealthy\": true\n"
            "}");
}

TEST_F(ServiceHealthServerTest, AnswersOkWithLocalEndpointsOnAnyPath) {
  const std::uint16_t port = free_port();
  EXPECT_TRUE(server_.sync_services({{kWeb, port}}).empty());
  server_.sync_endpoints({{kWeb, 3}});
  for (const char* path : {"/", "/healthz", "/anything/at/all?x=1"}) {
    auto res = probe(port, path);
    ASSERT_TRUE(res) << path << ": " << httplib::to_string(res.error());
    EXPECT_EQ(res->status, 200) << path;
    EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
    EXPECT_EQ(res->get_header_value("X-Content-Type-Options"), "nosniff");
    EXPECT_EQ(res->get_header_value("X-Load-Balancing-Endpoint-Weight"), "3");
    EXPECT_EQ(res->body, service_health_body(kWeb, 3, true));
  }
}

TEST_F(ServiceHealthServerTest, NoLocalEndpointsIs503) {
  const std::uint16_t port = free_port();
  ASSERT_TRUE(server_.sync_services({{kWeb, port}}).empty());
  auto res = probe(port);  // sync_endpoints never called: 0
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  EXPECT_EQ(res->get_header_value("X-Load-Balancing-Endpoint-Weight"), "0");
  EXPECT_EQ(res->body, service_health_body(kWeb, 0, true));

  server_.sync_endpoints({{kWeb, 1}});
  ASSERT_EQ(probe(port)->status, 200);
  server_.sync_endpoints({{kDns, 4}});  // kWeb left out: back to 0
  res = probe(port);
  EXPECT_EQ(res->status, 503);
  EXPECT_EQ(res->body, service_health_body(kWeb, 0, true));
}

TEST_F(ServiceHealthServerTest, AnUnhealthyProxyIs503EvenWithEndpoints) {
  const std::uint16_t port = free_port();
  ASSERT_TRUE(server_.sync_services({{kWeb, port}}).empty());
  server_.sync_endpoints({{kWeb, 2}});
  health_.queued_update(IpFamily::kIPv4);
  clock_.advance(60s);
  auto res = probe(port);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  EXPECT_EQ(res->get_header_value("X-Load-Balancing-Endpoint-Weight"), "2");
  EXPECT_EQ(res->body, service_health_body(kWeb, 2, false));
}

TEST_F(ServiceHealthServerTest, NodeEligibilityDoesNotMatter) {
  // The /livez rule, not /healthz: the node was never synced, so it is not eligible.
  ASSERT_FALSE(health_.node_eligible());
  const std::uint16_t port = free_port();
  ASSERT_TRUE(server_.sync_services({{kWeb, port}}).empty());
  server_.sync_endpoints({{kWeb, 1}});
  EXPECT_EQ(probe(port)->status, 200);
}

TEST_F(ServiceHealthServerTest, SyncServicesOpensNewClosesGoneAndKeepsTheRest) {
  const std::uint16_t web_port = free_port(), dns_port = free_port();
  ASSERT_TRUE(server_.sync_services({{kWeb, web_port}}).empty());
  // A keep-alive connection to kWeb survives adding kDns: its listener is not restarted.
  httplib::Client web("127.0.0.1", web_port);
  web.set_keep_alive(true);
  ASSERT_TRUE(web.Get("/"));

  ASSERT_TRUE(server_.sync_services({{kWeb, web_port}, {kDns, dns_port}}).empty());
  EXPECT_EQ(server_.serving(), (std::map<NamespacedName, std::uint16_t>{{kWeb, web_port}, {kDns, dns_port}}));
  EXPECT_TRUE(web.Get("/"));
  EXPECT_TRUE(probe(dns_port));

  ASSERT_TRUE(server_.sync_services({{kDns, dns_port}}).empty());
  EXPECT_EQ(server_.serving(), (std::map<NamespacedName, std::uint16_t>{{kDns, dns_port}}));
  EXPECT_FALSE(probe(web_port)) << "the listener of a removed Service must be closed";
  EXPECT_TRUE(probe(dns_port));

  ASSERT_TRUE(server_.sync_services({}).empty());
  EXPECT_TRUE(server_.serving().empty());
  EXPECT_FALSE(probe(dns_port));
}

TEST_F(ServiceHealthServerTest, APortChangeMovesTheListener) {
  const std::uint16_t old_port = free_port(), new_port = free_port();
  ASSERT_TRUE(server_.sync_services({{kWeb, old_port}}).empty());
  ASSERT_TRUE(server_.sync_services({{kWeb, new_port}}).empty());
  EXPECT_FALSE(probe(old_port));
  EXPECT_TRUE(probe(new_port));
}

TEST_F(ServiceHealthServerTest, APortTakenFromAnotherServiceCanBeReusedInTheSameSync) {
  const std::uint16_t port = free_port();
  ASSERT_TRUE(server_.sync_services({{kWeb, port}}).empty());
  EXPECT_TRUE(server_.sync_services({{kDns, port}}).empty());
  server_.sync_endpoints({{kDns, 1}});
  auto res = probe(port);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body, service_health_body(kDns, 1, true));
}

TEST_F(ServiceHealthServerTest, APortInUseIsReportedAndRetriedAtTheNextSync) {
  auto taken = std::make_unique<testing::LoopbackSocket>(/*listen_too=*/true);
  const std::uint16_t busy = taken->port(), fine = free_port();
  const auto failures = server_.sync_services({{kWeb, busy}, {kDns, fine}});
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0].service, kWeb);
  EXPECT_EQ(failures[0].port, busy);
  EXPECT_NE(failures[0].error.find("127.0.0.1:" + std::to_string(busy)), std::string::npos) << failures[0].error;
  EXPECT_EQ(server_.serving(), (std::map<NamespacedName, std::uint16_t>{{kDns, fine}}));
  EXPECT_TRUE(probe(fine));

  taken.reset();
  EXPECT_TRUE(server_.sync_services({{kWeb, busy}, {kDns, fine}}).empty());
  EXPECT_TRUE(probe(busy));
}

TEST_F(ServiceHealthServerTest, ServesEveryConfiguredAddressOrNone) {
  ServiceHealthServer two(health_, {*IpAddress::parse("127.0.0.1"), *IpAddress::parse("127.0.0.2")});
  const std::uint16_t port = free_port();
  ASSERT_TRUE(two.sync_services({{kWeb, port}}).empty());
  EXPECT_TRUE(probe(port, "/", "127.0.0.1"));
  EXPECT_TRUE(probe(port, "/", "127.0.0.2"));
  ASSERT_TRUE(two.sync_services({}).empty());

  // The second address is taken: the first is closed again.
  ServiceHealthServer other(health_, {*IpAddress::parse("127.0.0.2")});
  ASSERT_TRUE(other.sync_services({{kDns, port}}).empty());
  const auto failures = two.sync_services({{kWeb, port}});
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_TRUE(two.serving().empty());
  EXPECT_FALSE(probe(port, "/", "127.0.0.1")) << "a Service is served on all addresses or none";
}

TEST_F(ServiceHealthServerTest, NoAddressesMeansEveryAddress) {
  ServiceHealthServer all(health_, {});
  const std::uint16_t port = free_port();
  ASSERT_TRUE(all.sync_services({{kWeb, port}}).empty());
  EXPECT_TRUE(probe(port, "/", "127.0.0.1"));
  EXPECT_TRUE(probe(port, "/", "127.0.0.3"));
}

TEST_F(ServiceHealthServerTest, ConcurrentProbesWhileCountsChange) {
  const std::uint16_t port = free_port();
  ASSERT_TRUE(server_.sync_services({{kWeb, port}}).empty());
  constexpr int kClients = 6, kRequests = 20;
  std::vector<std::future<int>> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.push_back(std::async(std::launch::async, [port] {
      int consistent = 0;
      for (int i = 0; i < kRequests; ++i) {
        auto res = probe(port);
        if (!res) continue;
        const int count = std::stoi(res->get_header_value("X-Load-Balancing-Endpoint-Weight"));
        if (res->body == service_health_body(kWeb, count, true) && res->status == (count > 0 ? 200 : 503)) ++consistent;
      }
      return consistent;
    }));
  }
  for (int i = 0; i < 500; ++i) server_.sync_endpoints({{kWeb, i % 3}});
  int consistent = 0;
  for (auto& c : clients) consistent += c.get();
  EXPECT_EQ(consistent, kClients * kRequests);
}

}  // namespace
}  // namespace kproxy::health
