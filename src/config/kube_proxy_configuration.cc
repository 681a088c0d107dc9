#include "kproxy/config/kube_proxy_configuration.h"

#include <charconv>
#include <chrono>
#include <cstdio>

#include "kproxy/config/values.h"

namespace kproxy::config {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

// pkg/cluster/ports: ProxyHealthzPort and ProxyStatusPort.
constexpr std::uint16_t kHealthzPort = 10256;
constexpr std::uint16_t kMetricsPort = 10249;

std::string in_quotes(std::string_view s) { return "\"" + std::string(s) + "\""; }

bool is_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

// A label name or value: [A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?, at most 63 characters.
bool is_label_token(std::string_view s) {
  if (s.empty() || s.size() > 63 || !is_alnum(s.front()) || !is_alnum(s.back())) return false;
  for (char c : s) {
    if (!is_alnum(c) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

// A DNS-1123 subdomain: lower-case alphanumerics, '-' and '.', at most 253 characters.
bool is_dns_subdomain(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  std::size_t start = 0;
  while (start <= s.size()) {
    const std::size_t dot = s.find('.', start);
    const std::string_view part = s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (part.empty() || part.size() > 63 || part.front() == '-' || part.back() == '-') return false;
    for (char c : part) {
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return true;
}

bool is_qualified_name(std::string_view s) {
  const std::size_t slash = s.find('/');
  if (slash == std::string_view::npos) return is_label_token(s);
  return is_dns_subdomain(s.substr(0, slash)) && is_label_token(s.substr(slash + 1));
}

std::optional<FieldError> invalid(std::string field, std::string value, std::string detail, std::string related = "") {
  return FieldError{std::move(field), std::move(value), std::move(detail), std::move(related)};
}

std::string dur(Duration d) { return format_go_duration(d); }

std::optional<FieldError> check_non_negative(const std::string& field, Duration d) {
  if (d < Duration(0)) return invalid(field, dur(d), "must be greater than or equal to 0");
  return std::nullopt;
}

// The checks shared by the selected mode's sync periods (validation.go: SyncPeriod,
// MinSyncPeriod of the internal configuration, which conversion takes from the mode's
// section).
std::optional<FieldError> check_sync_periods(const std::string& section, Duration sync, Duration min_sync) {
  if (sync <= Duration(0)) return invalid(section + ".syncPeriod", dur(sync), "must be greater than 0");
  if (min_sync < Duration(0)) return invalid(section + ".minSyncPeriod", dur(min_sync), "must be greater than or equal to 0");
  if (min_sync > sync) {
    return invalid(section + ".syncPeriod", dur(sync),
                   "must be greater than or equal to " + section + ".minSyncPeriod (" + dur(min_sync) + ")",
                   section + ".minSyncPeriod");
  }
  return std::nullopt;
}

// The IPVS schedulers of the Linux kernel (net/netfilter/ipvs/ip_vs_*.c); "" means rr.
bool is_ipvs_scheduler(std::string_view s) {
  for (std::string_view known : {"", "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"}) {
    if (s == known) return true;
  }
  return false;
}

std::string join_cidrs(const std::vector<Cidr>& cidrs) {
  std::string out;
  for (const auto& c : cidrs) out += (out.empty() ? "" : ",") + c.to_string();
  return out;
}

// ---- YAML output -------------------------------------------------------------------
// A small writer for the subset the configuration needs: mappings with sorted keys,
// sequences of scalars, strings quoted only when a YAML reader could take them for
// something else, as Go's YAML encoder does.

bool all_digits(std::string_view s, std::string_view allowed = "0123456789") {
  return !s.empty() && s.find_first_not_of(allowed) == std::string_view::npos;
}

// Whether a YAML reader would take a plain scalar for a number: the YAML 1.2 core schema
// (kproxy's reader, sigs.k8s.io/yaml) and the 1.1 forms (0x.., 0o.., .inf, .nan) that some
// readers still resolve.
bool looks_numeric(std::string_view s) {
  if (!s.empty() && (s.front() == '-' || s.front() == '+')) s.remove_prefix(1);
  if (s.empty()) return false;
  if (s == ".inf" || s == ".Inf" || s == ".INF" || s == ".nan" || s == ".NaN" || s == ".NAN") return true;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o' || s[1] == 'b')) return true;
  // [digits][.digits][e[+-]digits], at least one digit before the exponent.
  const std::size_t e = s.find_first_of("eE");
  std::string_view mantissa = s.substr(0, e);
  if (e != std::string_view::npos) {
    std::string_view exponent = s.substr(e + 1);
    if (!exponent.empty() && (exponent.front() == '-' || exponent.front() == '+')) exponent.remove_prefix(1);
    if (!all_digits(exponent)) return false;
  }
  const std::size_t dot = mantissa.find('.');
  if (dot == std::string_view::npos) return all_digits(mantissa, "0123456789_");
  const std::string_view whole = mantissa.substr(0, dot);
  const std::string_view frac = mantissa.substr(dot + 1);
  if (whole.empty() && frac.empty()) return false;
  return (whole.empty() || all_digits(whole, "0123456789_")) && (frac.empty() || all_digits(frac));
}

bool needs_quotes(std::string_view s) {
  if (s.empty()) return true;
  for (std::string_view word : {"null", "Null", "NULL", "~", "true", "True", "TRUE", "false", "False", "FALSE",
                                "yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF", "y", "Y", "n", "N"}) {
    if (s == word) return true;
  }
  if (looks_numeric(s)) return true;
  if (std::string_view("!&*[]{}|>'\"%@`#,?:-").find(s.front()) != std::string_view::npos) return true;
  if (s.front() == ' ' || s.back() == ' ' || s.back() == ':') return true;
  if (s.find(": ") != std::string_view::npos || s.find(" #") != std::string_view::npos) return true;
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20) return true;
  }
  return false;
}

std::string double_quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string yaml_string(std::string_view s) { return needs_quotes(s) ? double_quoted(s) : std::string(s); }

// A YAML value being built: a scalar already rendered, a list of rendered scalars, or a
// mapping. std::map keeps keys in the byte order Go's encoder (sigs.k8s.io/yaml) uses.
struct Node {
  enum class Kind { kScalar, kList, kMap } kind = Kind::kMap;
  std::string scalar;
  std::vector<std::string> list;
  std::map<std::string, Node> map;

  Node& operator[](const std::string& key) { return map[key]; }
  static Node str(std::string_view s) { return Node{Kind::kScalar, yaml_string(s), {}, {}}; }
  static Node raw(std::string s) { return Node{Kind::kScalar, std::move(s), {}, {}}; }
  static Node boolean(bool b) { return raw(b ? "true" : "false"); }
  static Node integer(std::int64_t n) { return raw(std::to_string(n)); }
  static Node duration(Duration d) { return str(format_go_duration(d)); }
  static Node null() { return raw("null"); }
  static Node strings(const std::vector<std::string>& items) {
    if (items.empty()) return null();
    Node n{Kind::kList, {}, {}, {}};
    for (const auto& i : items) n.list.push_back(yaml_string(i));
    return n;
  }
  template <typename T, typename F>
  static Node optional(const std::optional<T>& v, F make) {
    return v ? make(*v) : null();
  }
};

void write(const Node& node, int indent, std::string& out) {
  const std::string pad(static_cast<std::size_t>(indent), ' ');
  for (const auto& [key, value] : node.map) {
    out += pad + key + ":";
    switch (value.kind) {
      case Node::Kind::kScalar:
        out += " " + value.scalar + "\n";
        break;
      case Node::Kind::kList:
        out += "\n";
        for (const auto& item : value.list) out += pad + "- " + item + "\n";
        break;
      case Node::Kind::kMap:
        if (value.map.empty()) {
          out += " {}\n";
        } else {
          out += "\n";
          write(value, indent + 2, out);
        }
        break;
    }
  }
}

std::string format_float(float f) {
  // Shortest text that reads back as the same float, as Go's strconv.FormatFloat(f, 'g', -1, 32).
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, f);
  if (ec != std::errc()) return "0";
  return std::string(buf, end);
}

}  // namespace

std::string_view to_string(ProxyMode mode) {
  switch (mode) {
    case ProxyMode::kUnset: return "";
    case ProxyMode::kIptables: return "iptables";
    case ProxyMode::kIpvs: return "ipvs";
  }
  return "";
}

std::string_view to_string(LocalMode mode) {
  switch (mode) {
    case LocalMode::kUnset: return "";
    case LocalMode::kClusterCidr: return "ClusterCIDR";
    case LocalMode::kNodeCidr: return "NodeCIDR";
    case LocalMode::kBridgeInterface: return "BridgeInterface";
    case LocalMode::kInterfaceNamePrefix: return "InterfaceNamePrefix";
  }
  return "";
}

std::string_view to_string(IptablesApplier applier) {
  switch (applier) {
    case IptablesApplier::kAuto: return "auto";
    case IptablesApplier::kRestore: return "restore";
    case IptablesApplier::kLibiptc: return "libiptc";
  }
  return "";
}

Expected<IptablesApplier> parse_iptables_applier(std::string_view text) {
  for (IptablesApplier a : {IptablesApplier::kAuto, IptablesApplier::kRestore, IptablesApplier::kLibiptc}) {
    if (text == to_string(a)) return a;
  }
  return Error("must be auto, restore or libiptc");
}

Expected<ProxyMode> parse_proxy_mode(std::string_view text) {
  if (text.empty()) return ProxyMode::kUnset;
  if (text == "iptables") return ProxyMode::kIptables;
  if (text == "ipvs") return ProxyMode::kIpvs;
  if (text == "nftables") {
    return Error("the nftables proxy mode is not implemented by kproxy; use iptables or ipvs");
  }
  return Error("must be iptables, ipvs or blank (blank means the best-available proxy [currently iptables])");
}

Expected<LocalMode> parse_local_mode(std::string_view text) {
  for (LocalMode m : {LocalMode::kUnset, LocalMode::kClusterCidr, LocalMode::kNodeCidr, LocalMode::kBridgeInterface,
                      LocalMode::kInterfaceNamePrefix}) {
    if (text == to_string(m)) return m;
  }
  return Error("supported values: \"ClusterCIDR\", \"NodeCIDR\", \"BridgeInterface\", \"InterfaceNamePrefix\", \"\"");
}

std::string HostPort::to_string() const { return join_host_port(ip, port); }

Expected<HostPort> HostPort::parse(std::string_view text) {
  // Go's net.SplitHostPort, then validation.go's checks.
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Error(in_quotes(text) + " must be IP:port");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return Error(in_quotes(text) + " must be IP:port");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return Error(in_quotes(text) + " must be IP:port (too many colons)");
  }
  auto ip = IpAddress::parse(host);
  if (!ip) return Error(in_quotes(host) + " must be a valid IP");
  int p = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || p < 1 || p > 65535) {
    return Error(in_quotes(port) + " must be a valid port");
  }
  return HostPort{*ip, static_cast<std::uint16_t>(p)};
}

