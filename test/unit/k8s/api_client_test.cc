#include "kproxy/k8s/api_client.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_server.h"

namespace kproxy::k8s {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::read_fixture;
using testing::TestServer;
using namespace std::chrono_literals;

constexpr auto kDeadline = 10s;  // generous bound for "promptly"; tests never sleep

ClientConfig tls_config(const TestServer& server, const std::string& host = "127.0.0.1") {
  ClientConfig c;
  c.scheme = "https";
  c.host = host;
  c.port = server.port();
  c.ca_pem = read_fixture("ca.crt");
  c.request_timeout = 5s;
  c.connect_timeout = 5s;
  return c;
}

void serve_ok(TestServer& server, const std::string& path = "/api/v1/nodes") {
  server.http().Get(path, [&server](const httplib::Request& req, httplib::Response& res) {
    server.record(req);
    res.set_content(R"({"kind":"NodeList","items":[]})", "application/json");
  });
}

class TokenFile {
 public:
  TokenFile() : path_(std::filesystem::temp_directory_path() / ("kproxy-token-" + std::to_string(::getpid()))) {}
  ~TokenFile() { std::filesystem::remove(path_); }
  void write(const std::string& s) const { std::ofstream(path_, std::ios::trunc) << s; }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

// --- TLS -----------------------------------------------------------------------------

TEST(ApiClientTls, VerifiesTheServerAgainstTheConfiguredCa) {
  TestServer server;
  ASSERT_TRUE(server.bound());
  serve_ok(server);
  auto client = make_api_client(tls_config(server));
  auto r = client->get("/api/v1/nodes");
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, R"({"kind":"NodeList","items":[]})");
  EXPECT_EQ(r->headers.at("content-type"), "application/json");
  EXPECT_EQ(server.last_sni(), "") << "no SNI for an IP literal, as Go";
}

TEST(ApiClientTls, FailsAgainstAnotherCa) {
  TestServer server;
  serve_ok(server);
  auto config = tls_config(server);
  config.ca_pem = read_fixture("other-ca.crt");
  auto client = make_api_client(config);
  auto r = client->get("/api/v1/nodes");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error(), HasSubstr("TLS handshake failed"));
  EXPECT_THAT(r.error(), HasSubstr("unable to get local issuer certificate"));
  EXPECT_THAT(r.error(), HasSubstr("https://127.0.0.1:" + std::to_string(server.port()) + "/api/v1/nodes"));
  EXPECT_TRUE(server.requests().empty());
}

TEST(ApiClientTls, InsecureSkipsVerification) {
  TestServer server;
  serve_ok(server);
  auto config = tls_config(server);
  config.ca_pem.clear();
  config.insecure_skip_tls_verify = true;
  auto r = make_api_client(config)->get("/api/v1/nodes");
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->status, 200);
}

TEST(ApiClientTls, TlsServerNameIsSentAndVerified) {
  TestServer server;
  serve_ok(server);
  auto config = tls_config(server);
  config.tls_server_name = "kubernetes.default.svc";
  auto r = make_api_client(config)->get("/api/v1/nodes");
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(server.last_sni(), "kubernetes.default.svc");
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].host, "127.0.0.1:" + std::to_string(server.port())) << "Host stays the URL host";

  config.tls_server_name = "wrong.example.com";
  auto bad = make_api_client(config)->get("/api/v1/nodes");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.error(), HasSubstr("hostname mismatch"));
}

TEST(ApiClientTls, VerifiesADnsHostName) {
  TestServer server;
  serve_ok(server);
  auto r = make_api_client(tls_config(server, "localhost"))->get("/api/v1/nodes");
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(server.last_sni(), "localhost");
}

