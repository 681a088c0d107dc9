// The userspace SCTP proxy over IPv6 (and IPv4 beside it), driven directly, with real packets:
// a node namespace runs SctpProxy (raw IPv4 and IPv6 sockets, usrsctp AF_CONN) with one table
// per family, a pod behind it serves SCTP (kproxy-testpeer, usrsctp), and a client outside and
// a pod on the node associate through IPv6 and IPv4 Service addresses that LoopbackAddresses
// made local on the node's lo.
//
//   client  fd00:77::100/64, 192.168.77.100/24, MTU 1400 toward the node; routes the Service
//           ranges (fd00:96::/64, 2001:db8:113::/64, 10.96.0.0/16) via the node, none to pods
//   node    fd00:77::11/64, 192.168.77.11/24 (MTU 1400); pods on /128 and /32 routes (ptp veths,
//           fd00:10:244:1::1 and 10.244.1.1 on each host veth)
//   pod-a   fd00:10:244:1::10, 10.244.1.10: the endpoint (serves SCTP on both families)
//   pod-b   fd00:10:244:1::11: a client pod
//
// Namespaces are "kpt-sp6-<part>-<pid>", created and always deleted by the test.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "kproxy/proxier/snapshot.h"
#include "kproxy/sctp_userspace/addresses.h"
#include "kproxy/sctp_userspace/proxy.h"
#include "kproxy/sctp_userspace/table.h"
#include "netns.h"
#include "subprocess.h"

namespace kproxy::sctp_userspace {
namespace {

using testing::BackgroundProcess;
using testing::Netns;
using testing::RunResult;
using testing::ScopedNetnsEntry;

IpAddress ip(const std::string& text) { return *IpAddress::parse(text); }

std::string testpeer() {
  if (const char* env = std::getenv("KPROXY_TESTPEER"); env != nullptr && *env != '\0') return env;
  return KPROXY_TESTPEER;
}

// Runs a command in a namespace; fails the test when it does not exit 0.
bool step(const std::string& ns, const std::vector<std::string>& argv) {
  std::vector<std::string> full = {"ip", "netns", "exec", ns};
  full.insert(full.end(), argv.begin(), argv.end());
  const RunResult r = testing::run(full);
  EXPECT_EQ(r.exit_code, 0) << "in " << ns << ": " << ::testing::PrintToString(argv) << ": " << r.err;
  return r.exit_code == 0;
}

RunResult in_ns(const std::string& ns, const std::vector<std::string>& argv) {
  std::vector<std::string> full = {"ip", "netns", "exec", ns};
  full.insert(full.end(), argv.begin(), argv.end());
  return testing::run(full);
}

RunResult sctp_request(const std::string& ns, const std::string& to, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> argv = {testpeer(), "request", "--proto", "sctp", "--to", to, "--timeout-ms", "5000"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return in_ns(ns, argv);
}

// One counter of /proc/net/snmp6 in a namespace (Ip6FragCreates, ...).
long snmp6(const std::string& ns, const std::string& name) {
  std::istringstream in(in_ns(ns, {"cat", "/proc/net/snmp6"}).out);
  std::string key;
  long value = 0;
  while (in >> key >> value) {
    if (key == name) return value;
  }
  return -1;
}

// The dual-stack Service core/mme:s1ap (SCTP 3868, NodePort 30868) as one family's proxier
// sees it: that family's cluster IP and external IP, and that family's endpoints.
proxier::Snapshot mme_snapshot(IpFamily family, const std::vector<std::string>& endpoints) {
  const bool six = family == IpFamily::kIPv6;
  auto info = std::make_shared<proxier::ServicePortInfo>();
  info->name = proxier::ServicePortName{"core", "mme", "s1ap", model::Protocol::kSctp};
  info->cluster_ip = ip(six ? "fd00:96::20" : "10.96.0.20");
  info->external_ips = {ip(six ? "2001:db8:113::20" : "203.0.113.20")};
  info->port = 3868;
  info->node_port = 30868;
  for (const auto& e : endpoints) {
    proxier::Endpoint ep;
    ep.ip = ip(e);
    ep.port = 3868;
    ep.ready = ep.serving = true;
    ep.node_name = "node1";
    ep.is_local = true;
    info->endpoints.push_back(ep);
  }
  proxier::Snapshot s;
  s.family = family;
  s.service_ports[info->name] = info;
  return s;
}

TableOptions table_options(IpFamily family) {
  TableOptions o;
  o.node.name = "node1";
  if (family == IpFamily::kIPv6) {
    o.local_pod_cidr = *Cidr::parse("fd00:10:244:1::/64");
    o.node_ips = {ip("fd00:77::11")};
  } else {
    o.local_pod_cidr = *Cidr::parse("10.244.1.0/24");
    o.node_ips = {ip("192.168.77.11")};
  }
  return o;
}

std::shared_ptr<const ProxyTable> mme_table(IpFamily family, const std::vector<std::string>& endpoints) {
  return ProxyTable::build(mme_snapshot(family, endpoints), table_options(family));
}

class SctpProxy6Test : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::can_create_netns()) GTEST_SKIP() << "needs root and iproute2 (the netns tier)";
    for (const char* part : {"sp6-node", "sp6-client", "sp6-poda", "sp6-podb"}) Netns::remove_stale(part);
    node_ = std::make_unique<Netns>("sp6-node");
    client_ = std::make_unique<Netns>("sp6-client");
    pod_a_ = std::make_unique<Netns>("sp6-poda");
    pod_b_ = std::make_unique<Netns>("sp6-podb");
    ASSERT_TRUE(node_->ok() && client_->ok() && pod_a_->ok() && pod_b_->ok());
    const std::string node = node_->name(), client = client_->name();
    // No duplicate address detection: addresses usable at once.
    for (const auto* ns : {node_.get(), client_.get(), pod_a_.get(), pod_b_.get()}) {
      ASSERT_TRUE(step(ns->name(), {"sysctl", "-q", "-w", "net.ipv6.conf.all.accept_dad=0"}));
      ASSERT_TRUE(step(ns->name(), {"sysctl", "-q", "-w", "net.ipv6.conf.default.accept_dad=0"}));
    }
    ASSERT_TRUE(step(node, {"sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1"}));
    ASSERT_TRUE(step(node, {"ip", "link", "add", "eth0", "mtu", "1400", "type", "veth", "peer", "name", "eth0", "mtu",
                            "1400", "netns", client}));
    ASSERT_TRUE(step(node, {"ip", "addr", "add", "192.168.77.11/24", "dev", "eth0"}));
    ASSERT_TRUE(step(node, {"ip", "-6", "addr", "add", "fd00:77::11/64", "dev", "eth0", "nodad"}));
    ASSERT_TRUE(step(node, {"ip", "link", "set", "eth0", "up"}));
    ASSERT_TRUE(step(client, {"ip", "addr", "add", "192.168.77.100/24", "dev", "eth0"}));
    ASSERT_TRUE(step(client, {"ip", "-6", "addr", "add", "fd00:77::100/64", "dev", "eth0", "nodad"}));
    ASSERT_TRUE(step(client, {"ip", "link", "set", "eth0", "up"}));
    ASSERT_TRUE(step(client, {"ip", "route", "add", "10.96.0.0/16", "via", "192.168.77.11"}));
    ASSERT_TRUE(step(client, {"ip", "-6", "route", "add", "fd00:96::/64", "via", "fd00:77::11"}));
    ASSERT_TRUE(step(client, {"ip", "-6", "route", "add", "2001:db8:113::/64", "via", "fd00:77::11"}));
    add_pod(*pod_a_, "vp0", "fd00:10:244:1::10", "10.244.1.10");
    add_pod(*pod_b_, "vp1", "fd00:10:244:1::11", "10.244.1.11");
  }

