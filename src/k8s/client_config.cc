#include "kproxy/k8s/client_config.h"

#include <arpa/inet.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "base64.h"
#include "file_util.h"
#include "kproxy/version.h"
#include "kproxy/yaml_json.h"
#include "tls.h"

namespace kproxy::k8s {
namespace {

using nlohmann::json;

constexpr const char* arch() {
#if defined(__x86_64__)
  return "amd64";
#elif defined(__aarch64__)
  return "arm64";
#elif defined(__arm__)
  return "arm";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return "ppc64le";
#elif defined(__s390x__)
  return "s390x";
#elif defined(__riscv) && __riscv_xlen == 64
  return "riscv64";
#elif defined(__i386__)
  return "386";
#else
  return "unknown";
#endif
}

bool is_ipv6_literal(const std::string& host) {
  in6_addr addr{};
  return inet_pton(AF_INET6, host.c_str(), &addr) == 1;
}

Expected<int> parse_port(std::string_view text) {
  if (text.empty() || text.size() > 5) return Error("port \"" + std::string(text) + "\" is not a number in 1-65535");
  int port = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return Error("port \"" + std::string(text) + "\" is not a number in 1-65535");
    port = port * 10 + (c - '0');
  }
  if (port < 1 || port > 65535) return Error("port \"" + std::string(text) + "\" is not a number in 1-65535");
  return port;
}

// A string field of a kubeconfig stanza: "" when absent or null, an error for another type.
Expected<std::string> string_field(const json& object, const char* name) {
  const auto it = object.find(name);
  if (it == object.end() || it->is_null()) return std::string();
  if (!it->is_string()) return Error(std::string(name) + ": expected a string, got " + it->type_name());
  return it->get<std::string>();
}

Expected<bool> bool_field(const json& object, const char* name) {
  const auto it = object.find(name);
  if (it == object.end() || it->is_null()) return false;
  if (!it->is_boolean()) return Error(std::string(name) + ": expected true or false, got " + it->dump());
  return it->get<bool>();
}

bool has_field(const json& object, const char* name) {
  const auto it = object.find(name);
  if (it == object.end() || it->is_null()) return false;
  if (it->is_string() || it->is_array() || it->is_object()) return !it->empty();
  return true;
}

// The named entry of clusters[] / users[] / contexts[], whose body sits under `body_key`.
Expected<json> find_named(const json& doc, const char* list, const char* body_key, const std::string& name) {
  const auto it = doc.find(list);
  if (it != doc.end() && !it->is_null()) {
    if (!it->is_array()) return Error(std::string(list) + ": expected a list");
    for (const auto& entry : *it) {
      if (!entry.is_object()) continue;
      const auto n = entry.find("name");
      if (n == entry.end() || !n->is_string() || n->get<std::string>() != name) continue;
      const auto body = entry.find(body_key);
      if (body == entry.end() || body->is_null()) return json::object();
      if (!body->is_object()) return Error(std::string(list) + " \"" + name + "\": " + body_key + ": expected a mapping");
      return *body;
    }
  }
  return Error(std::string(body_key) + " \"" + name + "\" not found");
}

// client-go ResolveLocalPaths: relative to the directory of the kubeconfig that named it.
std::string resolve_path(const std::filesystem::path& base_dir, const std::string& path) {
  std::filesystem::path p(path);
  if (p.is_absolute()) return path;
  return (base_dir / p).lexically_normal().string();
}

// Reads `<field>-data` (base64, wins) or `<field>` (a path) from `object`.
// Returns "" when neither is set. Error messages name the field or the file.
Expected<std::string> data_or_file(const json& object, const std::string& field, const std::filesystem::path& base_dir) {
  const std::string data_field = field + "-data";
  auto data = string_field(object, data_field.c_str());
  if (!data) return Error(data.error());
  if (!data->empty()) {
    auto decoded = base64_decode(*data);
    if (!decoded) return Error(data_field + ": " + decoded.error());
    return std::move(*decoded);
  }
  auto path = string_field(object, field.c_str());
  if (!path) return Error(path.error());
  if (path->empty()) return std::string();
  const std::string resolved = resolve_path(base_dir, *path);
  auto contents = read_file(resolved);
  if (!contents) return Error(field + " " + resolved + ": " + contents.error());
  return std::move(*contents);
}

// Which field a certificate/key came from, for messages: "client-key-data" or "client-key /p".
std::string origin(const json& object, const std::string& field, const std::filesystem::path& base_dir) {
  if (has_field(object, (field + "-data").c_str())) return field + "-data";
  const auto path = string_field(object, field.c_str());
  return field + " " + (path ? resolve_path(base_dir, *path) : std::string());
}

Status apply_cluster(const json& cluster, const std::filesystem::path& base_dir, const std::string& master_override,
                     ClientConfig& config) {
  if (has_field(cluster, "proxy-url")) {
    return Error("proxy-url is not supported; kproxy connects to the server directly");
  }
  std::string server;
  std::string server_origin = "--master";
  if (!master_override.empty()) {
    server = master_override;
  } else {
    auto s = string_field(cluster, "server");
    if (!s) return Error(s.error());
    server = *s;
    server_origin = "server";
  }
  if (server.empty()) return Error("server is not set");
  auto url = parse_server_url(server);
  if (!url) return Error(server_origin + " \"" + server + "\": " + url.error());
  config.scheme = url->scheme;
  config.host = url->host;
  config.port = url->port;
  config.path_prefix = url->path_prefix;

  auto insecure = bool_field(cluster, "insecure-skip-tls-verify");
  if (!insecure) return Error(insecure.error());
  config.insecure_skip_tls_verify = *insecure;
  auto server_name = string_field(cluster, "tls-server-name");
  if (!server_name) return Error(server_name.error());
  config.tls_server_name = *server_name;

  auto ca = data_or_file(cluster, "certificate-authority", base_dir);
  if (!ca) return Error(ca.error());
  if (!ca->empty()) {
    if (auto certs = tls::parse_certificates(*ca); !certs) {
      return Error(origin(cluster, "certificate-authority", base_dir) + ": " + certs.error());
    }
    // client-go refuses this too (transport.TLSConfigFor; clientcmd validation).
    if (config.insecure_skip_tls_verify) {
      return Error("certificate-authority and insecure-skip-tls-verify cannot both be set");
    }
  }
  config.ca_pem = std::move(*ca);
  return {};
}

Status apply_user(const json& user, const std::filesystem::path& base_dir, ClientConfig& config) {
  if (has_field(user, "exec")) {
    return Error(
        "exec credential plugins are not supported; use client-certificate/client-key, token or tokenFile");
  }
  if (has_field(user, "auth-provider")) {
    return Error("auth-provider is not supported; use client-certificate/client-key, token or tokenFile");
  }
  if (has_field(user, "username") || has_field(user, "password")) {
    return Error("basic authentication (username/password) is not supported");
  }
  for (const char* field : {"as", "as-uid", "as-groups", "as-user-extra"}) {
    if (has_field(user, field)) return Error(std::string(field) + ": impersonation is not supported");
  }

  auto cert = data_or_file(user, "client-certificate", base_dir);
  if (!cert) return Error(cert.error());
  auto key = data_or_file(user, "client-key", base_dir);
  if (!key) return Error(key.error());
  if (cert->empty() != key->empty()) {
    return Error(cert->empty() ? "client-key is set but client-certificate is not"
                               : "client-certificate is set but client-key is not");
  }
  if (!cert->empty()) {
    const std::string cert_origin = origin(user, "client-certificate", base_dir);
    const std::string key_origin = origin(user, "client-key", base_dir);
    auto certs = tls::parse_certificates(*cert);
    if (!certs) return Error(cert_origin + ": " + certs.error());
    auto pkey = tls::parse_private_key(*key);
    if (!pkey) return Error(key_origin + ": " + pkey.error());
    if (auto s = tls::check_key_matches(certs->front().get(), pkey->get()); !s) {
      return Error(key_origin + " does not match " + cert_origin);
    }
    config.client_cert_pem = std::move(*cert);
    config.client_key_pem = std::move(*key);
  }

  // token wins over tokenFile (client-go clientcmd.getUserIdentificationPartialConfig); a
  // tokenFile is read now, so a missing file fails at startup, and kept for rotation.
  auto token = string_field(user, "token");
  if (!token) return Error(token.error());
  if (!token->empty()) {
    config.token = *token;
    return {};
  }
  auto token_file = string_field(user, "tokenFile");
  if (!token_file) return Error(token_file.error());
  if (!token_file->empty()) {
    const std::string path = resolve_path(base_dir, *token_file);
    auto contents = read_file(path);
    if (!contents) return Error("tokenFile " + path + ": " + contents.error());
    config.token = trim(*contents);
    if (config.token.empty()) return Error("tokenFile " + path + " is empty");
    config.token_file = path;
  }
  return {};
}

}  // namespace