TEST(ApiClientTls, PresentsTheClientCertificate) {
  TestServer server(TestServer::Mode::kTlsClientAuth);
  serve_ok(server);
  auto config = tls_config(server);
  auto without = make_api_client(config)->get("/api/v1/nodes");
  EXPECT_FALSE(without.ok()) << "the server requires a client certificate";

  config.client_cert_pem = read_fixture("client.crt");
  config.client_key_pem = read_fixture("client.key");
  auto r = make_api_client(config)->get("/api/v1/nodes");
  ASSERT_TRUE(r.ok()) << r.error();
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].client_cn, "system:kube-proxy");
  EXPECT_EQ(server.requests()[0].authorization, "");
}

TEST(ApiClientTls, BadClientKeyIsReportedOnUse) {
  TestServer server;
  auto config = tls_config(server);
  config.client_cert_pem = read_fixture("client.crt");
  config.client_key_pem = read_fixture("server.key");
  auto r = make_api_client(config)->get("/api/v1/nodes");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error(), HasSubstr("does not match"));
}

TEST(ApiClientTls, ReachesAnIpv6Server) {
  TestServer server(TestServer::Mode::kTls, "::1");
  if (!server.bound()) GTEST_SKIP() << "no IPv6 loopback here";
  serve_ok(server);
  auto r = make_api_client(tls_config(server, "::1"))->get("/api/v1/nodes");
  ASSERT_TRUE(r.ok()) << r.error();
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].host, "[::1]:" + std::to_string(server.port()));
}

TEST(ApiClientHttp, PlainHttpMasterWorksAndReusesTheConnection) {
  TestServer server(TestServer::Mode::kHttp);
  std::set<int> ports;
  std::mutex mu;
  server.http().Get("/version", [&](const httplib::Request& req, httplib::Response& res) {
    server.record(req);
    std::lock_guard lock(mu);
    ports.insert(req.remote_port);
    res.set_content("{}", "application/json");
  });
  ClientConfig config;
  config.scheme = "http";
  config.host = "127.0.0.1";
  config.port = server.port();
  auto client = make_api_client(config);
  for (int i = 0; i < 3; ++i) {
    auto r = client->get("/version");
    ASSERT_TRUE(r.ok()) << r.error();
  }
  std::lock_guard lock(mu);
  EXPECT_EQ(ports.size(), 1u) << "keep-alive: one connection for all requests";
}

// --- Headers and auth ----------------------------------------------------------------

TEST(ApiClient, SendsUserAgentAcceptAndBearerToken) {
  TestServer server;
  serve_ok(server);
  auto config = tls_config(server);
  config.token = "static-token";
  config.user_agent = "kproxy/9.9.9 (linux/amd64)";
  auto r = make_api_client(config)->get("/api/v1/nodes");
  ASSERT_TRUE(r.ok()) << r.error();
  ASSERT_EQ(server.requests().size(), 1u);
  const auto seen = server.requests()[0];
  EXPECT_EQ(seen.authorization, "Bearer static-token");
  EXPECT_EQ(seen.user_agent, "kproxy/9.9.9 (linux/amd64)");
  EXPECT_EQ(seen.accept, "application/json");
}

TEST(ApiClient, PrependsTheServerPathPrefix) {
  TestServer server;
  serve_ok(server, "/k8s/clusters/c-1/api/v1/nodes");
  auto config = tls_config(server);
  config.path_prefix = "/k8s/clusters/c-1";
  auto r = make_api_client(config)->get("/api/v1/nodes");
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->status, 200);
}

