#include "kproxy/health/proxy_health_server.h"

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

IpAddress loopback() { return *IpAddress::parse("127.0.0.1"); }

class ProxyHealthServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = ProxyHealthServer::start(health_, loopback(), 0);
    ASSERT_TRUE(server.ok()) << server.error();
    server_ = std::move(*server);
    ASSERT_NE(server_->port(), 0);
  }
  httplib::Result get(const std::string& path) {
    httplib::Client client("127.0.0.1", server_->port());
    client.set_connection_timeout(10s);
    client.set_read_timeout(10s);
    return client.Get(path);
  }

  FakeClock clock_{example_time()};
  ProxyHealth health_{60s, clock_.clock()};
  std::unique_ptr<ProxyHealthServer> server_;
};

TEST_F(ProxyHealthServerTest, HealthzServesTheBodyWithKubeProxysHeaders) {
  health_.sync_node(model::Node{});
  health_.updated(IpFamily::kIPv4);
  auto res = get("/healthz");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(res->get_header_value("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(res->body, healthz_response(health_.health(), true).body);
}

TEST_F(ProxyHealthServerTest, HealthzIs503UntilTheNodeIsKnownButLivezIs200) {
  auto healthz = get("/healthz");
  ASSERT_TRUE(healthz);
  EXPECT_EQ(healthz->status, 503);
  EXPECT_EQ(healthz->get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(healthz->get_header_value("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(healthz->body, healthz_response(health_.health(), false).body);
  auto livez = get("/livez");
  ASSERT_TRUE(livez);
  EXPECT_EQ(livez->status, 200);
  EXPECT_EQ(livez->body, livez_response(health_.health()).body);
}

TEST_F(ProxyHealthServerTest, BothAre503WhenAnUpdateIsLate) {
  health_.sync_node(model::Node{});
  health_.updated(IpFamily::kIPv4);
  health_.queued_update(IpFamily::kIPv4);
  clock_.advance(60s);
  auto healthz = get("/healthz");
  auto livez = get("/livez");
  ASSERT_TRUE(healthz && livez);
  EXPECT_EQ(healthz->status, 503);
  EXPECT_EQ(livez->status, 503);
  EXPECT_EQ(livez->body, livez_response(health_.health()).body);
}

TEST_F(ProxyHealthServerTest, QueryStringsAndOtherMethodsReachTheHandler) {
  httplib::Client client("127.0.0.1", server_->port());
  auto post = client.Post("/livez", "", "text/plain");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 200);
  auto query = client.Get("/livez?verbose=1");
  ASSERT_TRUE(query);
  EXPECT_EQ(query->status, 200);
}

TEST_F(ProxyHealthServerTest, OtherPathsAreGos404) {
  for (const char* path : {"/", "/healthz/", "/metrics", "/livezz"}) {
    auto res = get(path);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 404) << path;
    EXPECT_EQ(res->body, "404 page not found\n") << path;
    EXPECT_EQ(res->get_header_value("Content-Type"), "text/plain; charset=utf-8") << path;
  }
}

TEST_F(ProxyHealthServerTest, CountsRequestsPerEndpointAndCode) {
  get("/healthz");  // 503: node unknown
  health_.sync_node(model::Node{});
  get("/healthz");
  get("/healthz");
  get("/livez");
  get("/nothing");
  EXPECT_EQ(server_->counts(), (HealthRequestCounts{2, 1, 1, 0}));
}

TEST_F(ProxyHealthServerTest, ServesConcurrentRequestsWhileTheStateChanges) {
  health_.sync_node(model::Node{});
  constexpr int kClients = 8, kRequests = 25;
  std::vector<std::future<int>> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.push_back(std::async(std::launch::async, [this] {
      httplib::Client client("127.0.0.1", server_->port());
      client.set_read_timeout(10s);
      int answered = 0;
      for (int i = 0; i < kRequests; ++i) {
        auto res = client.Get(i % 2 ? "/healthz" : "/livez");
        if (res && (res->status == 200 || res->status == 503)) ++answered;
      }
      return answered;
    }));
  }
  for (int i = 0; i < 200; ++i) {
    health_.updated(IpFamily::kIPv4);
    health_.queued_update(IpFamily::kIPv6);
    clock_.advance(1s);
  }
  int answered = 0;
  for (auto& c : clients) answered += c.get();
  EXPECT_EQ(answered, kClients * kRequests);
  const HealthRequestCounts counts = server_->counts();
  EXPECT_EQ(counts.healthz_200 + counts.healthz_503 + counts.livez_200 + counts.livez_503,
            static_cast<std::uint64_t>(kClients * kRequests));
}

TEST(ProxyHealthServer, APortInUseIsAnErrorNamingTheAddress) {
  testing::LoopbackSocket taken(/*listen_too=*/true);
  ASSERT_NE(taken.port(), 0);
  ProxyHealth health(60s);
  auto server = ProxyHealthServer::start(health, loopback(), taken.port());
  ASSERT_FALSE(server.ok());
  EXPECT_NE(server.error().find("listen tcp 127.0.0.1:" + std::to_string(taken.port())), std::string::npos)
      << server.error();
}

TEST(ProxyHealthServer, LegacyFormatIsServedWhenAsked) {
  FakeClock clock(example_time());
  ProxyHealth health(60s, clock.clock());
  auto server = ProxyHealthServer::start(health, loopback(), 0, HealthzFormat::kLegacy);
  ASSERT_TRUE(server.ok()) << server.error();
  httplib::Client client("127.0.0.1", (*server)->port());
  auto res = client.Get("/livez");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body,
            R"({"lastUpdated": "2026-11-25 12:00:00.123456789 +0000 UTC","currentTime": "2026-11-25 12:00:00.123456789 +0000 UTC"})");
}

TEST(ProxyHealthServer, TheWildcardAddressServesBothFamilies) {
  ProxyHealth health(60s);
  auto server = ProxyHealthServer::start(health, IpAddress(), 0);
  ASSERT_TRUE(server.ok()) << server.error();
  httplib::Client v4("127.0.0.1", (*server)->port());
  auto res = v4.Get("/livez");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  httplib::Client v6("::1", (*server)->port());
  auto res6 = v6.Get("/livez");
  if (!res6) GTEST_SKIP() << "no IPv6 loopback here";
  EXPECT_EQ(res6->status, 200);
}

}  // namespace
}  // namespace kproxy::health
