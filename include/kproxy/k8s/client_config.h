// How kproxy reaches the Kubernetes API: where the server is, how to trust it and how to
// authenticate, resolved from --kubeconfig / --master or the in-cluster service account.
//
// Resolution follows kube-proxy's createClient (cmd/kube-proxy/app/server.go): with neither
// --kubeconfig nor --master, the in-cluster config; otherwise the kubeconfig (if given) with
// a non-empty --master overriding its cluster's server only; --master alone means that
// server, with no credentials. Everything is read and checked here, at startup, so a missing
// or unreadable credential is reported once, naming the file or field; only the token file is
// read again later (by the API client, for rotation).
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "kproxy/status.h"

namespace kproxy::k8s {

// The projected service-account volume every pod gets (client-go rest.InClusterConfig).
inline constexpr const char* kServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";

// "kproxy/<version> (linux/<arch>)", in the shape of client-go's default User-Agent.
std::string default_user_agent();

// A resolved configuration, ready to connect. Certificates and keys are held as PEM text,
// never as paths, so nothing but the token file is read after startup.
struct ClientConfig {
  std::string scheme = "https";  // "https" or "http" (an http --master, as kube-proxy allows)
  std::string host;              // DNS name or IP literal, IPv6 without brackets
  int port = 443;
  std::string path_prefix;       // path of the server URL ("" or "/k8s/clusters/c-1"), no trailing '/'

  std::string ca_pem;            // trusted roots; empty = the system roots
  bool insecure_skip_tls_verify = false;
  std::string tls_server_name;   // SNI and the name the certificate is verified against

  std::string client_cert_pem;   // leaf first, then any intermediates
  std::string client_key_pem;

  // Bearer token. When token_file is set it wins: the client re-reads it once the cached
  // copy is older than ApiClientOptions::token_file_ttl (~50 s, client-go's 1 min minus 10 s
  // leeway) and after a 401; `token` is then the initial value read at startup.
  std::string token;
  std::string token_file;

  std::chrono::milliseconds connect_timeout{std::chrono::seconds(10)};  // TCP connect + TLS handshake
  // A whole get()/patch() response must arrive within this (stream() uses its idle timeout).
  std::chrono::milliseconds request_timeout{std::chrono::seconds(60)};
  std::string user_agent = default_user_agent();

  std::string source;            // "in-cluster", "--master" or the kubeconfig path, for messages

  // "https://[fd00::1]:443" plus the path prefix: the form used in every message.
  std::string server_url() const;
};

// A server URL split up: scheme://host[:port][/path]. A URL without a scheme is https, as
// client-go's DefaultServerURL does for TLS configs. IPv6 literals need brackets.
struct ServerUrl {
  std::string scheme;
  std::string host;  // without brackets
  int port = 0;
  std::string path_prefix;
};
Expected<ServerUrl> parse_server_url(std::string_view url);

// Reads a kubeconfig: current-context, its cluster (server, certificate-authority[-data],
// insecure-skip-tls-verify, tls-server-name) and user (client-certificate[-data],
// client-key[-data], token, tokenFile). "-data" wins over the file, token over tokenFile
// (client-go); relative paths resolve against the kubeconfig's directory. A non-empty
// `master_override` replaces the cluster's server. exec and auth-provider users, basic
// auth, impersonation and proxy-url are refused with an error naming the user or cluster.
// Errors read "kubeconfig <path>: user \"kp\": client-key /etc/k/kp.key: No such file or directory".
Expected<ClientConfig> load_kubeconfig(const std::string& path, const std::string& master_override = "");

// What the in-cluster config reads, injectable for tests.
struct InClusterEnvironment {
  // Returns the variable's value, nullopt when unset; null means ::getenv.
  std::function<std::optional<std::string>(const std::string& name)> getenv;
  std::string service_account_dir = kServiceAccountDir;
};

// KUBERNETES_SERVICE_HOST/_PORT, <sa dir>/token (required; also kept as token_file so it
// rotates) and <sa dir>/ca.crt (on failure a warning and the system roots, as client-go).
Expected<ClientConfig> in_cluster_config(const InClusterEnvironment& env = {});

// kube-proxy's createClient rule (see the top of this file).
Expected<ClientConfig> resolve_client_config(const std::string& kubeconfig, const std::string& master,
                                             const InClusterEnvironment& env = {});

}  // namespace kproxy::k8s