TEST(ApiClient, RereadsTheTokenFileWhenTheCacheIsOld) {
  TestServer server;
  serve_ok(server);
  TokenFile file;
  file.write("tok-1\n");
  auto config = tls_config(server);
  config.token = "tok-1";
  config.token_file = file.path();
  std::atomic<int64_t> offset_s{0};
  ApiClientOptions options;
  options.token_file_ttl = 50s;
  options.now = [&] { return std::chrono::steady_clock::time_point(std::chrono::seconds(1000 + offset_s.load())); };
  auto client = make_api_client(config, options);

  ASSERT_TRUE(client->get("/api/v1/nodes").ok());
  file.write("tok-2\n");
  offset_s = 10;
  ASSERT_TRUE(client->get("/api/v1/nodes").ok());  // cached copy still fresh
  offset_s = 51;
  ASSERT_TRUE(client->get("/api/v1/nodes").ok());  // older than 50 s: re-read
  file.write("");                                  // an empty file keeps the old token
  offset_s = 200;
  ASSERT_TRUE(client->get("/api/v1/nodes").ok());

  std::vector<std::string> auth;
  for (const auto& r : server.requests()) auth.push_back(r.authorization);
  EXPECT_THAT(auth, ElementsAre("Bearer tok-1", "Bearer tok-1", "Bearer tok-2", "Bearer tok-2"));
}

TEST(ApiClient, RereadsTheTokenFileOnUnauthorizedAndRetriesOnce) {
  TestServer server;
  server.http().Get("/api/v1/nodes", [&server](const httplib::Request& req, httplib::Response& res) {
    server.record(req);
    if (req.get_header_value("Authorization") != "Bearer tok-new") {
      res.status = 401;
      res.set_content(R"({"kind":"Status","code":401,"reason":"Unauthorized"})", "application/json");
      return;
    }
    res.set_content("{}", "application/json");
  });
  TokenFile file;
  file.write("tok-old");
  auto config = tls_config(server);
  config.token = "tok-old";
  config.token_file = file.path();
  ApiClientOptions options;
  options.now = [] { return std::chrono::steady_clock::time_point(); };  // the cache never ages
  auto client = make_api_client(config, options);

  auto first = client->get("/api/v1/nodes");  // 401, the file still holds the same token: no retry
  ASSERT_TRUE(first.ok()) << first.error();
  EXPECT_EQ(first->status, 401);

  file.write("tok-new\n");
  auto second = client->get("/api/v1/nodes");  // 401 -> re-read -> retry with the new token
  ASSERT_TRUE(second.ok()) << second.error();
  EXPECT_EQ(second->status, 200);

  std::vector<std::string> auth;
  for (const auto& r : server.requests()) auth.push_back(r.authorization);
  EXPECT_THAT(auth, ElementsAre("Bearer tok-old", "Bearer tok-old", "Bearer tok-new"));
}

TEST(ApiClient, PatchSendsBodyAndContentType) {
  TestServer server;
  server.http().Patch("/api/v1/nodes/n1", [&server](const httplib::Request& req, httplib::Response& res) {
    server.record(req);
    res.set_content(req.body, "application/json");
  });
  auto r = make_api_client(tls_config(server))
               ->patch("/api/v1/nodes/n1", "application/strategic-merge-patch+json", R"({"spec":{}})");
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->status, 200);
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].method, "PATCH");
  EXPECT_EQ(server.requests()[0].content_type, "application/strategic-merge-patch+json");
  EXPECT_EQ(server.requests()[0].body, R"({"spec":{}})");
}

// --- Retries and timeouts ------------------------------------------------------------

TEST(ApiClient, HonoursRetryAfterOn429And504) {
  TestServer server;
  std::atomic<int> calls{0};
  server.http().Get("/api/v1/services", [&](const httplib::Request& req, httplib::Response& res) {
    server.record(req);
    const int n = calls++;
    if (n == 0) {
      res.status = 429;
      res.set_header("Retry-After", "1");
    } else if (n == 1) {
      res.status = 504;
      res.set_header("Retry-After", "2");
    } else {
      res.set_content("{}", "application/json");
    }
  });
  ApiClientOptions options;
  options.max_retry_after = 10ms;  // cap the 1-2 s the server asks for, keeping the test fast
  auto r = make_api_client(tls_config(server), options)->get("/api/v1/services");
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(calls.load(), 3);
}

