// The iptables benchmark suite (issue 6): full syncs, a one-endpoint change, and the first
// packet's rule evaluations, for kproxy's layout against kube-proxy's, on the real kernel in
// throwaway network namespaces (both iptables flavours). Every figure is printed beside its
// baseline from the same run:
//   - full sync: render time, apply time (IptablesProxier::sync), bytes, rules, chains, peak RSS;
//     floors: iptables-restore of kproxy's own payload, and of kube-proxy's layout for the same
//     cluster (rendered by the same renderer with Layout::kKubeProxy);
//   - one endpoint changed: the partial sync's time and bytes; baseline: iptables-restore
//     --noflush of just the changed chains;
//   - first packet: rule evaluations on the path of a new connection to a ClusterIP (the
//     packet tracer over the rule set that was applied), at 10 and at N Services; and the
//     latency of a new TCP connection to a ClusterIP in a namespace holding each rule set
//     (the Service's endpoints are addresses on the namespace's loopback).
// kproxy runs as the daemon does (dispatch tree + lean endpoint rules, with the KUBE-LOOP-BACK
// ipset), through each applier: iptables-restore, and on legacy also libiptc.
// Usage: kproxy_bench_iptables_sync [--services N]... [--flavour nft|legacy]... [--endpoints E]
//                                   [--applier restore|libiptc]... [--syncs-only 1]
//                                   [--profile-partial ROUNDS] [--kube-proxy-baselines 0]
// --kube-proxy-baselines 0 leaves out kube-proxy's floor and latency (its restore takes
// minutes at 10k on nft) but measures kproxy's connection latency.
// --profile-partial R: kproxy's own CPU per partial sync, no kernel (runners that accept all).
// --family ipv4|ipv6 (repeatable; default ipv4): the same cluster with every address mirrored
// into fd00::/96 (a.b.c.d -> fd00::a.b.c.d's 32 bits), through ip6tables for ipv6; with both,
// a summary prints IPv6's figures as ratios of IPv4's from the same run (issue 10). IPv6 has
// no libiptc applier and no connection-latency figure (the latency probe is IPv4 sockets).
// --syncs-only 1 leaves out kube-proxy's floor and the connection latency (each restores a
// whole table again: minutes at 10k on nft), for re-measuring kproxy's own syncs.
// Never saves a large table: the kernel's state is compared by restore exit status only.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <map>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "kproxy/iptables/libiptc_applier.h"
#include "kproxy/iptables/proxier.h"
#include "kproxy/iptables/render.h"
#include "kproxy/iptables/tracer.h"
#include "kproxy/kernel/exec_iptables_runner.h"
#include "kproxy/kernel/ipset_runner.h"

using namespace kproxy;
using namespace kproxy::iptables;
using Clock = std::chrono::steady_clock;

namespace {

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

long peak_rss_mib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024;
}

// The family the run being measured uses (--family).
IpFamily g_family = IpFamily::kIPv4;

// A throwaway namespace "kpb-<pid>-<n>", deleted on destruction.
class Namespace {
 public:
  Namespace() : name_("kpb-" + std::to_string(getpid()) + "-" + std::to_string(counter_++)) {
    auto r = kernel::run_command({"ip", "netns", "add", name_}, "", std::chrono::seconds(10));
    ok_ = r.ok() && r->exit_code == 0;
  }
  ~Namespace() { (void)kernel::run_command({"ip", "netns", "delete", name_}, "", std::chrono::seconds(60)); }
  const std::string& name() const { return name_; }
  bool ok() const { return ok_; }
  std::vector<std::string> prefix() const { return {"ip", "netns", "exec", name_}; }
  kernel::ExecIptablesOptions iptables_options(kernel::IptablesFlavour flavour) const {
    kernel::ExecIptablesOptions o;
    o.flavour = flavour;
    o.family = g_family == IpFamily::kIPv6 ? kernel::IpFamily::kIPv6 : kernel::IpFamily::kIPv4;
    o.command_prefix = prefix();
    return o;
  }
  kernel::ExecIpsetOptions ipset_options() const { return kernel::ExecIpsetOptions{prefix()}; }

 private:
  static inline int counter_ = 0;
  std::string name_;
  bool ok_ = false;
};

