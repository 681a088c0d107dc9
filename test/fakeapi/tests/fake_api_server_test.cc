// The fake API server over the wire, with cpp-httplib's client: authentication, LIST paging
// and selectors, WATCH semantics and the failure hooks API-client tests rely on.
#include "fakeapi/fake_api_server.h"

#include <signal.h>

#include <gtest/gtest.h>

#include "test_clients.h"

namespace kproxy::fakeapi {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using testing::get;
using testing::patch;
using testing::WatchStream;

json service(const std::string& ns, const std::string& name, json labels = json::object(),
             const std::string& cluster_ip = "10.96.0.10") {
  return {{"metadata", {{"name", name}, {"namespace", ns}, {"labels", labels}}},
          {"spec", {{"clusterIP", cluster_ip}, {"ports", json::array({{{"port", 80}, {"protocol", "TCP"}}})}}}};
}

json node(const std::string& name) {
  return {{"metadata", {{"name", name}}},
          {"spec", {{"taints", json::array({{{"key", "node.kubernetes.io/unreachable"}, {"effect", "NoExecute"}}})}}}};
}

std::vector<std::string> item_names(const json& list) {
  std::vector<std::string> out;
  for (const auto& i : list["items"]) out.push_back(i["metadata"]["name"]);
  return out;
}

std::string rv_of(const json& o) { return o["metadata"]["resourceVersion"].get<std::string>(); }

class FakeApi : public ::testing::Test {
 protected:
  void start(FakeApiServerOptions options = {}) {
    options.too_large_rv_wait = 0ms;
    api_ = std::make_unique<FakeApiServer>(std::move(options));
    ASSERT_TRUE(api_->start().ok());
  }
  void SetUp() override { start(); }
  FakeApiServer& api() { return *api_; }

  std::unique_ptr<FakeApiServer> api_;
};

// ---- Authentication ------------------------------------------------------------------------------

TEST_F(FakeApi, MissingOrWrongTokenGets401StatusJson) {
  for (const std::string token : {"", "wrong"}) {
    auto r = get(api(), "/api/v1/services", token);
    EXPECT_EQ(r.status, 401) << "token '" << token << "'";
    EXPECT_EQ(r.json(), json::parse(R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                                       "message":"Unauthorized","reason":"Unauthorized","code":401})"));
  }
  EXPECT_EQ(get(api(), "/api/v1/services").status, 200);
}

TEST_F(FakeApi, RotatingTokensRejectsTheOldOne) {
  api().set_tokens({"second"});
  EXPECT_EQ(get(api(), "/api/v1/services", "test-token").status, 401);
  EXPECT_EQ(get(api(), "/api/v1/services", "second").status, 200);
}

TEST_F(FakeApi, ClientCertificateAuthenticatesWithoutAToken) {
  auto cli = testing::make_client(api(), "", /*client_cert=*/true);
  auto r = cli->Get("/api/v1/nodes");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
  auto anonymous = testing::make_client(api(), "");
  EXPECT_EQ(anonymous->Get("/api/v1/nodes")->status, 401);
}

TEST_F(FakeApi, RecordsRequestsWithTheirHeaders) {
  auto cli = testing::make_client(api());
  cli->set_default_headers({{"User-Agent", "kproxy/test"}});
  ASSERT_EQ(cli->Get("/api/v1/services?limit=1")->status, 200);
  auto seen = api().wait_for_request([](const RecordedRequest& r) { return r.target == "/api/v1/services?limit=1"; }, 5s);
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->user_agent, "kproxy/test");
  EXPECT_EQ(seen->authorization, "Bearer test-token");
  EXPECT_EQ(seen->status, 200);
  EXPECT_GE(api().request_count(), 1u);
}

TEST_F(FakeApi, PlainHttpForBenchmarks) {
  FakeApiServerOptions o;
  o.tls = false;
  o.require_auth = false;
  start(o);
  EXPECT_EQ(api().url().rfind("http://127.0.0.1:", 0), 0u);
  EXPECT_EQ(get(api(), "/api/v1/services", "").status, 200);
}

// ---- Discovery -----------------------------------------------------------------------------------------

TEST_F(FakeApi, ServesDiscoveryDocuments) {
  auto version = get(api(), "/version").json();
  EXPECT_EQ(version["gitVersion"], "v1.32.4");
  EXPECT_EQ(version["minor"], "32");
  auto core = get(api(), "/api/v1").json();
  EXPECT_EQ(core["kind"], "APIResourceList");
  bool has_services = false;
  for (const auto& r : core["resources"]) has_services = has_services || (r["name"] == "services" && r["namespaced"] == true);
  EXPECT_TRUE(has_services);
  auto groups = get(api(), "/apis").json();
  EXPECT_EQ(groups["groups"][0]["name"], "discovery.k8s.io");
  EXPECT_EQ(get(api(), "/apis/discovery.k8s.io/v1").json()["resources"][0]["kind"], "EndpointSlice");
  EXPECT_EQ(get(api(), "/api/v1/pods").status, 404);
}

// ---- LIST ----------------------------------------------------------------------------------------------------

