// The reflector and informers against the fake API server (test/fakeapi): client-go's
// list/watch semantics over real HTTPS, with the failures a client must survive.
#include "kproxy/k8s/reflector.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "fakeapi/fake_api_server.h"
#include "kproxy/k8s/api_source.h"
#include "kproxy/k8s/informer.h"

namespace kproxy::k8s {
namespace {

using namespace std::chrono_literals;
using fakeapi::FakeApiServer;
using nlohmann::json;

json service(const std::string& name, const std::string& ip, int port = 80) {
  return {{"metadata", {{"name", name}, {"namespace", "default"}}},
          {"spec", {{"clusterIP", ip}, {"ports", json::array({{{"port", port}, {"protocol", "TCP"}}})}}}};
}

template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 10s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// The handler side: a consumer thread drains the queue; events are recorded under a lock.
class Recorder : public InformerHandler<model::Service> {
 public:
  void on_add(const Ptr& s) override { record("add " + s->meta.name); }
  void on_update(const Ptr&, const Ptr& n) override { record("update " + n->meta.name); }
  void on_delete(const Ptr& s) override { record("delete " + s->meta.name); }
  void on_synced() override { record("synced"); }
  std::vector<std::string> events() const {
    std::lock_guard l(mu);
    return events_;
  }
  bool saw(const std::string& e) const {
    auto v = events();
    return std::find(v.begin(), v.end(), e) != v.end();
  }

 private:
  void record(std::string e) {
    std::lock_guard l(mu);
    events_.push_back(std::move(e));
  }
  mutable std::mutex mu;
  std::vector<std::string> events_;
};

// A sink in front of the informer that can hold the reflector thread inside apply(), so a
// test can change the server while the client is provably behind.
class GatedSink : public ReflectorSink {
 public:
  explicit GatedSink(ReflectorSink& inner) : inner_(inner) {}
  void begin_list() override { inner_.begin_list(); }
  void list_item(const model::JsonValue& item) override { inner_.list_item(item); }
  void end_list(const std::string& rv) override {
    ++lists;
    inner_.end_list(rv);
  }
  void apply(WatchEventType t, const model::JsonValue& o) override {
    {
      std::unique_lock l(mu_);
      if (armed_) {
        armed_ = false;
        blocked_ = true;
        cv_.notify_all();
        cv_.wait(l, [this] { return !blocked_; });
      }
    }
    inner_.apply(t, o);
  }
  void arm() {
    std::lock_guard l(mu_);
    armed_ = true;
  }
  bool wait_blocked(std::chrono::milliseconds timeout) {
    std::unique_lock l(mu_);
    return cv_.wait_for(l, timeout, [this] { return blocked_; });
  }
  void release() {
    std::lock_guard l(mu_);
    blocked_ = false;
    cv_.notify_all();
  }
  std::atomic<int> lists{0};

 private:
  ReflectorSink& inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool armed_ = false;
  bool blocked_ = false;
};

class ReflectorTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(api.start().ok()); }
  void TearDown() override {
    gate.release();
    reflector_thread = {};
    consumer = {};
    api.stop();
  }

  ClientConfig client_config() {
    ClientConfig c;
    c.scheme = "https";
    c.host = "127.0.0.1";
    c.port = api.port();
    std::ifstream ca(std::string(KPROXY_FIXTURES_DIR) + "/tls/ca.crt");
    c.ca_pem.assign(std::istreambuf_iterator<char>(ca), {});
    c.token = "test-token";
    c.source = "test";
    return c;
  }

  ReflectorOptions fast_options() {
    ReflectorOptions o;
    o.backoff.initial = 10ms;
    o.backoff.cap = 100ms;
    o.random01 = [] { return 0.0; };
    return o;
  }

  void start(ReflectorOptions options, ClientConfig config, ApiClientOptions client_options = {}) {
    reflector = std::make_unique<Reflector>(make_api_client(config, client_options), services_resource(), gate,
                                            std::move(options));
    reflector_thread = std::jthread([this](std::stop_token s) { reflector->run(s); });
    consumer = std::jthread([this](std::stop_token s) {
      while (!s.stop_requested()) queue.run_until(s, std::chrono::steady_clock::now() + 100ms);
    });
  }
  void start() { start(fast_options(), client_config()); }

