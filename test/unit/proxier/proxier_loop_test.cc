// ProxierLoop with a recording backend and a fake clock: no sync before both informers have
// synced, a full first sync, partial syncs carrying what changed, retries after failures
// (with the changes kept), and a zone change forcing a full sync.
#include "kproxy/proxier/proxier_loop.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace kproxy::proxier {
namespace {

using namespace std::chrono_literals;
using Clock = ProxierLoop::Clock;

class RecordingBackend : public ProxierBackend {
 public:
  struct Call {
    SyncKind kind;
    std::set<ServicePortName> changed;
    std::size_t ports;
    std::string zone;
  };
  Status sync(const SyncRequest& r) override {
    calls.push_back(Call{r.kind, r.changed, r.snapshot.service_ports.size(), r.node.zone});
    if (fail_next) {
      fail_next = false;
      return Error("restore failed");
    }
    return {};
  }
  std::vector<Call> calls;
  bool fail_next = false;
};

std::shared_ptr<const model::Service> service(const std::string& name, const std::string& ip) {
  model::Service s;
  s.meta.ns = "ns";
  s.meta.name = name;
  s.cluster_ips = {*IpAddress::parse(ip)};
  s.ip_families = {IpFamily::kIPv4};
  s.ports = {model::ServicePort{"p", model::Protocol::kTcp, 80, 0}};
  return std::make_shared<const model::Service>(std::move(s));
}

std::shared_ptr<const model::Node> node(const std::string& zone) {
  model::Node n;
  n.meta.name = "node1";
  if (!zone.empty()) n.meta.labels[kZoneLabel] = zone;
  return std::make_shared<const model::Node>(std::move(n));
}

class ProxierLoopTest : public ::testing::Test {
 protected:
  ProxierLoopTest() : loop_(ProxierLoopOptions{{IpFamily::kIPv4, "node1", true}, {}}, backend_) {}
  std::optional<SyncReport> tick(Clock::duration advance = 0s) {
    now_ += advance;
    loop_.after_events();
    return loop_.run_due(now_, [this] { return now_; });
  }
  void sync_informers() {
    loop_.service_handler().on_synced();
    loop_.endpoint_slice_handler().on_synced();
  }

  RecordingBackend backend_;
  ProxierLoop loop_;
  Clock::time_point now_ = Clock::time_point() + 1000h;
};

TEST_F(ProxierLoopTest, NothingSyncsUntilBothInformersHaveSynced) {
  loop_.service_handler().on_add(service("a", "10.96.0.1"));
  loop_.service_handler().on_synced();
  EXPECT_FALSE(tick(10s));
  EXPECT_EQ(loop_.next_deadline(now_), Clock::time_point::max());
  loop_.endpoint_slice_handler().on_synced();
  auto report = tick();
  ASSERT_TRUE(report);
  EXPECT_EQ(report->kind, SyncKind::kFull);
  EXPECT_TRUE(report->ok);
  ASSERT_EQ(backend_.calls.size(), 1u);
  EXPECT_EQ(backend_.calls[0].ports, 1u);
}

TEST_F(ProxierLoopTest, ChangesAreCoalescedIntoOnePartialSyncAfterTheMinInterval) {
  sync_informers();
  ASSERT_TRUE(tick());
  loop_.service_handler().on_add(service("a", "10.96.0.1"));
  EXPECT_FALSE(tick(100ms)) << "within --min-sync-period of the last sync";
  loop_.service_handler().on_add(service("b", "10.96.0.2"));
  auto report = tick(1s);
  ASSERT_TRUE(report);
  EXPECT_EQ(report->kind, SyncKind::kPartial);
  ASSERT_EQ(backend_.calls.size(), 2u);
  EXPECT_EQ(backend_.calls[1].changed.size(), 2u);
  EXPECT_FALSE(tick(2s)) << "nothing pending";
}

TEST_F(ProxierLoopTest, AFailedSyncKeepsItsChangesAndRetriesFull) {
  sync_informers();
  ASSERT_TRUE(tick());
  loop_.service_handler().on_add(service("a", "10.96.0.1"));
  backend_.fail_next = true;
  auto failed = tick(1s);
  ASSERT_TRUE(failed);
  EXPECT_FALSE(failed->ok);
  EXPECT_EQ(failed->error, "restore failed");
  EXPECT_FALSE(tick(10s)) << "retried after --sync-period (30 s), not before";
  auto retry = tick(21s);
  ASSERT_TRUE(retry);
  EXPECT_EQ(retry->kind, SyncKind::kFull);
  EXPECT_EQ(backend_.calls.back().changed.size(), 1u) << "the failed sync's changes are not lost";
}

TEST_F(ProxierLoopTest, AZoneChangeForcesAFullSync) {
  loop_.node_handler().on_add(node("zone-a"));
  sync_informers();
  ASSERT_TRUE(tick());
  EXPECT_EQ(backend_.calls[0].zone, "zone-a");
  loop_.node_handler().on_update(node("zone-a"), node("zone-a"));
  EXPECT_FALSE(tick(2s)) << "same zone: nothing to do";
  loop_.node_handler().on_update(node("zone-a"), node("zone-b"));
  auto report = tick();
  ASSERT_TRUE(report);
  EXPECT_EQ(report->kind, SyncKind::kFull);
  EXPECT_EQ(backend_.calls.back().zone, "zone-b");
}

TEST_F(ProxierLoopTest, ObserversSeeEveryReport) {
  int seen = 0;
  loop_.on_sync([&](const SyncReport& r) { seen += r.ok ? 1 : 100; });
  sync_informers();
  tick();
  EXPECT_EQ(seen, 1);
}

}  // namespace
}  // namespace kproxy::proxier