TEST_F(FakeApi, ListItemsLackKindAndTheListCarriesItsSnapshotVersion) {
  api().upsert("services", service("default", "a"));
  api().upsert("services", service("default", "b"));
  auto list = get(api(), "/api/v1/services").json();
  EXPECT_EQ(list["kind"], "ServiceList");
  EXPECT_EQ(list["apiVersion"], "v1");
  EXPECT_EQ(list["metadata"]["resourceVersion"], std::to_string(api().resource_version()));
  EXPECT_FALSE(list["metadata"].contains("continue"));
  ASSERT_EQ(item_names(list), (std::vector<std::string>{"a", "b"}));
  EXPECT_FALSE(list["items"][0].contains("kind"));
  auto one = get(api(), "/api/v1/namespaces/default/services/a").json();
  EXPECT_EQ(one["kind"], "Service");
  EXPECT_EQ(one["apiVersion"], "v1");
  EXPECT_EQ(get(api(), "/apis/discovery.k8s.io/v1/endpointslices").json()["kind"], "EndpointSliceList");
}

TEST_F(FakeApi, MissingObjectIs404NotFoundStatus) {
  auto r = get(api(), "/api/v1/namespaces/default/services/nope");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.json()["reason"], "NotFound");
  EXPECT_EQ(r.json()["message"], "services \"nope\" not found");
  EXPECT_EQ(r.json()["details"]["kind"], "services");
}

TEST_F(FakeApi, NamespacedPathsListOneNamespace) {
  api().upsert("services", service("a", "x"));
  api().upsert("services", service("b", "y"));
  EXPECT_EQ(item_names(get(api(), "/api/v1/namespaces/b/services").json()), (std::vector<std::string>{"y"}));
  EXPECT_EQ(item_names(get(api(), "/api/v1/services").json()), (std::vector<std::string>{"x", "y"}));
}

TEST_F(FakeApi, PagesAreOneConsistentSnapshotDespiteConcurrentWrites) {
  for (const char* n : {"s1", "s2", "s3", "s4", "s5"}) api().upsert("services", service("default", n));
  auto first = get(api(), "/api/v1/services?limit=2").json();
  EXPECT_EQ(item_names(first), (std::vector<std::string>{"s1", "s2"}));
  EXPECT_EQ(first["metadata"]["remainingItemCount"], 3);
  std::string snapshot = first["metadata"]["resourceVersion"];
  ASSERT_TRUE(first["metadata"].contains("continue"));

  // Writes between pages are invisible to the rest of this list.
  api().remove("services", "default", "s3");
  api().upsert("services", service("default", "s4", json::object(), "10.96.99.99"));
  api().upsert("services", service("default", "s35"));

  auto second = get(api(), "/api/v1/services?limit=2&continue=" + first["metadata"]["continue"].get<std::string>()).json();
  EXPECT_EQ(item_names(second), (std::vector<std::string>{"s3", "s4"}));
  EXPECT_EQ(second["items"][1]["spec"]["clusterIP"], "10.96.0.10");
  EXPECT_EQ(second["metadata"]["resourceVersion"], snapshot);
  EXPECT_EQ(second["metadata"]["remainingItemCount"], 1);
  auto third = get(api(), "/api/v1/services?limit=2&continue=" + second["metadata"]["continue"].get<std::string>()).json();
  EXPECT_EQ(item_names(third), (std::vector<std::string>{"s5"}));
  EXPECT_FALSE(third["metadata"].contains("continue"));
  EXPECT_EQ(third["metadata"]["resourceVersion"], snapshot);
}

TEST_F(FakeApi, ContinueRejectsResourceVersionAsTheRealServer) {
  for (const char* n : {"s1", "s2"}) api().upsert("services", service("default", n));
  std::string token = get(api(), "/api/v1/services?limit=1").json()["metadata"]["continue"];
  auto with_rv = get(api(), "/api/v1/services?limit=1&resourceVersion=5&continue=" + token);
  EXPECT_EQ(with_rv.status, 400);
  EXPECT_EQ(with_rv.json()["message"], "specifying resource version is not allowed when using continue");
  auto with_match = get(api(), "/api/v1/services?limit=1&resourceVersion=0&resourceVersionMatch=NotOlderThan&continue=" + token);
  EXPECT_EQ(with_match.status, 422);
  EXPECT_EQ(get(api(), "/api/v1/services?limit=1&resourceVersion=0&continue=" + token).status, 200)
      << "\"0\" is tolerated with continue";
  EXPECT_EQ(get(api(), "/api/v1/services?continue=garbage").status, 400);
}

TEST_F(FakeApi, ExpiredContinueTokenIs410WithAFreshToken) {
  for (const char* n : {"s1", "s2", "s3"}) api().upsert("services", service("default", n));
  std::string token = get(api(), "/api/v1/services?limit=1").json()["metadata"]["continue"];
  api().upsert("services", service("default", "s4"));
  api().expire_continue_tokens();
  auto expired = get(api(), "/api/v1/services?limit=1&continue=" + token);
  ASSERT_EQ(expired.status, 410);
  EXPECT_EQ(expired.json()["reason"], "Expired");
  std::string fresh = expired.json()["metadata"]["continue"];
  ASSERT_FALSE(fresh.empty());
  // The fresh token continues from the latest state (inconsistent with the first page).
  auto rest = get(api(), "/api/v1/services?continue=" + fresh).json();
  EXPECT_EQ(item_names(rest), (std::vector<std::string>{"s2", "s3", "s4"}));
  EXPECT_EQ(rest["metadata"]["resourceVersion"], std::to_string(api().resource_version()));
}

