// kproxy's entry point: wiring only. Parse the command line, set up logging, report the
// effective configuration, build the iptables backend and the proxier loop, start the
// health servers and the source of cluster state (the API server's informers, or
// --manifests), and run the proxier's thread until SIGTERM or SIGINT.
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <thread>
#include <type_traits>

#include "kproxy/config/command_line.h"
#include "kproxy/health/proxy_health.h"
#include "kproxy/health/proxy_health_server.h"
#include "kproxy/health/service_health_server.h"
#include "kproxy/iptables/libiptc_applier.h"
#include "kproxy/iptables/maintenance.h"
#include "kproxy/iptables/proxier.h"
#include "kproxy/proxier/conntrack_cleanup.h"
#include "kproxy/proxier/family_split.h"
#include "kproxy/ipvs/mode.h"
#include "kproxy/ipvs/netlink_ipvs.h"
#include "kproxy/kernel/exec_iptables_runner.h"
#include "kproxy/kernel/ipset_runner.h"
#include "kproxy/kernel/libipset_runner.h"
#include "kproxy/kernel/links.h"
#include "kproxy/kernel/conntrack.h"
#include "kproxy/kernel/host.h"
#include "kproxy/metrics/kube_proxy_metrics.h"
#include "kproxy/metrics/metrics_server.h"
#include "kproxy/metrics/process_metrics.h"
#include "kproxy/metrics/registry.h"
#include "kproxy/k8s/api_source.h"
#include "kproxy/k8s/event_queue.h"
#include "kproxy/k8s/informer.h"
#include "kproxy/k8s/manifest_source.h"
#include "kproxy/k8s/taint_keeper.h"
#include "kproxy/sctp_userspace/addresses.h"
#include "kproxy/sctp_userspace/proxy.h"
#include "kproxy/sctp_userspace/proxy_metrics.h"
#include "kproxy/log.h"
#include "kproxy/version.h"

namespace {

// Blocks SIGTERM and SIGINT in this thread and every thread it starts, so that they stay
// pending until main() collects them with sigwait().
sigset_t block_termination_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

int write_config(const kproxy::config::CommandLine& cl) {
  std::ofstream out(cl.write_config_to, std::ios::trunc);
  out << kproxy::config::to_yaml(cl.config);
  out.close();
  if (!out) {
    spdlog::error("could not write the configuration to {}; exiting", cl.write_config_to);
    return 1;
  }
  spdlog::info("wrote the configuration to {}; exiting", cl.write_config_to);
  return 0;
}

// Delivers each event of one informer to several handlers, in order.
template <typename T>
class FanOut : public kproxy::InformerHandler<T> {
 public:
  using Ptr = typename kproxy::InformerHandler<T>::Ptr;
  explicit FanOut(std::vector<kproxy::InformerHandler<T>*> handlers) : handlers_(std::move(handlers)) {}
  void on_add(const Ptr& o) override {
    for (auto* h : handlers_) h->on_add(o);
  }
  void on_update(const Ptr& a, const Ptr& b) override {
    for (auto* h : handlers_) h->on_update(a, b);
  }
  void on_delete(const Ptr& o) override {
    for (auto* h : handlers_) h->on_delete(o);
  }
  void on_synced() override {
    for (auto* h : handlers_) h->on_synced();
  }

 private:
  std::vector<kproxy::InformerHandler<T>*> handlers_;
};

// Feeds this node's Node to the health state (node eligibility for /healthz).
class NodeHealthHandler : public kproxy::InformerHandler<kproxy::model::Node> {
 public:
  explicit NodeHealthHandler(kproxy::health::ProxyHealth& health) : health_(health) {}
  void on_add(const Ptr& n) override { health_.sync_node(*n); }
  void on_update(const Ptr&, const Ptr& n) override { health_.sync_node(*n); }
  void on_delete(const Ptr&) override {}
  void on_synced() override {}

 private:
  kproxy::health::ProxyHealth& health_;
};

// Counts Service and EndpointSlice events for kube-proxy's change metrics, and remembers the
// EndpointSlices' last-change-trigger-time annotations for the network programming latency.
// Runs on the proxier's thread, like every handler.
template <typename T>
class ChangeCounter : public kproxy::InformerHandler<T> {
 public:
  using Ptr = typename kproxy::InformerHandler<T>::Ptr;
  explicit ChangeCounter(std::function<void(std::size_t pending)> on_change) : on_change_(std::move(on_change)) {}
  void on_add(const Ptr& o) override { record(o); }
  void on_update(const Ptr&, const Ptr& o) override { record(o); }
  void on_delete(const Ptr&) override { on_change_(++pending); }
  void on_synced() override {}

  std::size_t pending = 0;  // events since the last successful sync
  // EndpointSlices' trigger times, with the family of the slice (its family's sync observes them).
  std::vector<std::pair<kproxy::IpFamily, kproxy::model::Timestamp>> trigger_times;

