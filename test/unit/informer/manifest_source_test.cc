#include "kproxy/k8s/manifest_source.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "kproxy/k8s/informer.h"

namespace kproxy::k8s {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

template <typename T>
class Recorder : public InformerHandler<T> {
 public:
  using Ptr = std::shared_ptr<const T>;
  void on_add(const Ptr& o) override { events.push_back("add " + o->meta.key()); }
  void on_update(const Ptr&, const Ptr& n) override { events.push_back("update " + n->meta.key()); }
  void on_delete(const Ptr& o) override { events.push_back("delete " + o->meta.key()); }
  void on_synced() override { events.push_back("synced"); }
  std::vector<std::string> events;
};

class ManifestSourceTest : public ::testing::Test {
 protected:
  static fs::path fresh_dir() {
    fs::path d = fs::temp_directory_path() / ("kproxy-manifests-" + std::to_string(getpid()) + "-" +
                                              ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
  }
  void TearDown() override { fs::remove_all(dir); }

  void write(const std::string& name, const std::string& text) {
    // Write-then-rename, as editors and ConfigMap updates do, so a reader never sees half a file.
    fs::path tmp = dir / (".tmp-" + name);
    std::ofstream(tmp) << text;
    fs::rename(tmp, dir / name);
  }
  std::vector<std::string> drain() {
    queue.drain();
    std::vector<std::string> all;
    for (auto* v : {&services.events, &slices.events, &nodes.events}) {
      all.insert(all.end(), v->begin(), v->end());
      v->clear();
    }
    return all;
  }

  fs::path dir = fresh_dir();  // first: the members below use it
  EventQueue queue;
  Recorder<model::Service> services;
  Recorder<model::EndpointSlice> slices;
  Recorder<model::Node> nodes;
  std::vector<model::Rejection> rejections;
  RejectionSink sink = [this](const model::Rejection& r) { rejections.push_back(r); };
  Informer<model::Service> service_informer{"Service", model::parse_service, queue, services, sink};
  Informer<model::EndpointSlice> slice_informer{"EndpointSlice", model::parse_endpoint_slice, queue, slices, sink};
  Informer<model::Node> node_informer{"Node", model::parse_node, queue, nodes, sink};
  ManifestSource source{dir.string(), "n1", {service_informer, slice_informer, node_informer}};
};

const char* kWeb = R"(
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: 10.96.0.10
  ports: [{name: http, port: 80}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: [{addresses: [10.244.1.5]}]
)";

TEST_F(ManifestSourceTest, ReadsEveryKindFromYamlJsonAndLists) {
  // A fresh ManifestSource for a directory filled before it starts.
  write("web.yaml", kWeb);
  write("nodes.json", R"({"kind":"List","apiVersion":"v1","items":[
      {"apiVersion":"v1","kind":"Node","metadata":{"name":"n1"}},
      {"apiVersion":"v1","kind":"Node","metadata":{"name":"n2"}}]})");
  write("other.yml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n");
  write("notes.txt", "not a manifest");
  ASSERT_TRUE(source.rescan().ok());
  auto events = drain();
  std::sort(events.begin(), events.end());
  // Namespaced objects without a namespace land in "default"; only this node's Node is read.
  EXPECT_EQ(events, (std::vector<std::string>{"add default/web", "add default/web-1", "add n1", "synced", "synced",
                                              "synced"}));
}

TEST_F(ManifestSourceTest, EditsRenamesAndRemovalsProduceApiEvents) {
  write("web.yaml", kWeb);
  ASSERT_TRUE(source.rescan().ok());
  drain();

  std::string edited = kWeb;
  edited.replace(edited.find("port: 80}"), 9, "port: 81}");
  write("web.yaml", edited);
  ASSERT_TRUE(source.rescan().ok());
  EXPECT_EQ(drain(), std::vector<std::string>{"update default/web"});

  fs::rename(dir / "web.yaml", dir / "renamed.yaml");
  ASSERT_TRUE(source.rescan().ok());
  EXPECT_EQ(drain(), std::vector<std::string>{}) << "a rename changes no object";

  fs::remove(dir / "renamed.yaml");
  ASSERT_TRUE(source.rescan().ok());
  auto events = drain();
  std::sort(events.begin(), events.end());
  EXPECT_EQ(events, (std::vector<std::string>{"delete default/web", "delete default/web-1"}));
}

TEST_F(ManifestSourceTest, InvalidYamlKeepsTheFilesPreviousObjects) {
  write("web.yaml", kWeb);
  ASSERT_TRUE(source.rescan().ok());
  drain();
  write("web.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: web\n  broken: [\n");
  ASSERT_TRUE(source.rescan().ok());
  EXPECT_EQ(drain(), std::vector<std::string>{});
  EXPECT_EQ(service_informer.list().size(), 1u);
}

TEST_F(ManifestSourceTest, InvalidObjectsAreRejectedWithTheirFieldAndTheRestKept) {
  write("mixed.yaml", R"(
apiVersion: v1
kind: Service
metadata: {name: mixed, namespace: prod}
spec:
  clusterIP: 10.96.0.30
  ports:
  - {name: good, protocol: UDP, port: 53}
  - {name: bad, protocol: QUIC, port: 443}
)");
  ASSERT_TRUE(source.rescan().ok());
  EXPECT_EQ(drain(), (std::vector<std::string>{"add prod/mixed", "synced", "synced", "synced"}));
  ASSERT_EQ(service_informer.list().size(), 1u);
  EXPECT_EQ(service_informer.list()[0]->ports.size(), 1u);
  ASSERT_EQ(rejections.size(), 1u);
  EXPECT_EQ(rejections[0].field, "spec.ports[1].protocol");
}

TEST_F(ManifestSourceTest, HeadlessAndForeignProxyServicesAreFilteredLikeKubeProxy) {
  write("svc.yaml", R"(
apiVersion: v1
kind: Service
metadata: {name: other-proxy, labels: {service.kubernetes.io/service-proxy-name: cilium}}
spec: {clusterIP: 10.96.0.1, ports: [{port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: h-1, labels: {kubernetes.io/service-name: h, service.kubernetes.io/headless: ""}}
addressType: IPv4
endpoints: [{addresses: [10.244.1.5]}]
)");
  ASSERT_TRUE(source.rescan().ok());
  EXPECT_EQ(drain(), (std::vector<std::string>{"synced", "synced", "synced"}));
}

TEST_F(ManifestSourceTest, FollowsTheDirectoryWithInotify) {
  std::jthread follower([this](std::stop_token stop) { EXPECT_TRUE(source.run(stop).ok()); });
  auto wait_generation = [&](std::uint64_t g) {
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (source.generation() < g && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
    return source.generation() >= g;
  };
  ASSERT_TRUE(wait_generation(1));
  write("web.yaml", kWeb);
  // Events arrive on the consumer side: drain until both objects were added or time is up.
  std::vector<std::string> seen;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (seen.size() < 5 && std::chrono::steady_clock::now() < deadline) {
    queue.run_until(std::stop_token(), std::chrono::steady_clock::now() + 50ms);
    for (auto* v : {&services.events, &slices.events, &nodes.events}) {
      seen.insert(seen.end(), v->begin(), v->end());
      v->clear();
    }
  }
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<std::string>{"add default/web", "add default/web-1", "synced", "synced", "synced"}));
  follower.request_stop();
}

}  // namespace
}  // namespace kproxy::k8s
