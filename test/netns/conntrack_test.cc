// Conntrack cleanup on the real kernel: real UDP, TCP and SCTP (usrsctp) flows through
// hand-written DNAT rules on node 1 of the namespace cluster, then the netlink ConntrackTable
// and cleanup_stale_flows with snapshots, checked with conntrack(8) inside node 1.
//
// The table is opened by a thread that entered node 1's namespace (its netlink socket stays
// bound there), so nothing here touches the root namespace's conntrack table.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <memory>
#include <sstream>
#include <thread>

#include "cluster.h"
#include "kproxy/kernel/conntrack.h"
#include "kproxy/kernel/host.h"
#include "kproxy/proxier/conntrack_cleanup.h"

namespace kproxy::testing {
namespace {

using kernel::Flow;
using kernel::FlowProtocol;
using proxier::Endpoint;
using proxier::ServicePortInfo;
using proxier::Snapshot;

constexpr const char* kTag = "ct";
constexpr const char* kServiceIp = "10.96.0.53";  // "dns" (UDP 53, NodePort 30053), "dns-tcp", "diameter" (SCTP 3868)
constexpr const char* kAltIp = "10.96.0.54";      // "alt": no endpoints, then some
constexpr const char* kDeletedIp = "10.96.0.60";  // "old-dns": deleted
constexpr int kNodePort = 30053;
constexpr int kPeerPort = 8053;
constexpr int kSctpPort = 3868;

IpAddress ip(const std::string& text) { return IpAddress::parse(text).value(); }

// The table and the local addresses of a namespace, obtained on a thread that entered it.
// If entering fails, nothing is opened (the thread would otherwise be in the root namespace).
struct InNamespace {
  std::unique_ptr<kernel::ConntrackTable> table;
  std::vector<IpAddress> local_addresses;
  std::string error;
};

InNamespace open_in(const std::string& ns) {
  InNamespace out;
  std::thread([&] {
    const std::string path = "/run/netns/" + ns;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      out.error = "open " + path + ": " + std::strerror(errno);
      return;
    }
    const int rc = ::setns(fd, CLONE_NEWNET);
    const int err = errno;
    ::close(fd);
    if (rc != 0) {
      out.error = "setns " + path + ": " + std::strerror(err);
      return;
    }
    auto table = kernel::open_netlink_conntrack_table();
    if (!table.ok()) {
      out.error = table.error();
      return;
    }
    out.table = std::move(*table);
    out.local_addresses = kernel::local_addresses();
    // The thread ends here, still in the test namespace; the socket stays bound to it.
  }).join();
  return out;
}

Endpoint endpoint(const Pod& pod, int port) {
  Endpoint e;
  e.ip = ip(pod.ip);
  e.port = static_cast<std::uint16_t>(port);
  e.ready = e.serving = true;
  return e;
}

std::shared_ptr<const ServicePortInfo> port_info(const std::string& name, model::Protocol protocol,
                                                 const std::string& cluster_ip, int port, int node_port,
                                                 std::vector<Endpoint> endpoints) {
  auto info = std::make_shared<ServicePortInfo>();
  info->name = {"default", name, "", protocol};
  info->cluster_ip = ip(cluster_ip);
  info->port = static_cast<std::uint16_t>(port);
  info->node_port = static_cast<std::uint16_t>(node_port);
  info->endpoints = std::move(endpoints);
  return info;
}

void put(Snapshot& s, std::shared_ptr<const ServicePortInfo> info) { s.service_ports[info->name] = std::move(info); }

class ConntrackNetnsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!can_create_netns()) GTEST_SKIP() << "needs root and iproute2 (netns tier)";
    if (run({"conntrack", "--version"}).exit_code != 0) GTEST_SKIP() << "needs conntrack(8)";
    cluster_ = std::make_unique<TestCluster>(kTag);
    ASSERT_TRUE(cluster_->ok()) << cluster_->error();
    client_ = &cluster_->add_pod(1, "client");
    old_ = &cluster_->add_pod(1, "old");
    new_ = &cluster_->add_pod(1, "new");
    ASSERT_TRUE(cluster_->ok()) << cluster_->error();
    const PeerPorts ports{{kPeerPort}, {kPeerPort}, {kSctpPort}};
    ASSERT_NE(cluster_->start_peer(*old_, ports), nullptr);
    ASSERT_NE(cluster_->start_peer(*new_, ports), nullptr);
    // Longer timeouts in node 1 only, so that no entry expires while the test looks at it
    // (UDP 30 s; SCTP CLOSED 10 s, which a finished association is in).
    for (const char* sysctl :
         {"net.netfilter.nf_conntrack_udp_timeout=600", "net.netfilter.nf_conntrack_udp_timeout_stream=600",
          "net.netfilter.nf_conntrack_sctp_timeout_closed=600",
          "net.netfilter.nf_conntrack_sctp_timeout_shutdown_sent=600",
          "net.netfilter.nf_conntrack_sctp_timeout_shutdown_recd=600",
          "net.netfilter.nf_conntrack_sctp_timeout_shutdown_ack_sent=600"}) {
      TestCluster::exec_ok(node(), {"sysctl", "-q", "-w", sysctl});
    }
  }

  std::string node() const { return cluster_->node_ns(1); }

  void dnat(const std::string& op, const std::string& dst, const char* proto, int port, const Pod& to, int to_port) {
    TestCluster::exec_ok(
        node(), {"iptables", "-w", "-t", "nat", op, "PREROUTING", "-d", dst, "-p", proto, "-m", proto, "--dport",
                 std::to_string(port), "-j", "DNAT", "--to-destination", to.ip + ":" + std::to_string(to_port)});
  }

  void expect_answer(Proto proto, const std::string& target, const Pod& from_server) {
    const RequestResult r = TestCluster::request(client_->ns, proto, target);
    ASSERT_EQ(r.exit_code, 0) << proto_name(proto) << " to " << target << ": " << r.err;
    ASSERT_EQ(r.lines.size(), 1u);
    EXPECT_EQ(r.lines[0].rfind(from_server.name + " ", 0), 0u) << r.lines[0];
  }

  // conntrack -L lines of one protocol in node 1.
  std::string conntrack_list(const char* proto) {
    return TestCluster::exec_ok(node(), {"conntrack", "-L", "-p", proto}).out;
  }
  // Whether conntrack -L shows a flow from the client to dst:dport answered by reply_src.
  bool has_flow(const char* proto, const std::string& dst, int dport, const std::string& reply_src) {
    std::istringstream lines(conntrack_list(proto));
    const std::string original = "src=" + client_->ip + " dst=" + dst + " ";
    const std::string port = "dport=" + std::to_string(dport) + " ";
    const std::string reply = "src=" + reply_src + " dst=";
    for (std::string line; std::getline(lines, line);) {
      const auto o = line.find(original);
      if (o == std::string::npos) continue;
      const auto p = line.find(port, o);
      if (p != std::string::npos && line.find(reply, p) != std::string::npos) return true;
    }
    return false;
  }

  std::unique_ptr<TestCluster> cluster_;
  Pod* client_ = nullptr;
  Pod* old_ = nullptr;
  Pod* new_ = nullptr;
};