  void add_pod(const Netns& pod, const std::string& host_veth, const std::string& ip6, const std::string& ip4) {
    const std::string node = node_->name(), ns = pod.name();
    ASSERT_TRUE(step(node, {"ip", "link", "add", host_veth, "type", "veth", "peer", "name", "eth0", "netns", ns}));
    ASSERT_TRUE(step(ns, {"ip", "addr", "add", ip4 + "/32", "dev", "eth0"}));
    ASSERT_TRUE(step(ns, {"ip", "-6", "addr", "add", ip6 + "/128", "dev", "eth0", "nodad"}));
    ASSERT_TRUE(step(ns, {"ip", "link", "set", "eth0", "up"}));
    ASSERT_TRUE(step(ns, {"ip", "route", "add", "10.244.1.1", "dev", "eth0", "scope", "link"}));
    ASSERT_TRUE(step(ns, {"ip", "route", "add", "default", "via", "10.244.1.1", "dev", "eth0"}));
    ASSERT_TRUE(step(ns, {"ip", "-6", "route", "add", "fd00:10:244:1::1", "dev", "eth0"}));
    ASSERT_TRUE(step(ns, {"ip", "-6", "route", "add", "default", "via", "fd00:10:244:1::1", "dev", "eth0"}));
    ASSERT_TRUE(step(node, {"ip", "addr", "add", "10.244.1.1/32", "dev", host_veth}));
    ASSERT_TRUE(step(node, {"ip", "-6", "addr", "add", "fd00:10:244:1::1/128", "dev", host_veth, "nodad"}));
    ASSERT_TRUE(step(node, {"ip", "link", "set", host_veth, "up"}));
    ASSERT_TRUE(step(node, {"ip", "route", "add", ip4 + "/32", "dev", host_veth}));
    ASSERT_TRUE(step(node, {"ip", "-6", "route", "add", ip6 + "/128", "dev", host_veth}));
  }