  FakeApiServer api;
  EventQueue queue;
  Recorder recorder;
  Informer<model::Service> informer{"Service", model::parse_service, queue, recorder};
  GatedSink gate{informer};
  std::unique_ptr<Reflector> reflector;
  std::jthread consumer;
  std::jthread reflector_thread;
};

TEST_F(ReflectorTest, InitialListSyncsThenWatchDeliversEveryEventType) {
  api.upsert("services", service("a", "10.96.0.1"));
  api.upsert("services", service("b", "10.96.0.2"));
  start();
  ASSERT_TRUE(eventually([&] { return recorder.saw("synced"); }));
  ASSERT_TRUE(api.wait_for_watches(1, 10s, "services"));
  api.upsert("services", service("c", "10.96.0.3"));
  api.upsert("services", service("a", "10.96.0.1", 81));
  api.remove("services", "default", "b");
  ASSERT_TRUE(eventually([&] { return recorder.saw("delete b"); }));
  EXPECT_EQ(recorder.events(),
            (std::vector<std::string>{"add a", "add b", "synced", "add c", "update a", "delete b"}));
  EXPECT_EQ(reflector->stats().lists.load(), 1u);
}

TEST_F(ReflectorTest, RequestsCarryKubeProxysSelectorsTimeoutAndUserAgent) {
  start();
  auto watch = api.wait_for_request([](const auto& r) { return r.watch; }, 10s);
  ASSERT_TRUE(watch.has_value());
  auto requests = api.requests();
  const auto& list = requests[0];
  EXPECT_FALSE(list.watch);
  EXPECT_NE(list.target.find("resourceVersion=0"), std::string::npos) << list.target;
  EXPECT_NE(list.target.find("limit=500"), std::string::npos) << list.target;
  EXPECT_NE(list.target.find("labelSelector=%21service.kubernetes.io%2Fservice-proxy-name%2C%21service.kubernetes.io%"
                             "2Fheadless"),
            std::string::npos)
      << list.target;
  EXPECT_EQ(list.user_agent.rfind("kproxy/", 0), 0u) << list.user_agent;
  EXPECT_NE(watch->target.find("allowWatchBookmarks=true"), std::string::npos);
  auto t = watch->target.find("timeoutSeconds=");
  ASSERT_NE(t, std::string::npos);
  int timeout = std::stoi(watch->target.substr(t + 15));
  EXPECT_GE(timeout, 300);
  EXPECT_LT(timeout, 600);
}

TEST_F(ReflectorTest, FollowsListPages) {
  api.stop();
  fakeapi::FakeApiServerOptions o;
  o.paginate_rv0 = true;  // a server without the watch cache: every list is paginated
  FakeApiServer paged(o);
  ASSERT_TRUE(paged.start().ok());
  for (int i = 0; i < 7; ++i) paged.upsert("services", service("s" + std::to_string(i), "10.96.0." + std::to_string(i + 1)));
  auto options = fast_options();
  options.page_size = 2;
  auto config = client_config();
  config.port = paged.port();
  start(options, config);
  ASSERT_TRUE(eventually([&] { return recorder.saw("synced"); }));
  EXPECT_EQ(informer.list().size(), 7u);
  EXPECT_EQ(reflector->stats().list_pages.load(), 4u);
  reflector_thread = {};
  paged.stop();
}

TEST_F(ReflectorTest, BookmarksAdvanceTheResourceVersionOnly) {
  start();
  ASSERT_TRUE(api.wait_for_watches(1, 10s, "services"));
  api.upsert("nodes", {{"metadata", {{"name", "n1"}}}});  // moves the global RV, not a Service
  const std::string target = std::to_string(api.resource_version());
  api.send_bookmark();
  ASSERT_TRUE(eventually([&] { return reflector->last_resource_version() == target; }));
  EXPECT_EQ(recorder.events(), std::vector<std::string>{"synced"});
}

