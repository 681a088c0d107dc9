#include "kproxy/k8s/node_taints.h"
#include "kproxy/k8s/taint_keeper.h"

#include <thread>

#include <mutex>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_server.h"

namespace kproxy::k8s {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;
using testing::TestServer;

const Taint kSctp{"kproxy.example.com/sctp-userspace", "", "NoSchedule"};
const json kUnreachable = json::parse(
    R"({"key":"node.kubernetes.io/unreachable","effect":"NoExecute","timeAdded":"2026-11-25T09:00:00Z"})");

// A Node held by a loopback server that enforces the resourceVersion precondition like the
// API server: a PATCH with a stale resourceVersion gets 409.
class FakeNodeServer {
 public:
  explicit FakeNodeServer(json taints) : server_(TestServer::Mode::kHttp), taints_(std::move(taints)) {
    server_.http().Get("/api/v1/nodes/n1", [this](const httplib::Request& req, httplib::Response& res) {
      server_.record(req);
      std::lock_guard lock(mu_);
      json node = {{"kind", "Node"},
                   {"apiVersion", "v1"},
                   {"metadata", {{"name", "n1"}, {"resourceVersion", std::to_string(rv_)}}},
                   {"spec", json::object()}};
      if (!taints_.is_null()) node["spec"]["taints"] = taints_;
      res.set_content(node.dump(), "application/json");
    });
    server_.http().Get("/api/v1/nodes/missing", [this](const httplib::Request& req, httplib::Response& res) {
      server_.record(req);
      res.status = 404;
      res.set_content(R"({"kind":"Status","reason":"NotFound","message":"nodes \"missing\" not found","code":404})",
                      "application/json");
    });
    server_.http().Patch("/api/v1/nodes/n1", [this](const httplib::Request& req, httplib::Response& res) {
      server_.record(req);
      std::lock_guard lock(mu_);
      const json patch = json::parse(req.body);
      if (conflicts_ > 0) {  // someone else updated the Node just before us
        --conflicts_;
        ++rv_;
      }
      if (patch["metadata"]["resourceVersion"] != std::to_string(rv_)) {
        res.status = 409;
        res.set_content(R"({"kind":"Status","reason":"Conflict","code":409})", "application/json");
        return;
      }
      taints_ = patch["spec"]["taints"];
      ++rv_;
      res.set_content("{}", "application/json");
    });
  }

  void set_taints(json taints) {
    std::lock_guard lock(mu_);
    taints_ = std::move(taints);
    ++rv_;
  }
  void inject_conflicts(int n) {
    std::lock_guard lock(mu_);
    conflicts_ = n;
  }
  json taints() {
    std::lock_guard lock(mu_);
    return taints_;
  }
  int patches() const {
    int n = 0;
    for (const auto& r : server_.requests()) n += r.method == "PATCH";
    return n;
  }
  std::vector<json> patch_bodies() const {
    std::vector<json> out;
    for (const auto& r : server_.requests()) {
      if (r.method == "PATCH") out.push_back(json::parse(r.body));
    }
    return out;
  }
  std::vector<std::string> methods() const {
    std::vector<std::string> out;
    for (const auto& r : server_.requests()) out.push_back(r.method);
    return out;
  }
  ClientConfig config() const {
    ClientConfig c;
    c.scheme = "http";
    c.host = "127.0.0.1";
    c.port = server_.port();
    return c;
  }

 private:
  TestServer server_;
  std::mutex mu_;
  json taints_;
  int rv_ = 100;
  int conflicts_ = 0;
};

NodeTaintsOptions fast_options(std::vector<std::chrono::milliseconds>* sleeps = nullptr) {
  NodeTaintsOptions o;
  o.sleep = [sleeps](std::chrono::milliseconds d) {
    if (sleeps) sleeps->push_back(d);
  };
  return o;
}

TEST(NodeTaints, AddsTheTaintKeepingOthersVerbatim) {
  FakeNodeServer node(json::array({kUnreachable}));
  auto client = make_api_client(node.config());
  NodeTaints taints(*client, "n1", fast_options());
  ASSERT_TRUE(taints.ensure(kSctp, true).ok());
  EXPECT_EQ(node.taints(),
            json::parse(R"([{"key":"node.kubernetes.io/unreachable","effect":"NoExecute","timeAdded":"2026-11-25T09:00:00Z"},
                            {"key":"kproxy.example.com/sctp-userspace","effect":"NoSchedule"}])"));
  const auto bodies = node.patch_bodies();
  ASSERT_EQ(bodies.size(), 1u);
  EXPECT_EQ(bodies[0]["metadata"]["resourceVersion"], "100");
}