TEST_F(ConntrackNetnsTest, StaleUdpAndSctpFlowsGoTcpAndValidFlowsStayAndARestartDeletesNothing) {
  const std::string service = kServiceIp;
  const std::string node_ip = cluster_->node_ip(1);

  // Phase 1: every Service sends to "old".
  dnat("-A", service, "udp", 53, *old_, kPeerPort);
  dnat("-A", service, "tcp", 53, *old_, kPeerPort);
  dnat("-A", service, "sctp", kSctpPort, *old_, kSctpPort);
  dnat("-A", node_ip, "udp", kNodePort, *old_, kPeerPort);
  dnat("-A", kDeletedIp, "udp", 53, *old_, kPeerPort);
  // No rule for "alt" yet: a UDP flow that is not DNATed (node 1 routes it to the outside,
  // where it is dropped: no answer). Sent after the first NAT rule, because the kernel only
  // tracks connections in a namespace once some rule there needs it.
  EXPECT_EQ(TestCluster::request(client_->ns, Proto::kUdp, std::string(kAltIp) + ":53", 300).exit_code, 3);
  expect_answer(Proto::kUdp, service + ":53", *old_);
  expect_answer(Proto::kTcp, service + ":53", *old_);
  expect_answer(Proto::kSctp, service + ":" + std::to_string(kSctpPort), *old_);
  expect_answer(Proto::kUdp, node_ip + ":" + std::to_string(kNodePort), *old_);
  expect_answer(Proto::kUdp, std::string(kDeletedIp) + ":53", *old_);
  ASSERT_FALSE(HasFailure());

  Snapshot previous;
  put(previous, port_info("dns", model::Protocol::kUdp, service, 53, kNodePort, {endpoint(*old_, kPeerPort)}));
  put(previous, port_info("dns-tcp", model::Protocol::kTcp, service, 53, 0, {endpoint(*old_, kPeerPort)}));
  put(previous, port_info("diameter", model::Protocol::kSctp, service, kSctpPort, 0, {endpoint(*old_, kSctpPort)}));
  put(previous, port_info("alt", model::Protocol::kUdp, kAltIp, 53, 0, {}));
  put(previous, port_info("old-dns", model::Protocol::kUdp, kDeletedIp, 53, 0, {endpoint(*old_, kPeerPort)}));

  // Phase 2: "old" is removed from every Service, "alt" gets "new", "old-dns" is deleted.
  dnat("-D", service, "udp", 53, *old_, kPeerPort);
  dnat("-D", service, "tcp", 53, *old_, kPeerPort);
  dnat("-D", service, "sctp", kSctpPort, *old_, kSctpPort);
  dnat("-D", node_ip, "udp", kNodePort, *old_, kPeerPort);
  dnat("-D", kDeletedIp, "udp", 53, *old_, kPeerPort);
  dnat("-A", service, "udp", 53, *new_, kPeerPort);
  dnat("-A", service, "tcp", 53, *new_, kPeerPort);
  dnat("-A", service, "sctp", kSctpPort, *new_, kSctpPort);
  dnat("-A", node_ip, "udp", kNodePort, *new_, kPeerPort);
  dnat("-A", kAltIp, "udp", 53, *new_, kPeerPort);
  expect_answer(Proto::kUdp, service + ":53", *new_);
  expect_answer(Proto::kSctp, service + ":" + std::to_string(kSctpPort), *new_);
  ASSERT_FALSE(HasFailure());

  Snapshot current;
  put(current, port_info("dns", model::Protocol::kUdp, service, 53, kNodePort, {endpoint(*new_, kPeerPort)}));
  put(current, port_info("dns-tcp", model::Protocol::kTcp, service, 53, 0, {endpoint(*new_, kPeerPort)}));
  put(current, port_info("diameter", model::Protocol::kSctp, service, kSctpPort, 0, {endpoint(*new_, kSctpPort)}));
  put(current, port_info("alt", model::Protocol::kUdp, kAltIp, 53, 0, {endpoint(*new_, kPeerPort)}));

  const std::string sctp_before = conntrack_list("sctp");
  std::cout << "node 1 conntrack before the cleanup:\n"
            << conntrack_list("udp") << conntrack_list("tcp") << sctp_before;
  ASSERT_TRUE(has_flow("udp", service, 53, old_->ip)) << conntrack_list("udp");
  ASSERT_TRUE(has_flow("udp", service, 53, new_->ip));
  ASSERT_TRUE(has_flow("udp", kAltIp, 53, kAltIp));
  ASSERT_TRUE(has_flow("udp", node_ip, kNodePort, old_->ip));
  ASSERT_TRUE(has_flow("udp", kDeletedIp, 53, old_->ip));
  ASSERT_TRUE(has_flow("tcp", service, 53, old_->ip)) << conntrack_list("tcp");
  ASSERT_TRUE(has_flow("sctp", service, kSctpPort, old_->ip)) << sctp_before;
  ASSERT_TRUE(has_flow("sctp", service, kSctpPort, new_->ip)) << sctp_before;

  InNamespace ns = open_in(node());
  ASSERT_TRUE(ns.table) << ns.error;
  EXPECT_NE(std::find(ns.local_addresses.begin(), ns.local_addresses.end(), ip(node_ip)), ns.local_addresses.end());

  auto deleted = proxier::cleanup_stale_flows(*ns.table, &previous, current, ns.local_addresses);
  ASSERT_TRUE(deleted.ok()) << deleted.error();
  EXPECT_EQ(*deleted, 5u);
  std::cout << "node 1 conntrack after the cleanup:\n"
            << conntrack_list("udp") << conntrack_list("tcp") << conntrack_list("sctp");

  EXPECT_FALSE(has_flow("udp", service, 53, old_->ip)) << "UDP flow to the removed endpoint";
  EXPECT_FALSE(has_flow("udp", node_ip, kNodePort, old_->ip)) << "NodePort flow to the removed endpoint";
  EXPECT_FALSE(has_flow("udp", kAltIp, 53, kAltIp)) << "not-DNATed flow of a Service that now has endpoints";
  EXPECT_FALSE(has_flow("udp", kDeletedIp, 53, old_->ip)) << "flow of a deleted Service";
  EXPECT_FALSE(has_flow("sctp", service, kSctpPort, old_->ip)) << "SCTP flow to the removed endpoint";
  EXPECT_TRUE(has_flow("udp", service, 53, new_->ip)) << "UDP flow to a serving endpoint";
  EXPECT_TRUE(has_flow("sctp", service, kSctpPort, new_->ip)) << "SCTP flow to a serving endpoint";
  EXPECT_TRUE(has_flow("tcp", service, 53, old_->ip)) << "TCP flows are left to finish";

  // A restart: no previous snapshot, everything left is valid.
  InNamespace restarted = open_in(node());
  ASSERT_TRUE(restarted.table) << restarted.error;
  auto after_restart = proxier::cleanup_stale_flows(*restarted.table, nullptr, current, restarted.local_addresses);
  ASSERT_TRUE(after_restart.ok()) << after_restart.error();
  EXPECT_EQ(*after_restart, 0u);
  EXPECT_TRUE(has_flow("udp", service, 53, new_->ip));
  EXPECT_TRUE(has_flow("sctp", service, kSctpPort, new_->ip));
  EXPECT_TRUE(has_flow("tcp", service, 53, old_->ip));

  // The DNATed traffic still flows to the new backend.
  expect_answer(Proto::kUdp, service + ":53", *new_);
  expect_answer(Proto::kSctp, service + ":" + std::to_string(kSctpPort), *new_);
}

