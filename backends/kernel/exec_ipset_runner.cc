// The real IpsetRunner: the ipset binary, with `ipset restore` for whole-set updates.
#include <algorithm>
#include <utility>

#include "kproxy/kernel/exec_iptables_runner.h"  // run_command
#include "kproxy/kernel/ipset_runner.h"

#include <cstdio>
#include "kproxy/text.h"

namespace kproxy::kernel {
namespace {

std::string failure(const std::vector<std::string>& argv, const CommandResult& r) {
  std::string cmd;
  for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
  std::string msg = cmd + ": exit status " + std::to_string(r.exit_code);
  std::string err = r.err;
  while (!err.empty() && err.back() == '\n') err.pop_back();
  if (!err.empty()) msg += ": " + err;
  return msg;
}

bool missing_set(const CommandResult& r) {
  return r.exit_code == 1 && r.err.find("does not exist") != std::string::npos;
}

}  // namespace

std::string_view ipset_family_name(IpFamily family) { return family == IpFamily::kIPv6 ? "inet6" : "inet"; }

std::size_t ipset_max_elements(std::size_t entries) { return std::max<std::size_t>(65536, 2 * entries); }

std::string ipset_temporary_name(std::string_view name) {
  if (name.size() + 4 <= 31) return std::string(name) + "-tmp";
  std::uint32_t h = 2166136261u;  // FNV-1a
  for (char c : name) h = (h ^ static_cast<std::uint8_t>(c)) * 16777619u;
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08x", h);
  return std::string(name.substr(0, 22)) + "-" + hex;
}

std::string ipset_apply_script(const IpsetSpec& spec, bool create_set, bool destroy_leftover_tmp) {
  const std::string tmp = ipset_temporary_name(spec.name);
  // bitmap:port: "range FROM-TO", and neither family nor maxelem (the type refuses both).
  const std::string params =
      spec.port_range ? spec.type + " range " + std::to_string(spec.port_range->first) + "-" +
                            std::to_string(spec.port_range->second)
                      : spec.type + " family " + std::string(ipset_family_name(spec.family));
  const std::string tmp_params =
      spec.port_range ? params : params + " maxelem " + std::to_string(ipset_max_elements(spec.entries.size()));
  std::string out;
  if (destroy_leftover_tmp) out += "destroy " + tmp + "\n";
  if (create_set) out += "create " + spec.name + " " + params + "\n";
  out += "create " + tmp + " " + tmp_params + "\n";
  for (const std::string& e : spec.entries) out += "add " + tmp + " " + e + "\n";
  out += "swap " + spec.name + " " + tmp + "\n";
  out += "destroy " + tmp + "\n";
  return out;
}

std::vector<std::string> ipset_entries_in_save(std::string_view save_output) {
  std::vector<std::string> out;
  for (std::string_view line : split_lines(save_output)) {
    if (!line.starts_with("add ")) continue;
    line.remove_prefix(4);
    const std::size_t space = line.find(' ');
    if (space == std::string_view::npos) continue;
    std::string_view entry = line.substr(space + 1);
    entry = entry.substr(0, entry.find(' '));  // options (timeout, comment) are not kproxy's
    out.emplace_back(entry);
  }
  std::sort(out.begin(), out.end());
  return out;
}

ExecIpsetRunner::ExecIpsetRunner(ExecIpsetOptions options) : options_(std::move(options)) {}

std::vector<std::string> ExecIpsetRunner::with_prefix(std::vector<std::string> argv) const {
  std::vector<std::string> full = options_.command_prefix;
  full.insert(full.end(), std::make_move_iterator(argv.begin()), std::make_move_iterator(argv.end()));
  return full;
}

Status ExecIpsetRunner::apply(const IpsetSpec& spec) {
  const bool known = std::find(known_.begin(), known_.end(), spec.name) != known_.end();
  bool create_set = false;
  bool destroy_tmp = false;
  if (!known) {
    const auto argv = with_prefix({"ipset", "list", "-n"});
    auto r = run_command(argv, "", options_.timeout);
    if (!r.ok()) return Error(r.error());
    if (r->exit_code != 0) return Error(failure(argv, *r));
    bool has_set = false;
    for (std::string_view name : split_lines(r->out)) {
      if (name == spec.name) has_set = true;
      if (name == ipset_temporary_name(spec.name)) destroy_tmp = true;
    }
    create_set = !has_set;
  }
  const auto argv = with_prefix({"ipset", "restore"});
  const std::string script = ipset_apply_script(spec, create_set, destroy_tmp);
  auto r = run_command(argv, script, options_.timeout);
  if (!r.ok()) return Error(r.error());
  if (r->exit_code != 0) {
    known_.erase(std::remove(known_.begin(), known_.end(), spec.name), known_.end());
    return Error(failure(argv, *r));
  }
  if (!known) known_.push_back(spec.name);
  return {};
}

std::string ipset_change_script(std::string_view name, const std::vector<std::string>& add,
                                const std::vector<std::string>& remove) {
  std::string script;
  for (const auto& [verb, entries] : {std::pair{"add ", &add}, std::pair{"del ", &remove}}) {
    for (const std::string& e : *entries) {
      script += verb;
      script += name;
      script += ' ';
      script += e;
      script += " -exist\n";
    }
  }
  return script;
}

Status ExecIpsetRunner::change(std::string_view name, const std::vector<std::string>& add,
                               const std::vector<std::string>& remove) {
  if (add.empty() && remove.empty()) return {};
  const auto argv = with_prefix({"ipset", "restore"});
  auto r = run_command(argv, ipset_change_script(name, add, remove), options_.timeout);
  if (!r.ok()) return Error(r.error());
  if (r->exit_code != 0) return Error(failure(argv, *r));
  return {};
}

Expected<std::optional<std::vector<std::string>>> ExecIpsetRunner::list(std::string_view name) {
  const auto argv = with_prefix({"ipset", "save", std::string(name)});
  auto r = run_command(argv, "", options_.timeout);
  if (!r.ok()) return Error(r.error());
  if (missing_set(*r)) return std::optional<std::vector<std::string>>();
  if (r->exit_code != 0) return Error(failure(argv, *r));
  return std::optional<std::vector<std::string>>(ipset_entries_in_save(r->out));
}

Expected<bool> ExecIpsetRunner::destroy(std::string_view name) {
  const auto argv = with_prefix({"ipset", "destroy", std::string(name)});
  auto r = run_command(argv, "", options_.timeout);
  if (!r.ok()) return Error(r.error());
  known_.erase(std::remove(known_.begin(), known_.end(), std::string(name)), known_.end());
  if (missing_set(*r)) return false;
  if (r->exit_code != 0) return Error(failure(argv, *r));
  return true;
}

}  // namespace kproxy::kernel
