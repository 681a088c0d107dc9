// The real IptablesRunner: runs iptables-{nft,legacy}-{restore,save} and iptables-* -S as
// child processes (posix_spawn, no shell), the payload on stdin, stderr captured.
//
// `command_prefix` is put before every argv; tests pass {"ip", "netns", "exec", <name>} so the
// runner works inside a throwaway namespace and never touches the root one.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "kproxy/kernel/iptables_runner.h"

namespace kproxy::kernel {

// The result of running one program to completion.
struct CommandResult {
  int exit_code = -1;  // exit status, or 128 + signal number
  std::string out;
  std::string err;
};

// Runs argv (argv[0] searched in PATH, then /usr/sbin and /sbin) with `input` on stdin and
// collects stdout and stderr. The child is killed when it runs longer than `timeout`. An
// error means the program could not be started or waited for; a non-zero exit is a result.
Expected<CommandResult> run_command(const std::vector<std::string>& argv, std::string_view input,
                                    std::chrono::milliseconds timeout = std::chrono::minutes(5));

struct ExecIptablesOptions {
  IptablesFlavour flavour = IptablesFlavour::kNft;
  IpFamily family = IpFamily::kIPv4;
  std::vector<std::string> command_prefix;  // e.g. {"ip", "netns", "exec", "kpt-x-1"}
  int wait_seconds = 5;                     // -w: wait this long for the xtables lock
  int wait_interval_us = 100000;            // -W: poll interval for the lock
  std::chrono::milliseconds timeout = std::chrono::minutes(5);  // per command, then killed
};

class ExecIptablesRunner final : public IptablesRunner {
 public:
  explicit ExecIptablesRunner(ExecIptablesOptions options);

  Status restore(std::string_view payload, RestoreFlags flags) override;
  Expected<std::string> save(Table table) override;
  Expected<bool> chain_exists(Table table, std::string_view chain) override;
  Expected<bool> ensure_rule(Table table, std::string_view chain, const std::vector<std::string>& args) override;
  Expected<bool> delete_rule(Table table, std::string_view chain, const std::vector<std::string>& args) override;
  Expected<std::optional<std::string>> rule_at(Table table, std::string_view chain, int index) override;
  IptablesFlavour flavour() const override { return options_.flavour; }
  IpFamily family() const override { return options_.family; }

  // The argv restore() runs (with the prefix), for logs and tests.
  std::vector<std::string> restore_argv(RestoreFlags flags) const;

 private:
  std::string binary(std::string_view suffix) const;  // "iptables-nft-restore", ...
  std::vector<std::string> command(Table table, const char* op, std::string_view chain,
                                   const std::vector<std::string>& args) const;
  std::vector<std::string> with_prefix(std::vector<std::string> argv) const;

  ExecIptablesOptions options_;
};

// Picks nft or legacy as kubernetes-sigs/iptables-wrappers does (internal/iptables/detect.go):
// nft if kubelet's KUBE-IPTABLES-HINT or KUBE-KUBELET-CANARY chain is in
// `iptables-nft-save -t mangle` (then ip6tables-nft-save -t mangle); else legacy if either is
// in `iptables-legacy-save` (then ip6tables-legacy-save; all tables, because "-t mangle" would
// make the legacy kernel module create the table); else nft. Failures to run a command count
// as "not found", as in iptables-wrappers.
IptablesFlavour detect_iptables_flavour(const std::vector<std::string>& command_prefix = {});

// True when an iptables-save output declares a kubelet chain (^:KUBE-IPTABLES-HINT or
// ^:KUBE-KUBELET-CANARY at the start of a line).
bool has_kubelet_chains(std::string_view save_output);

}  // namespace kproxy::kernel
