#include "kproxy/config/config_file.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "kproxy/config/values.h"
#include "kproxy/yaml_json.h"

namespace kproxy::config {
namespace {

using nlohmann::json;

std::string in_quotes(std::string_view s) { return "\"" + std::string(s) + "\""; }

// Reads the fields of one JSON object, remembering which keys were read so that the rest
// can be reported. Every reader leaves the target alone for a missing key or a null value,
// which is what Go's decoder does for the field types used here.
class ObjectReader {
 public:
  ObjectReader(const json& object, std::string path) : object_(object), path_(std::move(path)) {}

  const std::string& path() const { return path_; }

  // The value of `key`, or nullptr if it is absent or null. Marks the key as known.
  const json* get(const std::string& key) {
    known_.insert(key);
    auto it = object_.find(key);
    if (it == object_.end() || it->is_null()) return nullptr;
    return &*it;
  }
  // Marks a key as known without reading it (Windows-only settings, logging options).
  void skip(const std::string& key) { known_.insert(key); }

  std::string field(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

  Error type_error(const std::string& key, const json& value, std::string_view expected) const {
    return Error(field(key) + ": " + value.dump() + " is not " + std::string(expected));
  }

  Status string(const std::string& key, std::string& out) {
    const json* v = get(key);
    if (!v) return {};
    if (!v->is_string()) return type_error(key, *v, "a string");
    out = v->get<std::string>();
    return {};
  }

  Status boolean(const std::string& key, bool& out) {
    const json* v = get(key);
    if (!v) return {};
    if (!v->is_boolean()) return type_error(key, *v, "a boolean (true or false)");
    out = v->get<bool>();
    return {};
  }

  Status int32(const std::string& key, std::optional<std::int32_t>& out) {
    const json* v = get(key);
    if (!v) return {};
    if (!v->is_number_integer()) return type_error(key, *v, "an integer");
    if (v->is_number_unsigned() ? v->get<std::uint64_t>() > static_cast<std::uint64_t>(INT32_MAX)
                                : (v->get<std::int64_t>() < INT32_MIN || v->get<std::int64_t>() > INT32_MAX)) {
      return type_error(key, *v, "a 32-bit integer");
    }
    out = static_cast<std::int32_t>(v->get<std::int64_t>());
    return {};
  }

  Status int32(const std::string& key, std::int32_t& out) {
    std::optional<std::int32_t> v;
    if (auto s = int32(key, v); !s) return s;
    if (v) out = *v;
    return {};
  }

  Status float32(const std::string& key, float& out) {
    const json* v = get(key);
    if (!v) return {};
    if (!v->is_number()) return type_error(key, *v, "a number");
    out = v->get<float>();
    return {};
  }

  // metav1.Duration: a Go duration string ("30s"); a bare number is refused, as upstream.
  Status duration(const std::string& key, Duration& out) {
    const json* v = get(key);
    if (!v) return {};
    if (!v->is_string()) return type_error(key, *v, "a duration string such as \"30s\"");
    auto d = parse_go_duration(v->get<std::string>());
    if (!d) return Error(field(key) + ": " + v->dump() + ": " + d.error());
    out = *d;
    return {};
  }

  Status duration(const std::string& key, std::optional<Duration>& out) {
    if (!get(key)) return {};
    Duration d{0};
    if (auto s = duration(key, d); !s) return s;
    out = d;
    return {};
  }

  Status string_list(const std::string& key, std::vector<std::string>& out) {
    const json* v = get(key);
    if (!v) return {};
    if (!v->is_array()) return type_error(key, *v, "a list of strings");
    out.clear();
    for (std::size_t i = 0; i < v->size(); ++i) {
      const json& item = (*v)[i];
      if (!item.is_string()) return Error(field(key) + "[" + std::to_string(i) + "]: " + item.dump() + " is not a string");
      out.push_back(item.get<std::string>());
    }
    return {};
  }

  // A nested object, or nullopt if absent or null.
  Expected<std::optional<ObjectReader>> object(const std::string& key) {
    const json* v = get(key);
    if (!v) return std::optional<ObjectReader>();
    if (!v->is_object()) return type_error(key, *v, "a mapping");
    return std::optional<ObjectReader>(ObjectReader(*v, field(key)));
  }

  // Fields present in the object that no reader asked for.
  std::vector<std::string> unknown_fields() const {
    std::vector<std::string> out;
    for (const auto& [key, value] : object_.items()) {
      if (!known_.count(key)) out.push_back(field(key));
    }
    return out;
  }

 private:
  const json& object_;
  std::string path_;
  std::set<std::string> known_;
};

// Chains Status-returning steps: the first failure ends the decoding.
#define KPROXY_TRY(expr)               \
  do {                                 \
    if (auto s_ = (expr); !s_) return Error(s_.message()); \
  } while (false)

struct Decoder {
  std::vector<std::string> unknown;