std::string_view to_string(Taint::Effect effect) {
  switch (effect) {
    case Taint::Effect::kNoSchedule: return "NoSchedule";
    case Taint::Effect::kPreferNoSchedule: return "PreferNoSchedule";
    case Taint::Effect::kNoExecute: return "NoExecute";
  }
  return "";
}

std::string Taint::to_string() const {
  return key + (value.empty() ? "" : "=" + value) + ":" + std::string(config::to_string(effect));
}

Expected<Taint> Taint::parse(std::string_view text) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return Error(in_quotes(text) + " is not a taint: expected key=value:Effect or key:Effect");
  }
  Taint taint;
  const std::string_view effect = text.substr(colon + 1);
  if (effect == "NoSchedule") taint.effect = Effect::kNoSchedule;
  else if (effect == "PreferNoSchedule") taint.effect = Effect::kPreferNoSchedule;
  else if (effect == "NoExecute") taint.effect = Effect::kNoExecute;
  else return Error("taint effect " + in_quotes(effect) + " is not NoSchedule, PreferNoSchedule or NoExecute");
  const std::string_view key_value = text.substr(0, colon);
  const std::size_t eq = key_value.find('=');
  const std::string_view key = key_value.substr(0, eq);
  const std::string_view value = eq == std::string_view::npos ? std::string_view() : key_value.substr(eq + 1);
  if (!is_qualified_name(key)) {
    return Error("taint key " + in_quotes(key) + " is not a qualified name ([prefix/]name, name at most 63 characters)");
  }
  if (!value.empty() && !is_label_token(value)) {
    return Error("taint value " + in_quotes(value) + " is not a valid label value");
  }
  taint.key = std::string(key);
  taint.value = std::string(value);
  return taint;
}