// libiptc writes the tables of the calling thread's namespace: enter the node's for the write.
class InNamespaceApplier final : public RuleApplier {
 public:
  explicit InNamespaceApplier(std::string ns) : ns_(std::move(ns)) {}
  Expected<std::size_t> apply(const std::vector<TableBlock>& blocks) override {
    return inside([&] { return inner_.apply(blocks); });
  }
  Expected<std::size_t> ensure_jumps(const std::vector<BuiltinJump>& jumps) override {
    return inside([&] { return inner_.ensure_jumps(jumps); });
  }
  std::string_view name() const override { return inner_.name(); }

 private:
  template <typename F>
  Expected<std::size_t> inside(F f) {
    const int self = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    const int target = ::open(("/run/netns/" + ns_).c_str(), O_RDONLY | O_CLOEXEC);
    Expected<std::size_t> out = Error("cannot enter the namespace " + ns_);
    if (self >= 0 && target >= 0 && ::setns(target, CLONE_NEWNET) == 0) {
      out = f();
      (void)::setns(self, CLONE_NEWNET);
    }
    if (self >= 0) ::close(self);
    if (target >= 0) ::close(target);
    return out;
  }
  std::string ns_;
  LibiptcApplier inner_;
};

// An address of the run's family: the IPv4 address, or its mirror fd00::<its 32 bits>.
IpAddress v4(std::uint32_t host) {
  if (g_family == IpFamily::kIPv4) return IpAddress::from_v4(host);
  std::array<std::uint8_t, 16> b{};
  b[0] = 0xfd;
  for (int i = 0; i < 4; ++i) b[12 + i] = static_cast<std::uint8_t>(host >> (24 - 8 * i));
  return IpAddress::from_v6(b);
}

// N Services with 1-3 ports (TCP, UDP, SCTP mixed), cluster IPs at random in 10.96.0.0/12,
// E endpoints each spread over 10.180.0.0/14 on 20 nodes (this node is node-0).
proxier::Snapshot cluster(int n, int endpoints, std::uint32_t seed, int changed_service = -1) {
  std::mt19937 rng(seed);
  proxier::Snapshot s;
  std::vector<std::uint32_t> used;
  for (int i = 0; i < n; ++i) {
    const std::uint32_t ip = 0x0A600000u + 1 + rng() % ((1u << 20) - 2);
    const int ports = 1 + static_cast<int>(rng() % 3);
    std::vector<proxier::Endpoint> eps;
    for (int e = 0; e < endpoints; ++e) {
      proxier::Endpoint ep;
      ep.ip = v4(0x0AB40000u + static_cast<std::uint32_t>(i * endpoints + e) + 2);
      ep.ready = ep.serving = true;
      ep.node_name = "node-" + std::to_string(rng() % 20);
      ep.is_local = ep.node_name == "node-0";
      eps.push_back(ep);
    }
    if (i == changed_service) eps.pop_back();  // one endpoint removed
    for (int p = 0; p < ports; ++p) {
      auto info = std::make_shared<proxier::ServicePortInfo>();
      const model::Protocol proto = p == 0 ? model::Protocol::kTcp : p == 1 ? model::Protocol::kUdp : model::Protocol::kSctp;
      info->name = proxier::ServicePortName{"ns" + std::to_string(i % 50), "svc" + std::to_string(i), "p" + std::to_string(p), proto};
      info->cluster_ip = v4(ip);
      info->port = static_cast<std::uint16_t>(80 + p);
      for (auto ep : eps) {
        ep.port = static_cast<std::uint16_t>(8080 + p);
        info->endpoints.push_back(ep);
      }
      std::sort(info->endpoints.begin(), info->endpoints.end(),
                [](const auto& a, const auto& b) { return a.to_string() < b.to_string(); });
      s.service_ports[info->name] = info;
    }
  }
  return s;
}

RenderOptions options(RenderOptions::Layout layout) {
  RenderOptions o;
  o.node = {"node-0", ""};
  o.family = g_family;
  o.node_ip = v4(0xC0A80002u);
  o.local_detector = {LocalDetector::Mode::kCidr, *Cidr::make(v4(0x0AB00000u), g_family == IpFamily::kIPv4 ? 12 : 108),
                      ""};
  o.layout = layout;
  o.lean_endpoints = layout == RenderOptions::Layout::kKproxy;  // as the daemon runs
  return o;
}