TEST(NodeTaints, SendsStrategicMergePatch) {
  FakeNodeServer node(nullptr);  // no spec.taints at all
  auto client = make_api_client(node.config());
  ASSERT_TRUE(NodeTaints(*client, "n1", fast_options()).ensure(kSctp, true).ok());
  EXPECT_EQ(node.taints(), json::parse(R"([{"key":"kproxy.example.com/sctp-userspace","effect":"NoSchedule"}])"));
}

TEST(NodeTaints, NoPatchWhenAlreadyPresent) {
  FakeNodeServer node(json::array({kUnreachable, {{"key", kSctp.key}, {"effect", kSctp.effect}}}));
  auto client = make_api_client(node.config());
  ASSERT_TRUE(NodeTaints(*client, "n1", fast_options()).ensure(kSctp, true).ok());
  EXPECT_THAT(node.methods(), ::testing::ElementsAre("GET"));
  EXPECT_EQ(node.patches(), 0);
}

TEST(NodeTaints, NoPatchWhenAlreadyAbsent) {
  FakeNodeServer node(json::array({kUnreachable}));
  auto client = make_api_client(node.config());
  ASSERT_TRUE(NodeTaints(*client, "n1", fast_options()).ensure(kSctp, false).ok());
  EXPECT_EQ(node.patches(), 0);
}

TEST(NodeTaints, RemovesOnlyTheMatchingKeyAndEffect) {
  const json same_key_other_effect = {{"key", kSctp.key}, {"effect", "NoExecute"}};
  FakeNodeServer node(
      json::array({{{"key", kSctp.key}, {"effect", kSctp.effect}}, kUnreachable, same_key_other_effect}));
  auto client = make_api_client(node.config());
  ASSERT_TRUE(NodeTaints(*client, "n1", fast_options()).ensure(kSctp, false).ok());
  EXPECT_EQ(node.taints(), json::array({kUnreachable, same_key_other_effect}));
}

TEST(NodeTaints, RemovingTheLastTaintSendsAnEmptyList) {
  FakeNodeServer node(json::array({{{"key", kSctp.key}, {"effect", kSctp.effect}}}));
  auto client = make_api_client(node.config());
  ASSERT_TRUE(NodeTaints(*client, "n1", fast_options()).ensure(kSctp, false).ok());
  EXPECT_EQ(node.taints(), json::array());
}

TEST(NodeTaints, ReplacesAValueChange) {
  FakeNodeServer node(json::array({{{"key", "k"}, {"value", "old"}, {"effect", "NoSchedule"}}, kUnreachable}));
  auto client = make_api_client(node.config());
  ASSERT_TRUE(NodeTaints(*client, "n1", fast_options()).ensure({"k", "new", "NoSchedule"}, true).ok());
  EXPECT_EQ(node.taints(), json::array({{{"key", "k"}, {"value", "new"}, {"effect", "NoSchedule"}}, kUnreachable}));
}

TEST(NodeTaints, RereadsAndRetriesOnConflict) {
  FakeNodeServer node(json::array({kUnreachable}));
  node.inject_conflicts(1);
  auto client = make_api_client(node.config());
  std::vector<std::chrono::milliseconds> sleeps;
  ASSERT_TRUE(NodeTaints(*client, "n1", fast_options(&sleeps)).ensure(kSctp, true).ok());
  EXPECT_THAT(node.methods(), ::testing::ElementsAre("GET", "PATCH", "GET", "PATCH"));
  const auto bodies = node.patch_bodies();
  EXPECT_EQ(bodies[0]["metadata"]["resourceVersion"], "100");
  EXPECT_EQ(bodies[1]["metadata"]["resourceVersion"], "101") << "the retry uses the re-read version";
  ASSERT_EQ(sleeps.size(), 1u);
  EXPECT_GE(sleeps[0], std::chrono::milliseconds(100));
  EXPECT_LT(sleeps[0], std::chrono::milliseconds(200));
  EXPECT_EQ(node.taints(), json::array({kUnreachable, {{"key", kSctp.key}, {"effect", kSctp.effect}}}));
}