 private:
  void record(const Ptr& o) {
    on_change_(++pending);
    if constexpr (std::is_same_v<T, kproxy::model::EndpointSlice>) {
      if (o->address_type == kproxy::model::AddressType::kFQDN) return;
      auto it = o->meta.annotations.find("endpoints.kubernetes.io/last-change-trigger-time");
      if (it == o->meta.annotations.end()) return;
      const auto family =
          o->address_type == kproxy::model::AddressType::kIPv6 ? kproxy::IpFamily::kIPv6 : kproxy::IpFamily::kIPv4;
      if (auto t = kproxy::model::parse_rfc3339(it->second); t.ok()) trigger_times.emplace_back(family, *t);
    }
  }
  std::function<void(std::size_t)> on_change_;
};

// The iptables backend's options from the configuration (kube-proxy's NewProxier arguments).
kproxy::iptables::IptablesProxierOptions iptables_options(const kproxy::config::KubeProxyConfiguration& config,
                                                         kproxy::IpFamily family) {
  namespace ipt = kproxy::iptables;
  using kproxy::config::LocalMode;
  ipt::IptablesProxierOptions o;
  o.render.family = family;
  // kube-proxy's chains with a dispatch tree under KUBE-SERVICES (docs/iptables.md).
  o.render.layout = ipt::RenderOptions::Layout::kKproxy;
  // Lean endpoint rules: no KUBE-SEP- chains, the hairpin masquerade by the KUBE-LOOP-BACK
  // ipset (docs/iptables.md, "Lean endpoint rules").
  o.render.lean_endpoints = true;
  o.render.sctp_userspace = config.kproxy.sctp_userspace_mode;
  o.render.masquerade_all = config.iptables.masquerade_all;
  o.render.masquerade_bit = config.iptables.masquerade_bit.value_or(14);
  o.render.localhost_nodeports = config.iptables.localhost_node_ports.value_or(true);
  // kube-proxy leaves out the INVALID drop when conntrack is liberal about TCP windows.
  auto liberal = kproxy::kernel::read_sysctl("net.netfilter.nf_conntrack_tcp_be_liberal");
  o.render.drop_invalid = !liberal.ok() || *liberal == "0";
  switch (config.detect_local_mode) {
    case LocalMode::kUnset:
    case LocalMode::kClusterCidr:
      if (auto c = kproxy::proxier::cluster_cidr_of(config.cluster_cidrs, family)) {
        o.render.local_detector = {ipt::LocalDetector::Mode::kCidr, *c, ""};
      }
      if (!o.render.local_detector.implemented()) {
        // kube-proxy's getLocalDetectors: a warning without any cluster CIDR, a note when the
        // CIDRs given are of the other family only (a single-stack cluster on a dual-stack node).
        if (config.cluster_cidrs.empty()) {
          if (family == kproxy::IpFamily::kIPv4) {
            spdlog::warn("detect-local-mode ClusterCIDR without --cluster-cidr: traffic from outside the cluster to "
                         "cluster IPs is not masqueraded");
          }
        } else {
          spdlog::info("detect-local-mode ClusterCIDR: no {} --cluster-cidr, so {} traffic from outside the cluster "
                       "to cluster IPs is not masqueraded",
                       kproxy::to_string(family), kproxy::to_string(family));
        }
      }
      break;
    case LocalMode::kNodeCidr: o.local_detector_from_node_cidr = true; break;
    case LocalMode::kBridgeInterface:
      o.render.local_detector = {ipt::LocalDetector::Mode::kInterface, {}, config.detect_local.bridge_interface};
      break;
    case LocalMode::kInterfaceNamePrefix:
      o.render.local_detector = {ipt::LocalDetector::Mode::kInterfacePrefix, {}, config.detect_local.interface_name_prefix};
      break;
  }
  // --nodeport-addresses of this family; "primary" (the node IPs themselves) is read from the
  // local addresses, which the node IPs are; kproxy reads the node IP from the Node object per
  // sync. docs/dual-stack.md has the split.
  const auto& npa = config.node_port_addresses;
  o.node_port_cidrs = kproxy::proxier::node_port_cidrs_of(npa.cidrs, npa.all(), family,
                                                         kproxy::kernel::local_addresses());
  if (!npa.all()) {
    o.local_addresses = kproxy::kernel::local_addresses;
  }
  return o;
}

// --sctp-userspace-mode, after each successful sync of one family: the proxy's table of that
// family from its snapshot, its Service addresses made local, then the table handed over (the
// proxy never blocks this).
void update_sctp_proxy(kproxy::sctp_userspace::SctpProxy& proxy, kproxy::sctp_userspace::ServiceAddresses& addresses,
                       const kproxy::proxier::Snapshot& snapshot, const kproxy::iptables::RenderOptions& render) {
  kproxy::sctp_userspace::TableOptions o;
  o.node = render.node;
  if (render.local_detector.mode == kproxy::iptables::LocalDetector::Mode::kCidr) o.local_pod_cidr = render.local_detector.cidr;
  if (render.node_ip) o.node_ips.push_back(*render.node_ip);
  for (const auto& ip : kproxy::kernel::local_addresses()) {
    if (ip.family() == snapshot.family && !ip.is_loopback() && ip != render.node_ip) o.node_ips.push_back(ip);
  }
  o.node_port_ips = render.node_port_ips;
  auto table = kproxy::sctp_userspace::ProxyTable::build(snapshot, o);
  // Only this family's addresses and table: the other family's sync keeps its own.
  if (auto s = addresses.ensure(snapshot.family, table->service_addresses()); !s.ok()) {
    spdlog::error("SCTP userspace mode: {}", s.message());
  }
  if (kproxy::log::v(3)) {
    spdlog::info("SCTP userspace mode ({}): {} SCTP service ports, {} addresses, {} ports",
                 kproxy::to_string(snapshot.family), table->port_count(), table->service_addresses().size(),
                 table->listen_ports().size());
  }
  proxy.update(snapshot.family, std::move(table));
}

// kube-proxy's CanUseIPVSProxier: unless a virtual service already uses the scheduler (a
// restart), add and delete a dummy one at 198.51.100.0:20000 (TEST-NET-2) with it, which also
// makes the kernel load the scheduler's module.
kproxy::Status probe_ipvs_scheduler(kproxy::kernel::Ipvs& ipvs, const std::string& scheduler) {
  auto services = ipvs.services();
  if (!services) return kproxy::Error(services.error());
  for (const auto& s : *services) {
    if (s.scheduler == scheduler) return {};
  }
  kproxy::kernel::IpvsService probe;
  probe.address = *kproxy::IpAddress::parse("198.51.100.0");
  probe.port = 20000;
  probe.scheduler = scheduler;
  using Kind = kproxy::kernel::IpvsChange::Kind;
  const auto added = ipvs.apply({{Kind::kAddService, probe, {}}});
  if (added.empty() || !added.front().ok()) {
    return kproxy::Error("the kernel cannot use this IPVS scheduler (" +
                         (added.empty() ? std::string("no answer") : added.front().message()) + ")");
  }
  const auto deleted = ipvs.apply({{Kind::kDeleteService, probe, {}}});
  if (deleted.empty() || !deleted.front().ok()) return kproxy::Error("deleting the probe service failed");
  return {};
}

// What the health-check node port servers need from the families' snapshots: each Service's
// port, and its local Ready endpoints (distinct IPs, as kube-proxy's LocalReadyEndpoints). A
// dual-stack Service has one health-check node port; its count is the larger family's.
void sync_service_health(kproxy::health::ServiceHealthServer& server,
                         const std::vector<const kproxy::proxier::Snapshot*>& snapshots) {
  std::map<kproxy::health::NamespacedName, std::uint16_t> ports;
  std::map<kproxy::health::NamespacedName, int> counts;
  for (const auto* snapshot : snapshots) {
    for (const auto& [name, port] : snapshot->service_ports) {
      if (port->health_check_node_port == 0) continue;
      const kproxy::health::NamespacedName key{name.ns, name.name};
      ports[key] = port->health_check_node_port;
      std::set<kproxy::IpAddress> ips;
      for (const auto& ep : port->endpoints) {
        if (ep.is_local && ep.ready) ips.insert(ep.ip);
      }
      counts[key] = std::max(counts[key], static_cast<int>(ips.size()));
    }
  }
  for (const auto& failure : server.sync_services(ports)) {
    spdlog::error("failed to start the health check server for Service {} on port {}: {}",
                  kproxy::health::to_string(failure.service), failure.port, failure.error);
  }
  server.sync_endpoints(std::move(counts));
}

// One IP family's proxier (kube-proxy's meta-proxier runs one per family): its iptables,
// its backend (iptables, or IPVS with its iptables layout), its canary and its loop. The
// families share the informers, the health state, the metrics, the health-check server and
// the userspace SCTP proxy.
struct FamilyProxier {
  kproxy::IpFamily family = kproxy::IpFamily::kIPv4;
  std::unique_ptr<kproxy::kernel::ExecIptablesRunner> runner;
  // Its own (the runner remembers the sets it knows), so that the families can sync at once.
  std::unique_ptr<kproxy::kernel::ExecIpsetRunner> ipsets;
  kproxy::iptables::IptablesProxierOptions ipt_options;
  std::unique_ptr<kproxy::iptables::IptablesProxier> iptables;
  std::unique_ptr<kproxy::ipvs::IpvsMode> ipvs;
  std::unique_ptr<kproxy::iptables::Canary> canary;
  std::unique_ptr<kproxy::proxier::ProxierLoop> loop;
  std::shared_ptr<const kproxy::proxier::Snapshot> synced;   // of the last successful sync
  std::shared_ptr<const kproxy::proxier::Snapshot> cleaned;  // of the last conntrack cleanup
};

kproxy::IpFamily other(kproxy::IpFamily family) {
  return family == kproxy::IpFamily::kIPv4 ? kproxy::IpFamily::kIPv6 : kproxy::IpFamily::kIPv4;
}

// kube-proxy's platformCheckSupported: a family is served when its iptables works (and, for
// IPv6, the kernel has IPv6 at all). Why not, or nullopt when it is served.
std::optional<std::string> family_unsupported(kproxy::IpFamily family, kproxy::kernel::IptablesRunner& runner) {
  if (family == kproxy::IpFamily::kIPv6 && ::access("/proc/net/if_inet6", F_OK) != 0) {
    return std::string("the kernel has no IPv6: /proc/net/if_inet6 is missing");
  }
  auto present = runner.chain_exists(kproxy::kernel::Table::kNat, "POSTROUTING");
  if (!present.ok()) return present.error();
  if (!*present) return std::string("its nat table has no POSTROUTING chain");
  return std::nullopt;
}

// A family's canary: gone means another program flushed the tables, and forces a full sync.
void check_canary(FamilyProxier& f) {
  std::vector<std::string> flushed;
  auto intact = f.canary->intact(&flushed);
  if (!intact.ok()) {
    spdlog::error("checking the {} canary chains: {}", kproxy::to_string(f.family), intact.error());
    return;
  }
  if (*intact) return;
  std::string tables;
  for (const auto& t : flushed) tables += (tables.empty() ? "" : ", ") + t;
  spdlog::warn("{} iptables canary gone from {}: the tables were flushed; forcing a full sync",
               kproxy::to_string(f.family), tables);
  f.loop->force_full();
  if (auto s = f.canary->ensure(); !s.ok()) spdlog::error("re-creating the canary chains: {}", s.message());
}

// On a single-stack node, says once that objects of the other family are ignored (kube-proxy
// logs it at startup; kproxy when the first such object arrives, naming it). One notice feeds
// the Service and the EndpointSlice handlers, so it is said once in all.
class UnservedFamilyNotice {
 public:
  explicit UnservedFamilyNotice(std::set<kproxy::IpFamily> served) : served_(std::move(served)) {}