Duration KubeProxyConfiguration::sync_period() const {
  return mode == ProxyMode::kIpvs ? ipvs.sync_period : iptables.sync_period;
}

Duration KubeProxyConfiguration::min_sync_period() const {
  return mode == ProxyMode::kIpvs ? ipvs.min_sync_period : iptables.min_sync_period;
}

void apply_defaults(KubeProxyConfiguration& c) {
  // pkg/proxy/apis/config/v1alpha1/defaults.go (SetDefaults_KubeProxyConfiguration).
  if (!c.bind_address) c.bind_address = IpAddress();  // 0.0.0.0
  const bool v4 = c.bind_address->is_v4();
  auto default_listen = [](ListenAddress& a, IpAddress ip, std::uint16_t port) {
    if (a.disabled) return;
    if (!a.address) a.address = HostPort{ip, port};
    if (a.address->port == 0) a.address->port = port;  // AppendPortIfNeeded
  };
  default_listen(c.healthz_bind_address, v4 ? IpAddress() : *IpAddress::parse("::"), kHealthzPort);
  default_listen(c.metrics_bind_address, v4 ? *IpAddress::parse("127.0.0.1") : *IpAddress::parse("::1"), kMetricsPort);
  if (!c.oom_score_adj) c.oom_score_adj = -999;  // qos.KubeProxyOOMScoreAdj
  if (c.iptables.sync_period == Duration(0)) c.iptables.sync_period = seconds(30);
  if (c.iptables.min_sync_period == Duration(0)) c.iptables.min_sync_period = seconds(1);
  if (!c.iptables.masquerade_bit) c.iptables.masquerade_bit = 14;
  if (!c.iptables.localhost_node_ports) c.iptables.localhost_node_ports = true;
  if (c.ipvs.sync_period == Duration(0)) c.ipvs.sync_period = seconds(30);
  if (c.nftables.sync_period == Duration(0)) c.nftables.sync_period = seconds(30);
  if (c.nftables.min_sync_period == Duration(0)) c.nftables.min_sync_period = seconds(1);
  if (!c.nftables.masquerade_bit) c.nftables.masquerade_bit = 14;
  if (!c.conntrack.max_per_core) c.conntrack.max_per_core = 32 * 1024;
  if (!c.conntrack.min) c.conntrack.min = 128 * 1024;
  if (!c.conntrack.tcp_established_timeout) c.conntrack.tcp_established_timeout = hours(24);
  if (!c.conntrack.tcp_close_wait_timeout) c.conntrack.tcp_close_wait_timeout = hours(1);
  if (c.config_sync_period == Duration(0)) c.config_sync_period = minutes(15);
  if (c.client_connection.content_type.empty()) c.client_connection.content_type = "application/vnd.kubernetes.protobuf";
  if (c.client_connection.qps == 0.0F) c.client_connection.qps = 5.0F;
  if (c.client_connection.burst == 0) c.client_connection.burst = 10;
  // component-base logs/api/v1 SetRecommendedLoggingConfiguration.
  if (c.logging.format.empty()) c.logging.format = "text";
  if (c.logging.flush_frequency == Duration(0)) c.logging.flush_frequency = seconds(5);
  apply_platform_defaults(c);
}

