// KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1) as kproxy holds it.
//
// The struct mirrors the v1alpha1 type field by field (staging/src/k8s.io/kube-proxy/
// config/v1alpha1/types.go), so a value read from a kubeadm ConfigMap and the flags that
// kube-proxy maps onto it land in the same place. Where Go has a pointer (meaning "unset,
// use the default") kproxy has std::optional; a Go zero value that the defaulting treats as
// unset (a 0s duration, an empty string) is kept as that zero value. apply_defaults() is
// the one place that fills them in, and after it every optional holds a value.
//
// Values that kube-proxy validates as IPs or CIDRs are held as kproxy's IpAddress/Cidr;
// durations are Go durations (nanoseconds). Windows-only fields (winkernel,
// windowsRunAsService) and the logging "options" are read and ignored.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kproxy/config/go_duration.h"
#include "kproxy/ip.h"
#include "kproxy/status.h"

namespace kproxy::config {

// v1alpha1 "mode". Upstream also knows "nftables" (Linux) and "kernelspace" (Windows);
// kproxy implements neither, so they are refused when the configuration is read.
enum class ProxyMode { kUnset, kIptables, kIpvs };

// v1alpha1 "detectLocalMode".
enum class LocalMode { kUnset, kClusterCidr, kNodeCidr, kBridgeInterface, kInterfaceNamePrefix };

// How iptables mode writes its rules (kproxy.iptablesApplier, --iptables-applier):
// iptables-restore, libiptc in-process (legacy-iptables nodes only), or auto: libiptc where
// the node's iptables is legacy, iptables-restore where it is nft. docs/iptables.md.
enum class IptablesApplier { kAuto, kRestore, kLibiptc };

// The spelling of the file and of the flags: "", "iptables", "ipvs"; "", "ClusterCIDR", ...
std::string_view to_string(ProxyMode mode);
std::string_view to_string(IptablesApplier applier);  // "auto", "restore", "libiptc"
Expected<IptablesApplier> parse_iptables_applier(std::string_view text);
std::string_view to_string(LocalMode mode);
Expected<ProxyMode> parse_proxy_mode(std::string_view text);
Expected<LocalMode> parse_local_mode(std::string_view text);

// An "IP:port" listen address (healthzBindAddress, metricsBindAddress).
struct HostPort {
  IpAddress ip;
  std::uint16_t port = 0;

  // "0.0.0.0:10256", "[::1]:10249" (Go's net.JoinHostPort).
  std::string to_string() const;
  // "IP:port" or "[IPv6]:port", as Go's net.SplitHostPort plus an IP and a port 1-65535.
  static Expected<HostPort> parse(std::string_view text);
  bool operator==(const HostPort&) const = default;
};

// healthzBindAddress / metricsBindAddress. In the file an empty value means "use the
// default"; an IP without a port gets the server's default port. Only the flags can turn a
// server off (--metrics-bind-address="" or --metrics-port=0), which sets `disabled`.
// After apply_defaults(), either disabled is true or address holds an IP and a port.
struct ListenAddress {
  std::optional<HostPort> address;  // port 0: the default port is appended by apply_defaults()
  bool disabled = false;

  std::optional<HostPort> listen() const { return disabled ? std::nullopt : address; }
  bool operator==(const ListenAddress&) const = default;
};

// A Kubernetes node taint, written key=value:Effect or key:Effect (kubectl taint syntax).
// The key is a qualified name (optional DNS-subdomain prefix and '/', then at most 63
// characters), the value a label value, the effect NoSchedule, PreferNoSchedule or NoExecute.
struct Taint {
  enum class Effect { kNoSchedule, kPreferNoSchedule, kNoExecute };
  std::string key;
  std::string value;
  Effect effect = Effect::kNoSchedule;

  std::string to_string() const;
  static Expected<Taint> parse(std::string_view text);
  bool operator==(const Taint&) const = default;
};
std::string_view to_string(Taint::Effect effect);

// component-base ClientConnectionConfiguration.
struct ClientConnection {
  std::string kubeconfig;
  std::string accept_content_types;
  std::string content_type;
  float qps = 0;
  std::int32_t burst = 0;
  bool operator==(const ClientConnection&) const = default;
};

// component-base LoggingConfiguration, the part kproxy reads. "options" is ignored.
struct Logging {
  std::string format;  // "" defaults to "text"
  Duration flush_frequency{0};
  std::int32_t verbosity = 0;
  std::vector<std::string> vmodule;  // "pattern=N" entries, as --vmodule takes them
  bool operator==(const Logging&) const = default;
};

struct IptablesConfig {
  std::optional<std::int32_t> masquerade_bit;
  bool masquerade_all = false;
  std::optional<bool> localhost_node_ports;
  Duration sync_period{0};
  Duration min_sync_period{0};
  bool operator==(const IptablesConfig&) const = default;
};

struct IpvsConfig {
  Duration sync_period{0};
  Duration min_sync_period{0};
  std::string scheduler;
  std::vector<Cidr> exclude_cidrs;
  bool strict_arp = false;
  Duration tcp_timeout{0};
  Duration tcp_fin_timeout{0};
  Duration udp_timeout{0};
  bool operator==(const IpvsConfig&) const = default;
};

// Read and shown so that a file's nftables section is not silently dropped; kproxy has no
// nftables mode.
struct NftablesConfig {
  std::optional<std::int32_t> masquerade_bit;
  bool masquerade_all = false;
  Duration sync_period{0};
  Duration min_sync_period{0};
  bool operator==(const NftablesConfig&) const = default;
};

struct ConntrackConfig {
  std::optional<std::int32_t> max_per_core;
  std::optional<std::int32_t> min;
  std::optional<Duration> tcp_established_timeout;
  std::optional<Duration> tcp_close_wait_timeout;
  bool tcp_be_liberal = false;
  Duration udp_timeout{0};
  Duration udp_stream_timeout{0};
  bool operator==(const ConntrackConfig&) const = default;
};

struct DetectLocal {
  std::string bridge_interface;
  std::string interface_name_prefix;
  bool operator==(const DetectLocal&) const = default;
};

// nodePortAddresses: empty (all local IPs), the keyword "primary", or CIDRs.
struct NodePortAddresses {
  bool primary = false;
  std::vector<Cidr> cidrs;
  bool all() const { return !primary && cidrs.empty(); }
  bool operator==(const NodePortAddresses&) const = default;
};

// kproxy's own settings: the top-level "kproxy" stanza of the file (docs/configuration.md)
// and the flags --sctp-userspace-mode, --sctp-userspace-taint,
// --sctp-userspace-allow-kernel-sctp, --sctp-userspace-max-associations, --manifests and
// --iptables-applier.
struct KproxyExtension {
  static constexpr std::string_view kDefaultSctpTaint = "sctp.kproxy.io/userspace=true:NoSchedule";