std::string default_user_agent() { return std::string("kproxy/") + kVersion + " (linux/" + arch() + ")"; }

std::string ClientConfig::server_url() const {
  const std::string h = is_ipv6_literal(host) ? "[" + host + "]" : host;
  return scheme + "://" + h + ":" + std::to_string(port) + path_prefix;
}

Expected<ServerUrl> parse_server_url(std::string_view url) {
  ServerUrl out;
  std::string_view rest = url;
  if (const auto sep = url.find("://"); sep != std::string_view::npos) {
    std::string scheme(url.substr(0, sep));
    for (auto& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (scheme != "https" && scheme != "http") return Error("scheme \"" + scheme + "\" is not https or http");
    out.scheme = scheme;
    rest = url.substr(sep + 3);
  } else {
    out.scheme = "https";
  }
  if (rest.find_first_of("?#") != std::string_view::npos) return Error("a server URL has no query or fragment");
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string path(slash == std::string_view::npos ? std::string_view() : rest.substr(slash));
  while (!path.empty() && path.back() == '/') path.pop_back();
  out.path_prefix = path;
  if (authority.find('@') != std::string_view::npos) return Error("user information in the URL is not supported");

  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return Error("missing ']' after the IPv6 address");
    out.host = std::string(authority.substr(1, close - 1));
    const auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return Error("unexpected \"" + std::string(after) + "\" after the IPv6 address");
      port_text = after.substr(1);
      if (port_text.empty()) return Error("empty port");
    }
    if (!is_ipv6_literal(out.host)) return Error("\"" + out.host + "\" is not an IPv6 address");
  } else {
    const auto colon = authority.find(':');
    if (colon != std::string_view::npos && authority.find(':', colon + 1) != std::string_view::npos) {
      return Error("an IPv6 address must be in brackets, as https://[fd00::1]:443");
    }
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return Error("empty port");
    }
  }
  if (out.host.empty()) return Error("no host");
  if (port_text.empty()) {
    out.port = out.scheme == "https" ? 443 : 80;
  } else {
    auto port = parse_port(port_text);
    if (!port) return Error(port.error());
    out.port = *port;
  }
  return out;
}