TEST_F(FakeApi, CompactionExpiresOldExactListsAndFutureVersionsAreTooLarge) {
  api().upsert("services", service("default", "a"));
  std::string old_rv = std::to_string(api().resource_version());
  api().upsert("services", service("default", "b"));
  EXPECT_EQ(item_names(get(api(), "/api/v1/services?resourceVersion=" + old_rv + "&resourceVersionMatch=Exact").json()),
            (std::vector<std::string>{"a"}));
  api().compact();
  auto gone = get(api(), "/api/v1/services?resourceVersion=" + old_rv + "&resourceVersionMatch=Exact");
  EXPECT_EQ(gone.status, 410);
  EXPECT_EQ(gone.json()["reason"], "Expired");
  // Not-older-than is served from the (current) cache.
  EXPECT_EQ(get(api(), "/api/v1/services?resourceVersion=" + old_rv).status, 200);
  auto future = get(api(), "/api/v1/services?resourceVersion=999999");
  EXPECT_EQ(future.status, 504);
  EXPECT_EQ(future.json()["details"]["causes"][0]["reason"], "ResourceVersionTooLarge");
  EXPECT_EQ(future.json()["message"],
            "Too large resource version: 999999, current: " + std::to_string(api().resource_version()));
}

TEST_F(FakeApi, ResourceVersionZeroIgnoresLimitLikeTheWatchCache) {
  for (const char* n : {"s1", "s2", "s3"}) api().upsert("services", service("default", n));
  auto cached = get(api(), "/api/v1/services?resourceVersion=0&limit=1").json();
  EXPECT_EQ(cached["items"].size(), 3u);
  EXPECT_FALSE(cached["metadata"].contains("continue"));
  FakeApiServerOptions o;
  o.paginate_rv0 = true;
  start(o);
  for (const char* n : {"s1", "s2", "s3"}) api().upsert("services", service("default", n));
  EXPECT_EQ(get(api(), "/api/v1/services?resourceVersion=0&limit=1").json()["items"].size(), 1u);
}

TEST_F(FakeApi, LabelSelectorsFilterLists) {
  api().upsert("services", service("default", "plain", {{"app", "web"}}));
  api().upsert("services", service("default", "headless", {{"app", "db"}, {"service.kubernetes.io/headless", ""}}));
  api().upsert("services", service("default", "proxied", {{"service.kubernetes.io/service-proxy-name", "other"}}));
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"app", {"headless", "plain"}},
      {"%21service.kubernetes.io%2Fheadless", {"plain", "proxied"}},
      {"app%3Dweb", {"plain"}},
      {"app%3D%3Dweb", {"plain"}},
      {"app%21%3Dweb", {"headless", "proxied"}},
      {"app%20in%20%28web%2Cdb%29", {"headless", "plain"}},
      {"app%20notin%20%28web%29", {"headless", "proxied"}},
      {"app%2C%21service.kubernetes.io%2Fheadless", {"plain"}},
  };
  for (const auto& [sel, want] : cases) {
    auto r = get(api(), "/api/v1/services?labelSelector=" + sel);
    ASSERT_EQ(r.status, 200) << sel << ": " << r.body;
    EXPECT_EQ(item_names(r.json()), want) << sel;
  }
  auto bad = get(api(), "/api/v1/services?labelSelector=app%20in%20%28%29");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.json()["reason"], "BadRequest");
}

TEST_F(FakeApi, LabelSelectorPagesKeepLimitAndOmitRemainingCount) {
  for (int i = 0; i < 6; ++i) api().upsert("services", service("default", "s" + std::to_string(i), {{"even", i % 2 ? "no" : "yes"}}));
  auto page = get(api(), "/api/v1/services?limit=2&labelSelector=even%3Dyes").json();
  EXPECT_EQ(item_names(page), (std::vector<std::string>{"s0", "s2"}));
  EXPECT_TRUE(page["metadata"].contains("continue"));
  EXPECT_FALSE(page["metadata"].contains("remainingItemCount"));
  auto rest = get(api(), "/api/v1/services?limit=2&labelSelector=even%3Dyes&continue=" +
                             page["metadata"]["continue"].get<std::string>()).json();
  EXPECT_EQ(item_names(rest), (std::vector<std::string>{"s4"}));
}