TEST(NodeTaints, GivesUpAfterFiveConflicts) {
  FakeNodeServer node(json::array());
  node.inject_conflicts(100);
  auto client = make_api_client(node.config());
  std::vector<std::chrono::milliseconds> sleeps;
  auto s = NodeTaints(*client, "n1", fast_options(&sleeps)).ensure(kSctp, true);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("node n1: adding taint kproxy.example.com/sctp-userspace:NoSchedule"));
  EXPECT_THAT(s.message(), HasSubstr("gave up after 5 attempts"));
  EXPECT_THAT(s.message(), HasSubstr("409 Conflict"));
  EXPECT_EQ(node.patches(), 5);
  EXPECT_EQ(sleeps.size(), 4u);
}

TEST(NodeTaints, ReportsAMissingNode) {
  FakeNodeServer node(json::array());
  auto client = make_api_client(node.config());
  auto s = NodeTaints(*client, "missing", fast_options()).ensure(kSctp, true);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("node missing"));
  EXPECT_THAT(s.message(), HasSubstr("HTTP 404 NotFound: nodes \"missing\" not found"));
}

TEST(UpdatedTaints, RejectsAMalformedList) {
  EXPECT_FALSE(updated_taints(json::object(), kSctp, true).ok());
  EXPECT_FALSE(updated_taints(json::array({1}), kSctp, true).ok());
}

model::Node node_with(std::vector<model::Taint> taints) {
  model::Node n;
  n.meta.name = "n1";
  n.taints = std::move(taints);
  return n;
}

TEST(TaintKeeper, AgreesComparesKeyEffectAndValue) {
  const Taint t{"sctp.kproxy.io/userspace", "true", "NoSchedule"};
  const model::Taint same{"sctp.kproxy.io/userspace", "true", model::TaintEffect::kNoSchedule, std::nullopt};
  const model::Taint other_value{"sctp.kproxy.io/userspace", "false", model::TaintEffect::kNoSchedule, std::nullopt};
  const model::Taint other_effect{"sctp.kproxy.io/userspace", "true", model::TaintEffect::kNoExecute, std::nullopt};
  EXPECT_TRUE(TaintKeeper::agrees(node_with({same}), t, true));
  EXPECT_FALSE(TaintKeeper::agrees(node_with({}), t, true));
  EXPECT_FALSE(TaintKeeper::agrees(node_with({other_value}), t, true));
  EXPECT_FALSE(TaintKeeper::agrees(node_with({other_effect}), t, true));
  EXPECT_TRUE(TaintKeeper::agrees(node_with({}), t, false));
  EXPECT_TRUE(TaintKeeper::agrees(node_with({other_effect}), t, false));
  EXPECT_FALSE(TaintKeeper::agrees(node_with({other_value}), t, false)) << "any value of the key and effect goes";
}

// At start it adds the taint; when the informer later delivers the Node without it (someone
// removed it), it adds it again; a Node that agrees costs no request.
TEST(TaintKeeper, EnsuresAtStartAndWhenTheNodeDisagrees) {
  FakeNodeServer server(json::array({kUnreachable}));
  TaintKeeper keeper(make_api_client(server.config()), "n1", kSctp, true);
  keeper.start();
  auto wait_patches = [&](int n) {
    for (int i = 0; i < 200 && server.patches() < n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return server.patches();
  };
  ASSERT_EQ(wait_patches(1), 1);
  const model::Taint kept{kSctp.key, "", model::TaintEffect::kNoSchedule, std::nullopt};
  keeper.on_update(nullptr, std::make_shared<model::Node>(node_with({kept})));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(server.patches(), 1) << "the Node agrees: nothing to do";
  server.set_taints(json::array({kUnreachable}));  // removed behind kproxy's back
  keeper.on_update(nullptr, std::make_shared<model::Node>(node_with({})));
  ASSERT_EQ(wait_patches(2), 2);
  EXPECT_EQ(server.taints().size(), 2u);
  keeper.stop();
}

}  // namespace
}  // namespace kproxy::k8s
