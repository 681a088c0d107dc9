// The IPVS backend's syncs (issue 9, docs/performance.md "IPVS"). Runs where IPVS exists: in
// the vm tier's guest (bench/ipvs_sync_bench.sh boots it), as root.
//
// For each --services N (default 1000 and 10000), in a fresh network namespace of its own:
// N TCP Services of 10 endpoints each (cluster IPs only), and
//   floor      ipvsadm --restore of the same N services and 10N real servers (ipvsadm's own
//              netlink code, one message per line), the baseline of the ratios;
//   netlink    kproxy's plan for them sent by NetlinkIpvs::apply alone (the same messages);
//   first sync IpvsProxier::sync from an empty kernel: the kube-ipvs0 device, N addresses
//              bound to it, the kernel read once, the plan and the batch;
//   no change  a second sync of the same snapshot;
//   +1 endpt   a sync after one endpoint is added to one Service;
// with the netlink messages each sent.
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "kproxy/ipvs/netlink_ipvs.h"
#include "kproxy/ipvs/plan.h"
#include "kproxy/ipvs/proxier.h"
#include "kproxy/kernel/links.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace kproxy;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

IpAddress nth(std::uint32_t base, std::uint32_t i) { return IpAddress::from_v4(base + i); }

std::shared_ptr<proxier::ServicePortInfo> service(std::uint32_t i, int endpoints) {
  auto info = std::make_shared<proxier::ServicePortInfo>();
  info->name = {"bench", "svc-" + std::to_string(i), "http", model::Protocol::kTcp};
  info->cluster_ip = nth(0x0a600000, i + 1);  // 10.96.0.0/12
  info->port = 80;
  for (int e = 0; e < endpoints; ++e) {
    proxier::Endpoint ep;
    ep.ip = nth(0x0af40000, i * 16 + static_cast<std::uint32_t>(e) + 1);  // 10.244.0.0/14
    ep.port = 8080;
    ep.ready = ep.serving = true;
    ep.node_name = "node2";
    info->endpoints.push_back(ep);
  }
  std::sort(info->endpoints.begin(), info->endpoints.end(),
            [](const auto& a, const auto& b) { return a.to_string() < b.to_string(); });
  return info;
}

proxier::Snapshot snapshot(std::uint32_t n, int endpoints) {
  proxier::Snapshot s;
  for (std::uint32_t i = 0; i < n; ++i) {
    auto info = service(i, endpoints);
    s.service_ports[info->name] = info;
  }
  return s;
}

int run(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

// A namespace of its own with a default route: IPVS refuses a masquerading real server it has
// no unicast route to.
bool fresh_namespace() {
  if (unshare(CLONE_NEWNET) != 0) {
    std::fprintf(stderr, "unshare(CLONE_NEWNET): %s\n", std::strerror(errno));
    return false;
  }
  return run("ip link set lo up && ip link add bench0 type dummy && ip addr add 192.168.50.1/24 dev bench0 && "
             "ip link set bench0 up && ip route add default via 192.168.50.2") == 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::uint32_t> sizes;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--services") sizes.push_back(static_cast<std::uint32_t>(std::stoul(argv[i + 1])));
  }
  if (sizes.empty()) sizes = {1000, 10000};
  constexpr int kEndpoints = 10;
  std::printf("%-8s %-12s %10s %10s %10s\n", "services", "case", "seconds", "messages", "/floor");
  for (std::uint32_t n : sizes) {
    const proxier::Snapshot snap = snapshot(n, kEndpoints);
    const proxier::NodeFacts node{"node1", ""};
    ipvs::IpvsOptions desired_options;
    desired_options.node = node;
    const ipvs::DesiredState desired = ipvs::build_desired(snap, desired_options);
    const ipvs::Plan plan = ipvs::plan(desired, {}, {});
    // Each case in a namespace of its own (IPVS tables, and their rate estimators, are per
    // namespace), so no case runs next to another's 10N estimators; kproxy's client goes
    // first, the floor after it.
    if (!fresh_namespace()) return 1;
    auto opened = ipvs::NetlinkIpvs::open();
    if (!opened) {
      std::fprintf(stderr, "%s\n", opened.error().c_str());
      return 77;
    }
    auto t = Clock::now();
    const auto results = (*opened)->apply(plan.changes);
    const double netlink = seconds_since(t);
    for (const Status& r : results) {
      if (!r.ok()) {
        std::fprintf(stderr, "%s\n", r.message().c_str());
        return 1;
      }
    }
    const std::uint64_t netlink_messages = (*opened)->messages_sent();
    (void)(*opened)->flush();
    opened->reset();

    // The floor: ipvsadm --restore of the same services.
    if (!fresh_namespace()) return 1;
    const std::string rules = "/tmp/kproxy-ipvs-bench-rules";
    {
      std::ofstream out(rules);
      for (const auto& vs : desired.servers) {
        const std::string vip = join_host_port(vs.service.address, vs.service.port);
        out << "-A -t " << vip << " -s rr\n";
        for (const auto& d : vs.destinations) out << "-a -t " << vip << " -r " << to_string(d) << " -m -w 1\n";
      }
    }
    t = Clock::now();
    if (run("ipvsadm --restore < " + rules) != 0) {
      std::fprintf(stderr, "ipvsadm --restore failed\n");
      return 1;
    }
    const double floor = seconds_since(t);
    std::remove(rules.c_str());
    (void)run("ipvsadm -C");
    std::printf("%-8u %-12s %10.3f %10zu %10s\n", n, "floor", floor, plan.changes.size(), "1.00");
    std::printf("%-8u %-12s %10.3f %10llu %10.2f\n", n, "netlink", netlink,
                static_cast<unsigned long long>(netlink_messages), netlink / floor);

    // The proxier, from an empty kernel.
    if (!fresh_namespace()) return 1;
    opened = ipvs::NetlinkIpvs::open();
    if (!opened) return 77;
    auto& nl = **opened;
    kernel::NetlinkLinks links;
    ipvs::IpvsProxier proxier(nl, links, {});
    std::set<proxier::ServicePortName> changed;
    // The first sync is full; changes come as partial syncs, as the proxier loop sends them.
    auto sync = [&](const proxier::Snapshot& s, const char* name) {
      const std::uint64_t before = nl.messages_sent();
      const auto start = Clock::now();
      const auto kind = std::string(name) == "first sync" ? proxier::SyncKind::kFull : proxier::SyncKind::kPartial;
      const Status st = proxier.sync(proxier::SyncRequest{s, changed, kind, node, nullptr});
      const double took = seconds_since(start);
      if (!st.ok()) std::fprintf(stderr, "%s: %s\n", name, st.message().c_str());
      std::printf("%-8u %-12s %10.3f %10llu %10.2f\n", n, name, took,
                  static_cast<unsigned long long>(nl.messages_sent() - before), took / floor);
      return st.ok();
    };
    if (!sync(snap, "first sync")) return 1;
    if (!sync(snap, "no change")) return 1;
    proxier::Snapshot more = snap;
    auto changed_port = std::make_shared<proxier::ServicePortInfo>(*snap.service_ports.begin()->second);
    proxier::Endpoint extra = changed_port->endpoints.front();
    extra.ip = IpAddress::from_v4(0x0af80001);  // 10.248.0.1
    changed_port->endpoints.push_back(extra);
    more.service_ports[changed_port->name] = changed_port;
    if (!sync(more, "+1 endpoint")) return 1;
    (void)ipvs::IpvsProxier::cleanup(nl, links);
  }
  return 0;
}
