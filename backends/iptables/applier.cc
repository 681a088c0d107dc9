#include "kproxy/iptables/applier.h"

namespace kproxy::iptables {

Expected<std::size_t> RestoreApplier::apply(const std::vector<TableBlock>& blocks) {
  const std::string payload = restore_payload(blocks);
  if (Status s = runner_.restore(payload, kernel::RestoreFlags{}); !s.ok()) return Error(s.message());
  return payload.size();
}

Expected<std::size_t> RestoreApplier::ensure_jumps(const std::vector<BuiltinJump>& jumps) {
  // First one iptables-restore holding every jump as "-C": when all are in place (every
  // sync but a node's first, or after someone flushed a built-in chain) that is one process
  // instead of one "iptables -C" per jump. Any miss fails it; then each jump is checked and
  // inserted on its own, as kube-proxy's EnsureRule does.
  if (!jumps.empty()) {
    std::string payload;
    for (Table table : {Table::kFilter, Table::kNat, Table::kMangle, Table::kRaw}) {
      std::string lines;
      for (const BuiltinJump& jump : jumps) {
        if (jump.table == table) lines += "-C " + jump.chain + " " + rule_spec(jump.rule) + "\n";
      }
      if (!lines.empty()) payload += "*" + std::string(kernel::table_name(table)) + "\n" + lines + "COMMIT\n";
    }
    if (runner_.restore(payload, kernel::RestoreFlags{true, false}).ok()) return std::size_t{0};
  }
  std::size_t inserted = 0;
  for (const BuiltinJump& jump : jumps) {
    auto added = runner_.ensure_rule(jump.table, jump.chain, rule_args(jump.rule));
    if (!added.ok()) return Error(jump_error(jump, added.error()));
    if (*added) ++inserted;
  }
  return inserted;
}

std::string jump_error(const BuiltinJump& jump, std::string_view error) {
  const auto* target = std::get_if<Jump>(&jump.rule.target);
  return "ensuring the jump to " + (target != nullptr ? target->chain : rule_spec(jump.rule)) + " in " +
         std::string(kernel::table_name(jump.table)) + " " + jump.chain + ": " + std::string(error);
}

}  // namespace kproxy::iptables