TEST_F(FakeApi, FieldSelectorsFilterListsAndRejectUnknownFields) {
  api().upsert("services", service("default", "web"));
  api().upsert("services", service("other", "db"));
  api().upsert("services", service("default", "headless", json::object(), "None"));
  api().upsert("nodes", node("n1"));
  api().upsert("nodes", node("n2"));
  EXPECT_EQ(item_names(get(api(), "/api/v1/services?fieldSelector=spec.clusterIP%21%3DNone").json()),
            (std::vector<std::string>{"web", "db"}));
  EXPECT_EQ(item_names(get(api(), "/api/v1/services?fieldSelector=metadata.namespace%3Dother").json()),
            (std::vector<std::string>{"db"}));
  EXPECT_EQ(item_names(get(api(), "/api/v1/nodes?fieldSelector=metadata.name%3Dn2").json()),
            (std::vector<std::string>{"n2"}));
  EXPECT_EQ(item_names(get(api(), "/api/v1/nodes?fieldSelector=metadata.name%3D%3Dn2").json()),
            (std::vector<std::string>{"n2"}));
  auto bad = get(api(), "/api/v1/services?fieldSelector=spec.selector%3Dx");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.json()["message"], "field label not supported: spec.selector");
}

// ---- WATCH ----------------------------------------------------------------------------------------------

TEST_F(FakeApi, WatchFromAVersionDeliversExactlyTheLaterEvents) {
  api().upsert("services", service("default", "a"));
  api().upsert("services", service("default", "b"));
  std::string from = std::to_string(api().resource_version());
  api().upsert("services", service("default", "a", json::object(), "10.96.0.20"));
  api().remove("services", "default", "b");
  api().upsert("nodes", node("n1"));  // another resource: not in this stream
  std::int64_t deleted_rv = api().resource_version() - 1;

  WatchStream w(api(), "/api/v1/services?watch=1&resourceVersion=" + from);
  auto e1 = w.next_event();
  ASSERT_TRUE(e1.has_value());
  EXPECT_EQ((*e1)["type"], "MODIFIED");
  EXPECT_EQ((*e1)["object"]["kind"], "Service");
  EXPECT_EQ((*e1)["object"]["apiVersion"], "v1");
  EXPECT_EQ((*e1)["object"]["spec"]["clusterIP"], "10.96.0.20");
  auto e2 = w.next_event();
  ASSERT_TRUE(e2.has_value());
  EXPECT_EQ((*e2)["type"], "DELETED");
  EXPECT_EQ((*e2)["object"]["metadata"]["name"], "b");
  EXPECT_EQ(rv_of((*e2)["object"]), std::to_string(deleted_rv)) << "DELETED carries the deletion RV";

  api().upsert("services", service("default", "c"));
  auto e3 = w.next_event();
  ASSERT_TRUE(e3.has_value());
  EXPECT_EQ((*e3)["type"], "ADDED");
  EXPECT_EQ((*e3)["object"]["metadata"]["name"], "c");
  EXPECT_FALSE(w.next_line(200ms).has_value()) << "nothing else";
  EXPECT_EQ(w.status(), 200);
  EXPECT_EQ(w.response_headers()["Content-Type"], "application/json");
  EXPECT_EQ(w.response_headers()["Transfer-Encoding"], "chunked");
}

TEST_F(FakeApi, WatchWithoutVersionStartsWithSyntheticAdded) {
  api().upsert("services", service("default", "a"));
  api().upsert("services", service("other", "b"));
  for (const char* target : {"/api/v1/services?watch=true", "/api/v1/services?watch=1&resourceVersion=0"}) {
    WatchStream w(api(), target);
    std::vector<std::string> names;
    for (int i = 0; i < 2; ++i) {
      auto e = w.next_event();
      ASSERT_TRUE(e.has_value()) << target;
      EXPECT_EQ((*e)["type"], "ADDED");
      names.push_back((*e)["object"]["metadata"]["name"]);
    }
    EXPECT_EQ(names, (std::vector<std::string>{"a", "b"}));
  }
  WatchStream ns(api(), "/api/v1/namespaces/other/services?watch=1");
  auto e = ns.next_event();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ((*e)["object"]["metadata"]["name"], "b");
}

TEST_F(FakeApi, WatchListSendsInitialEventsThenTheEndBookmark) {
  api().upsert("services", service("default", "a"));
  WatchStream w(api(), "/api/v1/services?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true");
  auto added = w.next_event();
  ASSERT_TRUE(added.has_value());
  EXPECT_EQ((*added)["type"], "ADDED");
  auto end = w.next_event();
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ((*end)["type"], "BOOKMARK");
  EXPECT_EQ((*end)["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"], "true");
  EXPECT_EQ(rv_of((*end)["object"]), std::to_string(api().resource_version()));
  auto invalid = get(api(), "/api/v1/services?watch=1&sendInitialEvents=true");
  EXPECT_EQ(invalid.status, 422);
}

TEST_F(FakeApi, BookmarksOnlyForWatchesThatAskForThem) {
  api().upsert("services", service("default", "a"));
  std::string rv = std::to_string(api().resource_version());
  WatchStream with(api(), "/api/v1/services?watch=1&allowWatchBookmarks=true&resourceVersion=" + rv);
  WatchStream without(api(), "/api/v1/services?watch=1&resourceVersion=" + rv);
  ASSERT_TRUE(api().wait_for_watches(2, 5s));
  api().upsert("nodes", node("n1"));  // moves the global RV without a service event
  api().send_bookmark();
  auto b = with.next_event();
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ((*b)["type"], "BOOKMARK");
  EXPECT_EQ((*b)["object"]["kind"], "Service");
  EXPECT_EQ(rv_of((*b)["object"]), std::to_string(api().resource_version()));
  EXPECT_FALSE(without.next_line(300ms).has_value());
}