void apply_platform_defaults(KubeProxyConfiguration& c) {
  // cmd/kube-proxy/app/server_linux.go platformApplyDefaults.
  if (c.mode == ProxyMode::kUnset) c.mode = ProxyMode::kIptables;
  if (c.detect_local_mode == LocalMode::kUnset) c.detect_local_mode = LocalMode::kClusterCidr;
  // kproxy's own.
  if (!c.kproxy.sctp_userspace_taint) c.kproxy.sctp_userspace_taint = *Taint::parse(KproxyExtension::kDefaultSctpTaint);
}

KubeProxyConfiguration default_configuration() {
  KubeProxyConfiguration c;
  apply_defaults(c);
  return c;
}

std::optional<FieldError> validate(const KubeProxyConfiguration& c) {
  if (c.kproxy.sctp_userspace_max_associations < 1) {
    return invalid("kproxy.sctpUserspaceMaxAssociations", std::to_string(c.kproxy.sctp_userspace_max_associations),
                   "must be greater than 0");
  }
  // In the order of validation.go's Validate().
  if (c.iptables.masquerade_bit && (*c.iptables.masquerade_bit < 0 || *c.iptables.masquerade_bit > 31)) {
    return invalid("iptables.masqueradeBit", std::to_string(*c.iptables.masquerade_bit), "must be within the range [0, 31]");
  }
  if (c.mode == ProxyMode::kIpvs) {
    if (auto e = check_non_negative("ipvs.tcpTimeout", c.ipvs.tcp_timeout)) return e;
    if (auto e = check_non_negative("ipvs.tcpFinTimeout", c.ipvs.tcp_fin_timeout)) return e;
    if (auto e = check_non_negative("ipvs.udpTimeout", c.ipvs.udp_timeout)) return e;
    // Upstream no longer checks the scheduler here; the kernel would refuse an unknown one
    // at the first sync, so kproxy says so at startup instead.
    if (!is_ipvs_scheduler(c.ipvs.scheduler)) {
      return invalid("ipvs.scheduler", in_quotes(c.ipvs.scheduler),
                     "must be one of the kernel's IPVS schedulers (rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, "
                     "ovf, mh, twos) or blank (rr)");
    }
  }
  if (c.conntrack.max_per_core && *c.conntrack.max_per_core < 0) {
    return invalid("conntrack.maxPerCore", std::to_string(*c.conntrack.max_per_core), "must be greater than or equal to 0");
  }
  if (c.conntrack.min && *c.conntrack.min < 0) {
    return invalid("conntrack.min", std::to_string(*c.conntrack.min), "must be greater than or equal to 0");
  }
  if (c.conntrack.tcp_established_timeout) {
    if (auto e = check_non_negative("conntrack.tcpEstablishedTimeout", *c.conntrack.tcp_established_timeout)) return e;
  }
  if (c.conntrack.tcp_close_wait_timeout) {
    if (auto e = check_non_negative("conntrack.tcpCloseWaitTimeout", *c.conntrack.tcp_close_wait_timeout)) return e;
  }
  if (auto e = check_non_negative("conntrack.udpTimeout", c.conntrack.udp_timeout)) return e;
  if (auto e = check_non_negative("conntrack.udpStreamTimeout", c.conntrack.udp_stream_timeout)) return e;
  if (c.oom_score_adj && (*c.oom_score_adj < -1000 || *c.oom_score_adj > 1000)) {
    return invalid("oomScoreAdj", std::to_string(*c.oom_score_adj), "must be within the range [-1000, 1000]");
  }
  if (c.client_connection.burst < 0) {
    return invalid("clientConnection.burst", std::to_string(c.client_connection.burst), "must be greater than or equal to 0");
  }
  if (c.config_sync_period <= Duration(0)) {
    return invalid("configSyncPeriod", dur(c.config_sync_period), "must be greater than 0");
  }
  if (c.mode == ProxyMode::kIpvs) {
    if (auto e = check_sync_periods("ipvs", c.ipvs.sync_period, c.ipvs.min_sync_period)) return e;
  } else {
    if (auto e = check_sync_periods("iptables", c.iptables.sync_period, c.iptables.min_sync_period)) return e;
  }
  for (const ListenAddress* a : {&c.healthz_bind_address, &c.metrics_bind_address}) {
    if (!a->disabled && a->address && a->address->port == 0) {
      return invalid(a == &c.healthz_bind_address ? "healthzBindAddress" : "metricsBindAddress",
                     in_quotes(a->address->to_string()), "must be IP:port");
    }
  }
  if (auto s = validate_port_range(c.port_range); !s) return invalid("portRange", in_quotes(c.port_range), s.message());
  if (!c.show_hidden_metrics_for_version.empty()) {
    const std::string& v = c.show_hidden_metrics_for_version;
    const std::size_t dot = v.find('.');
    const bool digits = dot != std::string::npos && dot > 0 && dot + 1 < v.size() &&
                        v.find_first_not_of("0123456789.") == std::string::npos && v.find('.', dot + 1) == std::string::npos;
    if (!digits) return invalid("showHiddenMetricsForVersion", in_quotes(v), "must be of the form <major>.<minor>, e.g. 1.16");
  }
  switch (c.detect_local_mode) {
    case LocalMode::kBridgeInterface:
      if (c.detect_local.bridge_interface.empty()) {
        return invalid("detectLocal.bridgeInterface", "\"\"", "must not be empty when detectLocalMode is BridgeInterface",
                       "detectLocalMode");
      }
      break;
    case LocalMode::kInterfaceNamePrefix:
      if (c.detect_local.interface_name_prefix.empty()) {
        return invalid("detectLocal.interfaceNamePrefix", "\"\"",
                       "must not be empty when detectLocalMode is InterfaceNamePrefix", "detectLocalMode");
      }
      break;
    case LocalMode::kClusterCidr:
      if (c.cluster_cidrs.size() > 2 ||
          (c.cluster_cidrs.size() == 2 && c.cluster_cidrs[0].family() == c.cluster_cidrs[1].family())) {
        return invalid("clusterCIDR", in_quotes(join_cidrs(c.cluster_cidrs)),
                       "must be a either a single CIDR or dual-stack pair of CIDRs (e.g. 10.100.0.0/16,fde4:8dba:82e1::/48)");
      }
      break;
    default:
      break;
  }
  if (c.logging.format != "text" && c.logging.format != "json") {
    return invalid("logging.format", in_quotes(c.logging.format), "unsupported log format; supported: \"json\", \"text\"");
  }
  if (c.logging.verbosity < 0) {
    return invalid("logging.verbosity", std::to_string(c.logging.verbosity), "must be greater than or equal to 0");
  }
  for (const auto& entry : c.logging.vmodule) {
    if (auto s = validate_vmodule_entry(entry); !s) return invalid("logging.vmodule", in_quotes(entry), s.message());
  }
  // kproxy's own.
  if (c.kproxy.sctp_userspace_mode && !c.kproxy.sctp_userspace_taint) {
    return invalid("kproxy.sctpUserspaceTaint", "\"\"", "must be set when kproxy.sctpUserspaceMode is true");
  }
  return std::nullopt;
}