TEST(ApiClient, DoesNotRetryWithoutRetryAfterAndBoundsRetries) {
  TestServer server;
  std::atomic<int> plain_calls{0};
  std::atomic<int> busy_calls{0};
  server.http().Get("/plain", [&](const httplib::Request&, httplib::Response& res) {
    ++plain_calls;
    res.status = 429;
  });
  server.http().Get("/busy", [&](const httplib::Request&, httplib::Response& res) {
    ++busy_calls;
    res.status = 429;
    res.set_header("Retry-After", "1");
    res.set_content(R"({"kind":"Status","code":429})", "application/json");
  });
  ApiClientOptions options;
  options.max_retry_after = 1ms;
  options.max_retries = 3;
  auto client = make_api_client(tls_config(server), options);
  auto plain = client->get("/plain");
  ASSERT_TRUE(plain.ok()) << plain.error();
  EXPECT_EQ(plain->status, 429);
  EXPECT_EQ(plain_calls.load(), 1);

  auto busy = client->get("/busy");
  ASSERT_TRUE(busy.ok()) << busy.error();
  EXPECT_EQ(busy->status, 429);
  EXPECT_EQ(busy->headers.at("retry-after"), "1");
  EXPECT_EQ(busy_calls.load(), 4) << "the first try and max_retries retries";
}

TEST(ApiClient, CancelWakesARetryAfterSleep) {
  TestServer server;
  server.http().Get("/busy", [&](const httplib::Request& req, httplib::Response& res) {
    server.record(req);
    res.status = 429;
    res.set_header("Retry-After", "30");
  });
  auto client = make_api_client(tls_config(server));  // default cap: 30 s
  auto pending = std::async(std::launch::async, [&] { return client->get("/busy"); });
  ASSERT_TRUE(server.wait_for_requests(1));
  client->cancel();
  ASSERT_EQ(pending.wait_for(kDeadline), std::future_status::ready);
  auto r = pending.get();
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error(), HasSubstr("cancelled"));
  EXPECT_EQ(server.requests().size(), 1u);

  auto after = client->get("/busy");
  ASSERT_FALSE(after.ok());
  EXPECT_THAT(after.error(), HasSubstr("cancelled"));
}

TEST(ApiClient, RequestsTimeOut) {
  TestServer server;
  server.http().Get("/slow", [&](const httplib::Request& req, httplib::Response& res) {
    server.record(req);
    server.wait_released();
    res.set_content("{}", "application/json");
  });
  auto config = tls_config(server);
  config.request_timeout = 300ms;
  auto client = make_api_client(config);
  auto r = client->get("/slow");
  server.release();
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error(), HasSubstr("timed out after 300 ms"));
}

TEST(ApiClient, ConnectionRefusedIsAnError) {
  int port = 0;
  {
    TestServer closed;  // bind a free port, then release it
    port = closed.port();
  }
  ClientConfig config;
  config.host = "127.0.0.1";
  config.port = port;
  auto r = make_api_client(config)->get("/api");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error(), HasSubstr("cannot connect"));
}

// --- Streams -------------------------------------------------------------------------