  bool sctp_userspace_mode = false;
  std::optional<Taint> sctp_userspace_taint;  // defaulted to kDefaultSctpTaint
  // Start in sctp_userspace_mode even though the kernel's SCTP module is present.
  bool sctp_userspace_allow_kernel_sctp = false;
  // Concurrent client associations the userspace SCTP proxy relays; INITs beyond are refused.
  std::int32_t sctp_userspace_max_associations = 10000;
  std::string manifests_dir;                  // empty: use the API server
  IptablesApplier iptables_applier = IptablesApplier::kAuto;
  bool operator==(const KproxyExtension&) const = default;
};

struct KubeProxyConfiguration {
  std::map<std::string, bool> feature_gates;
  ClientConnection client_connection;
  Logging logging;
  std::string hostname_override;
  std::optional<IpAddress> bind_address;          // defaulted to 0.0.0.0
  ListenAddress healthz_bind_address;  // defaulted to 0.0.0.0:10256 ([::]:10256 for an IPv6 bindAddress)
  ListenAddress metrics_bind_address;  // defaulted to 127.0.0.1:10249 ([::1]:10249)
  bool bind_address_hard_fail = false;
  bool enable_profiling = false;
  std::string show_hidden_metrics_for_version;
  ProxyMode mode = ProxyMode::kUnset;
  IptablesConfig iptables;
  IpvsConfig ipvs;
  NftablesConfig nftables;
  LocalMode detect_local_mode = LocalMode::kUnset;
  DetectLocal detect_local;
  std::vector<Cidr> cluster_cidrs;  // "clusterCIDR": one CIDR or a dual-stack pair, comma-separated
  NodePortAddresses node_port_addresses;
  std::optional<std::int32_t> oom_score_adj;
  ConntrackConfig conntrack;
  Duration config_sync_period{0};
  std::string port_range;  // unused upstream since the userspace proxier went away
  KproxyExtension kproxy;

  // The sync periods of the selected mode (iptables.* or ipvs.*), as kube-proxy's internal
  // configuration has them.
  Duration sync_period() const;
  Duration min_sync_period() const;

  bool operator==(const KubeProxyConfiguration&) const = default;
};

// kube-proxy's defaulting: pkg/proxy/apis/config/v1alpha1/defaults.go followed by the Linux
// platformApplyDefaults() (mode iptables, detectLocalMode ClusterCIDR), plus kproxy's own
// defaults. Fields already set are left alone; a zero duration counts as unset, as
// upstream (so a file cannot ask for iptables.minSyncPeriod 0s: it becomes 1s, as in
// kube-proxy). Idempotent.
void apply_defaults(KubeProxyConfiguration& config);

// Only the platform part of the above (mode, detectLocalMode) and kproxy's own defaults:
// what kube-proxy applies after the flags, which land on an already defaulted
// configuration (so --iptables-min-sync-period=0 stays 0).
void apply_platform_defaults(KubeProxyConfiguration& config);

// A configuration with nothing set and the defaults applied: what kube-proxy runs with when
// given no flags and no file.
KubeProxyConfiguration default_configuration();

// One problem found by validate(): the v1alpha1 field path ("iptables.masqueradeBit"), the
// offending value as text, and what is wrong ("must be within the range [0, 31]").
// `related` names a second field that took part (the minSyncPeriod that a syncPeriod must
// not be below, the detectLocalMode that requires an interface), so that an error can be
// blamed on the flag that set either of them.
struct FieldError {
  std::string field;
  std::string value;
  std::string detail;
  std::string related;
};

// kube-proxy's validation (pkg/proxy/apis/config/validation/validation.go) of a defaulted
// configuration, plus kproxy's impossible combinations. Returns the first problem, in the
// order upstream checks them, or nullopt.
std::optional<FieldError> validate(const KubeProxyConfiguration& config);

// The configuration as a v1alpha1 YAML document with the same field names as the file,
// keys sorted as Go's YAML encoder writes them, kproxy's stanza included, Windows-only
// fields left out: for the startup log and --write-config-to. Reading it back gives the
// same configuration.
std::string to_yaml(const KubeProxyConfiguration& config);

}  // namespace kproxy::config
