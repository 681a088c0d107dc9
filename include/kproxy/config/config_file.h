// Reading a KubeProxyConfiguration file (--config): YAML or JSON, as kubeadm writes it into
// the kube-proxy ConfigMap's config.conf.
//
// kube-proxy decodes the file strictly first and, when that fails only because of unknown
// or duplicate fields, decodes it again leniently and logs the strict error
// (cmd/kube-proxy/app/options.go, loadConfig). kproxy does the same: unknown fields are
// reported as warnings naming each field and otherwise ignored, so a file that kube-proxy
// runs with, kproxy runs with. A duplicate key keeps its last value. Wrong types, a wrong
// apiVersion or kind, and malformed YAML are errors.
//
// kproxy's own settings live in a top-level "kproxy" mapping (docs/configuration.md). It is
// kproxy's schema, so it is decoded strictly: an unknown field there is an error.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "kproxy/config/kube_proxy_configuration.h"
#include "kproxy/status.h"

namespace kproxy::config {

inline constexpr std::string_view kApiVersion = "kubeproxy.config.k8s.io/v1alpha1";
inline constexpr std::string_view kKind = "KubeProxyConfiguration";

struct DecodedConfig {
  // The file's values with nothing defaulted yet (apply_defaults() has not run), so the
  // caller can tell what the file set.
  KubeProxyConfiguration config;
  // For the startup log: unknown fields, extra YAML documents.
  std::vector<std::string> warnings;
};

// Decodes the text of a configuration file. Errors read "<field>: <what is wrong>", e.g.
// `iptables.masqueradeBit: "x" is not an integer`, or describe a YAML syntax error.
Expected<DecodedConfig> decode_config(std::string_view text);

// Reads and decodes a file. Errors are prefixed with "config file <path>: ".
Expected<DecodedConfig> load_config_file(const std::string& path);

}  // namespace kproxy::config