  void collect(const ObjectReader& r) {
    for (auto& f : r.unknown_fields()) unknown.push_back(std::move(f));
  }

  Status client_connection(ObjectReader& r, ClientConnection& out) {
    KPROXY_TRY(r.string("kubeconfig", out.kubeconfig));
    KPROXY_TRY(r.string("acceptContentTypes", out.accept_content_types));
    KPROXY_TRY(r.string("contentType", out.content_type));
    KPROXY_TRY(r.float32("qps", out.qps));
    KPROXY_TRY(r.int32("burst", out.burst));
    collect(r);
    return {};
  }

  Status logging(ObjectReader& r, Logging& out) {
    KPROXY_TRY(r.string("format", out.format));
    // TimeOrMetaDuration: nanoseconds as a number, or a duration string.
    if (const json* v = r.get("flushFrequency")) {
      if (v->is_number_integer()) {
        out.flush_frequency = Duration(v->get<std::int64_t>());
      } else {
        KPROXY_TRY(r.duration("flushFrequency", out.flush_frequency));
      }
    }
    if (const json* v = r.get("verbosity")) {
      if (!v->is_number_integer() || v->get<std::int64_t>() < 0 || v->get<std::int64_t>() > INT32_MAX) {
        return r.type_error("verbosity", *v, "a non-negative integer");
      }
      out.verbosity = static_cast<std::int32_t>(v->get<std::int64_t>());
    }
    // VModuleConfiguration: [{filePattern: "...", verbosity: N}].
    if (const json* v = r.get("vmodule")) {
      if (!v->is_array()) return r.type_error("vmodule", *v, "a list of {filePattern, verbosity}");
      out.vmodule.clear();
      for (const auto& item : *v) {
        if (!item.is_object() || !item.contains("filePattern") || !item["filePattern"].is_string() ||
            !item.contains("verbosity") || !item["verbosity"].is_number_integer() || item["verbosity"].get<std::int64_t>() < 0) {
          return Error(r.field("vmodule") + ": " + item.dump() + " is not {filePattern: <string>, verbosity: <N>}");
        }
        out.vmodule.push_back(item["filePattern"].get<std::string>() + "=" +
                              std::to_string(item["verbosity"].get<std::int64_t>()));
      }
    }
    r.skip("options");  // alpha text/json stream options: no effect in kproxy
    collect(r);
    return {};
  }

  Status iptables(ObjectReader& r, IptablesConfig& out) {
    KPROXY_TRY(r.int32("masqueradeBit", out.masquerade_bit));
    KPROXY_TRY(r.boolean("masqueradeAll", out.masquerade_all));
    if (r.get("localhostNodePorts")) {
      bool b = false;
      KPROXY_TRY(r.boolean("localhostNodePorts", b));
      out.localhost_node_ports = b;
    }
    KPROXY_TRY(r.duration("syncPeriod", out.sync_period));
    KPROXY_TRY(r.duration("minSyncPeriod", out.min_sync_period));
    collect(r);
    return {};
  }

  Status ipvs(ObjectReader& r, IpvsConfig& out) {
    KPROXY_TRY(r.duration("syncPeriod", out.sync_period));
    KPROXY_TRY(r.duration("minSyncPeriod", out.min_sync_period));
    KPROXY_TRY(r.string("scheduler", out.scheduler));
    std::vector<std::string> exclude;
    KPROXY_TRY(r.string_list("excludeCIDRs", exclude));
    out.exclude_cidrs.clear();
    for (std::size_t i = 0; i < exclude.size(); ++i) {
      auto cidr = Cidr::parse(exclude[i]);
      if (!cidr) return Error(r.field("excludeCIDRs") + "[" + std::to_string(i) + "]: " + in_quotes(exclude[i]) + ": must be a valid CIDR");
      out.exclude_cidrs.push_back(*cidr);
    }
    KPROXY_TRY(r.boolean("strictARP", out.strict_arp));
    KPROXY_TRY(r.duration("tcpTimeout", out.tcp_timeout));
    KPROXY_TRY(r.duration("tcpFinTimeout", out.tcp_fin_timeout));
    KPROXY_TRY(r.duration("udpTimeout", out.udp_timeout));
    collect(r);
    return {};
  }

  Status nftables(ObjectReader& r, NftablesConfig& out) {
    KPROXY_TRY(r.int32("masqueradeBit", out.masquerade_bit));
    KPROXY_TRY(r.boolean("masqueradeAll", out.masquerade_all));
    KPROXY_TRY(r.duration("syncPeriod", out.sync_period));
    KPROXY_TRY(r.duration("minSyncPeriod", out.min_sync_period));
    collect(r);
    return {};
  }

