#include "kproxy/k8s/informer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace kproxy::k8s {
namespace {

using model::Service;
using nlohmann::json;

json service(const std::string& name, const std::string& ip, int port, const std::string& rv = "") {
  json s = {{"kind", "Service"},
            {"apiVersion", "v1"},
            {"metadata", {{"name", name}, {"namespace", "default"}}},
            {"spec", {{"clusterIP", ip}, {"ports", json::array({{{"port", port}, {"protocol", "TCP"}}})}}}};
  if (!rv.empty()) s["metadata"]["resourceVersion"] = rv;
  return s;
}

// Records what the handler saw, as "add web", "update web", "delete web", "synced".
class Recorder : public InformerHandler<Service> {
 public:
  void on_add(const Ptr& s) override { events.push_back("add " + s->meta.name); }
  void on_update(const Ptr& o, const Ptr& n) override {
    events.push_back("update " + n->meta.name + " " + std::to_string(o->ports[0].port) + "->" +
                     std::to_string(n->ports[0].port));
  }
  void on_delete(const Ptr& s) override { events.push_back("delete " + s->meta.name); }
  void on_synced() override { events.push_back("synced"); }
  std::vector<std::string> events;
};

class InformerTest : public ::testing::Test {
 protected:
  std::vector<std::string> drain() {
    queue.drain();
    return std::exchange(recorder.events, {});
  }
  EventQueue queue;
  Recorder recorder;
  std::vector<model::Rejection> rejections;
  Informer<Service> informer{"Service", model::parse_service, queue, recorder,
                             [this](const model::Rejection& r) { rejections.push_back(r); }};
};

TEST_F(InformerTest, FirstListDeliversAddsThenSynced) {
  EXPECT_FALSE(informer.has_synced());
  informer.replace({service("a", "10.96.0.1", 80, "5"), service("b", "10.96.0.2", 80, "6")}, "10");
  EXPECT_EQ(drain(), (std::vector<std::string>{"add a", "add b", "synced"}));
  EXPECT_TRUE(informer.has_synced());
}

TEST_F(InformerTest, RelistDeliversOnlyWhatChanged) {
  informer.replace({service("keep", "10.96.0.1", 80, "5"), service("change", "10.96.0.2", 80, "6"),
                    service("gone", "10.96.0.3", 80, "7")},
                   "10");
  drain();
  // As after a 410: the list shows one object changed, one deleted, one new.
  informer.replace({service("keep", "10.96.0.1", 80, "5"), service("change", "10.96.0.2", 81, "12"),
                    service("new", "10.96.0.4", 80, "13")},
                   "14");
  EXPECT_EQ(drain(), (std::vector<std::string>{"update change 80->81", "add new", "delete gone"}));
  EXPECT_EQ(informer.list().size(), 3u);
}

TEST_F(InformerTest, WatchEventsAddUpdateAndDelete) {
  informer.replace({}, "1");
  informer.apply(WatchEventType::kAdded, service("web", "10.96.0.1", 80, "2"));
  informer.apply(WatchEventType::kModified, service("web", "10.96.0.1", 8080, "3"));
  informer.apply(WatchEventType::kDeleted, service("web", "10.96.0.1", 8080, "4"));
  informer.apply(WatchEventType::kDeleted, service("never-seen", "10.96.0.9", 80, "5"));
  EXPECT_EQ(drain(), (std::vector<std::string>{"synced", "add web", "update web 80->8080", "delete web"}));
}

TEST_F(InformerTest, AnUnusableUpdateKeepsThePreviousVersionInForce) {
  informer.replace({service("web", "10.96.0.1", 80, "2")}, "2");
  drain();
  informer.apply(WatchEventType::kModified, service("web", "not-an-ip", 80, "3"));
  EXPECT_EQ(drain(), std::vector<std::string>{});
  ASSERT_EQ(informer.list().size(), 1u);
  EXPECT_EQ(informer.list()[0]->meta.resource_version, "2");
  ASSERT_FALSE(rejections.empty());
  EXPECT_EQ(rejections[0].field, "spec.clusterIP");
  // A later good version is an update from the last good one.
  informer.apply(WatchEventType::kModified, service("web", "10.96.0.1", 81, "4"));
  EXPECT_EQ(drain(), std::vector<std::string>{"update web 80->81"});
}

TEST_F(InformerTest, AnObjectThatWasNeverUsableIsNeverDelivered) {
  informer.replace({service("bad", "300.1.1.1", 80, "2"), service("good", "10.96.0.2", 80, "3")}, "3");
  EXPECT_EQ(drain(), (std::vector<std::string>{"add good", "synced"}));
  informer.apply(WatchEventType::kDeleted, service("bad", "300.1.1.1", 80, "4"));
  EXPECT_EQ(drain(), std::vector<std::string>{});
  informer.apply(WatchEventType::kModified, service("bad", "10.96.0.5", 80, "5"));
  EXPECT_EQ(drain(), std::vector<std::string>{"add bad"});
}

TEST_F(InformerTest, ObjectsWithoutANameAreReportedAndSkipped) {
  json nameless = service("x", "10.96.0.1", 80, "2");
  nameless["metadata"].erase("name");
  informer.replace({nameless}, "2");
  EXPECT_EQ(drain(), std::vector<std::string>{"synced"});
  ASSERT_EQ(rejections.size(), 1u);
  EXPECT_EQ(rejections[0].field, "metadata.name");
}

TEST_F(InformerTest, ObjectsWithoutResourceVersionsAreComparedByValue) {
  // The manifests source has no resourceVersions: an unchanged object is not an update.
  informer.replace({service("web", "10.96.0.1", 80)}, "m1");
  informer.replace({service("web", "10.96.0.1", 80)}, "m2");
  informer.replace({service("web", "10.96.0.1", 90)}, "m3");
  EXPECT_EQ(drain(), (std::vector<std::string>{"add web", "synced", "update web 80->90"}));
}

TEST_F(InformerTest, HandlersRunOnTheConsumerThreadNotTheFeeder) {
  informer.replace({service("a", "10.96.0.1", 80, "5")}, "10");
  EXPECT_TRUE(recorder.events.empty());  // nothing ran until the consumer drained the queue
  EXPECT_EQ(queue.size(), 2u);
}

}  // namespace
}  // namespace kproxy::k8s
