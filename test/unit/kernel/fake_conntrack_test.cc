// FakeConntrack behaves as the kernel's table does for what kproxy relies on: unique tuples
// per zone, lookups by either direction, ids, listing by family and protocol.
#include <gtest/gtest.h>

#include "fake_conntrack.h"

namespace kproxy::kernel {
namespace {

IpAddress ip(const char* text) { return IpAddress::parse(text).value(); }

Flow flow(FlowProtocol protocol, const char* client, std::uint16_t client_port, const char* service,
          std::uint16_t service_port, const char* backend, std::uint16_t backend_port) {
  Flow f;
  f.protocol = protocol;
  f.original = {ip(client), ip(service), client_port, service_port};
  f.reply = {ip(backend), ip(client), backend_port, client_port};
  return f;
}

const Flow kUdp = flow(FlowProtocol::kUdp, "10.244.1.10", 40000, "10.96.0.53", 53, "10.244.1.11", 8053);
const Flow kSctp = flow(FlowProtocol::kSctp, "10.244.1.10", 40000, "10.96.0.53", 3868, "10.244.1.11", 3868);
const Flow kTcp = flow(FlowProtocol::kTcp, "10.244.1.10", 40000, "10.96.0.53", 53, "10.244.1.11", 8053);
const Flow kUdp6 = flow(FlowProtocol::kUdp, "fd00::10", 40000, "fd00:96::53", 53, "fd00::11", 8053);

TEST(FakeConntrack, AddAssignsIdsAndListFiltersByFamilyAndProtocol) {
  FakeConntrack table;
  for (const Flow& f : {kUdp, kSctp, kTcp, kUdp6}) ASSERT_TRUE(table.add(f).ok());
  EXPECT_EQ(table.flows()[0].id, 1u);
  EXPECT_EQ(table.flows()[3].id, 4u);

  auto udp_sctp = table.list(IpFamily::kIPv4, {FlowProtocol::kUdp, FlowProtocol::kSctp});
  ASSERT_TRUE(udp_sctp.ok());
  ASSERT_EQ(udp_sctp->size(), 2u);
  EXPECT_EQ((*udp_sctp)[0].protocol, FlowProtocol::kUdp);
  EXPECT_EQ((*udp_sctp)[1].protocol, FlowProtocol::kSctp);
  auto v6 = table.list(IpFamily::kIPv6, {FlowProtocol::kUdp});
  ASSERT_TRUE(v6.ok());
  ASSERT_EQ(v6->size(), 1u);
  EXPECT_EQ((*v6)[0].original.dst, ip("fd00:96::53"));
  EXPECT_TRUE(table.list(IpFamily::kIPv4, {})->empty());
}

TEST(FakeConntrack, RefusesAnEntryWhoseOriginalOrReplyTupleIsTaken) {
  FakeConntrack table;
  ASSERT_TRUE(table.add(kUdp).ok());
  EXPECT_FALSE(table.add(kUdp).ok());
  // Another client port, but a reply tuple equal to the first entry's original tuple.
  Flow clash = kUdp;
  clash.original.src_port = 40001;
  clash.reply = kUdp.original;
  EXPECT_FALSE(table.add(clash).ok());
  // The same tuples in another zone, or with another protocol, are other entries.
  Flow zoned = kUdp;
  zoned.zone = 7;
  EXPECT_TRUE(table.add(zoned).ok());
  EXPECT_TRUE(table.add(kTcp).ok());
  Flow mixed = kUdp;
  mixed.original.src_port = 40002;
  mixed.reply.src = ip("fd00::11");
  EXPECT_FALSE(table.add(mixed).ok());
}

TEST(FakeConntrack, RemoveFindsByTupleHonoursIdsAndCountsOnlyWhatItDeleted) {
  FakeConntrack table;
  const Flow stored = table.add(kUdp).value();
  ASSERT_TRUE(table.add(kSctp).ok());
  ASSERT_TRUE(table.add(kTcp).ok());

  Flow other_id = stored;
  other_id.id = stored.id + 100;  // the entry was re-created since it was listed
  EXPECT_EQ(table.remove({other_id}).value(), 0u);
  EXPECT_TRUE(table.contains(kUdp));

  Flow by_tuple = kUdp;                                       // id 0: by tuple alone
  EXPECT_EQ(table.remove({by_tuple, by_tuple}).value(), 1u);  // the second is already gone
  EXPECT_FALSE(table.contains(kUdp));
  EXPECT_TRUE(table.contains(kSctp));
  EXPECT_TRUE(table.contains(kTcp));

  // The kernel's hash holds the reply tuple too.
  Flow reply_direction;
  reply_direction.protocol = FlowProtocol::kSctp;
  reply_direction.original = kSctp.reply;
  EXPECT_EQ(table.remove({reply_direction}).value(), 1u);
  EXPECT_FALSE(table.contains(kSctp));
}

TEST(FakeConntrack, InjectedFailuresChangeNothing) {
  FakeConntrack table;
  ASSERT_TRUE(table.add(kUdp).ok());
  table.fail_next_list("conntrack: listing udp flows: Operation not permitted");
  auto listed = table.list(IpFamily::kIPv4, {FlowProtocol::kUdp});
  ASSERT_FALSE(listed.ok());
  EXPECT_EQ(listed.error(), "conntrack: listing udp flows: Operation not permitted");
  EXPECT_TRUE(table.list(IpFamily::kIPv4, {FlowProtocol::kUdp}).ok());

  table.fail_next_remove("conntrack: socket closed");
  EXPECT_FALSE(table.remove({kUdp}).ok());
  EXPECT_TRUE(table.contains(kUdp));
  EXPECT_EQ(table.remove({kUdp}).value(), 1u);
  EXPECT_EQ(table.list_calls(), 2);
  EXPECT_EQ(table.remove_calls(), 2);
}

TEST(Flow, PrintsLikeConntrack) {
  Flow f = kUdp;
  EXPECT_EQ(to_string(f), "udp 10.244.1.10:40000 -> 10.96.0.53:53 reply 10.244.1.11:8053 -> 10.244.1.10:40000");
  f.zone = 3;
  f.id = 9;
  EXPECT_EQ(to_string(f),
            "udp 10.244.1.10:40000 -> 10.96.0.53:53 reply 10.244.1.11:8053 -> 10.244.1.10:40000, zone 3, id 9");
  EXPECT_EQ(to_string(kUdp6), "udp [fd00::10]:40000 -> [fd00:96::53]:53 reply [fd00::11]:8053 -> [fd00::10]:40000");
}

}  // namespace
}  // namespace kproxy::kernel