namespace kproxy::proxier {
namespace {

// A backend that blocks until the other one has started: two loops' run() calls finish only
// if they overlap, as a dual-stack node's families' syncs do.
class RendezvousBackend : public ProxierBackend {
 public:
  explicit RendezvousBackend(std::atomic<int>& started) : started_(started) {}
  Status sync(const SyncRequest& r) override {
    ++started_;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (started_.load() < 2 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    ports = r.snapshot.service_ports.size();
    return started_.load() >= 2 ? Status{} : Error("the other family's sync never started");
  }
  std::size_t ports = 0;

 private:
  std::atomic<int>& started_;
};

// take_due(), run() and finish(): two loops (an IPv4 and an IPv6 one) take their due syncs on
// one thread, run their backends at the same time on two, and finish on the first; each
// report is what run_due() would give, and each runner is done (the next sync is partial).
TEST(ProxierLoopSteps, TwoFamiliesSyncAtOnce) {
  std::atomic<int> started{0};
  RendezvousBackend b4(started), b6(started);
  ProxierLoop v4(ProxierLoopOptions{{IpFamily::kIPv4, "node1", true}, {}}, b4);
  ProxierLoop v6(ProxierLoopOptions{{IpFamily::kIPv6, "node1", true}, {}}, b6);
  model::Service dual = *service("web", "10.96.0.1");
  dual.cluster_ips.push_back(*IpAddress::parse("fd00::1"));
  dual.ip_families.push_back(IpFamily::kIPv6);
  const auto ptr = std::make_shared<const model::Service>(dual);
  const Clock::time_point now = Clock::time_point() + 1000h;
  for (ProxierLoop* loop : {&v4, &v6}) {
    loop->service_handler().on_add(ptr);
    loop->service_handler().on_synced();
    loop->endpoint_slice_handler().on_synced();
    loop->after_events();
  }
  const auto clock = [now] { return now; };
  auto d4 = v4.take_due(now, clock);
  auto d6 = v6.take_due(now, clock);
  ASSERT_TRUE(d4 && d6);
  EXPECT_FALSE(v4.take_due(now, clock)) << "a sync is running";
  Status s6;
  std::thread other([&] { s6 = v6.run(*d6); });
  const Status s4 = v4.run(*d4);
  other.join();
  ASSERT_TRUE(s4.ok()) << s4.message();
  ASSERT_TRUE(s6.ok()) << s6.message();
  const SyncReport r4 = v4.finish(std::move(*d4), s4, now + 2s);
  const SyncReport r6 = v6.finish(std::move(*d6), s6, now + 3s);
  EXPECT_TRUE(r4.ok && r6.ok);
  EXPECT_EQ(r4.kind, SyncKind::kFull);
  EXPECT_EQ(r6.duration, 3s);
  EXPECT_EQ(r4.snapshot->family, IpFamily::kIPv4);
  EXPECT_EQ(r6.snapshot->family, IpFamily::kIPv6);
  EXPECT_EQ(b4.ports, 1u);
  EXPECT_EQ(b6.ports, 1u);
  // Done: nothing is due until a change, and the next sync is partial.
  EXPECT_FALSE(v4.take_due(now + 2s, clock));
  v4.service_handler().on_update(ptr, service("web", "10.96.0.2"));
  v4.after_events();
  started = 1;  // let v4's backend pass alone
  auto next = v4.take_due(now + 10s, [now] { return now + 10s; });
  ASSERT_TRUE(next);
  EXPECT_EQ(next->kind, SyncKind::kPartial);
}

}  // namespace
}  // namespace kproxy::proxier