TEST_F(FakeApi, PeriodicBookmarks) {
  FakeApiServerOptions o;
  o.bookmark_interval = 50ms;
  start(o);
  WatchStream w(api(), "/api/v1/services?watch=1&allowWatchBookmarks=true&resourceVersion=" +
                           std::to_string(api().resource_version()));
  for (int i = 0; i < 2; ++i) {
    auto b = w.next_event(5s);
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ((*b)["type"], "BOOKMARK");
  }
}

TEST_F(FakeApi, WatchFromCompactedVersionGetsErrorEvent410) {
  api().upsert("services", service("default", "a"));
  std::string old_rv = std::to_string(api().resource_version());
  api().upsert("services", service("default", "b"));
  api().compact();
  WatchStream w(api(), "/api/v1/services?watch=1&resourceVersion=" + old_rv);
  auto e = w.next_event();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(w.status(), 200);
  EXPECT_EQ((*e)["type"], "ERROR");
  EXPECT_EQ((*e)["object"]["kind"], "Status");
  EXPECT_EQ((*e)["object"]["code"], 410);
  EXPECT_EQ((*e)["object"]["reason"], "Expired");
  EXPECT_EQ((*e)["object"]["message"],
            "too old resource version: " + old_rv + " (" + std::to_string(api().resource_version()) + ")");
  EXPECT_TRUE(w.wait_closed());
  EXPECT_EQ(w.error(), httplib::Error::Success) << "the stream ends cleanly after the ERROR event";
}

TEST_F(FakeApi, CompactionDoesNotTakeEventsFromOpenWatches) {
  WatchStream w(api(), "/api/v1/services?watch=1&resourceVersion=" + std::to_string(api().resource_version()));
  ASSERT_TRUE(api().wait_for_watches(1, 5s));
  api().upsert("services", service("default", "a"));
  api().compact();  // possibly before the watch has sent the event
  auto e = w.next_event();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ((*e)["object"]["metadata"]["name"], "a");
}

TEST_F(FakeApi, WatchFromCompactedVersionGetsHttp410InTheOtherMode) {
  api().upsert("services", service("default", "a"));
  std::string old_rv = std::to_string(api().resource_version());
  api().upsert("services", service("default", "b"));
  api().compact();
  api().set_expired_watch_mode(ExpiredWatchMode::kHttpStatus);
  auto r = get(api(), "/api/v1/services?watch=1&resourceVersion=" + old_rv);
  EXPECT_EQ(r.status, 410);
  EXPECT_EQ(r.json()["reason"], "Expired");
  EXPECT_EQ(r.json()["kind"], "Status");
}

TEST_F(FakeApi, TimeoutSecondsEndsTheStreamCleanly) {
  auto start_time = std::chrono::steady_clock::now();
  WatchStream w(api(), "/api/v1/services?watch=1&timeoutSeconds=1&resourceVersion=" +
                           std::to_string(api().resource_version()));
  ASSERT_TRUE(w.wait_closed(10s));
  EXPECT_EQ(w.error(), httplib::Error::Success);
  EXPECT_EQ(w.status(), 200);
  EXPECT_GE(std::chrono::steady_clock::now() - start_time, 900ms);
}

TEST_F(FakeApi, DroppedWatchIsATruncatedStream) {
  WatchStream w(api(), "/api/v1/services?watch=1&resourceVersion=" + std::to_string(api().resource_version()));
  ASSERT_TRUE(api().wait_for_watches(1, 5s, "services"));
  api().upsert("services", service("default", "a"));
  ASSERT_TRUE(w.next_event().has_value());
  api().drop_watches();
  ASSERT_TRUE(w.wait_closed());
  EXPECT_NE(w.error(), httplib::Error::Success) << "no terminal chunk: the client must see an error";
}

TEST_F(FakeApi, InjectedBytesArriveVerbatimBetweenEvents) {
  WatchStream w(api(), "/api/v1/services?watch=1&resourceVersion=" + std::to_string(api().resource_version()));
  ASSERT_TRUE(api().wait_for_watches(1, 5s));
  api().upsert("services", service("default", "a"));
  api().inject_raw("this is not json\n{\"type\":\"ADDED\",\"object\":{\"trunc");
  api().inject_raw("ated\"}}\n");
  api().upsert("services", service("default", "b"));
  EXPECT_EQ((*w.next_event())["object"]["metadata"]["name"], "a");
  EXPECT_EQ(w.next_line(), "this is not json");
  EXPECT_EQ(w.next_line(), R"({"type":"ADDED","object":{"truncated"}})");
  EXPECT_EQ((*w.next_event())["object"]["metadata"]["name"], "b");
}

