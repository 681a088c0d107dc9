#include "kproxy/config/command_line.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>

#include <CLI/CLI.hpp>

#include "kproxy/config/config_file.h"
#include "kproxy/config/values.h"
#include "kproxy/version.h"

namespace kproxy::config {
namespace {

std::string in_quotes(std::string_view s) { return "\"" + std::string(s) + "\""; }

// How a flag relates to --config (cmd/kube-proxy/app/options.go, Complete()).
enum class Scope {
  kConfig,    // sets a configuration field; ignored when --config is given
  kOverride,  // applies on top of the file too (hostname, logging, --manifests)
  kAction,    // not configuration: --config itself, --master, --cleanup, ...
};

struct State;

// Applies a flag's values (the last one for a scalar flag, all of them in order for a list
// flag) to the state. The error says what is wrong with the value, without the flag name.
using ApplyFn = Status (*)(State&, const std::vector<std::string>&);

struct Flag {
  std::string_view name;
  char shorthand;            // '\0' if none
  std::string_view type;     // as pflag prints it in --help; "" for a boolean flag
  std::string_view def;      // default shown in --help; "" for none
  Scope scope;
  std::string_view field;    // the v1alpha1 field it sets, to blame validation errors on it
  bool list;                 // repeatable: values accumulate (StringSlice, MapStringBool)
  std::string_view help;
  std::string_view note;     // a warning logged when the flag is used: deprecation or no effect
  ApplyFn apply;