struct Counts {
  std::size_t bytes = 0, rules = 0, chains = 0;
};
Counts count(const std::string& payload) {
  Counts c;
  c.bytes = payload.size();
  for (std::size_t pos = 0; pos < payload.size();) {
    const std::size_t end = payload.find('\n', pos);
    if (payload.compare(pos, 3, "-A ") == 0) ++c.rules;
    if (payload[pos] == ':') ++c.chains;
    pos = end == std::string::npos ? payload.size() : end + 1;
  }
  return c;
}

// iptables-restore of `payload` into a fresh namespace, after creating the ipsets its rules
// match (part of the floor: the kernel state kproxy's layout needs is rules + sets).
// Creates `ipsets` and restores `payload` into the namespace; `what` names the caller in errors.
Status load_tables(const Namespace& ns, kernel::IptablesFlavour flavour, const std::string& payload,
                   const std::vector<std::shared_ptr<const kernel::IpsetSpec>>& ipsets, const char* what) {
  kernel::ExecIpsetRunner sets(ns.ipset_options());
  kernel::ExecIptablesRunner runner(ns.iptables_options(flavour));
  for (const auto& spec : ipsets) {
    if (Status s = sets.apply(*spec); !s.ok()) std::fprintf(stderr, "%s: ipset failed: %.300s\n", what, s.message().c_str());
  }
  Status s = runner.restore(payload, kernel::RestoreFlags{});
  if (!s.ok()) std::fprintf(stderr, "%s: restore failed: %.300s\n", what, s.message().c_str());
  return s;
}

double restore_floor(kernel::IptablesFlavour flavour, const std::string& payload,
                     const std::vector<std::shared_ptr<const kernel::IpsetSpec>>& ipsets) {
  Namespace ns;
  if (!ns.ok()) return -1;
  const auto start = Clock::now();
  const Status s = load_tables(ns, flavour, payload, ipsets, "floor");
  const double t = seconds(Clock::now() - start);
  return s.ok() ? t : -1;
}

double mean_evaluations(const RenderedRules& rules, const RenderOptions& o, const proxier::Snapshot& s) {
  TraceEnvironment env;
  env.local_addresses = {*o.node_ip};
  std::size_t total = 0, traced = 0;
  const std::size_t step = std::max<std::size_t>(1, s.service_ports.size() / 200);
  std::size_t i = 0;
  for (const auto& [name, port] : s.service_ports) {
    if (i++ % step != 0) continue;
    Packet p{v4(0x0AB00005u), port->cluster_ip, port->name.protocol, port->port, "veth0", false};
    const auto outcomes = trace(rules, builtin_jumps(o), p, env);
    std::size_t worst = 0;
    for (const auto& out : outcomes) worst = std::max(worst, out.rules_evaluated);
    total += worst;
    ++traced;
  }
  return traced == 0 ? 0 : static_cast<double>(total) / static_cast<double>(traced);
}

// Runs f on a thread inside namespace `ns` (sockets it creates belong to that namespace).
template <typename F>
void in_namespace(const std::string& ns, F f) {
  std::thread t([&] {
    const int target = ::open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
    if (target < 0 || ::setns(target, CLONE_NEWNET) != 0) {
      std::fprintf(stderr, "cannot enter %s\n", ns.c_str());
      if (target >= 0) ::close(target);
      return;
    }
    ::close(target);
    f();
  });
  t.join();
}

sockaddr_in socket_address(const IpAddress& ip, std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  ::inet_pton(AF_INET, ip.to_string().c_str(), &a.sin_addr);
  return a;
}