TEST(ApiClientStream, DeliversChunksAsTheyArrive) {
  TestServer server;
  std::promise<void> first_seen;
  auto first_seen_future = first_seen.get_future().share();
  server.http().Get("/api/v1/services", [&](const httplib::Request& req, httplib::Response& res) {
    server.record(req);
    res.set_chunked_content_provider("application/json", [&, step = 0](size_t, httplib::DataSink& sink) mutable {
      if (step++ == 0) {
        const std::string first = R"({"type":"ADDED","object":{}})" "\n";
        sink.write(first.data(), first.size());
        return true;
      }
      // The second event is only sent once the client has the first: proof of streaming.
      if (first_seen_future.wait_for(kDeadline) != std::future_status::ready) return false;
      const std::string second = R"({"type":"DELETED","object":{}})" "\n";
      sink.write(second.data(), second.size());
      sink.done();
      return true;
    });
  });
  auto client = make_api_client(tls_config(server));
  std::string received;
  int status_calls = 0;
  ApiClient::StreamHandlers handlers;
  handlers.on_status = [&](int status, const ResponseHeaders& headers) {
    ++status_calls;
    EXPECT_EQ(status, 200);
    EXPECT_EQ(headers.at("content-type"), "application/json");
  };
  handlers.on_data = [&](std::string_view data) {
    received += data;
    if (received.find("ADDED") != std::string::npos && received.find("DELETED") == std::string::npos) {
      first_seen.set_value();
    }
    return true;
  };
  auto end = client->stream("/api/v1/services?watch=1", handlers, 5s);
  ASSERT_TRUE(end.ok()) << end.error();
  EXPECT_EQ(end->status, 200);
  EXPECT_FALSE(end->cancelled);
  EXPECT_FALSE(end->stopped);
  EXPECT_EQ(status_calls, 1);
  EXPECT_EQ(received, R"({"type":"ADDED","object":{}})" "\n" R"({"type":"DELETED","object":{}})" "\n");

  // The connection is kept alive for the next request.
  serve_ok(server);
  EXPECT_TRUE(client->get("/api/v1/nodes").ok());
}

TEST(ApiClientStream, ReturnsANon200StatusWithItsBody) {
  TestServer server;
  const std::string gone =
      R"json({"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old resource version: 1 (5)","reason":"Expired","code":410})json";
  server.http().Get("/api/v1/services", [&](const httplib::Request&, httplib::Response& res) {
    res.status = 410;
    res.set_content(gone, "application/json");
  });
  bool data_called = false;
  auto end = make_api_client(tls_config(server))->stream("/api/v1/services?watch=1", [&](std::string_view) {
    data_called = true;
    return true;
  }, 5s);
  ASSERT_TRUE(end.ok()) << end.error();
  EXPECT_EQ(end->status, 410);
  EXPECT_EQ(end->error_body, gone);
  EXPECT_FALSE(data_called);
}

TEST(ApiClientStream, ReturnsRetryAfterOf429ForTheCallersBackoff) {
  TestServer server;
  std::atomic<int> calls{0};
  server.http().Get("/w", [&](const httplib::Request&, httplib::Response& res) {
    ++calls;
    res.status = 429;
    res.set_header("Retry-After", "7");
    res.set_content("{}", "application/json");
  });
  auto end = make_api_client(tls_config(server))->stream("/w", [](std::string_view) { return true; }, 5s);
  ASSERT_TRUE(end.ok()) << end.error();
  EXPECT_EQ(end->status, 429);
  EXPECT_EQ(retry_after(end->headers), std::chrono::seconds(7));
  EXPECT_EQ(calls.load(), 1) << "stream() does not retry";
}

TEST(ApiClientStream, StopsWhenTheHandlerSaysSo) {
  TestServer server;
  server.http().Get("/w", [&](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("application/json", [&](size_t, httplib::DataSink& sink) {
      sink.write("x\n", 2);
      return !server.wait_released(kDeadline);
    });
  });
  auto end = make_api_client(tls_config(server))->stream("/w", [](std::string_view) { return false; }, 5s);
  server.release();
  ASSERT_TRUE(end.ok()) << end.error();
  EXPECT_TRUE(end->stopped);
}

TEST(ApiClientStream, CancelFromAnotherThreadUnblocksAnIdleStream) {
  TestServer server;
  server.http().Get("/w", [&](const httplib::Request& req, httplib::Response& res) {
    server.record(req);
    res.set_chunked_content_provider("application/json", [&](size_t, httplib::DataSink& sink) {
      sink.write("{}\n", 3);
      server.wait_released(kDeadline);  // then idle until the test is over
      return false;
    });
  });
  auto client = make_api_client(tls_config(server));
  std::promise<void> got_data;
  std::atomic<bool> signalled{false};
  auto pending = std::async(std::launch::async, [&] {
    return client->stream("/w", [&](std::string_view) {
      if (!signalled.exchange(true)) got_data.set_value();
      return true;
    }, 60s);
  });
  ASSERT_EQ(got_data.get_future().wait_for(kDeadline), std::future_status::ready);
  client->cancel();
  ASSERT_EQ(pending.wait_for(kDeadline), std::future_status::ready) << "cancel() did not unblock the stream";
  server.release();
  auto end = pending.get();
  ASSERT_TRUE(end.ok()) << end.error();
  EXPECT_TRUE(end->cancelled);
}