std::string to_yaml(const KubeProxyConfiguration& c) {
  Node root;
  root["apiVersion"] = Node::str("kubeproxy.config.k8s.io/v1alpha1");
  root["kind"] = Node::str("KubeProxyConfiguration");
  root["bindAddress"] = Node::optional(c.bind_address, [](const IpAddress& ip) { return Node::str(ip.to_string()); });
  root["bindAddressHardFail"] = Node::boolean(c.bind_address_hard_fail);
  Node& cc = root["clientConnection"];
  cc["acceptContentTypes"] = Node::str(c.client_connection.accept_content_types);
  cc["burst"] = Node::integer(c.client_connection.burst);
  cc["contentType"] = Node::str(c.client_connection.content_type);
  cc["kubeconfig"] = Node::str(c.client_connection.kubeconfig);
  cc["qps"] = Node::raw(format_float(c.client_connection.qps));
  root["clusterCIDR"] = Node::str(join_cidrs(c.cluster_cidrs));
  root["configSyncPeriod"] = Node::duration(c.config_sync_period);
  Node& ct = root["conntrack"];
  ct["maxPerCore"] = Node::optional(c.conntrack.max_per_core, Node::integer);
  ct["min"] = Node::optional(c.conntrack.min, Node::integer);
  ct["tcpBeLiberal"] = Node::boolean(c.conntrack.tcp_be_liberal);
  ct["tcpCloseWaitTimeout"] = Node::optional(c.conntrack.tcp_close_wait_timeout, Node::duration);
  ct["tcpEstablishedTimeout"] = Node::optional(c.conntrack.tcp_established_timeout, Node::duration);
  ct["udpStreamTimeout"] = Node::duration(c.conntrack.udp_stream_timeout);
  ct["udpTimeout"] = Node::duration(c.conntrack.udp_timeout);
  root["detectLocal"]["bridgeInterface"] = Node::str(c.detect_local.bridge_interface);
  root["detectLocal"]["interfaceNamePrefix"] = Node::str(c.detect_local.interface_name_prefix);
  root["detectLocalMode"] = Node::str(to_string(c.detect_local_mode));
  root["enableProfiling"] = Node::boolean(c.enable_profiling);
  if (!c.feature_gates.empty()) {
    Node& fg = root["featureGates"];
    for (const auto& [k, v] : c.feature_gates) fg[k] = Node::boolean(v);
  }
  auto listen = [](const ListenAddress& a) {
    return a.disabled || !a.address ? Node::str("") : Node::str(a.address->to_string());
  };
  root["healthzBindAddress"] = listen(c.healthz_bind_address);
  root["hostnameOverride"] = Node::str(c.hostname_override);
  Node& ipt = root["iptables"];
  ipt["localhostNodePorts"] = Node::optional(c.iptables.localhost_node_ports, Node::boolean);
  ipt["masqueradeAll"] = Node::boolean(c.iptables.masquerade_all);
  ipt["masqueradeBit"] = Node::optional(c.iptables.masquerade_bit, Node::integer);
  ipt["minSyncPeriod"] = Node::duration(c.iptables.min_sync_period);
  ipt["syncPeriod"] = Node::duration(c.iptables.sync_period);
  Node& ipvs = root["ipvs"];
  std::vector<std::string> exclude;
  for (const auto& cidr : c.ipvs.exclude_cidrs) exclude.push_back(cidr.to_string());
  ipvs["excludeCIDRs"] = Node::strings(exclude);
  ipvs["minSyncPeriod"] = Node::duration(c.ipvs.min_sync_period);
  ipvs["scheduler"] = Node::str(c.ipvs.scheduler);
  ipvs["strictARP"] = Node::boolean(c.ipvs.strict_arp);
  ipvs["syncPeriod"] = Node::duration(c.ipvs.sync_period);
  ipvs["tcpFinTimeout"] = Node::duration(c.ipvs.tcp_fin_timeout);
  ipvs["tcpTimeout"] = Node::duration(c.ipvs.tcp_timeout);
  ipvs["udpTimeout"] = Node::duration(c.ipvs.udp_timeout);
  Node& kp = root["kproxy"];
  kp["manifests"] = Node::str(c.kproxy.manifests_dir);
  kp["iptablesApplier"] = Node::str(std::string(to_string(c.kproxy.iptables_applier)));
  kp["sctpUserspaceAllowKernelSctp"] = Node::boolean(c.kproxy.sctp_userspace_allow_kernel_sctp);
  kp["sctpUserspaceMaxAssociations"] = Node::integer(c.kproxy.sctp_userspace_max_associations);
  kp["sctpUserspaceMode"] = Node::boolean(c.kproxy.sctp_userspace_mode);
  kp["sctpUserspaceTaint"] = Node::str(c.kproxy.sctp_userspace_taint ? c.kproxy.sctp_userspace_taint->to_string() : "");
  Node& lg = root["logging"];
  lg["flushFrequency"] = Node::duration(c.logging.flush_frequency);
  lg["format"] = Node::str(c.logging.format);
  lg["verbosity"] = Node::integer(c.logging.verbosity);
  if (!c.logging.vmodule.empty()) {
    // VModuleConfiguration: a list of {filePattern, verbosity}, written in flow style.
    Node& vm = lg["vmodule"];
    vm.kind = Node::Kind::kList;
    for (const auto& entry : c.logging.vmodule) {
      const std::size_t eq = entry.rfind('=');
      vm.list.push_back("{filePattern: " + double_quoted(entry.substr(0, eq)) + ", verbosity: " + entry.substr(eq + 1) + "}");
    }
  }
  root["metricsBindAddress"] = listen(c.metrics_bind_address);
  root["mode"] = Node::str(to_string(c.mode));
  Node& nft = root["nftables"];
  nft["masqueradeAll"] = Node::boolean(c.nftables.masquerade_all);
  nft["masqueradeBit"] = Node::optional(c.nftables.masquerade_bit, Node::integer);
  nft["minSyncPeriod"] = Node::duration(c.nftables.min_sync_period);
  nft["syncPeriod"] = Node::duration(c.nftables.sync_period);
  std::vector<std::string> npa;
  if (c.node_port_addresses.primary) npa.emplace_back("primary");
  for (const auto& cidr : c.node_port_addresses.cidrs) npa.push_back(cidr.to_string());
  root["nodePortAddresses"] = Node::strings(npa);
  root["oomScoreAdj"] = Node::optional(c.oom_score_adj, Node::integer);
  root["portRange"] = Node::str(c.port_range);
  root["showHiddenMetricsForVersion"] = Node::str(c.show_hidden_metrics_for_version);
  std::string out;
  write(root, 0, out);
  return out;
}

}  // namespace kproxy::config