  template <typename T>
  class Handler : public kproxy::InformerHandler<T> {
   public:
    using Ptr = typename kproxy::InformerHandler<T>::Ptr;
    explicit Handler(UnservedFamilyNotice& notice) : notice_(notice) {}
    void on_add(const Ptr& o) override { notice_.check(*o); }
    void on_update(const Ptr&, const Ptr& o) override { notice_.check(*o); }
    void on_delete(const Ptr&) override {}
    void on_synced() override {}

   private:
    UnservedFamilyNotice& notice_;
  };

 private:
  template <typename T>
  void check(const T& o) {
    if (said_ || served_.size() == 2) return;
    std::optional<kproxy::IpFamily> family;
    if constexpr (std::is_same_v<T, kproxy::model::EndpointSlice>) {
      if (o.address_type == kproxy::model::AddressType::kIPv4) family = kproxy::IpFamily::kIPv4;
      if (o.address_type == kproxy::model::AddressType::kIPv6) family = kproxy::IpFamily::kIPv6;
    } else {
      for (const auto f : o.ip_families) {
        if (!served_.contains(f)) family = f;
      }
    }
    if (!family || served_.contains(*family)) return;
    said_ = true;
    spdlog::warn("{} {}/{} has {} addresses, which this single-stack node does not serve; they are ignored (said "
                 "once)",
                 std::is_same_v<T, kproxy::model::EndpointSlice> ? "EndpointSlice" : "Service", o.meta.ns,
                 o.meta.name, kproxy::to_string(*family));
  }
  std::set<kproxy::IpFamily> served_;
  bool said_ = false;
};

// kube-proxy's node name: --hostname-override, else the host name, lower-cased.
std::string node_name(const kproxy::config::KubeProxyConfiguration& config) {
  std::string name = config.hostname_override;
  if (name.empty()) {
    char buf[256] = {};
    gethostname(buf, sizeof buf - 1);
    name = buf;
  }
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  return name;
}

}  // namespace

