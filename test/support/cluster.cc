#include "cluster.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <sstream>

namespace kproxy::testing {

const char* proto_name(Proto p) {
  switch (p) {
    case Proto::kTcp:
      return "tcp";
    case Proto::kUdp:
      return "udp";
    case Proto::kSctp:
      return "sctp";
  }
  return "?";
}

std::string testpeer_binary() {
  if (const char* env = std::getenv("KPROXY_TESTPEER"); env != nullptr && *env != '\0') return env;
  return KPROXY_TESTPEER;
}

namespace {

// Sysctls every node namespace gets before its interfaces exist (so "default" applies too).
const std::vector<std::string> kNodeSysctls = {
    "net.ipv4.ip_forward=1",
    "net.ipv4.conf.all.rp_filter=0",
    "net.ipv4.conf.default.rp_filter=0",
    "net.ipv4.conf.all.send_redirects=0",
    "net.ipv4.conf.default.send_redirects=0",
    "net.ipv6.conf.all.forwarding=1",
};

// Every namespace: no duplicate address detection (addresses usable at once, set before any
// interface exists so that "default" covers them).
const std::vector<std::string> kNoDad = {
    "net.ipv6.conf.all.accept_dad=0",
    "net.ipv6.conf.default.accept_dad=0",
};

}  // namespace

TestCluster::TestCluster(const std::string& tag) : tag_(tag) {
  Netns::remove_stale(tag);
  switch_ = std::make_unique<Netns>(tag + "-sw");
  node1_ = std::make_unique<Netns>(tag + "-n1");
  node2_ = std::make_unique<Netns>(tag + "-n2");
  client_ = std::make_unique<Netns>(tag + "-cl");
  for (const auto* ns : {switch_.get(), node1_.get(), node2_.get(), client_.get()}) {
    if (!ns->ok()) {
      ok_ = false;
      error_ = "could not create namespace " + ns->name();
      return;
    }
  }
  for (const auto* ns : {switch_.get(), node1_.get(), node2_.get(), client_.get()}) {
    for (const auto& s : kNoDad) {
      if (!step(ns->name(), {"sysctl", "-q", "-w", s})) return;
    }
  }
  if (!step(switch_ns(), {"ip", "link", "add", "br0", "type", "bridge"}) ||
      !step(switch_ns(), {"ip", "link", "set", "br0", "up"})) {
    return;
  }
  for (int node : {1, 2}) {
    for (const auto& s : kNodeSysctls) {
      if (!step(node_ns(node), {"sysctl", "-q", "-w", s})) return;
    }
  }
  for (const char* s : {"net.ipv4.conf.all.accept_redirects=0", "net.ipv4.conf.default.accept_redirects=0",
                        "net.ipv6.conf.all.accept_redirects=0", "net.ipv6.conf.default.accept_redirects=0"}) {
    if (!step(client_ns(), {"sysctl", "-q", "-w", s})) return;
  }
  if (!attach_to_switch(*node1_, "n1", node_ip(1) + "/24", node_ip6(1) + "/64") ||
      !attach_to_switch(*node2_, "n2", node_ip(2) + "/24", node_ip6(2) + "/64") ||
      !attach_to_switch(*client_, "cl", client_ip() + "/24", client_ip6() + "/64")) {
    return;
  }
  if (!step(node_ns(1), {"ip", "route", "add", pod_cidr(2), "via", node_ip(2)}) ||
      !step(node_ns(2), {"ip", "route", "add", pod_cidr(1), "via", node_ip(1)}) ||
      !step(node_ns(1), {"ip", "route", "add", "default", "via", client_ip()}) ||
      !step(node_ns(2), {"ip", "route", "add", "default", "via", client_ip()}) ||
      !step(client_ns(), {"ip", "route", "add", kExternalCidr, "via", node_ip(1)})) {
    return;
  }
  if (!step(node_ns(1), {"ip", "-6", "route", "add", pod_cidr6(2), "via", node_ip6(2)}) ||
      !step(node_ns(2), {"ip", "-6", "route", "add", pod_cidr6(1), "via", node_ip6(1)}) ||
      !step(node_ns(1), {"ip", "-6", "route", "add", "default", "via", client_ip6()}) ||
      !step(node_ns(2), {"ip", "-6", "route", "add", "default", "via", client_ip6()}) ||
      !step(client_ns(), {"ip", "-6", "route", "add", kExternalCidr6, "via", node_ip6(1)})) {
    return;
  }
}

TestCluster::~TestCluster() {
  for (auto it = processes_.rbegin(); it != processes_.rend(); ++it) (*it)->stop();
  processes_.clear();
  pod_ns_.clear();  // deleting a namespace deletes its veths, and so their peers
  client_.reset();
  node2_.reset();
  node1_.reset();
  switch_.reset();
}

bool TestCluster::step(const std::string& ns, const std::vector<std::string>& argv) {
  if (!ok_) return false;
  RunResult r = exec(ns, argv);
  if (r.exit_code == 0) return true;
  ok_ = false;
  std::string cmd;
  for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
  error_ = "in " + ns + ": " + cmd + " (status " + std::to_string(r.exit_code) + "): " + r.err;
  return false;
}

bool TestCluster::attach_to_switch(Netns& member, const std::string& port, const std::string& cidr,
                                   const std::string& cidr6) {
  return step(switch_ns(), {"ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", member.name()}) &&
         step(switch_ns(), {"ip", "link", "set", port, "master", "br0", "up"}) &&
         step(member.name(), {"ip", "addr", "add", cidr, "dev", "eth0"}) &&
         step(member.name(), {"ip", "-6", "addr", "add", cidr6, "dev", "eth0", "nodad"}) &&
         step(member.name(), {"ip", "link", "set", "eth0", "up"});
}

std::string TestCluster::node_ns(int node) const { return node == 1 ? node1_->name() : node2_->name(); }
std::string TestCluster::node_ip(int node) const { return "192.168.77.1" + std::to_string(node); }
std::string TestCluster::pod_cidr(int node) const { return "10.244." + std::to_string(node) + ".0/24"; }
std::string TestCluster::pod_gateway(int node) const { return "10.244." + std::to_string(node) + ".1"; }
std::string TestCluster::client_ns() const { return client_->name(); }
std::string TestCluster::client_ip() const { return "192.168.77.100"; }
std::string TestCluster::switch_ns() const { return switch_->name(); }
std::string TestCluster::node_ip6(int node) const { return "fd00:77::1" + std::to_string(node); }
std::string TestCluster::pod_cidr6(int node) const { return "fd00:10:244:" + std::to_string(node) + "::/64"; }
std::string TestCluster::pod_gateway6(int node) const { return "fd00:10:244:" + std::to_string(node) + "::1"; }
std::string TestCluster::client_ip6() const { return "fd00:77::100"; }

Pod& TestCluster::add_pod(int node, const std::string& name) {
  bool duplicate = false;
  for (const auto& existing : pods_) duplicate = duplicate || existing->name == name;
  auto pod = std::make_unique<Pod>();
  pod->name = name;
  pod->node = node == 2 ? 2 : 1;
  const int host = next_host_[pod->node]++;
  pod->ip = "10.244." + std::to_string(pod->node) + "." + std::to_string(host);
  pod->ip6 = "fd00:10:244:" + std::to_string(pod->node) + "::" + std::to_string(host);
  pod->host_veth = "vp" + std::to_string(pods_.size());
  Pod& p = *pods_.emplace_back(std::move(pod));
  if (!ok_) return p;
  if (duplicate) {
    ok_ = false;
    error_ = "a pod named " + name + " exists already";
    return p;
  }
  auto ns = std::make_unique<Netns>(tag_ + "-p-" + name);
  p.ns = ns->name();
  const bool created = ns->ok();
  pod_ns_.push_back(std::move(ns));
  if (!created) {
    ok_ = false;
    error_ = "could not create namespace " + p.ns;
    return p;
  }
  const std::string nns = node_ns(p.node), gw = pod_gateway(p.node), gw6 = pod_gateway6(p.node);
  // On failure ok() and error() tell; the pod is returned either way.
  static_cast<void>(step(p.ns, {"sysctl", "-q", "-w", kNoDad[0]}) && step(p.ns, {"sysctl", "-q", "-w", kNoDad[1]}) &&
      step(nns, {"ip", "link", "add", p.host_veth, "type", "veth", "peer", "name", "eth0", "netns", p.ns}) &&
      step(p.ns, {"ip", "addr", "add", p.ip + "/32", "dev", "eth0"}) &&
      step(p.ns, {"ip", "link", "set", "eth0", "up"}) &&
      step(p.ns, {"ip", "route", "add", gw, "dev", "eth0", "scope", "link"}) &&
      step(p.ns, {"ip", "route", "add", "default", "via", gw, "dev", "eth0"}) &&
      step(nns, {"ip", "addr", "add", gw + "/32", "dev", p.host_veth}) &&
      step(nns, {"ip", "link", "set", p.host_veth, "up"}) &&
      step(nns, {"ip", "route", "add", p.ip + "/32", "dev", p.host_veth}) &&
      step(p.ns, {"ip", "-6", "addr", "add", p.ip6 + "/128", "dev", "eth0", "nodad"}) &&
      step(p.ns, {"ip", "-6", "route", "add", gw6, "dev", "eth0"}) &&
      step(p.ns, {"ip", "-6", "route", "add", "default", "via", gw6, "dev", "eth0"}) &&
      step(nns, {"ip", "-6", "addr", "add", gw6 + "/128", "dev", p.host_veth, "nodad"}) &&
      step(nns, {"ip", "-6", "route", "add", p.ip6 + "/128", "dev", p.host_veth}));
  return p;
}

bool TestCluster::enable_route_localnet(int node) {
  return step(node_ns(node), {"sysctl", "-q", "-w", "net.ipv4.conf.all.route_localnet=1"});
}

RunResult TestCluster::exec(const std::string& ns, const std::vector<std::string>& argv, const std::string& input) {
  std::vector<std::string> full = {"ip", "netns", "exec", ns};
  full.insert(full.end(), argv.begin(), argv.end());
  return run(full, input);
}

RunResult TestCluster::exec_ok(const std::string& ns, const std::vector<std::string>& argv, const std::string& input) {
  std::vector<std::string> full = {"ip", "netns", "exec", ns};
  full.insert(full.end(), argv.begin(), argv.end());
  return run_ok(full, input);
}

bool TestCluster::isolate_sctp_stacks(const std::string& ns) {
  for (const char* tool : {"iptables", "ip6tables"}) {
    if (!step(ns, {tool, "-w", "-A", "OUTPUT", "-p", "sctp", "-m", "sctp", "--chunk-types", "any",
                   "ABORT:T,SHUTDOWN_COMPLETE:T", "-j", "DROP"})) {
      return false;
    }
  }
  return true;
}

BackgroundProcess& TestCluster::start(const std::string& ns, const std::vector<std::string>& argv) {
  return *processes_.emplace_back(std::make_unique<BackgroundProcess>(argv, ns));
}

BackgroundProcess* TestCluster::start_peer(const Pod& pod, const PeerPorts& ports) {
  std::vector<std::string> argv = {testpeer_binary(), "serve", "--name", pod.name};
  for (int p : ports.tcp) argv.insert(argv.end(), {"--tcp", std::to_string(p)});
  for (int p : ports.udp) argv.insert(argv.end(), {"--udp", std::to_string(p)});
  for (int p : ports.sctp) argv.insert(argv.end(), {"--sctp", std::to_string(p)});
  if (!ports.sctp.empty() && !isolate_sctp_stacks(pod.ns)) {
    ADD_FAILURE() << error_;
    return nullptr;
  }
  BackgroundProcess& peer = start(pod.ns, argv);
  if (!peer.wait_for_line("ready", std::chrono::seconds(5))) {
    ADD_FAILURE() << "peer in pod " << pod.name << " did not become ready\n" << peer.describe();
    return nullptr;
  }
  return &peer;
}

RequestResult TestCluster::request(const std::string& ns, Proto proto, const std::string& ip_port, int timeout_ms,
                                   int count, const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {testpeer_binary(), "request", "--proto", proto_name(proto), "--to", ip_port,
                                   "--timeout-ms", std::to_string(timeout_ms), "--count", std::to_string(count)};
  argv.insert(argv.end(), extra.begin(), extra.end());
  RunResult r = exec(ns, argv);
  RequestResult result;
  result.exit_code = r.exit_code;
  result.err = r.err;
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) result.lines.push_back(line);
  return result;
}

}  // namespace kproxy::testing