  bool is_bool() const { return type.empty(); }
};

struct State {
  KubeProxyConfiguration& config;
  CommandLine& out;
  std::string hostname_override;
  std::optional<std::int32_t> healthz_port;
  std::optional<std::int32_t> metrics_port;
  bool version = false;
  bool help = false;
};

const std::string& last(const std::vector<std::string>& v) { return v.back(); }

Status set_bool(const std::vector<std::string>& v, bool& out) {
  auto b = parse_go_bool(last(v));
  if (!b) return Error(b.error());
  out = *b;
  return {};
}

Status set_duration(const std::vector<std::string>& v, Duration& out) {
  auto d = parse_go_duration(last(v));
  if (!d) return Error(d.error());
  out = *d;
  return {};
}

Status set_optional_duration(const std::vector<std::string>& v, std::optional<Duration>& out) {
  Duration d{0};
  if (auto s = set_duration(v, d); !s) return s;
  out = d;
  return {};
}

Status set_int32(const std::vector<std::string>& v, std::int32_t& out) {
  auto n = parse_go_int32(last(v));
  if (!n) return Error(n.error());
  out = *n;
  return {};
}

Status set_optional_int32(const std::vector<std::string>& v, std::optional<std::int32_t>& out) {
  std::int32_t n = 0;
  if (auto s = set_int32(v, n); !s) return s;
  out = n;
  return {};
}

// pflag's StringSlice: the first use replaces the default, later uses append.
Expected<std::vector<std::string>> string_slice(const std::vector<std::string>& v) {
  std::vector<std::string> out;
  for (const auto& arg : v) {
    auto items = split_go_string_slice(arg);
    if (!items) return Error(items.error());
    out.insert(out.end(), items->begin(), items->end());
  }
  return out;
}

Status set_listen(const std::vector<std::string>& v, ListenAddress& out) {
  // kube-proxy's IPPortVar ignores an empty value, leaving the default in place.
  if (last(v).empty()) return {};
  auto hp = parse_listen_address(last(v));
  if (!hp) return Error(hp.error());
  out.address = *hp;
  out.disabled = false;
  return {};
}

Duration& mode_sync_period(KubeProxyConfiguration& c) {
  return c.mode == ProxyMode::kIpvs ? c.ipvs.sync_period : c.iptables.sync_period;
}
Duration& mode_min_sync_period(KubeProxyConfiguration& c) {
  return c.mode == ProxyMode::kIpvs ? c.ipvs.min_sync_period : c.iptables.min_sync_period;
}

constexpr std::string_view kIgnoredWithConfig = " This parameter is ignored if a config file is specified by --config.";

// Every flag kproxy accepts, in the order --help lists them. The help texts say what
// kube-proxy's say; docs/flags.md adds kproxy's status for each.
const std::vector<Flag>& flags() {
  static const std::vector<Flag> table = {
      {"bind-address", 0, "ip", "0.0.0.0", Scope::kConfig, "bindAddress", false,
       "Overrides kproxy's idea of what its node's primary IP is. Despite the name, no socket is bound to it.",
       "",
       [](State& s, const std::vector<std::string>& v) -> Status {
         if (last(v).empty()) return {};  // IPVar ignores an empty value
         auto ip = IpAddress::parse(last(v));
         if (!ip) return Error(in_quotes(last(v)) + " is not a valid IP address");
         s.config.bind_address = *ip;
         return {};
       }},
      {"bind-address-hard-fail", 0, "", "", Scope::kConfig, "bindAddressHardFail", false,
       "If true kproxy treats failure to bind to a port (healthz, metrics) as fatal and exits.", "",
       [](State& s, const std::vector<std::string>& v) { return set_bool(v, s.config.bind_address_hard_fail); }},
      {"cleanup", 0, "", "", Scope::kAction, "", false, "If true cleanup iptables and ipvs rules and exit.", "",
       [](State& s, const std::vector<std::string>& v) { return set_bool(v, s.out.cleanup); }},
      {"cluster-cidr", 0, "string", "", Scope::kConfig, "clusterCIDR", false,
       "The CIDR range of the pods in the cluster (for dual-stack clusters, a comma-separated dual-stack pair). When "
       "--detect-local-mode is ClusterCIDR, traffic whose source IP is in this range is considered local.",
       "",
       [](State& s, const std::vector<std::string>& v) -> Status {
         s.config.cluster_cidrs.clear();
         if (last(v).empty()) return {};
         std::string_view rest = last(v);
         while (true) {
           const std::size_t comma = rest.find(',');
           const std::string_view part = rest.substr(0, comma);
           auto cidr = Cidr::parse(part);
           if (!cidr) return Error(in_quotes(part) + " must be a valid CIDR block (e.g. 10.100.0.0/16 or fde4:8dba:82e1::/48)");
           s.config.cluster_cidrs.push_back(*cidr);
           if (comma == std::string_view::npos) break;
           rest.remove_prefix(comma + 1);
         }
         return {};
       }},
      {"config", 0, "string", "", Scope::kAction, "", false, "The path to the configuration file.", "",
       [](State& s, const std::vector<std::string>& v) -> Status {
         s.out.config_file = last(v);
         return {};
       }},
      {"config-sync-period", 0, "duration", "15m0s", Scope::kConfig, "configSyncPeriod", false,
       "How often configuration from the apiserver is refreshed. Must be greater than 0.", "",
       [](State& s, const std::vector<std::string>& v) { return set_duration(v, s.config.config_sync_period); }},
      {"conntrack-max-per-core", 0, "int32", "32768", Scope::kConfig, "conntrack.maxPerCore", false,
       "Maximum number of NAT connections to track per CPU core (0 to leave the limit as-is and ignore conntrack-min).",
       "", [](State& s, const std::vector<std::string>& v) { return set_optional_int32(v, s.config.conntrack.max_per_core); }},
      {"conntrack-min", 0, "int32", "131072", Scope::kConfig, "conntrack.min", false,
       "Minimum number of conntrack entries to allocate, regardless of conntrack-max-per-core (set "
       "conntrack-max-per-core=0 to leave the limit as-is).",
       "", [](State& s, const std::vector<std::string>& v) { return set_optional_int32(v, s.config.conntrack.min); }},
      {"conntrack-tcp-be-liberal", 0, "", "", Scope::kConfig, "conntrack.tcpBeLiberal", false,
       "Enable liberal mode for tracking TCP packets by setting nf_conntrack_tcp_be_liberal to 1.", "",
       [](State& s, const std::vector<std::string>& v) { return set_bool(v, s.config.conntrack.tcp_be_liberal); }},
      {"conntrack-tcp-timeout-close-wait", 0, "duration", "1h0m0s", Scope::kConfig, "conntrack.tcpCloseWaitTimeout", false,
       "NAT timeout for TCP connections in the CLOSE_WAIT state.", "",
       [](State& s, const std::vector<std::string>& v) {
         return set_optional_duration(v, s.config.conntrack.tcp_close_wait_timeout);
       }},
      {"conntrack-tcp-timeout-established", 0, "duration", "24h0m0s", Scope::kConfig, "conntrack.tcpEstablishedTimeout",
       false, "Idle timeout for established TCP connections (0 to leave as-is).", "",
       [](State& s, const std::vector<std::string>& v) {
         return set_optional_duration(v, s.config.conntrack.tcp_established_timeout);
       }},
      {"conntrack-udp-timeout", 0, "duration", "0s", Scope::kConfig, "conntrack.udpTimeout", false,
       "Idle timeout for UNREPLIED UDP connections (0 to leave as-is).", "",
       [](State& s, const std::vector<std::string>& v) { return set_duration(v, s.config.conntrack.udp_timeout); }},
      {"conntrack-udp-timeout-stream", 0, "duration", "0s", Scope::kConfig, "conntrack.udpStreamTimeout", false,
       "Idle timeout for ASSURED UDP connections (0 to leave as-is).", "",
       [](State& s, const std::vector<std::string>& v) { return set_duration(v, s.config.conntrack.udp_stream_timeout); }},
      {"detect-local-mode", 0, "LocalMode", "ClusterCIDR", Scope::kConfig, "detectLocalMode", false,
       "Mode to use to detect local traffic: ClusterCIDR, NodeCIDR, BridgeInterface or InterfaceNamePrefix.", "",
       [](State& s, const std::vector<std::string>& v) -> Status {
         auto m = parse_local_mode(last(v));
         if (!m) return Error(m.error());
         s.config.detect_local_mode = *m;
         return {};
       }},
      {"feature-gates", 0, "mapStringBool", "", Scope::kConfig, "featureGates", true,
       "A set of key=value pairs that describe feature gates for alpha/experimental features (accepted; kproxy has no "
       "feature gates, so they have no effect).",
       "",
       [](State& s, const std::vector<std::string>& v) -> Status {
         for (const auto& arg : v) {
           auto m = parse_go_map_string_bool(arg);
           if (!m) return Error(m.error());
           for (const auto& [k, b] : *m) s.config.feature_gates[k] = b;
         }
         return {};
       }},
      {"healthz-bind-address", 0, "ipport", "0.0.0.0:10256", Scope::kConfig, "healthzBindAddress", false,
       "The IP address and port for the health check server to serve on (an IP alone gets port --healthz-port). "
       "An empty value keeps the default, as in kube-proxy; --healthz-port=0 disables the server.",
       "", [](State& s, const std::vector<std::string>& v) { return set_listen(v, s.config.healthz_bind_address); }},
      {"healthz-port", 0, "int32", "10256", Scope::kConfig, "healthzBindAddress", false,
       "The port to bind the health check server to when --healthz-bind-address has none. Use 0 to disable.",
       "--healthz-port is deprecated (as in kube-proxy); use --healthz-bind-address",
       [](State& s, const std::vector<std::string>& v) { return set_optional_int32(v, s.healthz_port); }},
      {"help", 'h', "", "", Scope::kAction, "", false, "help for kproxy", "",
       [](State& s, const std::vector<std::string>& v) { return set_bool(v, s.help); }},
      {"hostname-override", 0, "string", "", Scope::kOverride, "hostnameOverride", false,
       "If non-empty, will be used as the name of the Node that kproxy is running on. If unset, the node name is assumed "
       "to be the same as the node's hostname. Applies even with --config.",
       "",
       [](State& s, const std::vector<std::string>& v) -> Status {
         s.hostname_override = last(v);
         return {};
       }},
      {"init-only", 0, "", "", Scope::kAction, "", false,
       "If true, perform any initialization steps that must be done with full root privileges, and then exit.", "",
       [](State& s, const std::vector<std::string>& v) { return set_bool(v, s.out.init_only); }},
      {"iptables-applier", 0, "string", "auto", Scope::kConfig, "kproxy.iptablesApplier", false,
       "kproxy: how iptables mode writes its rules: \"restore\" (iptables-restore), \"libiptc\" (in-process, "
       "legacy-iptables nodes only) or \"auto\" (libiptc where the node's iptables is legacy, iptables-restore where "
       "it is nft). libiptc writes IPv4 only: IPv6 rules always go through ip6tables-restore.",
       "",
       [](State& s, const std::vector<std::string>& v) -> Status {
         auto a = parse_iptables_applier(last(v));
         if (!a) return Error(a.error());
         s.config.kproxy.iptables_applier = *a;
         return {};
       }},
      {"iptables-localhost-nodeports", 0, "", "true", Scope::kConfig, "iptables.localhostNodePorts", false,
       "If false, disable the legacy behavior of allowing NodePort services to be accessed via localhost (iptables mode "
       "and IPv4 only).",
       "",
       [](State& s, const std::vector<std::string>& v) -> Status {
         bool b = true;
         if (auto st = set_bool(v, b); !st) return st;
         s.config.iptables.localhost_node_ports = b;
         return {};
       }},
      {"iptables-masquerade-bit", 0, "int32", "14", Scope::kConfig, "iptables.masqueradeBit", false,
       "If using the iptables or ipvs proxy mode, the bit of the fwmark space to mark packets requiring SNAT with. Must "
       "be within the range [0, 31].",
       "", [](State& s, const std::vector<std::string>& v) { return set_optional_int32(v, s.config.iptables.masquerade_bit); }},
      {"iptables-min-sync-period", 0, "duration", "1s", Scope::kConfig, "iptables.minSyncPeriod", false,
       "The minimum period between iptables rule resyncs (e.g. '5s', '1m', '2h22m'). A value of 0 means every Service or "
       "EndpointSlice change will result in an immediate iptables resync.",
       "", [](State& s, const std::vector<std::string>& v) { return set_duration(v, s.config.iptables.min_sync_period); }},
      {"iptables-sync-period", 0, "duration", "30s", Scope::kConfig, "iptables.syncPeriod", false,
       "An interval (e.g. '5s', '1m', '2h22m') indicating how frequently various re-synchronizing and cleanup operations "
       "are performed. Must be greater than 0.",
       "", [](State& s, const std::vector<std::string>& v) { return set_duration(v, s.config.iptables.sync_period); }},
      {"ipvs-exclude-cidrs", 0, "strings", "", Scope::kConfig, "ipvs.excludeCIDRs", true,
       "A comma-separated list of CIDRs which the ipvs proxier should not touch when cleaning up IPVS rules.", "",
       [](State& s, const std::vector<std::string>& v) -> Status {
         auto items = string_slice(v);
         if (!items) return Error(items.error());
         s.config.ipvs.exclude_cidrs.clear();
         for (const auto& item : *items) {
           auto cidr = Cidr::parse(item);
           if (!cidr) return Error(in_quotes(item) + " must be a valid CIDR");
           s.config.ipvs.exclude_cidrs.push_back(*cidr);
         }
         return {};
       }},
      {"ipvs-min-sync-period", 0, "duration", "0s", Scope::kConfig, "ipvs.minSyncPeriod", false,
       "The minimum period between IPVS rule resyncs (e.g. '5s', '1m', '2h22m'). A value of 0 means every Service or "
       "EndpointSlice change will result in an immediate IPVS resync.",
       "", [](State& s, const std::vector<std::string>& v) { return set_duration(v, s.config.ipvs.min_sync_period); }},
      {"ipvs-scheduler", 0, "string", "", Scope::kConfig, "ipvs.scheduler", false,
       "The ipvs scheduler type when proxy mode is ipvs (blank: rr).", "",
       [](State& s, const std::vector<std::string>& v) -> Status {
         s.config.ipvs.scheduler = last(v);
         return {};
       }},
      {"ipvs-strict-arp", 0, "", "", Scope::kConfig, "ipvs.strictARP", false,
       "Enable strict ARP by setting arp_ignore to 1 and arp_announce to 2.", "",
       [](State& s, const std::vector<std::string>& v) { return set_bool(v, s.config.ipvs.strict_arp); }},
      {"ipvs-sync-period", 0, "duration", "30s", Scope::kConfig, "ipvs.syncPeriod", false,
       "An interval (e.g. '5s', '1m', '2h22m') indicating how frequently various re-synchronizing and cleanup operations "
       "are performed in ipvs mode. Must be greater than 0.",
       "", [](State& s, const std::vector<std::string>& v) { return set_duration(v, s.config.ipvs.sync_period); }},
      {"ipvs-tcp-timeout", 0, "duration", "0s", Scope::kConfig, "ipvs.tcpTimeout", false,
       "The timeout for idle IPVS TCP connections, 0 to leave as-is (e.g. '5s', '1m', '2h22m').", "",
       [](State& s, const std::vector<std::string>& v) { return set_duration(v, s.config.ipvs.tcp_timeout); }},
      {"ipvs-tcpfin-timeout", 0, "duration", "0s", Scope::kConfig, "ipvs.tcpFinTimeout", false,
       "The timeout for IPVS TCP connections after receiving a FIN packet, 0 to leave as-is (e.g. '5s', '1m', '2h22m').",
       "", [](State& s, const std::vector<std::string>& v) { return set_duration(v, s.config.ipvs.tcp_fin_timeout); }},
      {"ipvs-udp-timeout", 0, "duration", "0s", Scope::kConfig, "ipvs.udpTimeout", false,
       "The timeout for IPVS UDP packets, 0 to leave as-is (e.g. '5s', '1m', '2h22m').", "",
       [](State& s, const std::vector<std::string>& v) { return set_duration(v, s.config.ipvs.udp_timeout); }},
      {"kube-api-burst", 0, "int32", "10", Scope::kConfig, "clientConnection.burst", false,
       "Burst to use while talking with kubernetes apiserver.", "",
       [](State& s, const std::vector<std::string>& v) { return set_int32(v, s.config.client_connection.burst); }},
      {"kube-api-content-type", 0, "string", "application/vnd.kubernetes.protobuf", Scope::kConfig,
       "clientConnection.contentType", false, "Content type of requests sent to apiserver.", "",
       [](State& s, const std::vector<std::string>& v) -> Status {
         s.config.client_connection.content_type = last(v);
         return {};
       }},
      {"kube-api-qps", 0, "float32", "5", Scope::kConfig, "clientConnection.qps", false,
       "QPS to use while talking with kubernetes apiserver.", "",
       [](State& s, const std::vector<std::string>& v) -> Status {
         auto f = parse_go_float32(last(v));
         if (!f) return Error(f.error());
         s.config.client_connection.qps = *f;
         return {};
       }},
      {"kubeconfig", 0, "string", "", Scope::kConfig, "clientConnection.kubeconfig", false,
       "Path to kubeconfig file with authorization information (the master location can be overridden by the master "
       "flag).",
       "",
       [](State& s, const std::vector<std::string>& v) -> Status {
         s.config.client_connection.kubeconfig = last(v);
         return {};
       }},
      {"log-flush-frequency", 0, "duration", "5s", Scope::kOverride, "logging.flushFrequency", false,
       "Maximum number of seconds between log flushes.", "",
       [](State& s, const std::vector<std::string>& v) { return set_duration(v, s.config.logging.flush_frequency); }},
      {"log-json-info-buffer-size", 0, "quantity", "", Scope::kOverride, "", false,
       "[Alpha] In JSON format with split output streams, the info messages can be buffered for a while to increase "
       "performance.",
       "--log-json-info-buffer-size is accepted for compatibility and has no effect in kproxy",
       [](State&, const std::vector<std::string>&) -> Status { return {}; }},
      {"log-json-split-stream", 0, "", "", Scope::kOverride, "", false,
       "[Alpha] In JSON format, write error messages to stderr and info messages to stdout.",
       "--log-json-split-stream is accepted for compatibility and has no effect in kproxy",
       [](State&, const std::vector<std::string>& v) -> Status {
         bool b = false;
         return set_bool(v, b);
       }},
      {"log-text-info-buffer-size", 0, "quantity", "", Scope::kOverride, "", false,
       "[Alpha] In text format with split output streams, the info messages can be buffered for a while to increase "
       "performance.",
       "--log-text-info-buffer-size is accepted for compatibility and has no effect in kproxy",
       [](State&, const std::vector<std::string>&) -> Status { return {}; }},
      {"log-text-split-stream", 0, "", "", Scope::kOverride, "", false,
       "[Alpha] In text format, write error messages to stderr and info messages to stdout.",
       "--log-text-split-stream is accepted for compatibility and has no effect in kproxy",
       [](State&, const std::vector<std::string>& v) -> Status {
         bool b = false;
         return set_bool(v, b);
       }},
      {"logging-format", 0, "string", "text", Scope::kOverride, "logging.format", false,
       "Sets the log format. Permitted formats: \"json\" (accepted, kproxy writes text), \"text\".", "",
       [](State& s, const std::vector<std::string>& v) -> Status {
         s.config.logging.format = last(v);
         return {};
       }},
      {"manifests", 0, "string", "", Scope::kOverride, "kproxy.manifests", false,
       "kproxy: run without an API server, from the Service, EndpointSlice and Node manifests (YAML or JSON) in this "
       "directory. Applies even with --config.",
       "",
       [](State& s, const std::vector<std::string>& v) -> Status {
         if (last(v).empty()) return Error("must name a directory");
         s.config.kproxy.manifests_dir = last(v);
         return {};
       }},
      {"masquerade-all", 0, "", "", Scope::kConfig, "iptables.masqueradeAll", false,
       "SNAT all traffic sent via Service cluster IPs. This may be required with some CNI plugins.", "",
       [](State& s, const std::vector<std::string>& v) { return set_bool(v, s.config.iptables.masquerade_all); }},
      {"master", 0, "string", "", Scope::kAction, "", false,
       "The address of the Kubernetes API server (overrides any value in kubeconfig).", "",
       [](State& s, const std::vector<std::string>& v) -> Status {
         s.out.master = last(v);
         return {};
       }},
      {"metrics-bind-address", 0, "ipport", "127.0.0.1:10249", Scope::kConfig, "metricsBindAddress", false,
       "The IP address and port for the metrics server to serve on (set to '0.0.0.0:10249' / '[::]:10249' to bind on "
       "all interfaces). An empty value keeps the default, as in kube-proxy; --metrics-port=0 disables the server.",
       "", [](State& s, const std::vector<std::string>& v) { return set_listen(v, s.config.metrics_bind_address); }},
      {"metrics-port", 0, "int32", "10249", Scope::kConfig, "metricsBindAddress", false,
       "The port to bind the metrics server to when --metrics-bind-address has none. Use 0 to disable.",
       "--metrics-port is deprecated (as in kube-proxy); use --metrics-bind-address",
       [](State& s, const std::vector<std::string>& v) { return set_optional_int32(v, s.metrics_port); }},
      {"min-sync-period", 0, "duration", "1s", Scope::kConfig, "", false,
       "The minimum period between rule resyncs of the selected proxy mode (the same as --iptables-min-sync-period or "
       "--ipvs-min-sync-period).",
       "",
       [](State& s, const std::vector<std::string>& v) { return set_duration(v, mode_min_sync_period(s.config)); }},
      {"nodeport-addresses", 0, "strings", "", Scope::kConfig, "nodePortAddresses", true,
       "A list of CIDR ranges that contain valid node IPs, or alternatively, the single string 'primary'. If set to "
       "CIDRs, connections to NodePort services are only accepted on node IPs in one of them; if 'primary', only on the "
       "node's primary IP(s) according to the Node object. If unset, NodePort connections are accepted on all local IPs.",
       "",
       [](State& s, const std::vector<std::string>& v) -> Status {
         auto items = string_slice(v);
         if (!items) return Error(items.error());
         auto npa = parse_node_port_addresses(*items);
         if (!npa) return Error(npa.error());
         s.config.node_port_addresses = *npa;
         return {};
       }},
      {"oom-score-adj", 0, "int32", "-999", Scope::kConfig, "oomScoreAdj", false,
       "The oom-score-adj value for the kproxy process. Values must be within the range [-1000, 1000].", "",
       [](State& s, const std::vector<std::string>& v) { return set_optional_int32(v, s.config.oom_score_adj); }},
      {"pod-bridge-interface", 0, "string", "", Scope::kConfig, "detectLocal.bridgeInterface", false,
       "A bridge interface name. When --detect-local-mode is BridgeInterface, traffic from this bridge is considered "
       "local.",
       "",
       [](State& s, const std::vector<std::string>& v) -> Status {
         s.config.detect_local.bridge_interface = last(v);
         return {};
       }},
      {"pod-interface-name-prefix", 0, "string", "", Scope::kConfig, "detectLocal.interfaceNamePrefix", false,
       "An interface name prefix. When --detect-local-mode is InterfaceNamePrefix, traffic from any interface whose "
       "name begins with it is considered local.",
       "",
       [](State& s, const std::vector<std::string>& v) -> Status {
         s.config.detect_local.interface_name_prefix = last(v);
         return {};
       }},
      {"profiling", 0, "", "", Scope::kConfig, "enableProfiling", false,
       "If true enables profiling via web interface on /debug/pprof handler (Go only: no effect in kproxy).", "",
       [](State& s, const std::vector<std::string>& v) { return set_bool(v, s.config.enable_profiling); }},
      {"proxy-mode", 0, "ProxyMode", "iptables", Scope::kConfig, "mode", false,
       "Which proxy mode to use: 'iptables' (default) or 'ipvs'.", "",
       [](State& s, const std::vector<std::string>& v) -> Status {
         auto m = parse_proxy_mode(last(v));
         if (!m) return Error(m.error());
         s.config.mode = *m;
         return {};
       }},
      {"proxy-port-range", 0, "port-range", "", Scope::kConfig, "portRange", false,
       "Unused since kube-proxy removed its userspace proxier; accepted so that old command lines keep working.",
       "",
       [](State& s, const std::vector<std::string>& v) -> Status {
         s.config.port_range = last(v);
         return {};
       }},
      {"sctp-userspace-allow-kernel-sctp", 0, "", "", Scope::kConfig, "kproxy.sctpUserspaceAllowKernelSctp", false,
       "kproxy: start in --sctp-userspace-mode even when the kernel's SCTP module is loaded (it ABORTs the "
       "associations of userspace SCTP stacks on this node).",
       "",
       [](State& s, const std::vector<std::string>& v) {
         return set_bool(v, s.config.kproxy.sctp_userspace_allow_kernel_sctp);
       }},
      {"sctp-userspace-max-associations", 0, "int32", "10000", Scope::kConfig, "kproxy.sctpUserspaceMaxAssociations",
       false,
       "kproxy: the most client associations the userspace SCTP proxy relays at once; INITs beyond it are answered "
       "with ABORT.",
       "",
       [](State& s, const std::vector<std::string>& v) {
         return set_int32(v, s.config.kproxy.sctp_userspace_max_associations);
       }},
      {"sctp-userspace-mode", 0, "", "", Scope::kConfig, "kproxy.sctpUserspaceMode", false,
       "kproxy: run this node for workloads with their own userspace SCTP stack: taint the node with "
       "--sctp-userspace-taint, refuse to start if the kernel's SCTP module is loaded, write no SCTP rule (no -p "
       "sctp), and serve SCTP Services with kproxy's userspace SCTP proxy (usrsctp; needs CAP_NET_RAW), their "
       "addresses made local on lo. Without this flag kproxy removes the taint and those addresses.",
       "",
       [](State& s, const std::vector<std::string>& v) { return set_bool(v, s.config.kproxy.sctp_userspace_mode); }},
      {"sctp-userspace-taint", 0, "string", KproxyExtension::kDefaultSctpTaint, Scope::kConfig,
       "kproxy.sctpUserspaceTaint", false,
       "kproxy: the taint (key=value:Effect or key:Effect) kept on the node while --sctp-userspace-mode is on.", "",
       [](State& s, const std::vector<std::string>& v) -> Status {
         auto t = Taint::parse(last(v));
         if (!t) return Error(t.error());
         s.config.kproxy.sctp_userspace_taint = *t;
         return {};
       }},
      {"show-hidden-metrics-for-version", 0, "string", "", Scope::kConfig, "showHiddenMetricsForVersion", false,
       "The previous version for which you want to show hidden metrics (<major>.<minor>, e.g. '1.16'). kproxy hides no "
       "metrics, so this has no effect.",
       "",
       [](State& s, const std::vector<std::string>& v) -> Status {
         s.config.show_hidden_metrics_for_version = last(v);
         return {};
       }},
      {"sync-period", 0, "duration", "30s", Scope::kConfig, "", false,
       "How often the rules of the selected proxy mode are fully resynchronized (the same as --iptables-sync-period or "
       "--ipvs-sync-period). Must be greater than 0.",
       "", [](State& s, const std::vector<std::string>& v) { return set_duration(v, mode_sync_period(s.config)); }},
      {"v", 'v', "Level", "0", Scope::kOverride, "logging.verbosity", false,
       "Number for the log level verbosity (0: startup and errors, 2: one line per sync, 4: per-object detail).", "",
       [](State& s, const std::vector<std::string>& v) -> Status {
         auto n = parse_go_int32(last(v));
         if (!n || *n < 0 || last(v).find_first_not_of("0123456789") != std::string::npos) {
           return Error("strconv.ParseUint: parsing " + in_quotes(last(v)) + ": invalid syntax");
         }
         s.config.logging.verbosity = *n;
         return {};
       }},
      {"version", 0, "", "", Scope::kAction, "", false, "Print version information and quit; --version=raw prints the same.",
       "",
       [](State& s, const std::vector<std::string>& v) -> Status {
         if (last(v) == "raw") {
           s.version = true;
           return {};
         }
         return set_bool(v, s.version);
       }},
      {"vmodule", 0, "pattern=N,...", "", Scope::kOverride, "logging.vmodule", true,
       "Comma-separated list of pattern=N settings for file-filtered logging (accepted; kproxy logs by -v only).", "",
       [](State& s, const std::vector<std::string>& v) -> Status {
         s.config.logging.vmodule.clear();
         for (const auto& arg : v) {
           std::string_view rest = arg;
           while (!rest.empty()) {
             const std::size_t comma = rest.find(',');
             const std::string_view entry = rest.substr(0, comma);
             if (auto st = validate_vmodule_entry(entry); !st) return st;
             s.config.logging.vmodule.emplace_back(entry);
             if (comma == std::string_view::npos) break;
             rest.remove_prefix(comma + 1);
           }
         }
         return {};
       }},
      {"write-config-to", 0, "string", "", Scope::kAction, "", false,
       "If set, write the effective configuration to this file and exit.", "",
       [](State& s, const std::vector<std::string>& v) -> Status {
         s.out.write_config_to = last(v);
         return {};
       }},
  };
  return table;
}

const Flag* find_flag(std::string_view name) {
  for (const auto& f : flags()) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

std::string flag_error(std::string_view name, std::string_view value, std::string_view detail) {
  return "kproxy: invalid value " + in_quotes(value) + " for flag --" + std::string(name) + ": " + std::string(detail);
}

std::string join_values(const Flag& flag, const std::vector<std::string>& values) {
  if (!flag.list) return values.back();
  std::string out;
  for (const auto& v : values) out += (out.empty() ? "" : ",") + v;
  return out;
}

// Rewrites the two spellings that pflag reads and CLI11 does not, leaving everything else
// to CLI11: "-v=2" (CLI11 would read the value "=2") becomes "-v2", and "--flag=" (an
// explicitly empty value, which CLI11 takes for a missing one) becomes "--flag" "".
Expected<std::vector<std::string>> normalize(std::span<const char* const> argv) {
  std::vector<std::string> out;
  bool after_terminator = false;
  for (std::size_t i = 1; i < argv.size(); ++i) {
    std::string arg = argv[i] ? argv[i] : "";
    if (after_terminator) {
      out.push_back(std::move(arg));
      continue;
    }
    if (arg == "--") after_terminator = true;
    if (arg.size() >= 3 && arg[0] == '-' && arg[1] != '-' && arg[2] == '=') arg.erase(2, 1);
    if (arg.size() > 3 && arg.rfind("--", 0) == 0 && arg.back() == '=' && arg.find('=') == arg.size() - 1) {
      const std::string name = arg.substr(2, arg.size() - 3);
      if (const Flag* f = find_flag(name)) {
        if (f->is_bool()) return Error(flag_error(name, "", parse_go_bool("").error()));
        out.push_back("--" + name);
        out.emplace_back();
        continue;
      }
    }
    out.push_back(std::move(arg));
  }
  return out;
}

// Warnings about settings kproxy reads but does not act on, from the effective
// configuration (so they come out the same whether a flag or the file set them).
void no_effect_warnings(const KubeProxyConfiguration& c, std::vector<std::string>& warnings) {
  if (c.enable_profiling) warnings.emplace_back("enableProfiling is set but kproxy has no profiling handlers; ignoring it");
  if (!c.show_hidden_metrics_for_version.empty()) {
    warnings.emplace_back("showHiddenMetricsForVersion " + in_quotes(c.show_hidden_metrics_for_version) +
                          " has no effect: kproxy hides no metrics");
  }
  if (c.logging.format == "json") warnings.emplace_back("logging format \"json\" is not implemented; kproxy logs text");
  if (!c.logging.vmodule.empty()) warnings.emplace_back("vmodule settings have no effect; kproxy filters logs by -v only");
  if (!c.port_range.empty()) warnings.emplace_back("portRange " + in_quotes(c.port_range) + " has no effect");
  if (!c.feature_gates.empty()) {
    std::string gates;
    for (const auto& [k, v] : c.feature_gates) gates += (gates.empty() ? "" : ",") + k + "=" + (v ? "true" : "false");
    warnings.emplace_back("featureGates " + gates + " have no effect: kproxy has no feature gates");
  }
}

std::string wrap(std::string_view text, std::size_t indent, std::size_t width) {
  std::string out;
  std::size_t column = indent;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find(' ', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view word = text.substr(pos, end - pos);
    if (column > indent && column + 1 + word.size() > width) {
      out += "\n" + std::string(indent, ' ');
      column = indent;
    } else if (column > indent) {
      out += ' ';
      ++column;
    }
    out += word;
    column += word.size();
    pos = end + 1;
  }
  return out;
}

}  // namespace

std::string help_text() {
  std::string out =
      "kproxy is a drop-in replacement for kube-proxy: it runs on each node and reflects the\n"
      "Services and EndpointSlices of the Kubernetes API into iptables rules, or with\n"
      "--proxy-mode=ipvs into IPVS virtual services (docs/ipvs.md). It takes\n"
      "kube-proxy's flags and KubeProxyConfiguration file; see docs/flags.md.\n\n"
      "Usage:\n  kproxy [flags]\n\nFlags:\n";
  std::vector<std::pair<std::string, const Flag*>> rows;
  std::size_t widest = 0;
  for (const auto& f : flags()) {
    std::string left = f.shorthand ? std::string("  -") + f.shorthand + ", --" : std::string("      --");
    left += std::string(f.name);
    if (!f.is_bool()) left += " " + std::string(f.type);
    widest = std::max(widest, left.size());
    rows.emplace_back(std::move(left), &f);
  }
  constexpr std::size_t kWidth = 120;
  constexpr std::size_t kMaxLeft = 44;  // longer flag columns put their help on the next line
  widest = std::min(widest, kMaxLeft);
  for (const auto& [left, f] : rows) {
    std::string help(f->help);
    if (f->scope == Scope::kConfig) help += kIgnoredWithConfig;
    if (!f->def.empty()) help += " (default " + std::string(f->def) + ")";
    if (!f->note.empty()) help += " [" + std::string(f->note) + "]";
    const std::string gap = left.size() <= widest ? std::string(widest - left.size() + 3, ' ')
                                                   : "\n" + std::string(widest + 3, ' ');
    out += left + gap + wrap(help, widest + 3, kWidth) + "\n";
  }
  return out;
}

std::string version_text() { return std::string("kproxy v") + kVersion + "\n"; }

std::string ignored_flags_warning(const CommandLine& command_line) {
  if (command_line.ignored_flags.empty()) return "";
  std::string names;
  for (const auto& f : command_line.ignored_flags) names += (names.empty() ? "" : ", ") + f;
  return "ignoring flag" + std::string(command_line.ignored_flags.size() > 1 ? "s " : " ") + names +
         ": a config file was given with --config, and kube-proxy ignores the flags that the file covers";
}

Expected<CommandLine> parse_command_line(std::span<const char* const> argv) {
  // 1. Syntax, with CLI11: every flag collects its raw text values.
  CLI::App app("kproxy", "kproxy");
  app.set_help_flag();  // kproxy's own -h/--help below, so that it is one flag among the others
  app.allow_extras();   // unknown flags and arguments are reported below, as pflag words them
  std::map<std::string_view, std::vector<std::string>> raw;
  std::map<std::string_view, CLI::Option*> options;
  for (const auto& f : flags()) {
    std::string names = "--" + std::string(f.name);
    if (f.shorthand) names = std::string("-") + f.shorthand + "," + names;
    auto& values = raw[f.name];
    CLI::Option* opt = f.is_bool() ? app.add_flag(names, values) : app.add_option(names, values);
    opt->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)->allow_extra_args(false);
    options[f.name] = opt;
  }
  auto args = normalize(argv);
  if (!args) return Error(args.error());
  std::vector<std::string> reversed(args->rbegin(), args->rend());  // CLI11 takes them last-first
  try {
    app.parse(reversed);
  } catch (const CLI::ArgumentMismatch& e) {
    std::string what = e.what();
    return Error("kproxy: flag needs an argument: " + what.substr(0, what.find(':')));
  } catch (const CLI::ParseError& e) {
    return Error(std::string("kproxy: ") + e.what());
  }
  for (const auto& extra : app.remaining()) {
    if (extra.size() > 1 && extra[0] == '-' && extra != "--") {
      return Error("kproxy: unknown flag: " + extra.substr(0, extra.find('=')));
    }
  }
  for (const auto& extra : app.remaining()) {
    if (extra != "--" && !extra.empty()) return Error("kproxy: kproxy does not take any arguments, got " + in_quotes(extra));
  }