Expected<ClientConfig> load_kubeconfig(const std::string& path, const std::string& master_override) {
  const std::string where = "kubeconfig " + path;
  auto text = read_file(path);
  if (!text) return Error(where + ": " + text.error());
  auto docs = yaml_documents_to_json(*text);
  if (!docs) return Error(where + ": " + docs.error());
  if (docs->empty() || !docs->front().is_object()) return Error(where + ": not a kubeconfig (expected a mapping)");
  const json& doc = docs->front();
  const std::filesystem::path base_dir = std::filesystem::path(path).parent_path();

  auto current = string_field(doc, "current-context");
  if (!current) return Error(where + ": " + current.error());
  if (current->empty()) return Error(where + ": current-context is not set");
  auto context = find_named(doc, "contexts", "context", *current);
  if (!context) return Error(where + ": " + context.error());
  const std::string context_where = where + ": context \"" + *current + "\"";
  auto cluster_name = string_field(*context, "cluster");
  if (!cluster_name) return Error(context_where + ": " + cluster_name.error());
  auto user_name = string_field(*context, "user");
  if (!user_name) return Error(context_where + ": " + user_name.error());
  if (cluster_name->empty()) return Error(context_where + ": cluster is not set");

  ClientConfig config;
  config.source = path;
  auto cluster = find_named(doc, "clusters", "cluster", *cluster_name);
  if (!cluster) return Error(context_where + ": " + cluster.error());
  if (auto s = apply_cluster(*cluster, base_dir, master_override, config); !s) {
    return Error(where + ": cluster \"" + *cluster_name + "\": " + s.message());
  }
  if (!user_name->empty()) {
    auto user = find_named(doc, "users", "user", *user_name);
    if (!user) return Error(context_where + ": " + user.error());
    if (auto s = apply_user(*user, base_dir, config); !s) {
      return Error(where + ": user \"" + *user_name + "\": " + s.message());
    }
  }
  return config;
}