  Status conntrack(ObjectReader& r, ConntrackConfig& out) {
    KPROXY_TRY(r.int32("maxPerCore", out.max_per_core));
    KPROXY_TRY(r.int32("min", out.min));
    KPROXY_TRY(r.duration("tcpEstablishedTimeout", out.tcp_established_timeout));
    KPROXY_TRY(r.duration("tcpCloseWaitTimeout", out.tcp_close_wait_timeout));
    KPROXY_TRY(r.boolean("tcpBeLiberal", out.tcp_be_liberal));
    KPROXY_TRY(r.duration("udpTimeout", out.udp_timeout));
    KPROXY_TRY(r.duration("udpStreamTimeout", out.udp_stream_timeout));
    collect(r);
    return {};
  }

  Status detect_local(ObjectReader& r, DetectLocal& out) {
    KPROXY_TRY(r.string("bridgeInterface", out.bridge_interface));
    KPROXY_TRY(r.string("interfaceNamePrefix", out.interface_name_prefix));
    collect(r);
    return {};
  }

  // kproxy's stanza is kproxy's own schema: unknown fields are errors, not warnings.
  Status kproxy(ObjectReader& r, KproxyExtension& out) {
    KPROXY_TRY(r.boolean("sctpUserspaceMode", out.sctp_userspace_mode));
    std::string taint;
    KPROXY_TRY(r.string("sctpUserspaceTaint", taint));
    if (!taint.empty()) {
      auto t = Taint::parse(taint);
      if (!t) return Error(r.field("sctpUserspaceTaint") + ": " + in_quotes(taint) + ": " + t.error());
      out.sctp_userspace_taint = *t;
    }
    KPROXY_TRY(r.boolean("sctpUserspaceAllowKernelSctp", out.sctp_userspace_allow_kernel_sctp));
    KPROXY_TRY(r.int32("sctpUserspaceMaxAssociations", out.sctp_userspace_max_associations));
    KPROXY_TRY(r.string("manifests", out.manifests_dir));
    std::string applier;
    KPROXY_TRY(r.string("iptablesApplier", applier));
    if (!applier.empty()) {
      auto a = parse_iptables_applier(applier);
      if (!a) return Error(r.field("iptablesApplier") + ": " + in_quotes(applier) + ": " + a.error());
      out.iptables_applier = *a;
    }
    if (auto extra = r.unknown_fields(); !extra.empty()) {
      return Error(extra.front() +
                   ": unknown field (the kproxy stanza accepts iptablesApplier, manifests, "
                   "sctpUserspaceAllowKernelSctp, sctpUserspaceMaxAssociations, sctpUserspaceMode, "
                   "sctpUserspaceTaint)");
    }
    return {};
  }

  template <typename T, typename F>
  Status section(ObjectReader& r, const std::string& key, T& out, F read) {
    auto sub = r.object(key);
    if (!sub) return Error(sub.error());
    if (!*sub) return {};
    return (this->*read)(**sub, out);
  }