// Microseconds per new TCP connection (connect to accept, then RST) to `target`'s ClusterIP,
// in a fresh namespace holding `payload` (+ its ipsets and the built-in jumps), with the
// target's endpoints as loopback addresses and one listener on its target port. The median
// of 7 batches of 300 connections, after 200 to warm up.
double connect_latency_us(kernel::IptablesFlavour flavour, const std::string& payload,
                          const std::vector<std::shared_ptr<const kernel::IpsetSpec>>& ipsets, const RenderOptions& o,
                          const proxier::ServicePortInfo& target) {
  Namespace ns;
  if (!ns.ok() || !load_tables(ns, flavour, payload, ipsets, "latency").ok()) return -1;
  kernel::ExecIptablesRunner runner(ns.iptables_options(flavour));
  RestoreApplier jumps(runner);
  if (auto j = jumps.ensure_jumps(builtin_jumps(o)); !j) {
    std::fprintf(stderr, "latency: jumps failed: %.300s\n", j.error().c_str());
    return -1;
  }
  auto sh = [&](std::vector<std::string> argv) {
    std::vector<std::string> full = ns.prefix();
    full.insert(full.end(), argv.begin(), argv.end());
    (void)kernel::run_command(full, "", std::chrono::seconds(10));
  };
  sh({"ip", "link", "set", "lo", "up"});
  // The node's address and a default route (a ClusterIP must be routable before DNAT).
  // (A veth pair: this kernel has no dummy interfaces.)
  sh({"ip", "link", "add", "node0", "type", "veth", "peer", "name", "node0p"});
  sh({"ip", "addr", "add", o.node_ip->to_string() + "/24", "dev", "node0"});
  sh({"ip", "link", "set", "node0", "up"});
  sh({"ip", "link", "set", "node0p", "up"});
  sh({"ip", "route", "add", "default", "dev", "node0"});
  for (const auto& ep : target.endpoints) sh({"ip", "addr", "add", ep.ip.to_string() + "/32", "dev", "lo"});
  const std::uint16_t port = target.endpoints.front().port;
  std::vector<double> batches;
  in_namespace(ns.name(), [&] {
    const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
    int one = 1;
    ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in any = socket_address(IpAddress::from_v4(0), port);
    if (::bind(listener, reinterpret_cast<sockaddr*>(&any), sizeof any) != 0 || ::listen(listener, 1024) != 0) {
      std::fprintf(stderr, "latency: listen on %u: %s\n", port, std::strerror(errno));
      return;
    }
    const sockaddr_in to = socket_address(target.cluster_ip, target.port);
    auto connect_once = [&]() -> bool {
      const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
      const bool ok = ::connect(c, reinterpret_cast<const sockaddr*>(&to), sizeof to) == 0;
      linger l{1, 0};
      ::setsockopt(c, SOL_SOCKET, SO_LINGER, &l, sizeof l);
      if (ok) {
        const int a = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
        if (a >= 0) {
          ::setsockopt(a, SOL_SOCKET, SO_LINGER, &l, sizeof l);
          ::close(a);
        }
      }
      ::close(c);
      return ok;
    };
    for (int i = 0; i < 200; ++i) {
      if (!connect_once()) {
        std::fprintf(stderr, "connect to %s:%u failed: %s\n", target.cluster_ip.to_string().c_str(), target.port,
                     std::strerror(errno));
        ::close(listener);
        return;
      }
    }
    for (int b = 0; b < 7; ++b) {
      const auto t0 = Clock::now();
      for (int i = 0; i < 300; ++i) connect_once();
      batches.push_back(seconds(Clock::now() - t0) * 1e6 / 300);
    }
    ::close(listener);
  });
  if (batches.empty()) return -1;
  std::sort(batches.begin(), batches.end());
  return batches[batches.size() / 2];
}

// kproxy's own CPU per partial sync, without the kernel: the proxier over runners that accept
// everything, alternating between two snapshots that differ in one endpoint. What it prints
// is the part of a partial sync that is not iptables-restore (for profiling: perf record).
struct NullIptables final : kernel::IptablesRunner {
  Status restore(std::string_view, kernel::RestoreFlags) override { return {}; }
  Expected<std::string> save(Table) override { return std::string("*nat\nCOMMIT\n"); }
  Expected<bool> chain_exists(Table, std::string_view) override { return true; }
  Expected<bool> ensure_rule(Table, std::string_view, const std::vector<std::string>&) override { return true; }
  Expected<bool> delete_rule(Table, std::string_view, const std::vector<std::string>&) override { return false; }
  Expected<std::optional<std::string>> rule_at(Table, std::string_view, int) override { return std::optional<std::string>{}; }
  kernel::IptablesFlavour flavour() const override { return kernel::IptablesFlavour::kNft; }
  kernel::IpFamily family() const override { return kernel::IpFamily::kIPv4; }
};
struct NullIpsets final : kernel::IpsetRunner {
  Status apply(const kernel::IpsetSpec&) override { return {}; }
  Status change(std::string_view, const std::vector<std::string>&, const std::vector<std::string>&) override { return {}; }
  Expected<std::optional<std::vector<std::string>>> list(std::string_view) override {
    return std::optional<std::vector<std::string>>{};
  }
  Expected<bool> destroy(std::string_view) override { return true; }
};

