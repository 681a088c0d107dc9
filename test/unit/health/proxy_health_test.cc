#include "kproxy/health/proxy_health.h"

#include <gtest/gtest.h>

#include "test_support.h"

namespace kproxy::health {
namespace {

using namespace std::chrono_literals;
using testing::example_time;
using testing::FakeClock;

constexpr auto kTimeout = 60s;  // 2 x the default syncPeriod of 30 s

model::Node node_with(std::vector<model::Taint> taints = {}, bool deleting = false) {
  model::Node node;
  node.meta.name = "node-1";
  node.taints = std::move(taints);
  if (deleting) node.meta.deletion_timestamp = model::Timestamp{};
  return node;
}

class ProxyHealthTest : public ::testing::Test {
 protected:
  FakeClock clock_{example_time()};
  ProxyHealth health_{kTimeout, clock_.clock()};
};

TEST_F(ProxyHealthTest, HealthyWhileStartingUp) {
  const HealthReport report = health_.health();
  EXPECT_TRUE(report.healthy);
  EXPECT_FALSE(report.last_updated.has_value());
  EXPECT_TRUE(report.families.empty());
  EXPECT_EQ(report.current_time, example_time());
}

TEST_F(ProxyHealthTest, QueuedUpdatesOfAFamilyThatNeverSyncedAreNotJudged) {
  // kube-proxy only looks at families in lastUpdatedMap.
  health_.queued_update(IpFamily::kIPv4);
  clock_.advance(10 * kTimeout);
  EXPECT_TRUE(health_.healthy());
}

TEST_F(ProxyHealthTest, UnhealthyOnceAQueuedUpdateIsTwoSyncPeriodsOld) {
  health_.updated(IpFamily::kIPv4);
  clock_.advance(5s);
  health_.queued_update(IpFamily::kIPv4);
  clock_.advance(kTimeout - 1ns);
  EXPECT_TRUE(health_.healthy());
  clock_.advance(1ns);  // now - oldestPendingQueued == healthTimeout: no longer "< timeout"
  EXPECT_FALSE(health_.healthy());
}

TEST_F(ProxyHealthTest, TheOldestPendingUpdateCountsNotTheLatest) {
  health_.updated(IpFamily::kIPv4);
  health_.queued_update(IpFamily::kIPv4);
  clock_.advance(kTimeout - 1s);
  health_.queued_update(IpFamily::kIPv4);
  clock_.advance(1s);
  EXPECT_FALSE(health_.healthy());
}

TEST_F(ProxyHealthTest, ASuccessfulSyncClearsThePendingUpdate) {
  health_.updated(IpFamily::kIPv4);
  health_.queued_update(IpFamily::kIPv4);
  clock_.advance(kTimeout);
  EXPECT_FALSE(health_.healthy());
  health_.updated(IpFamily::kIPv4);
  EXPECT_TRUE(health_.healthy());
  clock_.advance(10 * kTimeout);  // no sync needed, none queued: stays healthy
  EXPECT_TRUE(health_.healthy());
}

TEST_F(ProxyHealthTest, OneLateFamilyMakesTheProxyUnhealthyAndIsReportedPerFamily) {
  health_.updated(IpFamily::kIPv4);
  health_.updated(IpFamily::kIPv6);
  const Time v4_synced = clock_.now();
  health_.queued_update(IpFamily::kIPv4);
  clock_.advance(kTimeout);
  health_.updated(IpFamily::kIPv6);
  const HealthReport report = health_.health();
  EXPECT_FALSE(report.healthy);
  EXPECT_EQ(report.last_updated, clock_.now());
  EXPECT_EQ(report.families.at(IpFamily::kIPv4), (FamilyHealth{v4_synced, false}));
  EXPECT_EQ(report.families.at(IpFamily::kIPv6), (FamilyHealth{clock_.now(), true}));
}

TEST_F(ProxyHealthTest, NodeIsNotEligibleUntilItsNodeIsSeen) {
  EXPECT_FALSE(health_.node_eligible());
  health_.sync_node(node_with());
  EXPECT_TRUE(health_.node_eligible());
}

TEST_F(ProxyHealthTest, NodeBeingDeletedOrMarkedByTheAutoscalerIsNotEligible) {
  health_.sync_node(node_with({}, /*deleting=*/true));
  EXPECT_FALSE(health_.node_eligible());
  health_.sync_node(node_with({model::Taint{"ToBeDeletedByClusterAutoscaler", "1700000000", model::TaintEffect::kNoSchedule, {}}}));
  EXPECT_FALSE(health_.node_eligible());
  // Any effect counts; other taints do not.
  health_.sync_node(node_with({model::Taint{"ToBeDeletedByClusterAutoscaler", "", model::TaintEffect::kPreferNoSchedule, {}}}));
  EXPECT_FALSE(health_.node_eligible());
  health_.sync_node(node_with({model::Taint{"DeletionCandidateOfClusterAutoscaler", "", model::TaintEffect::kPreferNoSchedule, {}}}));
  EXPECT_TRUE(health_.node_eligible());
}

// The bodies, against what kube-proxy's handlers print for the same state.

TEST_F(ProxyHealthTest, JsonHealthzOkPutsTheCurrentTimeInLastUpdated) {
  health_.updated(IpFamily::kIPv4);
  clock_.advance(1500ms);
  const HealthResponse response = healthz_response(health_.health(), true);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body,
            R"({"lastUpdated":"2026-11-25T12:00:01.623456789Z","currentTime":"2026-11-25T12:00:01.623456789Z",)"
            R"("nodeEligible":true,"healthy":true,)"
            R"("status":{"IPv4":{"lastUpdated":"2026-11-25T12:00:00.123456789Z","healthy":true}}})");
}

TEST_F(ProxyHealthTest, JsonHealthzBeforeAnySyncHasTheZeroTimeAndNoStatus) {
  const HealthResponse response = healthz_response(health_.health(), false);
  EXPECT_EQ(response.status, 503);
  EXPECT_EQ(response.body,
            R"({"lastUpdated":"0001-01-01T00:00:00Z","currentTime":"2026-11-25T12:00:00.123456789Z",)"
            R"("nodeEligible":false,"healthy":true})");
}

TEST_F(ProxyHealthTest, JsonBodiesWhenOneFamilyIsLate) {
  health_.updated(IpFamily::kIPv6);
  health_.updated(IpFamily::kIPv4);
  health_.queued_update(IpFamily::kIPv6);
  clock_.advance(kTimeout);
  const HealthReport report = health_.health();
  const std::string families =
      R"("status":{"IPv4":{"lastUpdated":"2026-11-25T12:00:00.123456789Z","healthy":true},)"
      R"("IPv6":{"lastUpdated":"2026-11-25T12:00:00.123456789Z","healthy":false}}})";

  const HealthResponse healthz = healthz_response(report, true);
  EXPECT_EQ(healthz.status, 503);
  EXPECT_EQ(healthz.body, R"({"lastUpdated":"2026-11-25T12:00:00.123456789Z","currentTime":"2026-11-25T12:01:00.123456789Z",)"
                          R"("nodeEligible":true,"healthy":false,)" + families);

  const HealthResponse livez = livez_response(report);
  EXPECT_EQ(livez.status, 503);
  EXPECT_EQ(livez.body, R"({"lastUpdated":"2026-11-25T12:00:00.123456789Z","currentTime":"2026-11-25T12:01:00.123456789Z",)"
                        R"("healthy":false,)" + families);
}

TEST_F(ProxyHealthTest, LivezIgnoresNodeEligibility) {
  health_.updated(IpFamily::kIPv4);
  health_.sync_node(node_with({}, /*deleting=*/true));
  EXPECT_EQ(healthz_response(health_.health(), health_.node_eligible()).status, 503);
  EXPECT_EQ(livez_response(health_.health()).status, 200);
}

TEST_F(ProxyHealthTest, HealthzOnAHealthyProxyOfAnIneligibleNodeReportsTheLastSync) {
  health_.updated(IpFamily::kIPv4);
  clock_.advance(2s);
  const HealthResponse response = healthz_response(health_.health(), false);
  EXPECT_EQ(response.status, 503);
  EXPECT_EQ(response.body.substr(0, 47), R"({"lastUpdated":"2026-11-25T12:00:00.123456789Z")");
}

TEST_F(ProxyHealthTest, LegacyBodiesKeepKubeProxy132Spacing) {
  health_.updated(IpFamily::kIPv4);
  clock_.advance(1s);
  const HealthReport ok = health_.health();
  EXPECT_EQ(healthz_response(ok, true, HealthzFormat::kLegacy).body,
            R"({"lastUpdated": "2026-11-25 12:00:01.123456789 +0000 UTC","currentTime": "2026-11-25 12:00:01.123456789 +0000 UTC", "nodeEligible": true})");
  EXPECT_EQ(livez_response(ok, HealthzFormat::kLegacy).body,
            R"({"lastUpdated": "2026-11-25 12:00:01.123456789 +0000 UTC","currentTime": "2026-11-25 12:00:01.123456789 +0000 UTC"})");

  health_.queued_update(IpFamily::kIPv4);
  clock_.advance(kTimeout);
  const HealthResponse late = livez_response(health_.health(), HealthzFormat::kLegacy);
  EXPECT_EQ(late.status, 503);
  EXPECT_EQ(late.body,
            R"({"lastUpdated": "2026-11-25 12:00:00.123456789 +0000 UTC","currentTime": "2026-11-25 12:01:01.123456789 +0000 UTC"})");
}

}  // namespace
}  // namespace kproxy::health