int main(int argc, char** argv) {
  const sigset_t termination = block_termination_signals();

  auto parsed = kproxy::config::parse_command_line(std::span<const char* const>(argv, static_cast<std::size_t>(argc)));
  if (!parsed) {
    std::fprintf(stderr, "%s\n", parsed.error().c_str());
    return 1;
  }
  const kproxy::config::CommandLine& cl = *parsed;
  if (cl.exit_after_output) {
    std::fputs(cl.output.c_str(), stdout);
    return 0;
  }

  kproxy::log::init(cl.config.logging.verbosity);
  spdlog::info("kproxy v{} starting", kproxy::kVersion);
  if (auto ignored = kproxy::config::ignored_flags_warning(cl); !ignored.empty()) spdlog::warn("{}", ignored);
  for (const auto& warning : cl.warnings) spdlog::warn("{}", warning);
  if (kproxy::log::v(2)) {
    std::string yaml = kproxy::config::to_yaml(cl.config);
    if (!yaml.empty() && yaml.back() == '\n') yaml.pop_back();
    spdlog::info("effective configuration:\n{}", yaml);
  }

  if (!cl.write_config_to.empty()) return write_config(cl);
  if (cl.cleanup) {
    // kube-proxy's CleanupLeftovers: remove what kproxy or kube-proxy created, then exit;
    // non-zero when something could not be removed.
    // Both families: IPv4's tables, and IPv6's where ip6tables works on this node.
    kproxy::kernel::ExecIptablesOptions cleanup_options;
    cleanup_options.flavour = kproxy::kernel::detect_iptables_flavour({});
    kproxy::kernel::ExecIpsetRunner cleanup_ipsets(kproxy::kernel::ExecIpsetOptions{});
    std::vector<std::unique_ptr<kproxy::kernel::ExecIptablesRunner>> cleanup_runners;
    for (const auto family : {kproxy::kernel::IpFamily::kIPv4, kproxy::kernel::IpFamily::kIPv6}) {
      cleanup_options.family = family;
      auto runner = std::make_unique<kproxy::kernel::ExecIptablesRunner>(cleanup_options);
      const auto ip_family = family == kproxy::kernel::IpFamily::kIPv4 ? kproxy::IpFamily::kIPv4 : kproxy::IpFamily::kIPv6;
      if (auto why = family_unsupported(ip_family, *runner)) {
        spdlog::info("--cleanup: no {} iptables to clean ({})", kproxy::to_string(ip_family), *why);
        continue;
      }
      if (auto s = kproxy::ipvs::IpvsMode::release_rules(*runner); !s.ok()) {
        spdlog::error("--cleanup ({}): {}", kproxy::to_string(ip_family), s.message());
        return 1;
      }
      if (auto s = kproxy::iptables::cleanup(*runner, &cleanup_ipsets); !s.ok()) {
        spdlog::error("--cleanup ({}, {}): {}", kproxy::to_string(ip_family),
                      kproxy::kernel::flavour_name(cleanup_options.flavour), s.message());
        return 1;
      }
      cleanup_runners.push_back(std::move(runner));
    }
    kproxy::sctp_userspace::LoopbackAddresses sctp_addresses;
    if (auto s = sctp_addresses.ensure({}); !s.ok()) {
      spdlog::error("--cleanup: {}", s.message());
      return 1;
    }
    // The IPVS mode's: every virtual service (where the kernel has IPVS), kube-ipvs0, the
    // layout's remaining chains and its sets.
    auto ipvs = kproxy::ipvs::NetlinkIpvs::open();
    if (!ipvs && kproxy::log::v(2)) spdlog::info("--cleanup: no IPVS to flush ({})", ipvs.error());
    kproxy::kernel::NetlinkLinks links;
    kproxy::kernel::LibIpsetRunner lib_ipsets;
    for (const auto& runner : cleanup_runners) {
      if (auto s = kproxy::ipvs::IpvsMode::cleanup(ipvs ? ipvs->get() : nullptr, links, lib_ipsets, *runner); !s.ok()) {
        spdlog::error("--cleanup: {}", s.message());
        return 1;
      }
    }
    spdlog::info("--cleanup: removed kproxy's iptables rules ({}, {} families), IPVS services, sets and kube-ipvs0, "
                 "and userspace-SCTP addresses; exiting",
                 kproxy::kernel::flavour_name(cleanup_options.flavour), cleanup_runners.size());
    return 0;
  }
  if (cl.init_only) {
    spdlog::info("--init-only: no privileged initialization to do yet; exiting");
    return 0;
  }

  namespace k8s = kproxy::k8s;
  namespace model = kproxy::model;
  namespace proxier = kproxy::proxier;
  using kproxy::IpFamily;
  const std::string node = node_name(cl.config);
  const auto& config = cl.config;

  // --sctp-userspace-mode: the node is for userspace SCTP stacks, which the kernel's SCTP
  // module breaks (it ABORTs every association it does not know). Probing reads /proc and
  // /sys only: opening an SCTP socket would load the module.
  if (config.kproxy.sctp_userspace_mode) {
    if (kproxy::kernel::kernel_sctp_present()) {
      if (!config.kproxy.sctp_userspace_allow_kernel_sctp) {
        std::fprintf(stderr,
                     "kproxy: --sctp-userspace-mode: the kernel's SCTP module (sctp) is loaded on this node, and it "
                     "answers the associations of userspace SCTP stacks with ABORT. Unload it and keep it out "
                     "(\"install sctp /bin/false\" in /etc/modprobe.d), or start with "
                     "--sctp-userspace-allow-kernel-sctp\n");
        return 1;
      }
      spdlog::warn("--sctp-userspace-mode: the kernel's SCTP module is loaded (allowed by "
                   "--sctp-userspace-allow-kernel-sctp); it will ABORT userspace SCTP associations on this node");
    }
  }
  // The userspace SCTP proxy: started before anything else touches the node, so that a missing
  // CAP_NET_RAW exits with nothing changed.
  std::unique_ptr<kproxy::sctp_userspace::SctpProxy> sctp_proxy;
  kproxy::sctp_userspace::LoopbackAddresses sctp_addresses;
  if (config.kproxy.sctp_userspace_mode) {
    kproxy::sctp_userspace::ProxyOptions proxy_options;
    proxy_options.max_associations = static_cast<std::size_t>(config.kproxy.sctp_userspace_max_associations);
    auto started = kproxy::sctp_userspace::SctpProxy::start(proxy_options);
    if (!started) {
      std::fprintf(stderr, "kproxy: %s\n", started.error().c_str());
      return 1;
    }
    sctp_proxy = std::move(*started);
    spdlog::info("SCTP userspace mode: no rule names SCTP; SCTP Service ports are served by kproxy's usrsctp proxy, "
                 "their addresses made local on lo (docs/sctp-userspace.md)");
  } else if (auto left = sctp_addresses.list(); left.ok() && !left->empty()) {
    // Started without the mode: the addresses a previous run in that mode added go.
    if (auto s = sctp_addresses.ensure({}); !s.ok()) spdlog::error("{}", s.message());
  }

  // Where cluster state comes from is settled before anything touches the node: a missing
  // credential exits without having changed a sysctl or read a table.
  std::optional<k8s::ClientConfig> client;
  if (config.kproxy.manifests_dir.empty()) {
    auto resolved = k8s::resolve_client_config(config.client_connection.kubeconfig, cl.master);
    if (!resolved) {
      std::fprintf(stderr, "kproxy: %s\n", resolved.error().c_str());
      return 1;
    }
    client = std::move(*resolved);
  }

  // The kernel side, per IP family (kube-proxy's meta-proxier): iptables of the flavour
  // kubelet uses, route_localnet for IPv4 localhost NodePorts, the backend and the proxier
  // loop. A family is served when this node's kernel and iptables have it.
  const auto flavour = kproxy::kernel::detect_iptables_flavour({});
  const bool ipvs_mode = config.mode == kproxy::config::ProxyMode::kIpvs;
  std::vector<std::unique_ptr<FamilyProxier>> families;
  for (const IpFamily family : {IpFamily::kIPv4, IpFamily::kIPv6}) {
    auto f = std::make_unique<FamilyProxier>();
    f->family = family;
    kproxy::kernel::ExecIptablesOptions runner_options;
    runner_options.flavour = flavour;
    runner_options.family = family == IpFamily::kIPv4 ? kproxy::kernel::IpFamily::kIPv4 : kproxy::kernel::IpFamily::kIPv6;
    f->runner = std::make_unique<kproxy::kernel::ExecIptablesRunner>(runner_options);
    if (auto why = family_unsupported(family, *f->runner)) {
      spdlog::warn("{} is not available on this node ({}): serving {} only; {} Services, EndpointSlices and "
                   "addresses are ignored",
                   kproxy::to_string(family), *why, kproxy::to_string(other(family)), kproxy::to_string(family));
      continue;
    }
    families.push_back(std::move(f));
  }
  if (families.empty()) {
    std::fprintf(stderr, "kproxy: neither IPv4 nor IPv6 iptables works on this node\n");
    return 1;
  }
  const std::string family_names = families.size() == 2 ? "IPv4 and IPv6" : std::string(kproxy::to_string(families[0]->family));
  if (ipvs_mode) {
    spdlog::info("using ipvs mode (iptables {} for its rules), {}", kproxy::kernel::flavour_name(flavour), family_names);
  } else {
    spdlog::info("using iptables mode ({}), {}", kproxy::kernel::flavour_name(flavour), family_names);
  }
  // The applier: libiptc in-process where the node's iptables is legacy (it measures 2x
  // faster there, docs/performance.md), iptables-restore otherwise. libiptc is IPv4's
  // (libip4tc): IPv6 rules always go through ip6tables-restore.
  using kproxy::config::IptablesApplier;
  const bool legacy = flavour == kproxy::kernel::IptablesFlavour::kLegacy;
  const IptablesApplier requested = config.kproxy.iptables_applier;
  if (requested == IptablesApplier::kLibiptc && !legacy) {
    std::fprintf(stderr,
                 "kproxy: invalid value \"libiptc\" for kproxy.iptablesApplier (--iptables-applier): this node's "
                 "iptables is nft and libiptc writes only legacy tables; use auto or restore\n");
    return 1;
  }
  std::unique_ptr<kproxy::iptables::LibiptcApplier> libiptc;
  if (requested == IptablesApplier::kLibiptc || (requested == IptablesApplier::kAuto && legacy)) {
    libiptc = std::make_unique<kproxy::iptables::LibiptcApplier>();
  }
  spdlog::info("iptables rules written by {}", libiptc ? "libiptc (IPv4), ip6tables-restore (IPv6)" : "iptables-restore");
  // --proxy-mode=ipvs (docs/ipvs.md): the kernel's IPVS serves the Services; iptables keeps
  // only the IPVS layout's rules. One netlink socket and one kube-ipvs0 for both families.
  std::unique_ptr<kproxy::ipvs::NetlinkIpvs> ipvs;
  kproxy::kernel::NetlinkLinks links;
  kproxy::kernel::LibIpsetRunner lib_ipsets;
  std::string scheduler;
  if (ipvs_mode) {
    auto opened = kproxy::ipvs::NetlinkIpvs::open();
    if (!opened) {
      std::fprintf(stderr, "kproxy: --proxy-mode=ipvs: %s\n", opened.error().c_str());
      return 1;
    }
    ipvs = std::move(*opened);
    scheduler = config.ipvs.scheduler.empty() ? "rr" : config.ipvs.scheduler;
    if (auto s = probe_ipvs_scheduler(*ipvs, scheduler); !s.ok()) {
      // Not fatal: every virtual service is refused, reported with its Service and retried at
      // each sync, so the scheduler's module arriving later (or a fixed kernel) heals the node.
      spdlog::error("--ipvs-scheduler={}: {}; every virtual service will be refused until it can", scheduler,
                    s.message());
    }
    // kube-proxy's NewProxier: conntrack for IPVS'd packets (MASQUERADE needs it), connections
    // to deleted real servers expire, IPv4 forwarding on; strict ARP on request. IPv6
    // forwarding is left to the node, as kube-proxy leaves it (turning it on makes the kernel
    // ignore router advertisements); it is checked below.
    std::vector<std::pair<const char*, const char*>> sysctls = {{"net.ipv4.vs.conntrack", "1"},
                                                                {"net.ipv4.vs.expire_nodest_conn", "1"},
                                                                {"net.ipv4.vs.expire_quiescent_template", "1"},
                                                                {"net.ipv4.ip_forward", "1"}};
    if (config.ipvs.strict_arp) {
      sysctls.push_back({"net.ipv4.conf.all.arp_ignore", "1"});
      sysctls.push_back({"net.ipv4.conf.all.arp_announce", "2"});
    }
    for (const auto& [name, value] : sysctls) {
      if (auto s = kproxy::kernel::write_sysctl(name, value); !s.ok()) {
        std::fprintf(stderr, "kproxy: --proxy-mode=ipvs: %s\n", s.message().c_str());
        return 1;
      }
    }
    using std::chrono::duration_cast;
    using std::chrono::seconds;
    const kproxy::kernel::IpvsTimeouts timeouts{
        static_cast<std::uint32_t>(duration_cast<seconds>(config.ipvs.tcp_timeout).count()),
        static_cast<std::uint32_t>(duration_cast<seconds>(config.ipvs.tcp_fin_timeout).count()),
        static_cast<std::uint32_t>(duration_cast<seconds>(config.ipvs.udp_timeout).count())};
    if (timeouts.tcp != 0 || timeouts.tcp_fin != 0 || timeouts.udp != 0) {
      if (auto s = ipvs->set_timeouts(timeouts); !s.ok()) spdlog::error("configuring IPVS timeouts: {}", s.message());
    }
    spdlog::info("IPVS: scheduler {}, virtual service addresses on {}", scheduler, kproxy::ipvs::kDummyDevice);
  }
  for (auto& f : families) {
    if (f->family == IpFamily::kIPv6) {
      // Service traffic to pods is forwarded; kproxy, like kube-proxy, does not turn IPv6
      // forwarding on (the CNI does), but says when it is off.
      if (auto forwarding = kproxy::kernel::read_sysctl("net.ipv6.conf.all.forwarding");
          forwarding.ok() && *forwarding == "0") {
        spdlog::info("net.ipv6.conf.all.forwarding is 0: IPv6 Service traffic to pods on other hosts will not be "
                     "forwarded until the node (or its CNI plugin) turns it on");
      }
    }
    f->ipt_options = iptables_options(config, f->family);
    if (f->family == IpFamily::kIPv4 && f->ipt_options.render.localhost_nodeports) {
      if (auto s = kproxy::kernel::write_sysctl("net.ipv4.conf.all.route_localnet", "1"); !s.ok()) {
        spdlog::error("{}; NodePorts on 127.0.0.1 will not work", s.message());
      }
    }
    f->ipsets = std::make_unique<kproxy::kernel::ExecIpsetRunner>(kproxy::kernel::ExecIpsetOptions{});
    f->iptables = std::make_unique<kproxy::iptables::IptablesProxier>(
        *f->runner, f->ipt_options, f->ipsets.get(), f->family == IpFamily::kIPv4 ? libiptc.get() : nullptr);
    if (ipvs_mode) {
      kproxy::ipvs::IpvsModeOptions o;
      o.family = f->family;
      o.proxier.scheduler = scheduler;
      o.proxier.skip_sctp = config.kproxy.sctp_userspace_mode;
      o.proxier.node_port_cidrs = f->ipt_options.node_port_cidrs;
      o.proxier.exclude_cidrs = config.ipvs.exclude_cidrs;
      o.layout.node_ip = f->ipt_options.render.node_ip;
      o.layout.skip_sctp = config.kproxy.sctp_userspace_mode;
      o.layout.masquerade_all = f->ipt_options.render.masquerade_all;
      o.layout.masquerade_bit = f->ipt_options.render.masquerade_bit;
      o.layout.local_detector = f->ipt_options.render.local_detector;
      o.layout.random_fully = f->ipt_options.render.random_fully;
      f->ipvs = std::make_unique<kproxy::ipvs::IpvsMode>(*ipvs, links, lib_ipsets, *f->runner, o);
    }
    // The canary: a flush of mangle, nat or filter by another program forces a full sync.
    f->canary = std::make_unique<kproxy::iptables::Canary>(*f->runner);
    if (auto s = f->canary->ensure(); !s.ok()) {
      spdlog::error("creating the {} canary chains: {}", kproxy::to_string(f->family), s.message());
    }
    proxier::ProxierLoopOptions loop_options;
    loop_options.tracker = {f->family, node, true};
    loop_options.runner.min_interval =
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(config.min_sync_period());
    loop_options.runner.retry_interval =
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(config.sync_period());
    f->loop = std::make_unique<proxier::ProxierLoop>(
        loop_options, f->ipvs ? static_cast<proxier::ProxierBackend&>(*f->ipvs) : *f->iptables);
  }

  // Metrics: kube-proxy's, kproxy's own, the process's; /metrics on --metrics-bind-address.
  kproxy::metrics::Registry registry;
  kproxy::metrics::KubeProxyMetrics metrics(
      registry, ipvs_mode ? kproxy::metrics::ProxyMetricsMode::kIpvs : kproxy::metrics::ProxyMetricsMode::kIptables);
  kproxy::metrics::register_process_metrics(registry);
  if (sctp_proxy) kproxy::sctp_userspace::register_proxy_metrics(registry, *sctp_proxy);
  std::unique_ptr<kproxy::metrics::MetricsServer> metrics_server;
  if (auto listen = config.metrics_bind_address.listen()) {
    kproxy::metrics::MetricsServerOptions metrics_options;
    metrics_options.proxy_mode = ipvs_mode ? "ipvs" : "iptables";
    auto started = kproxy::metrics::MetricsServer::start(registry, listen->ip, listen->port, metrics_options);
    if (started.ok()) {
      metrics_server = std::move(*started);
    } else if (config.bind_address_hard_fail) {
      std::fprintf(stderr, "kproxy: metrics server: %s\n", started.error().c_str());
      return 1;
    } else {
      spdlog::error("metrics server failed: {}", started.error());
    }
  }

  // Health: /healthz and /livez, and a health-check node port per Service that needs one.
  kproxy::health::ProxyHealth proxy_health(2 * config.sync_period());
  std::unique_ptr<kproxy::health::ProxyHealthServer> healthz;
  if (auto listen = config.healthz_bind_address.listen()) {
    auto started = kproxy::health::ProxyHealthServer::start(
        proxy_health, listen->ip, listen->port, kproxy::health::HealthzFormat::kJson, [&metrics](bool is_healthz, int code) {
          if (is_healthz) {
            metrics.healthz_answered(code);
          } else {
            metrics.livez_answered(code);
          }
        });
    if (started.ok()) {
      healthz = std::move(*started);
    } else if (config.bind_address_hard_fail) {
      std::fprintf(stderr, "kproxy: healthz server: %s\n", started.error().c_str());
      return 1;
    } else {
      spdlog::error("healthz server failed: {}", started.error());
    }
  }
  // One health-check server for both families: a dual-stack Service has one health-check node
  // port, answered on the node's addresses of every served family (a wildcard listener is
  // dual-stack).
  std::vector<kproxy::IpAddress> health_check_addresses;
  for (const auto& f : families) {
    if (f->ipt_options.node_port_cidrs.empty()) {
      health_check_addresses.clear();
      break;
    }
    for (const auto& ip : kproxy::kernel::local_addresses()) {
      for (const auto& c : f->ipt_options.node_port_cidrs) {
        if (c.family() == ip.family() && c.contains(ip)) health_check_addresses.push_back(ip);
      }
    }
  }
  kproxy::health::ServiceHealthServer service_health(proxy_health, health_check_addresses);
  // Conntrack: stale UDP and SCTP flows are deleted after each successful sync
  // (docs/conntrack.md), per family.
  std::unique_ptr<kproxy::kernel::ConntrackTable> conntrack;
  if (auto opened = kproxy::kernel::open_netlink_conntrack_table(); opened.ok()) {
    conntrack = std::move(*opened);
  } else {
    spdlog::error("conntrack: {}; stale UDP and SCTP flows will not be removed", opened.error());
  }

  ChangeCounter<model::Service> service_changes([&metrics](std::size_t n) { metrics.service_changed(n); });
  ChangeCounter<model::EndpointSlice> slice_changes([&metrics](std::size_t n) { metrics.endpoints_changed(n); });
  for (auto& fp : families) {
    FamilyProxier& f = *fp;
    f.loop->on_sync([&](const proxier::SyncReport& report) {
      const IpFamily family = f.family;
      const bool full = report.kind == proxier::SyncKind::kFull;
      const double seconds = std::chrono::duration<double>(report.duration).count();
      metrics.observe_sync(family, full ? kproxy::metrics::SyncKind::kFull : kproxy::metrics::SyncKind::kPartial,
                           seconds);
      if (!report.ok) {
        metrics.iptables_restore_failed(family);
        if (!full) metrics.iptables_partial_restore_failed(family);
        spdlog::error("{} sync failed ({}); retrying with a full sync: {}", kproxy::to_string(family),
                      full ? "full" : "partial", report.error);
        return;
      }
      const auto now = std::chrono::system_clock::now();
      metrics.sync_succeeded(family, now);
      if (!ipvs_mode) {
        const auto& figures = f.iptables->last_figures();
        metrics.set_iptables_rules_last(family, kproxy::metrics::RuleTable::kFilter, figures.filter_rules);
        metrics.set_iptables_rules_last(family, kproxy::metrics::RuleTable::kNat, figures.nat_rules);
        if (const auto& rendered = f.iptables->last_rendered()) {
          metrics.set_iptables_rules_total(family, kproxy::metrics::RuleTable::kFilter, rendered->filter_rule_count());
          metrics.set_iptables_rules_total(family, kproxy::metrics::RuleTable::kNat, rendered->nat_rule_count());
        }
        metrics.set_no_local_endpoints(family, static_cast<std::size_t>(figures.stats.no_local_endpoints_internal),
                                       static_cast<std::size_t>(figures.stats.no_local_endpoints_external));
      }
      // The network programming latency of the slices this family programs.
      auto& triggers = slice_changes.trigger_times;
      for (auto it = triggers.begin(); it != triggers.end();) {
        if (it->first == family) {
          metrics.observe_network_programming(family, std::chrono::duration<double>(now - it->second).count());
          it = triggers.erase(it);
        } else {
          ++it;
        }
      }
      service_changes.pending = slice_changes.pending = 0;
      metrics.set_service_changes_pending(0);
      metrics.set_endpoint_changes_pending(0);
      proxy_health.updated(family);
      f.synced = report.snapshot;
      std::vector<const proxier::Snapshot*> synced;
      for (const auto& other_family : families) {
        if (other_family->synced) synced.push_back(other_family->synced.get());
      }
      sync_service_health(service_health, synced);
      if (sctp_proxy) {
        update_sctp_proxy(*sctp_proxy, sctp_addresses, *report.snapshot,
                          ipvs_mode ? f.ipt_options.render : f.iptables->last_render_options());
      }
      if (conntrack && proxier::conntrack_cleanup_needed(f.cleaned.get(), *report.snapshot)) {
        const auto start = std::chrono::steady_clock::now();
        auto deleted = proxier::cleanup_stale_flows(*conntrack, f.cleaned.get(), *report.snapshot,
                                                    kproxy::kernel::local_addresses());
        const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (deleted.ok()) {
          f.cleaned = report.snapshot;
          metrics.conntrack_reconciled(family, took, *deleted);
          if (*deleted > 0 && kproxy::log::v(2)) {
            spdlog::info("conntrack: deleted {} stale {} flows", *deleted, kproxy::to_string(family));
          }
        } else {
          spdlog::error("conntrack cleanup failed (retried after the next sync): {}", deleted.error());
        }
      }
      if (kproxy::log::v(2)) {
        spdlog::info("synced {} service ports of {} ({} changed) in {} ms", report.snapshot->service_ports.size(),
                     kproxy::to_string(family), report.changed_ports,
                     std::chrono::duration_cast<std::chrono::milliseconds>(report.duration).count());
      }
    });
  }

  k8s::EventQueue queue;
  NodeHealthHandler node_health(proxy_health);
  std::optional<k8s::TaintKeeper> taint_keeper;
  if (client) {
    const auto& t = *config.kproxy.sctp_userspace_taint;
    taint_keeper.emplace(k8s::make_api_client(*client), node,
                         k8s::Taint{t.key, t.value, std::string(kproxy::config::to_string(t.effect))},
                         config.kproxy.sctp_userspace_mode);
  }
  // Every family's loop sees every event; each keeps what is of its family. A single-stack
  // node says once that it ignores the other family's objects.
  std::set<IpFamily> served;
  for (const auto& f : families) served.insert(f->family);
  UnservedFamilyNotice notice(served);
  UnservedFamilyNotice::Handler<model::Service> service_notice(notice);
  UnservedFamilyNotice::Handler<model::EndpointSlice> slice_notice(notice);
  std::vector<kproxy::InformerHandler<model::Node>*> node_handlers{&node_health};
  std::vector<kproxy::InformerHandler<model::Service>*> service_handlers{&service_changes, &service_notice};
  std::vector<kproxy::InformerHandler<model::EndpointSlice>*> slice_handlers{&slice_changes, &slice_notice};
  for (auto& f : families) {
    node_handlers.push_back(&f->loop->node_handler());
    service_handlers.push_back(&f->loop->service_handler());
    slice_handlers.push_back(&f->loop->endpoint_slice_handler());
  }
  if (taint_keeper) node_handlers.push_back(&*taint_keeper);
  FanOut<model::Node> nodes(std::move(node_handlers));
  FanOut<model::Service> services(std::move(service_handlers));
  FanOut<model::EndpointSlice> slices(std::move(slice_handlers));
  // Rejections are logged and counted (kproxy_objects_rejected_total{kind,reason}); the sink
  // runs on reflector threads, and the metrics are thread-safe.
  const k8s::RejectionSink count_rejection = [&metrics](const model::Rejection& r) {
    k8s::log_rejection(r);
    metrics.object_rejected(r);
  };
  k8s::Informer<model::Service> service_informer("Service", model::parse_service, queue, services, count_rejection);
  k8s::Informer<model::EndpointSlice> slice_informer("EndpointSlice", model::parse_endpoint_slice, queue, slices,
                                                    count_rejection);
  k8s::Informer<model::Node> node_informer("Node", model::parse_node, queue, nodes, count_rejection);

  std::optional<k8s::ManifestSource> manifests;
  std::optional<k8s::ApiSource> api;
  std::jthread manifest_thread;
  if (!cl.config.kproxy.manifests_dir.empty()) {
    manifests.emplace(cl.config.kproxy.manifests_dir, node, k8s::ManifestSource::Sinks{service_informer, slice_informer, node_informer});
    // Open here so that an unreadable directory is a startup error, then follow it.
    if (auto s = manifests->open(); !s.ok()) {
      std::fprintf(stderr, "kproxy: --manifests: %s\n", s.message().c_str());
      return 1;
    }
    spdlog::info("reading Services, EndpointSlices and Node {} from {}", node, cl.config.kproxy.manifests_dir);
    manifest_thread = std::jthread([&manifests](std::stop_token stop) {
      if (auto s = manifests->run(stop); !s.ok()) spdlog::error("manifests: {}; no longer following changes", s.message());
    });
  } else {
    spdlog::info("watching Services, EndpointSlices and Node {} at {} ({})", node, client->server_url(),
                 client->source);
    api.emplace(*client, node, k8s::ApiSource::Sinks{service_informer, slice_informer, node_informer});
    api->start();
  }
  // The node's taint: present in --sctp-userspace-mode, absent otherwise; the keeper ensures
  // it at start and whenever the Node disagrees.
  if (taint_keeper) {
    taint_keeper->start();
  } else if (config.kproxy.sctp_userspace_mode) {
    spdlog::warn("--manifests: no API server, so the node's taint {} is not managed",
                 config.kproxy.sctp_userspace_taint->to_string());
  }
  // The proxier's thread: the one consumer of the informers' events, and every family's
  // syncs. A sync in flight when SIGTERM arrives finishes before the thread stops; rules stay
  // in place.
  std::jthread consumer([&](std::stop_token stop) {
    using Clock = proxier::ProxierLoop::Clock;
    const auto canary_period = std::chrono::duration_cast<Clock::duration>(config.sync_period());
    auto next_canary_check = Clock::now() + canary_period;
    while (!stop.stop_requested()) {
      const auto now = Clock::now();
      auto wake = std::min(next_canary_check, now + std::chrono::seconds(1));
      for (const auto& f : families) wake = std::min(wake, f->loop->next_deadline(now));
      queue.run_until(stop, wake);
      if (stop.stop_requested()) break;
      if (Clock::now() >= next_canary_check) {
        for (auto& f : families) check_canary(*f);
        next_canary_check = Clock::now() + canary_period;
      }
      // The families' due syncs. In iptables mode two run at once, as kube-proxy's per-family
      // proxiers do: each has its own runner, ipset runner and proxier, and this thread runs
      // no event until both are done. IPVS mode's share one netlink socket, so they take turns.
      std::vector<std::pair<FamilyProxier*, proxier::ProxierLoop::DueSync>> due;
      for (auto& f : families) {
        f->loop->after_events();
        if (f->loop->tracker().has_pending_changes()) {
          proxy_health.queued_update(f->family);
          metrics.sync_queued(f->family, std::chrono::system_clock::now());
        }
        if (auto d = f->loop->take_due(Clock::now(), [] { return Clock::now(); })) due.emplace_back(f.get(), std::move(*d));
      }
      std::vector<kproxy::Status> results(due.size());
      std::vector<Clock::time_point> ends(due.size());
      auto run = [&](std::size_t i) {
        results[i] = due[i].first->loop->run(due[i].second);
        ends[i] = Clock::now();
      };
      if (due.size() == 2 && !ipvs_mode) {
        std::thread second([&run] { run(1); });
        run(0);
        second.join();
      } else {
        for (std::size_t i = 0; i < due.size(); ++i) run(i);
      }
      for (std::size_t i = 0; i < due.size(); ++i) due[i].first->loop->finish(std::move(due[i].second), results[i], ends[i]);
    }
  });

  spdlog::info("running; waiting for SIGTERM or SIGINT");
  int signal = 0;
  if (sigwait(&termination, &signal) != 0) {
    spdlog::error("sigwait failed; exiting");
    return 1;
  }
  spdlog::info("received {}; exiting", signal == SIGTERM ? "SIGTERM" : "SIGINT");
  manifest_thread = {};
  if (taint_keeper) taint_keeper->stop();
  if (api) api->stop();
  consumer = {};
  return 0;
}