TEST(ApiClientStream, CancelBeforeTheStreamReturnsAtOnce) {
  TestServer server;
  auto client = make_api_client(tls_config(server));
  client->cancel();
  client->cancel();  // idempotent
  auto end = client->stream("/w", [](std::string_view) { return true; }, 60s);
  ASSERT_TRUE(end.ok()) << end.error();
  EXPECT_TRUE(end->cancelled);
  EXPECT_TRUE(server.requests().empty());
}

TEST(ApiClientStream, CancelRacingTheConnectStillUnblocks) {
  // cancel() lands after stream() checked the flag but before a socket exists, so httplib's
  // stop() has nothing to shut down; the server would then never answer.
  TestServer server;
  server.http().Get("/w", [&](const httplib::Request& req, httplib::Response& res) {
    server.record(req);
    server.wait_released(kDeadline);
    res.set_content("{}", "application/json");
  });
  TokenFile file;
  file.write("t");
  auto config = tls_config(server);
  config.token_file = file.path();
  std::atomic<bool> armed{false};
  std::unique_ptr<ApiClient> client;
  ApiClientOptions options;
  // The token clock is read between the flag check and the connect: cancel from there.
  options.now = [&] {
    if (armed.exchange(false)) client->cancel();
    return std::chrono::steady_clock::time_point();
  };
  client = make_api_client(config, options);
  armed = true;
  auto pending = std::async(std::launch::async, [&] {
    return client->stream("/w", [](std::string_view) { return true; }, 60s);
  });
  ASSERT_EQ(pending.wait_for(kDeadline), std::future_status::ready);
  server.release();
  auto end = pending.get();
  ASSERT_TRUE(end.ok()) << end.error();
  EXPECT_TRUE(end->cancelled);
  EXPECT_TRUE(server.requests().empty()) << "the connect itself was made to fail";
}

TEST(ApiClient, AcceptsGzipAndInflatesIt) {
  TestServer server;
  const std::string big(100000, 'a');
  server.http().Get("/big", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content("\"" + big + "\"", "application/json");  // httplib compresses when asked
  });
  auto r = make_api_client(tls_config(server))->get("/big");
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->headers["content-encoding"], "gzip");
  EXPECT_EQ(r->body, "\"" + big + "\"");
}

TEST(ApiClientStream, IdleTimeoutEndsASilentStream) {
  TestServer server;
  server.http().Get("/w", [&](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("application/json", [&](size_t, httplib::DataSink&) {
      server.wait_released(kDeadline);
      return false;
    });
  });
  auto end = make_api_client(tls_config(server))->stream("/w", [](std::string_view) { return true; }, 300ms);
  server.release();
  ASSERT_FALSE(end.ok());
  EXPECT_THAT(end.error(), HasSubstr("idle timeout"));
}

TEST(RetryAfter, ParsesDeltaSecondsOnly) {
  EXPECT_EQ(retry_after({{"retry-after", "3"}}), std::chrono::seconds(3));
  EXPECT_EQ(retry_after({{"retry-after", "0"}}), std::chrono::seconds(0));
  EXPECT_EQ(retry_after({{"retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"}}), std::nullopt);
  EXPECT_EQ(retry_after({{"retry-after", "-1"}}), std::nullopt);
  EXPECT_EQ(retry_after({}), std::nullopt);
}

}  // namespace
}  // namespace kproxy::k8s