  // 2. Values. Action and override flags first, so that we know whether a file is used.
  CommandLine out;
  KubeProxyConfiguration config = default_configuration();
  State state{config, out, {}, {}, {}, false, false};
  std::map<std::string, std::pair<const Flag*, std::string>> origin;  // field -> flag, raw value
  auto given = [&](const Flag& f) { return options.at(f.name)->count() > 0; };
  auto apply = [&](const Flag& f) -> Status {
    const auto& values = raw.at(f.name);
    if (auto s = f.apply(state, values); !s) return Error(flag_error(f.name, join_values(f, values), s.message()));
    std::string field(f.field);
    if (f.name == "sync-period" || f.name == "min-sync-period") {
      // These land in the selected mode's section.
      field = std::string(config.mode == ProxyMode::kIpvs ? "ipvs." : "iptables.") +
              (f.name == "sync-period" ? "syncPeriod" : "minSyncPeriod");
    }
    if (!field.empty()) origin[field] = {&f, join_values(f, values)};
    if (!f.note.empty()) out.warnings.emplace_back(f.note);
    return {};
  };
  for (const auto& f : flags()) {
    if (f.scope == Scope::kAction && given(f)) {
      if (auto s = apply(f); !s) return Error(s.message());
    }
  }
  if (state.help) {
    out.exit_after_output = true;
    out.output = help_text();
    return out;
  }
  if (state.version) {
    out.exit_after_output = true;
    out.output = version_text();
    return out;
  }