Expected<ClientConfig> in_cluster_config(const InClusterEnvironment& env) {
  const auto lookup = [&](const std::string& name) -> std::string {
    if (env.getenv) return env.getenv(name).value_or("");
    const char* v = std::getenv(name.c_str());
    return v ? v : "";
  };
  std::string host = lookup("KUBERNETES_SERVICE_HOST");
  const std::string port_text = lookup("KUBERNETES_SERVICE_PORT");
  if (host.empty() || port_text.empty()) {
    return Error(
        "in-cluster config: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set "
        "(or pass --kubeconfig or --master)");
  }
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  auto port = parse_port(port_text);
  if (!port) return Error("in-cluster config: KUBERNETES_SERVICE_PORT: " + port.error());

  ClientConfig config;
  config.scheme = "https";
  config.host = host;
  config.port = *port;
  config.source = "in-cluster";

  const std::filesystem::path dir(env.service_account_dir);
  const std::string token_path = (dir / "token").string();
  auto token = read_file(token_path);
  if (!token) return Error("in-cluster config: token file " + token_path + ": " + token.error());
  config.token = trim(*token);
  if (config.token.empty()) return Error("in-cluster config: token file " + token_path + " is empty");
  config.token_file = token_path;

  // client-go logs a CA failure and falls back to the system roots; so does kproxy.
  const std::string ca_path = (dir / "ca.crt").string();
  auto ca = read_file(ca_path);
  if (!ca) {
    spdlog::warn("in-cluster config: CA {}: {}; verifying the API server against the system roots", ca_path,
                 ca.error());
  } else if (auto certs = tls::parse_certificates(*ca); !certs) {
    spdlog::warn("in-cluster config: CA {}: {}; verifying the API server against the system roots", ca_path,
                 certs.error());
  } else {
    config.ca_pem = std::move(*ca);
  }
  return config;
}

Expected<ClientConfig> resolve_client_config(const std::string& kubeconfig, const std::string& master,
                                             const InClusterEnvironment& env) {
  if (kubeconfig.empty() && master.empty()) {
    spdlog::info("Neither --kubeconfig nor --master was given, using the in-cluster config");
    return in_cluster_config(env);
  }
  if (!kubeconfig.empty()) return load_kubeconfig(kubeconfig, master);
  auto url = parse_server_url(master);
  if (!url) return Error("--master \"" + master + "\": " + url.error());
  ClientConfig config;
  config.scheme = url->scheme;
  config.host = url->host;
  config.port = url->port;
  config.path_prefix = url->path_prefix;
  config.source = "--master";
  return config;
}

}  // namespace kproxy::k8s
