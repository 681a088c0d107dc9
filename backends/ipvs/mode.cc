// The --proxy-mode=ipvs backend (include/kproxy/ipvs/mode.h).
#include "kproxy/ipvs/mode.h"

#include <spdlog/spdlog.h>

#include "kproxy/log.h"

namespace kproxy::ipvs {

namespace {

// One family for the whole instance: the proxier's and the layout's are the mode's.
IpvsModeOptions aligned(IpvsModeOptions o) {
  o.proxier.family = o.family;
  o.layout.family = o.family;
  return o;
}

}  // namespace

IpvsMode::IpvsMode(kernel::Ipvs& ipvs, kernel::Links& links, kernel::IpsetRunner& ipsets,
                   kernel::IptablesRunner& iptables, IpvsModeOptions options)
    : ipsets_(ipsets), iptables_(iptables), options_(aligned(std::move(options))), proxier_(ipvs, links, options_.proxier) {
  const kernel::IpFamily want = options_.family == IpFamily::kIPv4 ? kernel::IpFamily::kIPv4 : kernel::IpFamily::kIPv6;
  if (iptables_.family() != want) {
    spdlog::error("ipvs ({}): the iptables runner is of the other family; its rules will be refused",
                  to_string(options_.family));
  }
}

Status IpvsMode::sync(const proxier::SyncRequest& request) {
  std::vector<std::string> errors;
  if (request.kind == proxier::SyncKind::kFull) {
    // Periodic, first, after a failure or a flushed canary: everything is written again.
    applied_sets_.clear();
    applied_rules_.reset();
    jumps_ensured_ = false;
  }
  if (Status s = proxier_.sync(request); !s.ok()) errors.push_back(s.message());

  LayoutOptions layout_options = options_.layout;
  layout_options.node = request.node;
  layout_options.node_port_addresses = proxier_.last_node_port_addresses();
  const Layout layout = build_layout(request.snapshot, proxier_.last_desired(), layout_options);

  // Sets first: the rules name them.
  for (const kernel::IpsetSpec& spec : layout.sets) {
    auto it = applied_sets_.find(spec.name);
    if (it != applied_sets_.end() && it->second == spec) continue;
    if (Status s = ipsets_.apply(spec); !s.ok()) {
      errors.push_back(s.message());
      applied_sets_.erase(spec.name);
      continue;
    }
    applied_sets_[spec.name] = spec;
  }
  const std::string payload = layout.restore_payload();
  if (!applied_rules_ || *applied_rules_ != payload) {
    if (Status s = iptables_.restore(payload, {}); !s.ok()) {
      errors.push_back(s.message());
      applied_rules_.reset();
      jumps_ensured_ = false;
    } else {
      applied_rules_ = payload;
    }
  }
  if (!jumps_ensured_ && applied_rules_) {
    bool all = true;
    for (const iptables::BuiltinJump& j : layout.jumps) {
      auto done = iptables_.ensure_rule(j.table, j.chain, iptables::rule_args(j.rule));
      if (!done) {
        errors.push_back(done.error());
        all = false;
      }
    }
    jumps_ensured_ = all;
  }
  if (errors.empty()) {
    if (log::v(2) && request.kind == proxier::SyncKind::kFull) {
      spdlog::info("ipvs full sync of {}: {} virtual services, {} sets, {} nat and {} filter chains written",
                   to_string(options_.family), proxier_.last_sync().services, layout.sets.size(), layout.nat.size(), layout.filter.size());
    }
    return {};
  }
  std::string text = errors.front();
  if (errors.size() > 1) text += " (and " + std::to_string(errors.size() - 1) + " more)";
  // The next sync checks everything again.
  applied_rules_.reset();
  jumps_ensured_ = false;
  return Error(text);
}

namespace {

// The layout's chains that exist in `table`.
std::vector<std::string> existing_chains(kernel::IptablesRunner& iptables, kernel::Table table) {
  std::vector<std::string> out;
  for (const std::string& chain : layout_chain_names(table)) {
    auto exists = iptables.chain_exists(table, chain);
    if (exists.ok() && *exists) out.push_back(chain);
  }
  return out;
}

// One restore that empties (`remove` false) or deletes the layout's chains that exist, in both
// tables, through the iptables backend's payload writer. Nothing is run when none exists.
Status restore_chains(kernel::IptablesRunner& iptables, bool remove) {
  const kernel::Table tables[] = {kernel::Table::kNat, kernel::Table::kFilter};
  std::vector<iptables::Chain> chains[2];  // per table; the blocks point into them
  std::vector<iptables::TableBlock> blocks;
  for (int t = 0; t < 2; ++t) {
    iptables::TableBlock block{tables[t], {}, {}};
    for (const std::string& name : existing_chains(iptables, tables[t])) {
      if (remove) block.deleted_chains.push_back(name);
      chains[t].push_back({name, {}});
    }
    if (!remove) {
      for (const iptables::Chain& c : chains[t]) block.chains.push_back(&c);
    }
    if (!chains[t].empty()) blocks.push_back(std::move(block));
  }
  if (blocks.empty()) return {};
  return iptables.restore(iptables::restore_payload(blocks), {});
}

Status joined(const std::vector<std::string>& errors) {
  if (errors.empty()) return {};
  std::string text;
  for (const auto& e : errors) text += (text.empty() ? "" : "; ") + e;
  return Error("ipvs cleanup: " + text);
}

}  // namespace

Status IpvsMode::release_rules(kernel::IptablesRunner& iptables) {
  std::vector<std::string> errors;
  const Layout empty = build_layout({}, {}, {});
  for (const iptables::BuiltinJump& j : empty.jumps) {
    for (;;) {
      auto deleted = iptables.delete_rule(j.table, j.chain, iptables::rule_args(j.rule));
      if (!deleted || !*deleted) break;
    }
  }
  if (Status s = restore_chains(iptables, false); !s.ok()) errors.push_back(s.message());
  return joined(errors);
}

Status IpvsMode::cleanup(kernel::Ipvs* ipvs, kernel::Links& links, kernel::IpsetRunner& ipsets,
                         kernel::IptablesRunner& iptables) {
  std::vector<std::string> errors;
  if (ipvs != nullptr) {
    if (Status s = IpvsProxier::cleanup(*ipvs, links); !s.ok()) errors.push_back(s.message());
  } else if (auto deleted = links.delete_link(kDummyDevice); !deleted) {
    errors.push_back(deleted.error());
  }
  if (Status s = release_rules(iptables); !s.ok()) errors.push_back(s.message());
  if (Status s = restore_chains(iptables, true); !s.ok()) errors.push_back(s.message());
  const IpFamily family = iptables.family() == kernel::IpFamily::kIPv6 ? IpFamily::kIPv6 : IpFamily::kIPv4;
  for (const std::string& name : layout_set_names(family)) {
    auto destroyed = ipsets.destroy(name);
    if (!destroyed) errors.push_back(destroyed.error());
  }
  return joined(errors);
}

}  // namespace kproxy::ipvs