void profile_partial(int n, int endpoints, int rounds) {
  const auto snapshot = cluster(n, endpoints, 42);
  auto changed_snapshot = snapshot;
  std::set<proxier::ServicePortName> changed;
  for (const auto& [name, port] : cluster(n, endpoints, 42, n / 2).service_ports) {
    if (name.name != "svc" + std::to_string(n / 2)) continue;
    changed.insert(name);
    changed_snapshot.service_ports[name] = port;
  }
  NullIptables runner;
  NullIpsets ipsets;
  IptablesProxierOptions po;
  po.render = options(RenderOptions::Layout::kKproxy);
  IptablesProxier proxier(runner, po, &ipsets);
  const proxier::NodeFacts facts{"node-0", ""};
  auto t0 = Clock::now();
  if (!proxier.sync(proxier::SyncRequest{snapshot, {}, proxier::SyncKind::kFull, facts}).ok()) return;
  const double full_s = seconds(Clock::now() - t0);
  t0 = Clock::now();
  for (int i = 0; i < rounds; ++i) {
    const auto& s = i % 2 == 0 ? changed_snapshot : snapshot;
    if (!proxier.sync(proxier::SyncRequest{s, changed, proxier::SyncKind::kPartial, facts}).ok()) return;
  }
  const double partial_s = seconds(Clock::now() - t0) / rounds;
  std::printf("%d Services: kproxy's own CPU, no kernel: full sync %.3f s, partial sync %.4f s (mean of %d)\n", n,
              full_s, partial_s, rounds);
}

// Per (Services, flavour, family): full sync, partial sync, periodic full sync (s) and the first
// packet's rule evaluations, for the --family summary.
struct Figures {
  double full = 0, partial = 0, again = 0, evaluations = 0;
};
std::map<std::tuple<int, std::string, IpFamily>, Figures> g_figures;

