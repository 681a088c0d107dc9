#include "kproxy/iptables/proxier.h"
#include "kproxy/text.h"

#include <algorithm>
#include <map>
#include <type_traits>

#include "kproxy/log.h"

namespace kproxy::iptables {

IptablesProxier::IptablesProxier(kernel::IptablesRunner& runner, IptablesProxierOptions options,
                                 kernel::IpsetRunner* ipsets, RuleApplier* applier)
    : runner_(runner),
      restore_applier_(runner),
      applier_(applier != nullptr ? *applier : restore_applier_),
      options_(std::move(options)),
      ipsets_(ipsets) {}

Status IptablesProxier::apply_ipsets_before(const RenderedRules& rules, std::vector<IpsetRemoval>& after) {
  for (std::size_t i = 0; i < rules.ipsets.size(); ++i) {
    const kernel::IpsetSpec& spec = *rules.ipsets[i];
    const RenderedRules::IpsetChange& change = rules.ipset_changes.at(i);
    figures_.ipset_entries += spec.entries.size();
    if (ipsets_ == nullptr) return Error("the rules reference the ipset " + spec.name + " but no ipset runner is set");
    std::vector<std::string> add, remove;
    if (ipsets_generation_ != 0 && change.since == ipsets_generation_) {
      // The kernel holds the renderer's previous result: its difference is what to write.
      add = change.added;
      remove = change.removed;
    } else {
      auto current = ipsets_->list(spec.name);
      if (!current.ok()) return Error("reading the ipset " + spec.name + ": " + current.error());
      if (!current->has_value()) {
        // A new set: created whole, before the rules that match it.
        if (Status s = ipsets_->apply(spec); !s.ok()) return Error("ipset " + spec.name + ": " + s.message());
        ++figures_.ipset_applies;
        continue;
      }
      std::vector<std::string>& in_kernel = **current;
      std::sort(in_kernel.begin(), in_kernel.end());
      std::set_difference(spec.entries.begin(), spec.entries.end(), in_kernel.begin(), in_kernel.end(),
                          std::back_inserter(add));
      std::set_difference(in_kernel.begin(), in_kernel.end(), spec.entries.begin(), spec.entries.end(),
                          std::back_inserter(remove));
    }
    // Entries are added before the restore and removed after it, so rules still in the kernel
    // keep theirs until the restore replaces them. Only the difference is written.
    if (!add.empty()) {
      ++figures_.ipset_applies;
      if (Status s = ipsets_->change(spec.name, add, {}); !s.ok()) return Error("ipset " + spec.name + ": " + s.message());
    }
    if (!remove.empty()) after.push_back(IpsetRemoval{spec.name, std::move(remove)});
  }
  return {};
}

Status IptablesProxier::trim_ipsets(const std::vector<IpsetRemoval>& after) {
  for (const IpsetRemoval& r : after) {
    ++figures_.ipset_applies;
    if (Status s = ipsets_->change(r.name, {}, r.entries); !s.ok()) return Error("ipset " + r.name + ": " + s.message());
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
  last_render_options_ = render_options;

  if (!kernel_chains_) {
    if (Status s = load_kernel_chains(); !s.ok()) return s;
  }

  // The previous result, when the kernel holds it, tells what changed. Its ipsets are dropped
  // first so that the renderer can update its set in place.
  std::optional<RenderedRules> previous = std::move(rendered_);
  rendered_.reset();
  if (previous) previous->ipsets.clear();
  if (!last_sync_ok_) previous.reset();
  last_sync_ok_ = false;
  ipsets_generation_ = last_ipsets_ok_ ? ipsets_generation_ : 0;
  rendered_ = renderer_.render(request.snapshot, render_options);
  const RenderedRules& rules = *rendered_;
  const bool full = request.kind == proxier::SyncKind::kFull;

  // Which service chains to write and delete. A full sync, or one without a previous result in
  // the kernel, compares every chain with the kernel's. Otherwise one walk over the previous
  // and the new ports compares pointers: ports whose rules changed are written (the changed
  // ones the tracker named and any other, though there should be none), and their chains that
  // are gone are deleted.
  std::set<proxier::ServicePortName> write = request.changed;
  std::vector<std::string> stale, created;
  const bool incremental = !full && previous.has_value();
  if (!incremental) {
    std::set<std::string> active;
    for (const auto& [name, port] : rules.ports) {
      for (const Chain& c : port->chains) active.insert(c.name);
    }
    for (const auto& c : rules.nat_dispatch) active.insert(c->name);
    std::set_difference(kernel_chains_->begin(), kernel_chains_->end(), active.begin(), active.end(),
                        std::back_inserter(stale));
    created.assign(active.begin(), active.end());
  } else {
    // Chain names of a port's chains or of the dispatch chains (held by pointer).
    auto names = [](const auto& chains) {
      std::set<std::string> out;
      for (const auto& c : chains) {
        if constexpr (std::is_same_v<std::decay_t<decltype(c)>, Chain>) {
          out.insert(c.name);
        } else {
          out.insert(c->name);
        }
      }
      return out;
    };
    static const std::vector<Chain> kNone;
    auto compare = [&](const auto& before, const auto& after) {
      const auto b = names(before), a = names(after);
      std::set_difference(b.begin(), b.end(), a.begin(), a.end(), std::back_inserter(stale));
      std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(created));
    };
    auto old_it = previous->ports.begin();
    for (const auto& [name, port] : rules.ports) {
      for (; old_it != previous->ports.end() && old_it->first < name; ++old_it) compare(old_it->second->chains, kNone);
      if (old_it != previous->ports.end() && old_it->first == name) {
        if (old_it->second != port) {
          compare(old_it->second->chains, port->chains);
          write.insert(name);
        }
        ++old_it;
      } else {
        compare(kNone, port->chains);
        write.insert(name);
      }
    }
    for (; old_it != previous->ports.end(); ++old_it) compare(old_it->second->chains, kNone);
    compare(previous->nat_dispatch, rules.nat_dispatch);
    std::erase_if(stale, [&](const std::string& chain) { return !kernel_chains_->contains(chain); });
  }

  auto blocks = sync_blocks(rules, full ? nullptr : &write, stale);
  if (incremental) {
    // Dispatch and top-level chains: only those whose rules changed (or are new), so that the
    // bytes written follow the change, not the cluster; a table left with nothing to write is
    // not written at all (kube-proxy rewrites its top-level chains every time; a periodic full
    // sync still does). The renderer keeps a dispatch chain's object while its rules stay
    // the same, so comparing pointers finds them.
    std::map<std::string, const Chain*> before;
    for (const auto& c : previous->nat_dispatch) before.emplace_hint(before.end(), c->name, c.get());
    for (const Chain& c : previous->filter) before.emplace("filter " + c.name, &c);
    for (const Chain& c : previous->nat) before.emplace("nat " + c.name, &c);
    for (TableBlock& block : blocks) {
      std::erase_if(block.chains, [&](const Chain* c) {
        const bool dispatch = c->name.starts_with(kDispatchChainPrefix);
        const bool top = !dispatch && !is_service_chain(c->name);
        if (!dispatch && !top) return false;
        auto it = before.find(dispatch ? c->name : std::string(block.table == Table::kFilter ? "filter " : "nat ") + c->name);
        return it != before.end() && (it->second == c || *it->second == *c);
      });
    }
    std::erase_if(blocks, [](const TableBlock& b) { return b.chains.empty() && b.deleted_chains.empty(); });
  }

  figures_ = IptablesSyncFigures{};
  std::vector<IpsetRemoval> trim;
  if (Status s = apply_ipsets_before(rules, trim); !s.ok()) {
    last_ipsets_ok_ = false;
    return s;
  }
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
    // The sets are read again at the next sync (entries were added for rules that never came).
    last_ipsets_ok_ = false;
    return Error(written.error());
  }
  figures_.payload_bytes = *written;
  if (incremental) {
    for (const std::string& chain : stale) kernel_chains_->erase(chain);
    kernel_chains_->insert(created.begin(), created.end());
  } else {
    kernel_chains_ = std::set<std::string>(created.begin(), created.end());
  }
  if (Status s = trim_ipsets(trim); !s.ok()) {
    last_ipsets_ok_ = false;
    return s;
  }
  last_ipsets_ok_ = true;
  ipsets_generation_ = rules.generation;

  if (full) {
    if (Status s = ensure_jumps(); !s.ok()) return s;
  }
  last_sync_ok_ = true;
  if (log::v(2)) {
    spdlog::info("iptables {} sync of {} ({}): {} bytes, {} filter rules, {} nat rules in {} nat chains, {} chains "
                 "deleted",
                 full ? "full" : "partial", to_string(options_.render.family), applier_.name(), figures_.payload_bytes, figures_.filter_rules, figures_.nat_rules,
                 figures_.nat_chains, figures_.deleted_chains);
  }
  return {};
}

}  // namespace kproxy::iptables
