#include "kproxy/iptables/proxier.h"
#include "kproxy/text.h"

#include <algorithm>
#include <map>

#include "kproxy/log.h"

namespace kproxy::iptables {

IptablesProxier::IptablesProxier(kernel::IptablesRunner& runner, IptablesProxierOptions options,
                                 kernel::IpsetRunner* ipsets, RuleApplier* applier)
    : runner_(runner),
      restore_applier_(runner),
      applier_(applier != nullptr ? *applier : restore_applier_),
      options_(std::move(options)),
      ipsets_(ipsets) {}

Status IptablesProxier::apply_ipsets_before(const RenderedRules& rules,
                                            std::vector<const kernel::IpsetSpec*>& after) {
  for (const kernel::IpsetSpec& spec : rules.ipsets) {
    figures_.ipset_entries += spec.entries.size();
    if (ipsets_ == nullptr) return Error("the rules reference the ipset " + spec.name + " but no ipset runner is set");
    auto it = ipsets_applied_.find(spec.name);
    if (it == ipsets_applied_.end()) {
      auto current = ipsets_->list(spec.name);
      if (!current.ok()) return Error("reading the ipset " + spec.name + ": " + current.error());
      if (!current->has_value()) {
        // A new set: created whole, before the rules that match it.
        if (Status s = ipsets_->apply(spec); !s.ok()) return Error("ipset " + spec.name + ": " + s.message());
        ++figures_.ipset_applies;
        ipsets_applied_.emplace(spec.name, spec.entries);
        continue;
      }
      it = ipsets_applied_.emplace(spec.name, std::move(**current)).first;
    }
    // Entries are added before the restore and removed after it, so rules still in the kernel
    // keep theirs until the restore replaces them. Only the difference is written.
    std::vector<std::string> add;
    std::set_difference(spec.entries.begin(), spec.entries.end(), it->second.begin(), it->second.end(),
                        std::back_inserter(add));
    if (!add.empty()) {
      ++figures_.ipset_applies;
      if (Status s = ipsets_->change(spec.name, add, {}); !s.ok()) {
        ipsets_applied_.erase(it);
        return Error("ipset " + spec.name + ": " + s.message());
      }
      std::vector<std::string> both;
      std::set_union(it->second.begin(), it->second.end(), add.begin(), add.end(), std::back_inserter(both));
      it->second = std::move(both);
    }
    if (it->second.size() != spec.entries.size()) after.push_back(&spec);
  }
  return {};
}

Status IptablesProxier::trim_ipsets(const std::vector<const kernel::IpsetSpec*>& after) {
  for (const kernel::IpsetSpec* spec : after) {
    auto it = ipsets_applied_.find(spec->name);
    std::vector<std::string> remove;
    std::set_difference(it->second.begin(), it->second.end(), spec->entries.begin(), spec->entries.end(),
                        std::back_inserter(remove));
    ++figures_.ipset_applies;
    if (Status s = ipsets_->change(spec->name, {}, remove); !s.ok()) {
      ipsets_applied_.erase(it);
      return Error("ipset " + spec->name + ": " + s.message());
    }
    it->second = spec->entries;
  }
  return {};
}

std::set<std::string> service_chains_in_save(std::string_view save_output) {
  std::set<std::string> out;
  for (std::string_view line : split_lines(save_output)) {
    if (line.empty() || line.front() != ':') continue;
    line.remove_prefix(1);
    const std::string_view name = line.substr(0, line.find(' '));
    if (is_service_chain(name)) out.emplace(name);
  }
  return out;
}

Status IptablesProxier::load_kernel_chains() {
  auto saved = runner_.save(Table::kNat);
  if (!saved.ok()) return Error("reading the nat table's chains: " + saved.error());
  kernel_chains_ = service_chains_in_save(*saved);
  if (log::v(2)) spdlog::info("iptables: {} service chains found in nat at startup", kernel_chains_->size());
  return {};
}

Status IptablesProxier::ensure_jumps() {
  auto inserted = applier_.ensure_jumps(builtin_jumps(options_.render));
  if (!inserted.ok()) return Error(inserted.error());
  figures_.jumps_inserted = *inserted;
  return {};
}

Status IptablesProxier::sync(const proxier::SyncRequest& request) {
  RenderOptions render_options = options_.render;
  render_options.node = request.node;
  if (request.node_object != nullptr) {
    const model::Node& node = *request.node_object;
    if (!render_options.node_ip) {
      for (const auto& a : node.addresses) {
        if (a.ip.family() == render_options.family && a.type == model::NodeAddressType::kInternalIP) {
          render_options.node_ip = a.ip;
          break;
        }
      }
    }
    if (options_.local_detector_from_node_cidr) {
      for (const Cidr& c : node.pod_cidrs) {
        if (c.family() == render_options.family) {
          render_options.local_detector = LocalDetector{LocalDetector::Mode::kCidr, c, ""};
          break;
        }
      }
    }
  }
  if (!options_.node_port_cidrs.empty()) {
    std::vector<IpAddress> ips;
    for (const IpAddress& ip : options_.local_addresses ? options_.local_addresses() : std::vector<IpAddress>{}) {
      if (std::any_of(options_.node_port_cidrs.begin(), options_.node_port_cidrs.end(),
                      [&](const Cidr& c) { return c.family() == ip.family() && c.contains(ip); })) {
        ips.push_back(ip);
      }
    }
    render_options.node_port_ips = std::move(ips);
  }

  if (!kernel_chains_) {
    if (Status s = load_kernel_chains(); !s.ok()) return s;
  }

  rendered_ = renderer_.render(request.snapshot, render_options);
  const RenderedRules& rules = *rendered_;
  std::set<std::string> active;
  for (const auto& [name, port] : rules.ports) {
    for (const Chain& c : port->chains) active.insert(active.end(), c.name);
  }
  for (const auto& c : rules.nat_dispatch) active.insert(c->name);
  std::vector<std::string> stale;
  std::set_difference(kernel_chains_->begin(), kernel_chains_->end(), active.begin(), active.end(),
                      std::back_inserter(stale));

  const bool full = request.kind == proxier::SyncKind::kFull;
  auto blocks = sync_blocks(rules, full ? nullptr : &request.changed, stale);
  // Dispatch chains: a partial sync writes only those whose rules changed (or are new), so
  // that the bytes written follow the change, not the cluster. The renderer keeps a chain's
  // object while its rules stay the same, so comparing pointers finds them.
  std::map<std::string, std::shared_ptr<const Chain>> dispatch_now;
  for (const auto& c : rules.nat_dispatch) dispatch_now.emplace_hint(dispatch_now.end(), c->name, c);
  if (!full) {
    auto& chains = blocks[1].chains;
    chains.erase(std::remove_if(chains.begin(), chains.end(),
                                [&](const Chain* c) {
                                  if (!c->name.starts_with(kDispatchChainPrefix)) return false;
                                  auto it = dispatch_written_.find(c->name);
                                  return it != dispatch_written_.end() && (it->second.get() == c || *it->second == *c);
                                }),
                 chains.end());
  }
  // Top-level chains likewise: a partial sync skips those holding what was last written, and
  // a table left with nothing to write is not written at all (kube-proxy rewrites them on
  // every sync; a periodic full sync still does).
  std::map<std::pair<Table, std::string>, Chain> top_now;
  for (const Chain& c : rules.filter) top_now.emplace(std::pair{Table::kFilter, c.name}, c);
  for (const Chain& c : rules.nat) top_now.emplace(std::pair{Table::kNat, c.name}, c);
  if (!full) {
    for (TableBlock& block : blocks) {
      std::erase_if(block.chains, [&](const Chain* c) {
        auto it = top_written_.find(std::pair{block.table, c->name});
        return it != top_written_.end() && it->second == *c;
      });
    }
    std::erase_if(blocks, [](const TableBlock& b) { return b.chains.empty() && b.deleted_chains.empty(); });
  }

  figures_ = IptablesSyncFigures{};
  std::vector<const kernel::IpsetSpec*> trim;
  if (Status s = apply_ipsets_before(rules, trim); !s.ok()) return s;
  figures_.kind = request.kind;
  figures_.deleted_chains = stale.size();
  figures_.stats = rules.stats;
  for (const TableBlock& block : blocks) {
    for (const Chain* c : block.chains) (block.table == Table::kFilter ? figures_.filter_rules : figures_.nat_rules) += c->rules.size();
    if (block.table == Table::kNat) figures_.nat_chains = block.chains.size();
  }

  if (log::v(5)) spdlog::info("iptables-restore payload:\n{}", restore_payload(blocks));
  auto written = blocks.empty() ? Expected<std::size_t>(std::size_t{0}) : applier_.apply(blocks);
  if (!written.ok()) {
    // The sets are read again at the next sync (a restore fails when a set was destroyed).
    if (!rules.ipsets.empty()) ipsets_applied_.clear();
    return Error(written.error());
  }
  figures_.payload_bytes = *written;
  kernel_chains_ = std::move(active);
  dispatch_written_ = std::move(dispatch_now);
  top_written_ = std::move(top_now);
  if (Status s = trim_ipsets(trim); !s.ok()) return s;

  if (full) {
    if (Status s = ensure_jumps(); !s.ok()) return s;
  }
  if (log::v(2)) {
    spdlog::info("iptables {} sync ({}): {} bytes, {} filter rules, {} nat rules in {} nat chains, {} chains deleted",
                 full ? "full" : "partial", applier_.name(), figures_.payload_bytes, figures_.filter_rules, figures_.nat_rules,
                 figures_.nat_chains, figures_.deleted_chains);
  }
  return {};
}

}  // namespace kproxy::iptables
