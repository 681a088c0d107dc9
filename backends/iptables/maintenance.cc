#include "kproxy/iptables/maintenance.h"

#include "kproxy/iptables/proxier.h"
#include "kproxy/iptables/render.h"
#include "kproxy/log.h"

namespace kproxy::iptables {
namespace {

constexpr Table kCanaryTables[] = {Table::kMangle, Table::kNat, Table::kFilter};

}  // namespace

const char* const Canary::kComment = "kproxy canary: a flush of this table forces a full resync";

Status Canary::ensure() {
  const Chain chain{kCanaryChain, {Rule{{Comment{kComment}}, Verdict{Verdict::Kind::kReturn}}}};
  std::vector<TableBlock> blocks;
  for (Table t : kCanaryTables) blocks.push_back(TableBlock{t, {&chain}, {}});
  return runner_.restore(restore_payload(blocks), kernel::RestoreFlags{});
}

Expected<bool> Canary::intact(std::vector<std::string>* which) {
  bool ok = true;
  for (Table t : kCanaryTables) {
    auto rule = runner_.rule_at(t, kCanaryChain, 1);
    if (!rule.ok()) return Error(rule.error());
    if (!rule->has_value() || (*rule)->empty()) {
      ok = false;
      if (which != nullptr) which->emplace_back(kernel::table_name(t));
    }
  }
  return ok;
}

Status cleanup(kernel::IptablesRunner& runner, kernel::IpsetRunner* ipsets) {
  std::vector<std::string> errors;
  // The jumps first, so that the chains are unreferenced. Every jump kube-proxy ensures, and
  // each as often as it is there.
  RenderOptions all;
  all.family = runner.family() == kernel::IpFamily::kIPv4 ? IpFamily::kIPv4 : IpFamily::kIPv6;
  all.localhost_nodeports = false;  // leaves out the KUBE-FIREWALL jumps: kubelet's
  for (const BuiltinJump& jump : builtin_jumps(all)) {
    // "iptables -D ... -j CHAIN" is a usage error (status 2), not "no such rule", when CHAIN
    // does not exist; then no rule can jump to it either.
    auto target = runner.chain_exists(jump.table, std::get<Jump>(jump.rule.target).chain);
    if (!target.ok()) {
      errors.push_back(target.error());
      continue;
    }
    if (!*target) continue;
    for (int i = 0; i < 16; ++i) {
      auto deleted = runner.delete_rule(jump.table, jump.chain, rule_args(jump.rule));
      if (!deleted.ok()) {
        errors.push_back(deleted.error());
        break;
      }
      if (!*deleted) break;
    }
  }

  auto saved = runner.save(Table::kNat);
  std::set<std::string> service_chains;
  if (saved.ok()) {
    service_chains = service_chains_in_save(*saved);
  } else {
    errors.push_back("reading nat: " + saved.error());
  }
  // Declaring a chain flushes it (and creates it if missing); then it is deleted. One block
  // per table, each atomic: a chain still referenced by a rule kproxy does not own makes its
  // table's block fail and is reported.
  std::vector<TableBlock> blocks;
  blocks.push_back(TableBlock{Table::kFilter, {},
                              {kServicesChain, kExternalServicesChain, kForwardChain, kNodePortsChain,
                               kProxyFirewallChain, kCanaryChain}});
  TableBlock nat{Table::kNat, {}, {kServicesChain, kNodePortsChain, kPostroutingChain, kMarkMasqChain, kCanaryChain}};
  nat.deleted_chains.insert(nat.deleted_chains.end(), service_chains.begin(), service_chains.end());
  blocks.push_back(std::move(nat));
  blocks.push_back(TableBlock{Table::kMangle, {}, {kCanaryChain}});
  for (const TableBlock& block : blocks) {
    if (Status s = runner.restore(restore_payload({block}), kernel::RestoreFlags{}); !s.ok()) {
      errors.push_back(s.message());
    }
  }
  if (ipsets != nullptr) {
    // After the rules that reference it are gone.
    auto destroyed = ipsets->destroy(loop_back_set_name(all.family));
    if (!destroyed.ok()) errors.push_back(destroyed.error());
  }
  if (errors.empty()) return {};
  std::string message = "could not remove everything:";
  for (const auto& e : errors) message += "\n  " + e;
  return Error(message);
}

}  // namespace kproxy::iptables
