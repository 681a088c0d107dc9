// A throwaway two-node cluster in network namespaces, for integration tests with real
// packets. Every link is dual-stack (IPv4 and IPv6); a test uses the family it needs:
//
//   switch   a Linux bridge br0 for the node network 192.168.77.0/24 and fd00:77::/64
//   node 1   192.168.77.11 and fd00:77::11, pods in 10.244.1.0/24 and fd00:10:244:1::/64
//            (kproxy runs here in the integration tests)
//   node 2   192.168.77.12 and fd00:77::12, pods in 10.244.2.0/24 and fd00:10:244:2::/64
//   client   192.168.77.100 and fd00:77::100, outside the cluster: routes for 203.0.113.0/24
//            and 2001:db8:113::/64 (externalIPs, load-balancer IPs) via node 1, none for the
//            pod networks
//
// IPv6 mirrors IPv4 address for address (a pod's IPv6 address ends in the same host number as
// its IPv4 one). Duplicate address detection is off in every namespace, so addresses are usable
// at once; nodes forward IPv6, and the client accepts no redirects.
//
// Pods are wired ptp style, with no pod bridge (so nothing depends on br_netfilter): each pod
// is a namespace whose eth0 (10.244.N.x/32, default route via 10.244.N.1 on-link) is a veth
// whose peer stays in the node's namespace (10.244.N.1/32 on every host veth, a /32 route per
// pod). Nodes forward (ip_forward=1), route the other node's pod range via its address and
// have a default route via the client (the "outside world"; it forwards nothing), so that a
// node can send to external addresses that its own OUTPUT DNAT rewrites.
// No proxy ARP is needed: the gateway address is a real local address of the host veth.
// Nodes send no ICMP redirects (the client and node 2 share the node subnet; a redirect would
// make the client bypass node 1's NAT); rp_filter is off everywhere.
//
// Namespaces are named "kpt-<tag>-<part>-<pid>"; the constructor removes leftovers of a
// crashed run of the same tag, the destructor stops every process started through the
// cluster and deletes every namespace, also after a constructor that failed halfway.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "netns.h"
#include "subprocess.h"

namespace kproxy::testing {

enum class Proto { kTcp, kUdp, kSctp };
const char* proto_name(Proto p);  // "tcp", "udp", "sctp" (as iptables and the peer spell them)

// The kproxy-testpeer binary: $KPROXY_TESTPEER if set, else the one built with the tests.
std::string testpeer_binary();

struct Pod {
  std::string name;       // also what its peer answers with
  int node = 0;           // 1 or 2
  std::string ns;         // its namespace
  std::string ip;         // 10.244.<node>.<n>
  std::string ip6;        // fd00:10:244:<node>::<n>
  std::string host_veth;  // the veth's end in the node's namespace
};

struct PeerPorts {
  std::vector<int> tcp, udp, sctp;
};

struct RequestResult {
  int exit_code = -1;  // kproxy-testpeer's: 0 answered, 2 refused, 3 timeout, 1 other
  std::vector<std::string> lines;  // the replies, "<server name> <source ip>:<port>"
  std::string err;                 // its stderr
};

class TestCluster {
 public:
  static constexpr const char* kClusterCidr = "10.244.0.0/16";
  static constexpr const char* kExternalCidr = "203.0.113.0/24";
  static constexpr const char* kClusterCidr6 = "fd00:10:244::/48";
  static constexpr const char* kExternalCidr6 = "2001:db8:113::/64";

  explicit TestCluster(const std::string& tag);
  ~TestCluster();
  TestCluster(const TestCluster&) = delete;
  TestCluster& operator=(const TestCluster&) = delete;

  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }  // the first step that failed

  std::string node_ns(int node) const;
  std::string node_ip(int node) const;    // 192.168.77.1<node>
  std::string pod_cidr(int node) const;   // 10.244.<node>.0/24
  std::string pod_gateway(int node) const;  // 10.244.<node>.1
  std::string client_ns() const;
  std::string client_ip() const;  // 192.168.77.100
  std::string node_ip6(int node) const;      // fd00:77::1<node>
  std::string pod_cidr6(int node) const;     // fd00:10:244:<node>::/64
  std::string pod_gateway6(int node) const;  // fd00:10:244:<node>::1
  std::string client_ip6() const;            // fd00:77::100
  std::string switch_ns() const;

  // Creates a pod namespace on node 1 or 2. On failure ok() turns false and error() says why;
  // the returned reference stays valid for the cluster's lifetime.
  Pod& add_pod(int node, const std::string& name);
  const std::vector<std::unique_ptr<Pod>>& pods() const { return pods_; }

  // net.ipv4.conf.all.route_localnet=1 in a node's namespace (for tests that need it).
  bool enable_route_localnet(int node);

  // Every process has its own usrsctp stack, and each one's raw socket sees every SCTP packet
  // of its namespace: a packet for another process's association is "out of the blue" to it
  // and it answers with an ABORT (T bit set, tag reflected) that kills that association. This
  // drops such reflected ABORTs and SHUTDOWN COMPLETEs leaving `ns` (filter OUTPUT), so an SCTP
  // server and SCTP clients can share a namespace; an ABORT for an INIT to a closed port
  // (T bit clear) still goes out. start_peer() does it in pods that serve SCTP.
  bool isolate_sctp_stacks(const std::string& ns);

  // Commands inside any namespace (ip netns exec); exec_ok fails the test on a non-zero exit.
  static RunResult exec(const std::string& ns, const std::vector<std::string>& argv, const std::string& input = "");
  static RunResult exec_ok(const std::string& ns, const std::vector<std::string>& argv, const std::string& input = "");

  // Starts a background process in `ns`; the cluster stops it (before deleting namespaces).
  BackgroundProcess& start(const std::string& ns, const std::vector<std::string>& argv);

  // Runs "kproxy-testpeer serve --name <pod> ..." in the pod and waits (5 s) for "ready".
  // Returns nullptr, after failing the test with the peer's stderr, if it does not come up.
  BackgroundProcess* start_peer(const Pod& pod, const PeerPorts& ports);

  // "kproxy-testpeer request" from `ns` to "ip:port"; `extra` is appended to its arguments
  // (e.g. {"--echo-check", "1"}).
  static RequestResult request(const std::string& ns, Proto proto, const std::string& ip_port, int timeout_ms = 2000,
                               int count = 1, const std::vector<std::string>& extra = {});

 private:
  bool step(const std::string& ns, const std::vector<std::string>& argv);
  bool attach_to_switch(Netns& member, const std::string& port, const std::string& cidr, const std::string& cidr6);

  std::string tag_;
  bool ok_ = true;
  std::string error_;
  std::unique_ptr<Netns> switch_, node1_, node2_, client_;
  std::vector<std::unique_ptr<Netns>> pod_ns_;
  std::vector<std::unique_ptr<Pod>> pods_;
  int next_host_[3] = {0, 10, 10};
  std::vector<std::unique_ptr<BackgroundProcess>> processes_;
};

}  // namespace kproxy::testing