TEST_F(FakeApi, StreamsATwentyMebibyteEvent) {
  WatchStream w(api(), "/api/v1/services?watch=1&resourceVersion=" + std::to_string(api().resource_version()));
  ASSERT_TRUE(api().wait_for_watches(1, 5s));
  json big = service("default", "big");
  big["metadata"]["annotations"] = {{"blob", std::string(20u << 20, 'x')}};
  api().upsert("services", big);
  auto line = w.next_line(30s);
  ASSERT_TRUE(line.has_value());
  EXPECT_GT(line->size(), 20u << 20);
  auto e = json::parse(*line, nullptr, false);
  ASSERT_FALSE(e.is_discarded());
  EXPECT_EQ(e["object"]["metadata"]["annotations"]["blob"].get_ref<const std::string&>().size(), 20u << 20);
}

TEST_F(FakeApi, WatchSelectorsTurnLeavingAndEnteringIntoDeletedAndAdded) {
  api().upsert("services", service("default", "a", {{"app", "web"}}));
  WatchStream w(api(), "/api/v1/services?watch=1&labelSelector=app%3Dweb&resourceVersion=" +
                           std::to_string(api().resource_version()));
  ASSERT_TRUE(api().wait_for_watches(1, 5s));
  api().upsert("services", service("default", "a", {{"app", "db"}}));
  std::int64_t left_rv = api().resource_version();
  api().upsert("services", service("default", "other", {{"app", "db"}}));
  api().upsert("services", service("default", "a", {{"app", "web"}}));
  auto left = w.next_event();
  ASSERT_TRUE(left.has_value());
  EXPECT_EQ((*left)["type"], "DELETED");
  EXPECT_EQ((*left)["object"]["metadata"]["labels"]["app"], "web") << "the previous state";
  EXPECT_EQ(rv_of((*left)["object"]), std::to_string(left_rv)) << "at the event's RV";
  auto entered = w.next_event();
  ASSERT_TRUE(entered.has_value());
  EXPECT_EQ((*entered)["type"], "ADDED");
  EXPECT_EQ((*entered)["object"]["metadata"]["name"], "a");
}

TEST_F(FakeApi, WatchStreamIsNeverCompressed) {
  httplib::Headers gzip = {{"Accept-Encoding", "gzip, deflate"}};
  WatchStream w(api(), "/api/v1/services?watch=1&resourceVersion=" + std::to_string(api().resource_version()),
                "test-token", gzip);
  ASSERT_TRUE(api().wait_for_watches(1, 5s));
  api().upsert("services", service("default", "a"));
  auto e = w.next_event(5s);
  ASSERT_TRUE(e.has_value()) << "a gzip stream would hold small events back";
  EXPECT_EQ(w.response_headers().count("Content-Encoding"), 0u);
}

TEST_F(FakeApi, WatchOfAClientThatWentAwayIsReleased) {
  for (bool tls : {true, false}) {
    FakeApiServerOptions o;
    o.tls = tls;
    start(o);
    {
      WatchStream w(api(), "/api/v1/services?watch=1");
      ASSERT_TRUE(api().wait_for_watches(1, 5s));
    }  // the client closes its connection; no event will ever be written to it
    EXPECT_TRUE(api().wait_for_no_watches(5s)) << (tls ? "https" : "http");
  }
}

TEST_F(FakeApi, StopEndsOpenWatchesQuickly) {
  auto w = std::make_unique<WatchStream>(api(), "/api/v1/services?watch=1");
  ASSERT_TRUE(api().wait_for_watches(1, 5s));
  auto t0 = std::chrono::steady_clock::now();
  api().stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  EXPECT_TRUE(w->wait_closed(5s));
}

TEST_F(FakeApi, WatchFromAFutureVersionGetsTooLargeError) {
  WatchStream w(api(), "/api/v1/services?watch=1&resourceVersion=999999");
  auto e = w.next_event();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ((*e)["type"], "ERROR");
  EXPECT_EQ((*e)["object"]["code"], 504);
  EXPECT_EQ((*e)["object"]["details"]["causes"][0]["reason"], "ResourceVersionTooLarge");
}

TEST_F(FakeApi, NodeWatchWithNameFieldSelectorSeesOnlyThatNode) {
  // kube-proxy's own-Node informer: fieldSelector=metadata.name=<node>.
  api().upsert("nodes", node("n1"));
  api().upsert("nodes", node("n2"));
  WatchStream w(api(), "/api/v1/nodes?watch=1&fieldSelector=metadata.name%3Dn2");
  auto e = w.next_event();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ((*e)["object"]["metadata"]["name"], "n2");
  api().remove("nodes", "", "n1");
  api().remove("nodes", "", "n2");
  auto d = w.next_event();
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ((*d)["type"], "DELETED");
  EXPECT_EQ((*d)["object"]["metadata"]["name"], "n2");
}

TEST_F(FakeApi, HistoryLimitCompactsTheOldestEvents) {
  FakeApiServerOptions o;
  o.history_limit = 2;
  start(o);
  api().upsert("services", service("default", "a"));
  std::string first = std::to_string(api().resource_version());
  for (const char* n : {"b", "c", "d"}) api().upsert("services", service("default", n));
  WatchStream old(api(), "/api/v1/services?watch=1&resourceVersion=" + first);
  auto e = old.next_event();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ((*e)["type"], "ERROR");
  WatchStream recent(api(), "/api/v1/services?watch=1&resourceVersion=" + std::to_string(api().resource_version() - 2));
  auto r = recent.next_event();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ((*r)["object"]["metadata"]["name"], "c");
}

