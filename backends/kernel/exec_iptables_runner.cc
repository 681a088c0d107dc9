// The real IptablesRunner and the nft/legacy detector.
#include "kproxy/kernel/exec_iptables_runner.h"

#include <utility>

#include "kproxy/log.h"

namespace kproxy::kernel {
namespace {

std::string failure(const std::vector<std::string>& argv, const CommandResult& r) {
  std::string cmd;
  for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
  std::string msg = cmd + ": exit status " + std::to_string(r.exit_code);
  if (!r.err.empty()) {
    std::string err = r.err;
    while (!err.empty() && err.back() == '\n') err.pop_back();
    msg += ": " + err;
  }
  return msg;
}

}  // namespace

ExecIptablesRunner::ExecIptablesRunner(ExecIptablesOptions options) : options_(std::move(options)) {}

std::string ExecIptablesRunner::binary(std::string_view suffix) const {
  std::string name = options_.family == IpFamily::kIPv6 ? "ip6tables-" : "iptables-";
  name += flavour_name(options_.flavour);
  if (!suffix.empty()) name += "-" + std::string(suffix);
  return name;
}

std::vector<std::string> ExecIptablesRunner::with_prefix(std::vector<std::string> argv) const {
  std::vector<std::string> full = options_.command_prefix;
  full.insert(full.end(), std::make_move_iterator(argv.begin()), std::make_move_iterator(argv.end()));
  return full;
}

std::vector<std::string> ExecIptablesRunner::restore_argv(RestoreFlags flags) const {
  std::vector<std::string> argv{binary("restore"), "-w", std::to_string(options_.wait_seconds), "-W",
                                std::to_string(options_.wait_interval_us)};
  if (flags.noflush) argv.push_back("--noflush");
  if (flags.counters) argv.push_back("--counters");
  return with_prefix(std::move(argv));
}

Status ExecIptablesRunner::restore(std::string_view payload, RestoreFlags flags) {
  const auto argv = restore_argv(flags);
  auto r = run_command(argv, payload, options_.timeout);
  if (!r.ok()) return Error(r.error());
  if (r->exit_code == 0) return {};
  std::string what = argv[options_.command_prefix.size()] + " failed (exit status " + std::to_string(r->exit_code) + ")";
  return Error(format_restore_error(what, r->err, payload, restore_error_line(r->err)));
}

Expected<std::string> ExecIptablesRunner::save(Table table) {
  const auto argv = with_prefix({binary("save"), "-t", std::string(table_name(table))});
  auto r = run_command(argv, "", options_.timeout);
  if (!r.ok()) return Error(r.error());
  if (r->exit_code != 0) return Error(failure(argv, *r));
  return std::move(r->out);
}

Expected<bool> ExecIptablesRunner::chain_exists(Table table, std::string_view chain) {
  const auto argv = with_prefix({binary(""), "-w", std::to_string(options_.wait_seconds), "-W",
                                 std::to_string(options_.wait_interval_us), "-t", std::string(table_name(table)),
                                 "-S", std::string(chain), "1"});
  auto r = run_command(argv, "", options_.timeout);
  if (!r.ok()) return Error(r.error());
  if (r->exit_code == 0) return true;
  // Exit status 1 is a missing chain (legacy: "No chain/target/match by that name"; nft 1.8.9:
  // "chain `X' in table `T' is incompatible"), as kube-proxy's canary reads it. Exit status 4
  // is a resource problem (the lock) and stays an error; kube-proxy does not count it as a flush.
  if (r->exit_code == 1) return false;
  return Error(failure(argv, *r));
}

std::vector<std::string> ExecIptablesRunner::command(Table table, const char* op, std::string_view chain,
                                                     const std::vector<std::string>& args) const {
  std::vector<std::string> argv{binary(""), "-w", std::to_string(options_.wait_seconds), "-W",
                                std::to_string(options_.wait_interval_us), "-t", std::string(table_name(table)), op,
                                std::string(chain)};
  argv.insert(argv.end(), args.begin(), args.end());
  return with_prefix(std::move(argv));
}

Expected<bool> ExecIptablesRunner::ensure_rule(Table table, std::string_view chain,
                                               const std::vector<std::string>& args) {
  const auto check = command(table, "-C", chain, args);
  auto r = run_command(check, "", options_.timeout);
  if (!r.ok()) return Error(r.error());
  if (r->exit_code == 0) return false;
  // Exit status 1: no such rule. Anything else (a lock timeout, status 4) is an error.
  if (r->exit_code != 1) return Error(failure(check, *r));
  const auto insert = command(table, "-I", chain, args);
  r = run_command(insert, "", options_.timeout);
  if (!r.ok()) return Error(r.error());
  if (r->exit_code != 0) return Error(failure(insert, *r));
  return true;
}

Expected<bool> ExecIptablesRunner::delete_rule(Table table, std::string_view chain,
                                               const std::vector<std::string>& args) {
  const auto argv = command(table, "-D", chain, args);
  auto r = run_command(argv, "", options_.timeout);
  if (!r.ok()) return Error(r.error());
  if (r->exit_code == 0) return true;
  // Exit status 1: no such rule or chain ("Bad rule", "does a matching rule exist").
  if (r->exit_code == 1) return false;
  return Error(failure(argv, *r));
}

Expected<std::optional<std::string>> ExecIptablesRunner::rule_at(Table table, std::string_view chain, int index) {
  const auto argv = command(table, "-S", chain, {std::to_string(index)});
  auto r = run_command(argv, "", options_.timeout);
  if (!r.ok()) return Error(r.error());
  if (r->exit_code == 1) return std::optional<std::string>();  // no such chain (see chain_exists)
  if (r->exit_code != 0) return Error(failure(argv, *r));
  std::string out = std::move(r->out);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return std::optional<std::string>(std::move(out));
}

bool has_kubelet_chains(std::string_view out) {
  for (std::string_view name : {":KUBE-IPTABLES-HINT", ":KUBE-KUBELET-CANARY"}) {
    std::size_t pos = 0;
    while ((pos = out.find(name, pos)) != std::string_view::npos) {
      if (pos == 0 || out[pos - 1] == '\n') return true;
      pos += name.size();
    }
  }
  return false;
}

IptablesFlavour detect_iptables_flavour(const std::vector<std::string>& prefix) {
  auto saved = [&](std::vector<std::string> argv) -> std::string {
    std::vector<std::string> full = prefix;
    full.insert(full.end(), argv.begin(), argv.end());
    auto r = run_command(full, "", std::chrono::minutes(2));
    return r.ok() ? std::move(r->out) : std::string();  // errors ignored, as iptables-wrappers does
  };
  for (const char* save : {"iptables-nft-save", "ip6tables-nft-save"}) {
    if (has_kubelet_chains(saved({save, "-t", "mangle"}))) {
      if (log::v(2)) spdlog::info("iptables flavour: nft (kubelet chains in {} -t mangle)", save);
      return IptablesFlavour::kNft;
    }
  }
  for (const char* save : {"iptables-legacy-save", "ip6tables-legacy-save"}) {
    if (has_kubelet_chains(saved({save}))) {
      if (log::v(2)) spdlog::info("iptables flavour: legacy (kubelet chains in {})", save);
      return IptablesFlavour::kLegacy;
    }
  }
  if (log::v(2)) spdlog::info("iptables flavour: nft (no kubelet chains found)");
  return IptablesFlavour::kNft;
}

}  // namespace kproxy::kernel