class RelistAfterExpiry : public ReflectorTest, public ::testing::WithParamInterface<fakeapi::ExpiredWatchMode> {};

TEST_P(RelistAfterExpiry, DeliversTheDeletesAndAddsThatWereMissed) {
  api.set_expired_watch_mode(GetParam());
  api.upsert("services", service("stays", "10.96.0.1"));
  api.upsert("services", service("goes", "10.96.0.2"));
  start();
  ASSERT_TRUE(api.wait_for_watches(1, 10s, "services"));
  ASSERT_TRUE(eventually([&] { return recorder.saw("synced"); }));

  // Hold the reflector inside the next event, cut its watch (so it can see no later event),
  // change the world behind its back and compact the history: it must come back through
  // a relist.
  gate.arm();
  api.upsert("services", service("trigger", "10.96.0.3"));
  ASSERT_TRUE(gate.wait_blocked(10s));
  api.drop_watches();
  api.remove("services", "default", "goes");
  api.upsert("services", service("arrives", "10.96.0.4"));
  api.compact();
  gate.release();

  ASSERT_TRUE(eventually([&] { return recorder.saw("delete goes") && recorder.saw("add arrives"); }));
  EXPECT_EQ(gate.lists.load(), 2);
  std::set<std::string> names;
  for (const auto& s : informer.list()) names.insert(s->meta.name);
  EXPECT_EQ(names, (std::set<std::string>{"stays", "trigger", "arrives"}));
  auto events = recorder.events();
  EXPECT_EQ(std::count(events.begin(), events.end(), "add stays"), 1) << "an unchanged object is not re-added";
}

INSTANTIATE_TEST_SUITE_P(BothForms, RelistAfterExpiry,
                         ::testing::Values(fakeapi::ExpiredWatchMode::kErrorEvent,
                                           fakeapi::ExpiredWatchMode::kHttpStatus));

TEST_F(ReflectorTest, ReconnectsAfterADroppedWatchWithoutRelisting) {
  start();
  ASSERT_TRUE(api.wait_for_watches(1, 10s, "services"));
  api.drop_watches();
  api.upsert("services", service("after-drop", "10.96.0.9"));
  ASSERT_TRUE(eventually([&] { return recorder.saw("add after-drop"); }));
  EXPECT_EQ(reflector->stats().lists.load(), 1u);
  EXPECT_GE(reflector->stats().watches.load(), 2u);
}

TEST_F(ReflectorTest, BacksOffOnErrorsAndKeepsTrying) {
  // 403 (RBAC not granted yet) is not retried inside the client: the reflector backs off.
  api.fail_next_requests(3, 403, 0, "/api/v1/services");
  api.upsert("services", service("a", "10.96.0.1"));
  start();
  ASSERT_TRUE(eventually([&] { return recorder.saw("synced"); }));
  EXPECT_GE(reflector->stats().failures.load(), 3u);
  EXPECT_TRUE(recorder.saw("add a"));
}

TEST_F(ReflectorTest, GarbageInTheStreamEndsTheWatchAndRelists) {
  api.upsert("services", service("a", "10.96.0.1"));
  start();
  ASSERT_TRUE(api.wait_for_watches(1, 10s, "services"));
  api.inject_raw("this is not json\n");
  ASSERT_TRUE(eventually([&] { return gate.lists.load() == 2; }));
  api.upsert("services", service("b", "10.96.0.2"));
  ASSERT_TRUE(eventually([&] { return recorder.saw("add b"); }));
  EXPECT_EQ(recorder.events(), (std::vector<std::string>{"add a", "synced", "add b"}));
}

TEST_F(ReflectorTest, ATwentyMebibyteEventIsRefusedWithoutTakingTheClientDown) {
  start();
  ASSERT_TRUE(api.wait_for_watches(1, 10s, "services"));
  std::string huge = R"({"type":"ADDED","object":{"metadata":{"name":"huge","namespace":"default"},"x":")";
  huge.append(20u << 20, 'x');
  huge += "\"}}\n";
  api.inject_raw(std::move(huge));
  ASSERT_TRUE(eventually([&] { return gate.lists.load() == 2; }, 30s));
  api.upsert("services", service("next", "10.96.0.2"));
  ASSERT_TRUE(eventually([&] { return recorder.saw("add next"); }));
  EXPECT_FALSE(recorder.saw("add huge"));
}