void run(int n, int endpoints, kernel::IptablesFlavour flavour, const std::vector<std::string>& appliers_wanted,
         bool syncs_only, bool kube_baselines) {
  const char* fl = kernel::flavour_name(flavour).data();
  std::printf("\n== %d Services x 1-3 ports x %d endpoints, %s-%s ==\n", n, endpoints,
              g_family == IpFamily::kIPv6 ? "ip6tables" : "iptables", fl);
  Figures& figures = g_figures[{n, std::string(fl), g_family}];
  const auto snapshot = cluster(n, endpoints, 42);
  std::printf("service ports: %zu\n", snapshot.service_ports.size());

  // Render (kproxy's layout) and its payload.
  const auto kp_opts = options(RenderOptions::Layout::kKproxy);
  auto t0 = Clock::now();
  const RenderedRules kp = render(snapshot, kp_opts);
  const std::string kp_payload = restore_payload(sync_blocks(kp, nullptr, {}));
  const double render_s = seconds(Clock::now() - t0);
  const auto kp_counts = count(kp_payload);

  const auto kube_opts = options(RenderOptions::Layout::kKubeProxy);
  const RenderedRules kube = render(snapshot, kube_opts);
  const std::string kube_payload = restore_payload(sync_blocks(kube, nullptr, {}));
  const auto kube_counts = count(kube_payload);

  const double kp_floor = restore_floor(flavour, kp_payload, kp.ipsets);
  const double kube_floor = kube_baselines ? restore_floor(flavour, kube_payload, {}) : -1;
  std::size_t ipset_entries = 0;
  for (const auto& set : kp.ipsets) ipset_entries += set->entries.size();

  std::printf("%-34s %12s %12s\n", "", "kproxy", "kube-proxy");
  std::printf("%-34s %12zu %12zu\n", "payload bytes", kp_counts.bytes, kube_counts.bytes);
  std::printf("%-34s %12zu %12zu\n", "rules", kp_counts.rules, kube_counts.rules);
  std::printf("%-34s %12zu %12zu\n", "chains", kp_counts.chains, kube_counts.chains);
  std::printf("%-34s %12zu %12d\n", "ipset entries", ipset_entries, 0);
  std::printf("%-34s %12.3f %12.3f\n", "floor: ipset + restore of payload, s", kp_floor, kube_floor);
  std::printf("render + serialize, s               %12.3f\n", render_s);
  if (kube_baselines) {
    std::printf("ratio own floor / kube-proxy floor  %12.2f   (target <= 0.5 at 10k)\n", kp_floor / kube_floor);
  }

  // As the change tracker builds it: the unchanged ports are the same objects.
  auto changed_snapshot = snapshot;
  std::set<proxier::ServicePortName> changed;
  for (const auto& [name, port] : cluster(n, endpoints, 42, n / 2).service_ports) {
    if (name.name != "svc" + std::to_string(n / 2)) continue;
    changed.insert(name);
    changed_snapshot.service_ports[name] = port;
  }
  const auto after = render(changed_snapshot, kp_opts);
  {
    Renderer renderer;
    renderer.render(snapshot, kp_opts);
    const auto t = Clock::now();
    renderer.render(changed_snapshot, kp_opts);
    std::printf("incremental render, one endpoint changed, s %5.3f  (full render + serialize %.3f)\n",
                seconds(Clock::now() - t), render_s);
  }
  std::vector<const Chain*> chains;
  for (const auto& name : changed) {
    for (const Chain& c : after.service_chains(name)) chains.push_back(&c);
  }
  const std::string just_changed = restore_payload({TableBlock{Table::kNat, chains, {}}});

  std::vector<std::string> appliers = appliers_wanted;
  if (flavour == kernel::IptablesFlavour::kNft || g_family == IpFamily::kIPv6) {
    std::erase(appliers, "libiptc");  // legacy IPv4 only
  }
  for (const std::string& applier_name : appliers) {
    // The proxier's full sync into a fresh namespace, as the daemon makes it.
    Namespace node;
    kernel::ExecIptablesRunner runner(node.iptables_options(flavour));
    kernel::ExecIpsetRunner ipsets(node.ipset_options());
    InNamespaceApplier libiptc(node.name());
    IptablesProxierOptions po;
    po.render = kp_opts;
    IptablesProxier proxier(runner, po, &ipsets, applier_name == "libiptc" ? &libiptc : nullptr);
    const proxier::NodeFacts facts{"node-0", ""};
    auto t0 = Clock::now();
    Status st = proxier.sync(proxier::SyncRequest{snapshot, {}, proxier::SyncKind::kFull, facts});
    const double apply_s = seconds(Clock::now() - t0);
    if (!st.ok()) std::printf("full sync FAILED: %.300s\n", st.message().c_str());
    std::printf("-- applier: %s\n", applier_name.c_str());
    std::printf("full sync (render + ipset + apply), s %10.3f\n", apply_s);
    std::printf("ratio full sync / own floor         %12.2f   (target <= 1.3)\n", apply_s / kp_floor);
    if (applier_name == "restore") figures.full = apply_s;

    // One endpoint changed: a partial sync; baseline: restore --noflush of just the changed
    // service's chains, into the same node.
    t0 = Clock::now();
    st = proxier.sync(proxier::SyncRequest{changed_snapshot, changed, proxier::SyncKind::kPartial, facts});
    const double partial_s = seconds(Clock::now() - t0);
    if (!st.ok()) std::printf("partial sync FAILED: %.300s\n", st.message().c_str());
    const auto partial_bytes = proxier.last_figures().payload_bytes;
    t0 = Clock::now();
    st = runner.restore(just_changed, kernel::RestoreFlags{});
    const double baseline_s = seconds(Clock::now() - t0);
    std::printf("one endpoint changed: partial sync  %9.3f s, %zu bytes\n", partial_s, partial_bytes);
    std::printf("  baseline: restore of its chains   %9.3f s, %zu bytes\n", baseline_s, just_changed.size());
    std::printf("  ratio                             %12.2f   (target <= 1.5)\n", partial_s / baseline_s);
    if (applier_name == "restore") figures.partial = partial_s;

    // A periodic full sync: the same rules, the jumps already in place.
    t0 = Clock::now();
    st = proxier.sync(proxier::SyncRequest{changed_snapshot, {}, proxier::SyncKind::kFull, facts});
    const double again_s = seconds(Clock::now() - t0);
    if (!st.ok()) std::printf("second full sync FAILED: %.300s\n", st.message().c_str());
    std::printf("full sync again (jumps in place), s %10.3f\n", again_s);
    std::printf("ratio full sync again / own floor   %12.2f   (target <= 1.3)\n", again_s / kp_floor);
    if (applier_name == "restore") figures.again = again_s;
  }

  // First packet: rule evaluations over the applied rule set.
  const auto small = cluster(10, endpoints, 7);
  const double kp_small = mean_evaluations(render(small, kp_opts), kp_opts, small);
  const double kp_big = mean_evaluations(after, kp_opts, changed_snapshot);
  const double kube_small = mean_evaluations(render(small, kube_opts), kube_opts, small);
  const double kube_big = mean_evaluations(render(changed_snapshot, kube_opts), kube_opts, changed_snapshot);
  std::printf("first packet, rule evaluations: 10 Services / %d Services\n", n);
  std::printf("  kproxy                            %6.1f / %6.1f  ratio %.2f (target < 1.5)\n", kp_small, kp_big,
              kp_big / kp_small);
  std::printf("  kube-proxy's layout               %6.1f / %6.1f  ratio %.2f\n", kube_small, kube_big, kube_big / kube_small);
  figures.evaluations = kp_big;

  if (syncs_only || g_family == IpFamily::kIPv6) {
    std::printf("peak RSS                            %9ld MiB\n", peak_rss_mib());
    return;
  }
  // First packet: latency of a new TCP connection to a ClusterIP at 10 and at N Services. The
  // target is a TCP port in the middle of the Service list (kube-proxy's layout matches
  // Services one rule each, in the order it writes them).
  auto tcp_port = [](const proxier::Snapshot& s, std::size_t nth) -> const proxier::ServicePortInfo* {
    std::vector<const proxier::ServicePortInfo*> tcp;
    for (const auto& [name, port] : s.service_ports) {
      if (name.protocol == model::Protocol::kTcp) tcp.push_back(port.get());
    }
    return tcp.empty() ? nullptr : tcp[std::min(nth, tcp.size() - 1)];
  };
  const auto* small_target = tcp_port(small, 5);
  const auto* big_target = tcp_port(snapshot, static_cast<std::size_t>(n) / 2);
  const RenderedRules small_kp = render(small, kp_opts);
  const RenderedRules small_kube = render(small, kube_opts);
  const double lat_kp_small = connect_latency_us(flavour, restore_payload(sync_blocks(small_kp, nullptr, {})),
                                                 small_kp.ipsets, kp_opts, *small_target);
  const double lat_kp_big = connect_latency_us(flavour, kp_payload, kp.ipsets, kp_opts, *big_target);
  std::printf("first packet, new TCP connection to a ClusterIP, us: 10 Services / %d Services\n", n);
  std::printf("  kproxy                            %6.1f / %6.1f  ratio %.2f (target < 1.5)\n", lat_kp_small, lat_kp_big,
              lat_kp_big / lat_kp_small);
  if (kube_baselines) {
    const double lat_kube_small = connect_latency_us(
        flavour, restore_payload(sync_blocks(small_kube, nullptr, {})), {}, kube_opts, *small_target);
    const double lat_kube_big = connect_latency_us(flavour, kube_payload, {}, kube_opts, *big_target);
    std::printf("  kube-proxy's layout               %6.1f / %6.1f  ratio %.2f\n", lat_kube_small, lat_kube_big,
                lat_kube_big / lat_kube_small);
  }
  std::printf("peak RSS                            %9ld MiB\n", peak_rss_mib());
}