TEST_F(FakeApi, CreateUpdateDeleteOverHttp) {
  auto cli = testing::make_client(api());
  WatchStream w(api(), "/api/v1/services?watch=1&resourceVersion=" + std::to_string(api().resource_version()));
  ASSERT_TRUE(api().wait_for_watches(1, 5s));
  std::string body = service("default", "web").dump();
  auto created = cli->Post("/api/v1/namespaces/default/services", body, "application/json");
  ASSERT_EQ(created->status, 201) << created->body;
  std::string rv = rv_of(json::parse(created->body));
  auto again = cli->Post("/api/v1/namespaces/default/services", body, "application/json");
  EXPECT_EQ(again->status, 409);
  EXPECT_EQ(json::parse(again->body)["reason"], "AlreadyExists");

  json update = service("default", "web", json::object(), "10.96.1.1");
  update["metadata"]["resourceVersion"] = "1";  // stale
  EXPECT_EQ(cli->Put("/api/v1/namespaces/default/services/web", update.dump(), "application/json")->status, 409);
  update["metadata"]["resourceVersion"] = rv;
  auto updated = cli->Put("/api/v1/namespaces/default/services/web", update.dump(), "application/json");
  ASSERT_EQ(updated->status, 200) << updated->body;
  EXPECT_EQ(json::parse(updated->body)["spec"]["clusterIP"], "10.96.1.1");

  auto deleted = cli->Delete("/api/v1/namespaces/default/services/web");
  ASSERT_EQ(deleted->status, 200);
  EXPECT_EQ(json::parse(deleted->body)["status"], "Success");
  EXPECT_EQ(cli->Delete("/api/v1/namespaces/default/services/web")->status, 404);
  EXPECT_EQ(cli->Post("/api/v1/namespaces/default/services", "\x0a\x02", "application/vnd.kubernetes.protobuf")->status, 415);

  std::vector<std::string> types;
  for (int i = 0; i < 3; ++i) {
    auto e = w.next_event();
    ASSERT_TRUE(e.has_value());
    types.push_back((*e)["type"]);
  }
  EXPECT_EQ(types, (std::vector<std::string>{"ADDED", "MODIFIED", "DELETED"}));
}

TEST_F(FakeApi, LoadsObjectsByKindIncludingLists) {
  ASSERT_TRUE(api().load({json::parse(R"({"kind":"ServiceList","apiVersion":"v1","items":[
                                         {"metadata":{"name":"a","namespace":"x"}},{"metadata":{"name":"b"}}]})"),
                          json::parse(R"({"kind":"Node","apiVersion":"v1","metadata":{"name":"n1"}})"),
                          json::parse(R"({"kind":"EndpointSlice","apiVersion":"discovery.k8s.io/v1",
                                          "metadata":{"name":"a-1","namespace":"x"},"addressType":"IPv4"})")})
                  .ok());
  EXPECT_EQ(api().list("services").size(), 2u);
  EXPECT_EQ((*api().get("services", "default", "b"))["metadata"]["namespace"], "default");
  EXPECT_EQ(api().list("nodes").size(), 1u);
  EXPECT_EQ(api().list("endpointslices").size(), 1u);
  EXPECT_FALSE(api().load({json::parse(R"({"kind":"Pod","metadata":{"name":"p"}})")}).ok());
}

// ---- Failure injection ---------------------------------------------------------------------------------------

TEST_F(FakeApi, FailsTheNextRequestsWithRetryAfter) {
  api().fail_next_requests(2, 429, 3, "/services");
  EXPECT_EQ(get(api(), "/api/v1/nodes").status, 200) << "other paths are unaffected";
  for (int i = 0; i < 2; ++i) {
    auto r = get(api(), "/api/v1/services");
    EXPECT_EQ(r.status, 429);
    EXPECT_EQ(r.json()["reason"], "TooManyRequests");
    auto retry_after = r.headers.find("Retry-After");
    ASSERT_NE(retry_after, r.headers.end());
    EXPECT_EQ(retry_after->second, "3");
  }
  EXPECT_EQ(get(api(), "/api/v1/services").status, 200);
  api().fail_next_requests(1, 500);
  EXPECT_EQ(get(api(), "/api/v1/services").json()["reason"], "InternalError");
}

// ---- PATCH -----------------------------------------------------------------------------------------------