  // Declared first: deleted last (the proxy's thread and sockets live in the node namespace).
  std::unique_ptr<Netns> node_, client_, pod_a_, pod_b_;
};

// kproxy's IPv6 Service addresses on lo: per-family ensure leaves the other family alone, the
// operator's addresses are never touched, and the node's own traffic never takes one as source.
TEST_F(SctpProxy6Test, LoopbackAddressesManageEachFamilyOnItsOwn) {
  const std::string node = node_->name();
  ASSERT_TRUE(step(node, {"ip", "-6", "addr", "add", "fd00:99::1/128", "dev", "lo"}));  // the operator's
  ScopedNetnsEntry enter(node);
  ASSERT_TRUE(enter.ok()) << enter.error();
  LoopbackAddresses lo;
  ASSERT_TRUE(lo.ensure(IpFamily::kIPv4, {ip("10.96.0.20"), ip("fd00:96::99")}).ok());
  ASSERT_TRUE(lo.ensure(IpFamily::kIPv6, {ip("fd00:96::20"), ip("2001:db8:113::20"), ip("10.96.0.99")}).ok());
  EXPECT_EQ(*lo.list(), (std::set<IpAddress>{ip("10.96.0.20"), ip("fd00:96::20"), ip("2001:db8:113::20")}));
  // The kernel's view: /128 on lo, nodad, deprecated (never a source), only the local route.
  const std::string shown = in_ns(node, {"ip", "-6", "-o", "addr", "show", "dev", "lo"}).out;
  for (const std::string line_of : {"fd00:96::20/128", "2001:db8:113::20/128"}) {
    const auto at = shown.find(line_of);
    ASSERT_NE(at, std::string::npos) << shown;
    const std::string line = shown.substr(at, shown.find('\n', at) - at);
    EXPECT_NE(line.find("nodad"), std::string::npos) << line;
    EXPECT_NE(line.find("deprecated"), std::string::npos) << line;
    EXPECT_NE(line.find("noprefixroute"), std::string::npos) << line;
  }
  EXPECT_EQ(in_ns(node, {"ip", "-6", "route", "show", "table", "main", "dev", "lo"}).out.find("fd00:96::20"),
            std::string::npos);
  // Source selection: toward a link with no global address of its own, longest-prefix matching
  // alone would pick 2001:db8:113::20; deprecated, it is passed over.
  ASSERT_TRUE(step(node, {"ip", "link", "add", "sp6x", "type", "veth", "peer", "name", "sp6y"}));
  ASSERT_TRUE(step(node, {"ip", "link", "set", "sp6x", "up"}));
  ASSERT_TRUE(step(node, {"ip", "link", "set", "sp6y", "up"}));
  ASSERT_TRUE(step(node, {"ip", "-6", "route", "add", "2001:db8:200::/64", "dev", "sp6x"}));
  const std::string route = in_ns(node, {"ip", "-6", "route", "get", "2001:db8:200::1"}).out;
  EXPECT_EQ(route.find("2001:db8:113::20"), std::string::npos) << route;
  EXPECT_EQ(route.find("fd00:96::20"), std::string::npos) << route;

  // One family at a time: the other's stay.
  ASSERT_TRUE(lo.ensure(IpFamily::kIPv6, {ip("fd00:96::20")}).ok());
  EXPECT_EQ(*lo.list(), (std::set<IpAddress>{ip("10.96.0.20"), ip("fd00:96::20")}));
  ASSERT_TRUE(lo.ensure(IpFamily::kIPv4, {}).ok());
  EXPECT_EQ(*lo.list(), (std::set<IpAddress>{ip("fd00:96::20")}));
  ASSERT_TRUE(lo.ensure(IpFamily::kIPv4, {ip("10.96.0.21")}).ok());
  // Both at once (--cleanup, a restart without the mode): all of kproxy's go, nothing else.
  ASSERT_TRUE(lo.ensure({}).ok());
  EXPECT_TRUE(lo.list()->empty());
  const std::string left = in_ns(node, {"ip", "-6", "-o", "addr", "show", "dev", "lo"}).out;
  EXPECT_NE(left.find("fd00:99::1/128"), std::string::npos) << left;
  EXPECT_NE(left.find("::1/128"), std::string::npos) << left;
}