  if (!out.config_file.empty()) {
    auto decoded = load_config_file(out.config_file);
    if (!decoded) return Error("kproxy: " + decoded.error());
    config = std::move(decoded->config);
    apply_defaults(config);
    out.warnings.insert(out.warnings.end(), decoded->warnings.begin(), decoded->warnings.end());
    // pflag has parsed (and so checked) every flag before kube-proxy drops the covered ones;
    // apply them to a scratch copy for the same errors, then report them as ignored.
    KubeProxyConfiguration scratch_config = default_configuration();
    CommandLine scratch_out;
    State scratch{scratch_config, scratch_out, {}, {}, {}, false, false};
    for (const auto& f : flags()) {
      if (f.scope != Scope::kConfig || !given(f)) continue;
      const auto& values = raw.at(f.name);
      if (auto s = f.apply(scratch, values); !s) return Error(flag_error(f.name, join_values(f, values), s.message()));
      out.ignored_flags.push_back("--" + std::string(f.name));
    }
  } else {
    // The mode decides where --sync-period and --min-sync-period go, so it goes first.
    if (const Flag* mode = find_flag("proxy-mode"); given(*mode)) {
      if (auto s = apply(*mode); !s) return Error(s.message());
    }
    for (const auto& f : flags()) {
      if (f.scope == Scope::kConfig && f.name != "proxy-mode" && given(f)) {
        if (auto s = apply(f); !s) return Error(s.message());
      }
    }
  }
  for (const auto& f : flags()) {
    if (f.scope == Scope::kOverride && given(f)) {
      if (auto s = apply(f); !s) return Error(s.message());
    }
  }