  Status top(ObjectReader& r, KubeProxyConfiguration& c) {
    std::string api_version;
    std::string kind;
    KPROXY_TRY(r.string("apiVersion", api_version));
    KPROXY_TRY(r.string("kind", kind));
    if (api_version.empty()) return Error("apiVersion: missing; expected " + in_quotes(kApiVersion));
    if (api_version != kApiVersion) {
      return Error("apiVersion: " + in_quotes(api_version) + " is not supported; expected " + in_quotes(kApiVersion));
    }
    if (kind.empty()) return Error("kind: missing; expected " + in_quotes(kKind));
    if (kind != kKind) return Error("kind: " + in_quotes(kind) + " is not " + in_quotes(kKind));

    if (const json* v = r.get("featureGates")) {
      if (!v->is_object()) return r.type_error("featureGates", *v, "a mapping of feature names to booleans");
      for (const auto& [name, value] : v->items()) {
        if (!value.is_boolean()) return Error("featureGates." + name + ": " + value.dump() + " is not a boolean");
        c.feature_gates[name] = value.get<bool>();
      }
    }
    KPROXY_TRY(section(r, "clientConnection", c.client_connection, &Decoder::client_connection));
    KPROXY_TRY(section(r, "logging", c.logging, &Decoder::logging));
    KPROXY_TRY(r.string("hostnameOverride", c.hostname_override));
    std::string text;
    KPROXY_TRY(r.string("bindAddress", text));
    if (!text.empty()) {
      auto ip = IpAddress::parse(text);
      if (!ip) return Error("bindAddress: " + in_quotes(text) + ": not a valid textual representation of an IP address");
      c.bind_address = *ip;
    }
    for (auto [key, target] : {std::pair{"healthzBindAddress", &c.healthz_bind_address},
                               std::pair{"metricsBindAddress", &c.metrics_bind_address}}) {
      text.clear();
      KPROXY_TRY(r.string(key, text));
      if (text.empty()) continue;  // defaulted
      auto hp = parse_listen_address(text);
      if (!hp) return Error(std::string(key) + ": " + hp.error());
      target->address = *hp;
    }
    KPROXY_TRY(r.boolean("bindAddressHardFail", c.bind_address_hard_fail));
    KPROXY_TRY(r.boolean("enableProfiling", c.enable_profiling));
    KPROXY_TRY(r.string("showHiddenMetricsForVersion", c.show_hidden_metrics_for_version));
    text.clear();
    KPROXY_TRY(r.string("mode", text));
    auto mode = parse_proxy_mode(text);
    if (!mode) return Error("mode: " + in_quotes(text) + ": " + mode.error());
    c.mode = *mode;
    KPROXY_TRY(section(r, "iptables", c.iptables, &Decoder::iptables));
    KPROXY_TRY(section(r, "ipvs", c.ipvs, &Decoder::ipvs));
    KPROXY_TRY(section(r, "nftables", c.nftables, &Decoder::nftables));
    r.skip("winkernel");
    r.skip("windowsRunAsService");
    text.clear();
    KPROXY_TRY(r.string("detectLocalMode", text));
    auto local = parse_local_mode(text);
    if (!local) return Error("detectLocalMode: " + in_quotes(text) + ": " + local.error());
    c.detect_local_mode = *local;
    KPROXY_TRY(section(r, "detectLocal", c.detect_local, &Decoder::detect_local));
    text.clear();
    KPROXY_TRY(r.string("clusterCIDR", text));
    if (!text.empty()) {
      std::size_t start = 0;
      while (true) {
        const std::size_t comma = text.find(',', start);
        const std::string part = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        auto cidr = Cidr::parse(part);
        if (!cidr) {
          return Error("clusterCIDR: " + in_quotes(text) + ": " + in_quotes(part) +
                       " must be a valid CIDR block (e.g. 10.100.0.0/16 or fde4:8dba:82e1::/48)");
        }
        c.cluster_cidrs.push_back(*cidr);
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
    }
    std::vector<std::string> list;
    KPROXY_TRY(r.string_list("nodePortAddresses", list));
    auto npa = parse_node_port_addresses(list);
    if (!npa) return Error("nodePortAddresses: " + npa.error());
    c.node_port_addresses = *npa;
    KPROXY_TRY(r.int32("oomScoreAdj", c.oom_score_adj));
    KPROXY_TRY(section(r, "conntrack", c.conntrack, &Decoder::conntrack));
    KPROXY_TRY(r.duration("configSyncPeriod", c.config_sync_period));
    KPROXY_TRY(r.string("portRange", c.port_range));
    KPROXY_TRY(section(r, "kproxy", c.kproxy, &Decoder::kproxy));
    collect(r);
    return {};
  }
};

#undef KPROXY_TRY

}  // namespace

Expected<DecodedConfig> decode_config(std::string_view text) {
  auto docs = yaml_documents_to_json(text);
  if (!docs) return Error(docs.error());
  if (docs->empty()) return Error("no KubeProxyConfiguration found (the file is empty)");
  const json& doc = docs->front();
  if (!doc.is_object()) return Error("the document is " + doc.dump() + ", not a KubeProxyConfiguration mapping");
  DecodedConfig out;
  Decoder decoder;
  ObjectReader reader(doc, "");
  if (auto s = decoder.top(reader, out.config); !s) return Error(s.message());
  if (!decoder.unknown.empty()) {
    // One line, like kube-proxy's "Using lenient decoding as strict decoding failed".
    std::string fields;
    for (const auto& f : decoder.unknown) fields += (fields.empty() ? "" : ", ") + in_quotes(f);
    out.warnings.push_back("ignoring unknown field" + std::string(decoder.unknown.size() > 1 ? "s " : " ") + fields +
                           " (kube-proxy also decodes this file leniently)");
  }
  if (docs->size() > 1) {
    out.warnings.push_back("the file holds " + std::to_string(docs->size()) +
                           " YAML documents; only the first is read, as kube-proxy does");
  }
  return out;
}

Expected<DecodedConfig> load_config_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return Error("config file " + path + ": is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error("config file " + path + ": " + std::strerror(errno));
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) return Error("config file " + path + ": read error");
  auto decoded = decode_config(buf.str());
  if (!decoded) return Error("config file " + path + ": " + decoded.error());
  return decoded;
}

}  // namespace kproxy::config
