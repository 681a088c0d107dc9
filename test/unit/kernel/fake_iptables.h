// FakeIptables: a stateful model of the kernel's iptables tables for unit tests
// (STYLE.md practice 2). It parses iptables-restore input into tables -> chains -> rules and
// rejects what the kernel rejects: a jump to a missing chain, deleting a chain that is still
// referenced or not empty, a missing COMMIT, an unknown table. docs/iptables.md lists where
// it is stricter or looser than the kernel.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "kproxy/kernel/iptables_runner.h"

namespace kproxy::kernel {

class FakeIptables final : public IptablesRunner {
 public:
  struct Chain {
    bool builtin = false;
    std::string policy;              // "ACCEPT"/"DROP" for built-in chains, "-" otherwise
    std::vector<std::string> rules;  // rule specs after "-A CHAIN ", whitespace-normalized
  };
  struct TableState {
    std::map<std::string, Chain> chains;
  };

  explicit FakeIptables(IptablesFlavour flavour = IptablesFlavour::kNft, IpFamily family = IpFamily::kIPv4);

  Status restore(std::string_view payload, RestoreFlags flags) override;
  Expected<std::string> save(Table table) override;
  Expected<bool> chain_exists(Table table, std::string_view chain) override;
  Expected<bool> ensure_rule(Table table, std::string_view chain, const std::vector<std::string>& args) override;
  Expected<bool> delete_rule(Table table, std::string_view chain, const std::vector<std::string>& args) override;
  Expected<std::optional<std::string>> rule_at(Table table, std::string_view chain, int index) override;
  // "iptables -t TABLE -F": empties every chain of the table (a firewalld reload, say).
  void flush_table(Table table);
  IptablesFlavour flavour() const override { return flavour_; }
  IpFamily family() const override { return family_; }

  // Inspection for tests.
  const TableState& table(Table t) const { return tables_.at(t); }
  const Chain* chain(Table t, const std::string& name) const;
  int restore_calls() const { return restore_calls_; }
  int save_calls() const { return save_calls_; }
  int ensure_rule_calls() const { return ensure_rule_calls_; }
  // The next restore() fails with this message and changes nothing (a lock timeout, say).
  void fail_next_restore(std::string message) { fail_next_ = std::move(message); }

 private:
  IptablesFlavour flavour_;
  IpFamily family_;
  std::map<Table, TableState> tables_;
  int restore_calls_ = 0;
  int save_calls_ = 0;
  int ensure_rule_calls_ = 0;
  std::optional<std::string> fail_next_;
};

// Built-in chains of a table, in iptables-save order.
const std::vector<std::string>& builtin_chains(Table table);

// The KUBE- part of an iptables-save output, comparable between the fake, nft and legacy:
// ":KUBE-X" declarations (counters and policy dropped) sorted by name, then every "-A" rule
// that is in a KUBE- chain or jumps to one, grouped by chain (sorted), in rule order.
std::string kube_chains_view(std::string_view save_output);

}  // namespace kproxy::kernel