// Real associations over IPv6 (and IPv4 at the same time) through the proxy.
TEST_F(SctpProxy6Test, Ipv6AssociationsThroughTheProxyWithBothFamiliesTables) {
  const std::string node = node_->name(), client = client_->name();
  BackgroundProcess server({testpeer(), "serve", "--name", "pod-a", "--sctp", "3868"}, pod_a_->name());
  ASSERT_TRUE(server.wait_for_line("ready", std::chrono::seconds(5))) << server.describe();

  LoopbackAddresses lo;
  std::unique_ptr<SctpProxy> proxy;
  {
    ScopedNetnsEntry enter(node);
    ASSERT_TRUE(enter.ok()) << enter.error();
    auto started = SctpProxy::start(ProxyOptions{});
    ASSERT_TRUE(started.ok()) << started.error();
    proxy = std::move(*started);
  }
  // What the daemon does after each family's sync: that family's addresses, that family's table.
  auto sync = [&](IpFamily family, std::shared_ptr<const ProxyTable> table) {
    ScopedNetnsEntry enter(node);
    ASSERT_TRUE(enter.ok()) << enter.error();
    ASSERT_TRUE(lo.ensure(family, table->service_addresses()).ok());
    proxy->update(family, std::move(table));
  };
  sync(IpFamily::kIPv4, mme_table(IpFamily::kIPv4, {"10.244.1.10"}));
  sync(IpFamily::kIPv6, mme_table(IpFamily::kIPv6, {"fd00:10:244:1::10"}));
  const long fragments_before = snmp6(node, "Ip6FragCreates");
  ASSERT_GE(fragments_before, 0);

  // ClusterIP from outside, with messages of 1 B to 64 KiB on 16 streams (PPIDs, unordered)
  // coming back identical: the endpoint sees the node's IPv6 address on the pod link.
  RunResult r = sctp_request(client, "[fd00:96::20]:3868", {"--echo-check", "1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("pod-a [fd00:10:244:1::1]:", 0), 0u) << r.out;
  // The external IP and the NodePort on the node's IPv6 address.
  r = sctp_request(client, "[2001:db8:113::20]:3868");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("pod-a [fd00:10:244:1::1]:", 0), 0u) << r.out;
  r = sctp_request(client, "[fd00:77::11]:30868");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // From a pod of the node.
  r = sctp_request(pod_b_->name(), "[fd00:96::20]:3868");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("pod-a [fd00:10:244:1::1]:", 0), 0u) << r.out;
  // The same Service's IPv4 frontend, served from the IPv4 table beside it. (The echo check
  // from the pod: the client's own usrsctp cannot send full IPv4 packets over its 1400-byte link,
  // proxy or not: it sends 1500-byte packets with DF set, which its kernel refuses.)
  r = sctp_request(client, "10.96.0.20:3868");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("pod-a 10.244.1.1:", 0), 0u) << r.out;
  r = sctp_request(pod_b_->name(), "10.96.0.20:3868", {"--echo-check", "1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("pod-a 10.244.1.1:", 0), 0u) << r.out;
  // Full packets toward the client fit its 1400-byte link: route MTU - 40 - 12 over IPv6.
  EXPECT_EQ(snmp6(node, "Ip6FragCreates"), fragments_before) << "the proxy's IPv6 packets were fragmented";
  const ProxyStats stats = proxy->stats();
  EXPECT_GE(stats.associations_total, 5u);
  EXPECT_EQ(stats.bad_checksums, 0u);

  // An IPv6 association held open is aborted when its endpoint leaves the IPv6 table; new IPv6
  // associations are refused (no endpoints), and the IPv4 table, not handed over again, stays.
  BackgroundProcess held({testpeer(), "request", "--proto", "sctp", "--to", "[fd00:96::20]:3868", "--hold-ms", "8000",
                          "--timeout-ms", "10000"},
                         client);
  ASSERT_TRUE(held.wait_for([](const auto& lines) { return !lines.empty(); }, std::chrono::seconds(5)))
      << held.describe();
  sync(IpFamily::kIPv6, mme_table(IpFamily::kIPv6, {}));
  for (int i = 0; i < 40 && held.running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(held.running()) << "the held IPv6 association was not aborted";
  EXPECT_EQ(held.stop(), 2) << held.describe();
  r = sctp_request(client, "[fd00:96::20]:3868");
  EXPECT_EQ(r.exit_code, 2) << "a Service without IPv6 endpoints is refused (ABORT): " << r.out << r.err;
  r = sctp_request(client, "10.96.0.20:3868");
  EXPECT_EQ(r.exit_code, 0) << r.err;

  proxy.reset();
  ScopedNetnsEntry enter(node);
  ASSERT_TRUE(enter.ok()) << enter.error();
  EXPECT_TRUE(lo.ensure({}).ok());
  EXPECT_TRUE(lo.list()->empty());
}

}  // namespace
}  // namespace kproxy::sctp_userspace