// A dual-stack node: both families' full syncs into one fresh namespace, one after the other
// (baseline) and at the same time on two threads (as the daemon runs them in iptables mode),
// each in its own namespace. Returns {sequential, concurrent} seconds.
std::pair<double, double> dual_stack_node(int n, int endpoints, kernel::IptablesFlavour flavour) {
  struct Side {
    IpFamily family;
    proxier::Snapshot snapshot;
    RenderOptions options;
  };
  std::vector<Side> sides;
  for (IpFamily family : {IpFamily::kIPv4, IpFamily::kIPv6}) {
    g_family = family;
    auto s = cluster(n, endpoints, 42);
    s.family = family;
    sides.push_back(Side{family, std::move(s), options(RenderOptions::Layout::kKproxy)});
  }
  auto measure = [&](bool concurrent) {
    Namespace node;
    std::vector<std::unique_ptr<kernel::ExecIptablesRunner>> runners;
    std::vector<std::unique_ptr<kernel::ExecIpsetRunner>> sets;
    std::vector<std::unique_ptr<IptablesProxier>> proxiers;
    for (const Side& side : sides) {
      g_family = side.family;
      runners.push_back(std::make_unique<kernel::ExecIptablesRunner>(node.iptables_options(flavour)));
      sets.push_back(std::make_unique<kernel::ExecIpsetRunner>(node.ipset_options()));
      IptablesProxierOptions po;
      po.render = side.options;
      proxiers.push_back(std::make_unique<IptablesProxier>(*runners.back(), po, sets.back().get()));
    }
    const proxier::NodeFacts facts{"node-0", ""};
    auto sync = [&](std::size_t i) {
      const Status st = proxiers[i]->sync(proxier::SyncRequest{sides[i].snapshot, {}, proxier::SyncKind::kFull, facts});
      if (!st.ok()) std::printf("dual-stack full sync FAILED: %.300s\n", st.message().c_str());
    };
    const auto t0 = Clock::now();
    if (concurrent) {
      std::thread second([&] { sync(1); });
      sync(0);
      second.join();
    } else {
      sync(0);
      sync(1);
    }
    return seconds(Clock::now() - t0);
  };
  const double sequential = measure(false);
  const double concurrent = measure(true);
  return {sequential, concurrent};
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> sizes;
  std::vector<kernel::IptablesFlavour> flavours;
  int endpoints = 10;
  std::vector<std::string> appliers;
  bool syncs_only = false;
  bool kube_baselines = true;
  int profile_rounds = 0;
  std::vector<IpFamily> families;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string f = argv[i];
    const std::string v = argv[i + 1];
    if (f == "--services") sizes.push_back(std::stoi(v));
    if (f == "--endpoints") endpoints = std::stoi(v);
    if (f == "--applier") appliers.push_back(v);
    if (f == "--syncs-only") syncs_only = v == "1";
    if (f == "--kube-proxy-baselines") kube_baselines = v != "0";
    if (f == "--profile-partial") profile_rounds = std::stoi(v);
    if (f == "--family") families.push_back(v == "ipv6" ? IpFamily::kIPv6 : IpFamily::kIPv4);
    if (f == "--flavour") flavours.push_back(v == "legacy" ? kernel::IptablesFlavour::kLegacy : kernel::IptablesFlavour::kNft);
  }
  if (geteuid() != 0) {
    std::fprintf(stderr, "needs root (network namespaces)\n");
    return 1;
  }
  if (sizes.empty()) sizes = {1000, 10000};
  if (appliers.empty()) appliers = {"restore", "libiptc"};
  if (flavours.empty()) flavours = {kernel::IptablesFlavour::kNft, kernel::IptablesFlavour::kLegacy};
  if (profile_rounds > 0) {
    for (int n : sizes) profile_partial(n, endpoints, profile_rounds);
    return 0;
  }
  if (families.empty()) families = {IpFamily::kIPv4};
  for (int n : sizes) {
    for (auto flavour : flavours) {
      for (IpFamily family : families) {
        g_family = family;
        run(n, endpoints, flavour, appliers, syncs_only, kube_baselines && !syncs_only);
      }
    }
  }
  if (families.size() == 2) {
    std::printf("\n== a dual-stack node: both families' full syncs (restore applier) ==\n");
    std::printf("%-8s %-7s %12s %12s %8s\n", "Services", "flavour", "one by one", "at once", "ratio");
    for (int n : sizes) {
      for (auto flavour : flavours) {
        const auto [sequential, concurrent] = dual_stack_node(n, endpoints, flavour);
        std::printf("%-8d %-7s %11.2fs %11.2fs %8.2f\n", n, kernel::flavour_name(flavour).data(), sequential, concurrent,
                    concurrent / sequential);
      }
    }
    std::printf("\n== IPv6 / IPv4, same clusters, same run (restore applier) ==\n");
    std::printf("%-8s %-7s %10s %10s %10s %14s\n", "Services", "flavour", "full", "partial", "full again",
                "1st-packet eval");
    for (int n : sizes) {
      for (auto flavour : flavours) {
        const std::string fl(kernel::flavour_name(flavour));
        const Figures& a = g_figures[{n, fl, IpFamily::kIPv4}];
        const Figures& b = g_figures[{n, fl, IpFamily::kIPv6}];
        std::printf("%-8d %-7s %10.2f %10.2f %10.2f %14.2f\n", n, fl.c_str(), b.full / a.full, b.partial / a.partial,
                    b.again / a.again, b.evaluations / a.evaluations);
      }
    }
  }
  return 0;
}