TEST_F(ConntrackNetnsTest, ListingAgreesWithConntrackAndDeletesHonourIds) {
  dnat("-A", kServiceIp, "udp", 53, *old_, kPeerPort);
  dnat("-A", kServiceIp, "sctp", kSctpPort, *old_, kSctpPort);
  dnat("-A", kServiceIp, "tcp", 53, *old_, kPeerPort);
  expect_answer(Proto::kUdp, std::string(kServiceIp) + ":53", *old_);
  expect_answer(Proto::kSctp, std::string(kServiceIp) + ":" + std::to_string(kSctpPort), *old_);
  expect_answer(Proto::kTcp, std::string(kServiceIp) + ":53", *old_);
  ASSERT_FALSE(HasFailure());

  InNamespace ns = open_in(node());
  ASSERT_TRUE(ns.table) << ns.error;
  auto udp = ns.table->list(IpFamily::kIPv4, {FlowProtocol::kUdp});
  ASSERT_TRUE(udp.ok()) << udp.error();
  auto all = ns.table->list(IpFamily::kIPv4, {FlowProtocol::kUdp, FlowProtocol::kSctp, FlowProtocol::kTcp});
  ASSERT_TRUE(all.ok()) << all.error();
  EXPECT_TRUE(ns.table->list(IpFamily::kIPv6, {FlowProtocol::kUdp})->empty());

  auto find = [&](const std::vector<Flow>& flows, FlowProtocol p) -> const Flow* {
    for (const Flow& f : flows) {
      if (f.protocol == p && f.original.dst == ip(kServiceIp) && f.original.src == ip(client_->ip)) return &f;
    }
    return nullptr;
  };
  for (const Flow& f : *udp) EXPECT_EQ(f.protocol, FlowProtocol::kUdp) << kernel::to_string(f);
  const Flow* u = find(*udp, FlowProtocol::kUdp);
  ASSERT_NE(u, nullptr);
  EXPECT_EQ(u->original.dst_port, 53);
  EXPECT_EQ(u->reply.src, ip(old_->ip));
  EXPECT_EQ(u->reply.src_port, kPeerPort);
  EXPECT_EQ(u->reply.dst, ip(client_->ip));
  EXPECT_EQ(u->reply.dst_port, u->original.src_port);
  EXPECT_NE(u->id, 0u);
  const Flow* s = find(*all, FlowProtocol::kSctp);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->original.dst_port, kSctpPort);
  EXPECT_EQ(s->reply.src, ip(old_->ip));
  EXPECT_EQ(s->reply.src_port, kSctpPort);
  ASSERT_NE(find(*all, FlowProtocol::kTcp), nullptr);

  // Every entry conntrack(8) shows, the table lists (and no more).
  std::size_t shown = 0;
  for (const char* proto : {"udp", "sctp", "tcp"}) {
    std::istringstream lines(conntrack_list(proto));
    for (std::string line; std::getline(lines, line);) shown += line.empty() ? 0 : 1;
  }
  EXPECT_EQ(all->size(), shown);

  // An id that is not the entry's (it was re-created since it was listed): not deleted.
  Flow recreated = *u;
  recreated.id = u->id + 1000;
  EXPECT_EQ(ns.table->remove({recreated}).value(), 0u);
  EXPECT_TRUE(has_flow("udp", kServiceIp, 53, old_->ip));
  // The right id deletes it; a second delete finds nothing and is no error.
  EXPECT_EQ(ns.table->remove({*u, *s}).value(), 2u);
  EXPECT_EQ(ns.table->remove({*u}).value(), 0u);
  EXPECT_FALSE(has_flow("udp", kServiceIp, 53, old_->ip));
  EXPECT_FALSE(has_flow("sctp", kServiceIp, kSctpPort, old_->ip));
  EXPECT_TRUE(has_flow("tcp", kServiceIp, 53, old_->ip));
}

}  // namespace
}  // namespace kproxy::testing
