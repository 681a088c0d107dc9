// kproxy's command line: kube-proxy's flags with kube-proxy's names, defaults and meanings
// (cmd/kube-proxy/app/options.go), plus kproxy's own, parsed with CLI11 the way Go's pflag
// reads them:
//   --flag=value and --flag value; a boolean flag is --flag or --flag=true|false and never
//   takes the next argument; -v=2, -v 2, -v2 and --v=2; durations in Go syntax ("1m30s");
//   list flags comma-separated, repeatable.
//
// With --config FILE the file replaces every flag that it covers, as in kube-proxy; those
// flags, when given, are listed in CommandLine::ignored_flags so the caller can warn once.
// Flags that still apply with a file: --hostname-override, --master, the logging flags
// (-v, --vmodule, --logging-format, --log-flush-frequency), --manifests and the action
// flags (--cleanup, --init-only, --write-config-to, --version, --help).
#pragma once

#include <span>
#include <string>
#include <vector>

#include "kproxy/config/kube_proxy_configuration.h"
#include "kproxy/status.h"

namespace kproxy::config {

struct CommandLine {
  // --help or --version: print `output` to stdout and exit 0; nothing else is filled in.
  bool exit_after_output = false;
  std::string output;

  // The effective configuration: defaults, then the file or the flags, then the overrides;
  // validated.
  KubeProxyConfiguration config;
  std::string config_file;      // --config, "" if none
  std::string master;           // --master: overrides the kubeconfig's server
  std::string write_config_to;  // --write-config-to: write `config` as YAML there and exit
  bool cleanup = false;         // --cleanup: remove kproxy's rules and exit
  bool init_only = false;       // --init-only: do the privileged setup and exit

  // Explicitly given flags that --config made ignored ("--proxy-mode", ...), in the order of
  // the flag table (alphabetical).
  std::vector<std::string> ignored_flags;
  // Lines to log as warnings at startup: unknown fields in the file, deprecated flags,
  // settings kproxy accepts but does not act on.
  std::vector<std::string> warnings;
};

// argv[0] is the program name. On error the message is the one line to print on stderr,
// starting with "kproxy: " and naming the flag or field and the value, e.g.
//   kproxy: invalid value "abc" for flag --iptables-sync-period: time: invalid duration "abc"
//   kproxy: config file /x.yaml: iptables.masqueradeBit: invalid value 40: must be within the range [0, 31]
Expected<CommandLine> parse_command_line(std::span<const char* const> argv);

// The --help text: usage and every flag with its type, meaning and default.
std::string help_text();

// The --version text: "kproxy v<version>\n".
std::string version_text();

// One line naming every ignored flag, for the startup warning; "" if there are none.
std::string ignored_flags_warning(const CommandLine& command_line);

}  // namespace kproxy::config
