// IptablesRunner: the one way kproxy programs iptables (DESIGN.md, "Kernel adapters").
//
// Narrow verbs only: apply an iptables-restore payload, read a table back, and a cheap
// "does this chain exist" for the canary. The real implementation runs the iptables-nft or
// iptables-legacy binaries (exec_iptables_runner.h); tests use a stateful fake that models
// tables, chains and rules (test/unit/kernel/fake_iptables.h). docs/iptables.md has the details.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kproxy/status.h"

namespace kproxy::kernel {

enum class Table { kFilter, kNat, kMangle, kRaw };
enum class IptablesFlavour { kNft, kLegacy };
enum class IpFamily { kIPv4, kIPv6 };

// "filter", "nat", "mangle", "raw".
std::string_view table_name(Table table);
std::optional<Table> parse_table(std::string_view name);
// "nft", "legacy".
std::string_view flavour_name(IptablesFlavour flavour);

struct RestoreFlags {
  bool noflush = true;   // --noflush: chains not named in the payload are left alone
  bool counters = true;  // --counters: "[packets:bytes]" in the payload are applied
};

class IptablesRunner {
 public:
  virtual ~IptablesRunner() = default;

  // Applies one iptables-restore payload holding one or more "*table ... COMMIT" blocks, in
  // one process. Each block is atomic (the kernel commits per COMMIT, both flavours): when a
  // block fails, nothing of it is applied, but blocks committed before it stay. The error
  // names the failing line and quotes the payload around it.
  virtual Status restore(std::string_view payload, RestoreFlags flags) = 0;

  // iptables-save -t TABLE. Costly on big nft tables (minutes at 10k Services): call it once
  // per sync at most, never in a loop.
  virtual Expected<std::string> save(Table table) = 0;

  // Whether a chain exists in a table (iptables -S CHAIN); cheap, for the canary. A missing
  // chain is `false`, not an error; errors are lock timeouts and failures to run iptables.
  virtual Expected<bool> chain_exists(Table table, std::string_view chain) = 0;

  // kube-proxy's EnsureRule(Prepend): if no rule in CHAIN equals ARGS (iptables -C), insert
  // it at the top (iptables -I CHAIN). Returns whether it was inserted. For the jumps from
  // built-in chains, which a restore with --noflush cannot ensure without duplicating them.
  virtual Expected<bool> ensure_rule(Table table, std::string_view chain, const std::vector<std::string>& args) = 0;

  // Removes one rule equal to ARGS from CHAIN (iptables -D). Returns false when there was
  // none (or no such chain); errors are lock timeouts and failures to run iptables.
  virtual Expected<bool> delete_rule(Table table, std::string_view chain, const std::vector<std::string>& args) = 0;

  // The INDEX-th rule of CHAIN (1-based) as "iptables -S" prints it, "" when the chain has
  // fewer rules, nullopt when the chain does not exist. Cheap: for the canary.
  virtual Expected<std::optional<std::string>> rule_at(Table table, std::string_view chain, int index) = 0;

  virtual IptablesFlavour flavour() const = 0;
  virtual IpFamily family() const = 0;
};

// The line number an iptables-restore error message names ("line 7 failed", "Error occurred
// at line: 7", "COMMIT expected at line 7", "line 7: CHAIN_DEL failed"), if any.
std::optional<int> restore_error_line(std::string_view stderr_text);

// "<what>: <stderr>" followed, when `line` is set, by the payload lines around it, numbered,
// with the failing one marked; kube-proxy logs the same context on a failed restore.
std::string format_restore_error(std::string_view what, std::string_view stderr_text, std::string_view payload,
                                 std::optional<int> line, int context = 3);

}  // namespace kproxy::kernel