TEST_F(ReflectorTest, UnauthorizedKeepsRetryingAndRecoversWhenTheTokenIsAccepted) {
  api.set_tokens({"other-token"});
  api.upsert("services", service("a", "10.96.0.1"));
  start();
  ASSERT_TRUE(eventually([&] { return reflector->stats().failures.load() >= 2; }));
  EXPECT_FALSE(recorder.saw("synced"));
  api.set_tokens({"test-token"});
  ASSERT_TRUE(eventually([&] { return recorder.saw("synced"); }));
}

TEST_F(ReflectorTest, PicksUpARotatedTokenFileAfterA401) {
  const std::string token_file = std::filesystem::temp_directory_path() / ("kproxy-token-" + std::to_string(getpid()));
  std::ofstream(token_file) << "test-token\n";
  auto config = client_config();
  config.token = "test-token";
  config.token_file = token_file;
  start(fast_options(), config);
  ASSERT_TRUE(api.wait_for_watches(1, 10s, "services"));
  // The kubelet rotates the projected token; the old one stops working.
  std::ofstream(token_file) << "rotated-token\n";
  api.set_tokens({"rotated-token"});
  api.drop_watches();
  api.upsert("services", service("after-rotation", "10.96.0.5"));
  ASSERT_TRUE(eventually([&] { return recorder.saw("add after-rotation"); }));
  auto requests = api.requests();
  EXPECT_TRUE(std::any_of(requests.begin(), requests.end(),
                          [](const auto& r) { return r.authorization == "Bearer rotated-token" && r.status == 200; }));
  std::filesystem::remove(token_file);
}

TEST_F(ReflectorTest, StopsPromptlyWhileWatching) {
  start();
  ASSERT_TRUE(api.wait_for_watches(1, 10s, "services"));
  auto t0 = std::chrono::steady_clock::now();
  reflector_thread = {};  // request_stop + join
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
}

TEST(ApiSourceTest, WatchesServicesSlicesAndOnlyItsOwnNode) {
  FakeApiServer api;
  ASSERT_TRUE(api.start().ok());
  api.upsert("nodes", {{"metadata", {{"name", "n1"}}}});
  api.upsert("nodes", {{"metadata", {{"name", "n2"}}}});
  EventQueue queue;
  struct Counter : InformerHandler<model::Node> {
    void on_add(const Ptr& n) override { names.push_back(n->meta.name); }
    void on_update(const Ptr&, const Ptr&) override {}
    void on_delete(const Ptr&) override {}
    void on_synced() override { synced = true; }
    std::vector<std::string> names;
    bool synced = false;
  } nodes;
  Recorder services;
  struct Slices : InformerHandler<model::EndpointSlice> {
    void on_add(const Ptr&) override {}
    void on_update(const Ptr&, const Ptr&) override {}
    void on_delete(const Ptr&) override {}
    void on_synced() override { synced = true; }
    bool synced = false;
  } slices;
  Informer<model::Service> si{"Service", model::parse_service, queue, services};
  Informer<model::EndpointSlice> ei{"EndpointSlice", model::parse_endpoint_slice, queue, slices};
  Informer<model::Node> ni{"Node", model::parse_node, queue, nodes};
  ClientConfig c;
  c.host = "127.0.0.1";
  c.port = api.port();
  c.insecure_skip_tls_verify = true;
  c.token = "test-token";
  ApiSource source(c, "n1", {si, ei, ni});
  source.start();
  ASSERT_TRUE(eventually([&] {
    queue.drain();
    return nodes.synced && slices.synced && services.saw("synced");
  }));
  EXPECT_EQ(nodes.names, std::vector<std::string>{"n1"});
  source.stop();
  api.stop();
}

}  // namespace
}  // namespace kproxy::k8s