TEST_F(FakeApi, NodeTaintPatchWithResourceVersionPrecondition) {
  std::string rv = rv_of(api().upsert("nodes", node("n1")));
  WatchStream w(api(), "/api/v1/nodes?watch=1&resourceVersion=" + rv);
  ASSERT_TRUE(api().wait_for_watches(1, 5s));

  std::string body = R"({"metadata":{"resourceVersion":")" + rv +
                     R"("},"spec":{"taints":[{"key":"kproxy.example.com/sctp","effect":"NoSchedule"}]}})";
  auto ok = patch(api(), "/api/v1/nodes/n1", body, "application/strategic-merge-patch+json");
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.json()["kind"], "Node");
  EXPECT_EQ(ok.json()["spec"]["taints"].size(), 1u) << "taints are replaced whole";
  EXPECT_NE(rv_of(ok.json()), rv);
  auto e = w.next_event();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ((*e)["type"], "MODIFIED");
  EXPECT_EQ(rv_of((*e)["object"]), rv_of(ok.json()));

  // The same precondition is now stale.
  auto conflict = patch(api(), "/api/v1/nodes/n1", body, "application/strategic-merge-patch+json");
  EXPECT_EQ(conflict.status, 409);
  EXPECT_EQ(conflict.json()["reason"], "Conflict");
  EXPECT_EQ(conflict.json()["message"],
            "Operation cannot be fulfilled on nodes \"n1\": the object has been modified; please apply your "
            "changes to the latest version and try again");
  EXPECT_EQ((*api().get("nodes", "", "n1"))["spec"]["taints"].size(), 1u);
}

TEST_F(FakeApi, PatchFlavours) {
  api().upsert("nodes", node("n1"));
  auto merge = patch(api(), "/api/v1/nodes/n1", R"({"spec":{"taints":[]}})", "application/merge-patch+json");
  ASSERT_EQ(merge.status, 200);
  EXPECT_TRUE(merge.json()["spec"]["taints"].empty());
  std::string rv = rv_of(merge.json());
  auto json_patch = patch(api(), "/api/v1/nodes/n1",
                          R"([{"op":"test","path":"/metadata/resourceVersion","value":")" + rv +
                              R"("},{"op":"add","path":"/spec/taints","value":[{"key":"k","effect":"NoSchedule"}]}])",
                          "application/json-patch+json");
  ASSERT_EQ(json_patch.status, 200) << json_patch.body;
  EXPECT_EQ(json_patch.json()["spec"]["taints"][0]["key"], "k");
  auto failed_test = patch(api(), "/api/v1/nodes/n1",
                           R"([{"op":"test","path":"/metadata/resourceVersion","value":")" + rv + R"("}])",
                           "application/json-patch+json");
  EXPECT_EQ(failed_test.status, 422);
  EXPECT_EQ(patch(api(), "/api/v1/nodes/n1", "{}", "application/apply-patch+yaml").status, 415);
  EXPECT_EQ(patch(api(), "/api/v1/nodes/missing", "{}", "application/merge-patch+json").status, 404);
  // A no-op patch writes nothing.
  std::int64_t before = api().resource_version();
  EXPECT_EQ(patch(api(), "/api/v1/nodes/n1", "{}", "application/strategic-merge-patch+json").status, 200);
  EXPECT_EQ(api().resource_version(), before);
}

TEST_F(FakeApi, ConflictHookModifiesTheNodeThenAnswers409) {
  std::string rv = rv_of(api().upsert("nodes", node("n1")));
  api().conflict_next_patches(1);
  auto r = patch(api(), "/api/v1/nodes/n1", R"({"spec":{"taints":[]}})", "application/strategic-merge-patch+json");
  EXPECT_EQ(r.status, 409);
  auto now = *api().get("nodes", "", "n1");
  EXPECT_NE(rv_of(now), rv) << "a re-read sees the concurrent writer's version";
  EXPECT_EQ(now["spec"]["taints"].size(), 1u);
  EXPECT_EQ(patch(api(), "/api/v1/nodes/n1", R"({"spec":{"taints":[]}})", "application/strategic-merge-patch+json").status, 200);
}

// ---- The executable ---------------------------------------------------------------------------------------

TEST(FakeApiBinary, ServesAGeneratedObjectSetUntilSigterm) {
  testing::ChildProcess p({KPROXY_FAKEAPI_BINARY, "--plain-http", "--services", "7", "--slices-per-service", "2",
                           "--endpoints-per-slice", "3", "--nodes", "2", "--token", "bench"});
  ASSERT_TRUE(p.started());
  ASSERT_TRUE(p.wait_for_output([](const std::string& out) { return out.find('\n') != std::string::npos; }, 20s))
      << p.err();
  auto at = p.out().find("http://127.0.0.1:");
  ASSERT_NE(at, std::string::npos) << p.out();
  int port = std::stoi(p.out().substr(at + 17));
  httplib::Client cli("127.0.0.1", port);
  cli.set_bearer_token_auth("bench");
  auto services = cli.Get("/api/v1/services");
  ASSERT_TRUE(services);
  EXPECT_EQ(json::parse(services->body)["items"].size(), 7u);
  auto slices = json::parse(cli.Get("/apis/discovery.k8s.io/v1/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dsvc-3")->body);
  ASSERT_EQ(slices["items"].size(), 2u);
  EXPECT_EQ(slices["items"][0]["endpoints"].size(), 3u);
  EXPECT_EQ(json::parse(cli.Get("/api/v1/nodes")->body)["items"].size(), 2u);
  cli.set_bearer_token_auth("wrong");
  EXPECT_EQ(cli.Get("/api/v1/nodes")->status, 401);
  p.signal(SIGTERM);
  EXPECT_EQ(p.wait(20s), 0) << p.err();
}

}  // namespace
}  // namespace kproxy::fakeapi