  // 3. What kube-proxy's Options.Complete() does after the flags.
  if (out.config_file.empty() && out.write_config_to.empty()) {
    // addressFromDeprecatedFlags: port 0 disables the server, otherwise it completes an IP
    // given without a port.
    auto complete = [](ListenAddress& a, std::optional<std::int32_t> port, std::uint16_t def) -> Status {
      const std::int32_t p = port.value_or(def);
      if (p == 0) {
        a.disabled = true;
        return {};
      }
      if (p < 0 || p > 65535) return Error(std::to_string(p) + " is not a valid port");
      if (a.address && a.address->port == 0) a.address->port = static_cast<std::uint16_t>(p);
      return {};
    };
    if (auto s = complete(config.healthz_bind_address, state.healthz_port, 10256); !s) {
      return Error(flag_error("healthz-port", std::to_string(*state.healthz_port), s.message()));
    }
    if (auto s = complete(config.metrics_bind_address, state.metrics_port, 10249); !s) {
      return Error(flag_error("metrics-port", std::to_string(*state.metrics_port), s.message()));
    }
  }
  apply_platform_defaults(config);
  // processHostnameOverrideFlag: a non-empty flag wins over the file, trimmed and lower-cased.
  if (!state.hostname_override.empty()) {
    std::string name = state.hostname_override;
    name.erase(0, name.find_first_not_of(" \t\n\r"));
    name.erase(name.find_last_not_of(" \t\n\r") + 1);
    if (name.empty()) return Error(flag_error("hostname-override", state.hostname_override, "empty hostname-override is invalid"));
    config.hostname_override = name;
  }
  {
    // The node name is used lower-cased and trimmed (nodeutil.GetHostname), from either source.
    std::string& name = config.hostname_override;
    name.erase(0, name.find_first_not_of(" \t\n\r"));
    name.erase(name.find_last_not_of(" \t\n\r") + 1);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  }

