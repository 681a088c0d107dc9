// The fake's etcd-like store: snapshot reads at a revision, the event log, compaction.
#include "fakeapi/object_store.h"

#include <gtest/gtest.h>

namespace kproxy::fakeapi {
namespace {

using json = nlohmann::json;

json service(const std::string& ns, const std::string& name, const std::string& ip = "10.0.0.1") {
  return {{"metadata", {{"name", name}, {"namespace", ns}}}, {"spec", {{"clusterIP", ip}}}};
}

std::vector<std::string> names_at(const ObjectStore& s, std::int64_t rv, const std::string& ns = "") {
  std::vector<std::string> out;
  s.scan(*find_resource("services"), rv, ns, "", [&](const std::string&, const ObjectPtr& o) {
    out.push_back((*o)["metadata"]["name"].get<std::string>() + "@" + (*o)["spec"]["clusterIP"].get<std::string>());
    return true;
  });
  return out;
}

TEST(ObjectStore, EveryWriteGetsTheNextRevisionAndSystemFields) {
  ObjectStore s;
  const auto& svc = *find_resource("services");
  std::int64_t before = s.current_rv();
  json in = service("default", "a");
  in["kind"] = "Service";
  in["apiVersion"] = "v1";
  auto a = s.put(svc, in);
  EXPECT_EQ(s.current_rv(), before + 1);
  EXPECT_EQ((*a)["metadata"]["resourceVersion"], std::to_string(before + 1));
  EXPECT_FALSE((*a)["metadata"]["uid"].get<std::string>().empty());
  EXPECT_FALSE((*a)["metadata"]["creationTimestamp"].get<std::string>().empty());
  EXPECT_FALSE(a->contains("kind")) << "kind/apiVersion are added when serving, not stored";
  auto a2 = s.put(svc, service("default", "a", "10.0.0.2"));
  EXPECT_EQ((*a2)["metadata"]["uid"], (*a)["metadata"]["uid"]) << "an update keeps the uid";
  EXPECT_EQ((*a2)["metadata"]["creationTimestamp"], (*a)["metadata"]["creationTimestamp"]);
}

TEST(ObjectStore, ScanAtARevisionSeesThatRevisionsState) {
  ObjectStore s;
  const auto& svc = *find_resource("services");
  s.put(svc, service("default", "a"));
  s.put(svc, service("default", "b"));
  std::int64_t snapshot = s.current_rv();
  s.put(svc, service("default", "a", "10.9.9.9"));
  s.remove(svc, "default", "b");
  s.put(svc, service("other", "c"));
  EXPECT_EQ(names_at(s, snapshot), (std::vector<std::string>{"a@10.0.0.1", "b@10.0.0.1"}));
  EXPECT_EQ(names_at(s, s.current_rv()), (std::vector<std::string>{"a@10.9.9.9", "c@10.0.0.1"}));
  EXPECT_EQ(names_at(s, s.current_rv(), "other"), (std::vector<std::string>{"c@10.0.0.1"}));
}

TEST(ObjectStore, EventLogCarriesPreviousStateAndDeletionRevision) {
  ObjectStore s;
  const auto& svc = *find_resource("services");
  std::int64_t start = s.current_rv();
  s.put(svc, service("default", "a"));
  s.put(svc, service("default", "a", "10.0.0.2"));
  s.remove(svc, "default", "a");
  std::vector<StoredEvent> evs;
  s.events_after(start, 100, evs);
  ASSERT_EQ(evs.size(), 3u);
  EXPECT_EQ(evs[0].type, EventType::kAdded);
  EXPECT_EQ(evs[1].type, EventType::kModified);
  EXPECT_EQ((*evs[1].prev_object)["spec"]["clusterIP"], "10.0.0.1");
  EXPECT_EQ(evs[2].type, EventType::kDeleted);
  EXPECT_EQ((*evs[2].object)["metadata"]["resourceVersion"], std::to_string(evs[2].rv))
      << "DELETED carries the last state stamped with the deletion revision";
  EXPECT_EQ((*evs[2].object)["spec"]["clusterIP"], "10.0.0.2");
}

TEST(ObjectStore, CompactionForgetsHistoryButKeepsCurrentState) {
  ObjectStore s;
  const auto& svc = *find_resource("services");
  s.put(svc, service("default", "a"));
  std::int64_t old = s.current_rv();
  s.put(svc, service("default", "b"));
  s.remove(svc, "default", "b");
  s.compact(s.current_rv());
  EXPECT_EQ(s.compacted_rv(), s.current_rv());
  EXPECT_GT(s.compacted_rv(), old);
  EXPECT_EQ(s.event_count(), 0u);
  EXPECT_EQ(names_at(s, s.current_rv()), (std::vector<std::string>{"a@10.0.0.1"}));
  std::vector<StoredEvent> evs;
  s.put(svc, service("default", "c"));
  s.events_after(s.compacted_rv(), 100, evs);
  EXPECT_EQ(evs.size(), 1u);
}

}  // namespace
}  // namespace kproxy::fakeapi