  // 4. Validation, blaming the flag that set the field if there is one, else the file.
  if (auto e = validate(config)) {
    for (const std::string* field : {&e->field, &e->related}) {
      auto it = origin.find(*field);
      if (field->empty() || it == origin.end()) continue;
      const std::string detail = field == &e->field ? e->detail : e->field + " " + e->value + " " + e->detail;
      return Error(flag_error(it->second.first->name, it->second.second, detail));
    }
    const std::string where = out.config_file.empty() ? "invalid configuration" : "config file " + out.config_file;
    return Error("kproxy: " + where + ": " + e->field + ": invalid value " + e->value + ": " + e->detail);
  }

  // 5. kproxy's impossible combinations.
  if (!config.kproxy.manifests_dir.empty()) {
    std::error_code ec;  // an unreadable path is "not a directory" too
    if (!std::filesystem::is_directory(config.kproxy.manifests_dir, ec)) {
      const std::string what = "not a directory";
      if (given(*find_flag("manifests"))) return Error(flag_error("manifests", config.kproxy.manifests_dir, what));
      return Error("kproxy: config file " + out.config_file + ": kproxy.manifests: invalid value " +
                   in_quotes(config.kproxy.manifests_dir) + ": " + what);
    }
    if (!out.master.empty()) {
      return Error("kproxy: --master " + in_quotes(out.master) + " cannot be combined with --manifests " +
                   in_quotes(config.kproxy.manifests_dir) + ": --manifests runs without an API server");
    }
  }

  no_effect_warnings(config, out.warnings);
  out.config = std::move(config);
  return out;
}

}  // namespace kproxy::config
