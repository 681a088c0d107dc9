#include "fake_ipset.h"

#include <algorithm>

namespace kproxy::kernel {

Status FakeIpset::apply(const IpsetSpec& spec) {
  ++apply_calls_;
  if (on_apply) on_apply(spec);
  if (fail_next_) {
    std::string m = std::move(*fail_next_);
    fail_next_.reset();
    return Error(m);
  }
  auto it = sets_.find(spec.name);
  // A bitmap:port set (port_range) has no family in the kernel: only the type must agree.
  const bool same_family = spec.port_range || it == sets_.end() || it->second.family == spec.family;
  if (it != sets_.end() && (it->second.type != spec.type || !same_family)) {
    return Error("ipset swap " + spec.name + ": the sets are of different type or family");
  }
  IpsetSpec stored = spec;
  std::sort(stored.entries.begin(), stored.entries.end());
  stored.entries.erase(std::unique(stored.entries.begin(), stored.entries.end()), stored.entries.end());
  sets_[spec.name] = std::move(stored);
  return {};
}

Status FakeIpset::change(std::string_view name, const std::vector<std::string>& add,
                         const std::vector<std::string>& remove) {
  ++change_calls_;
  if (on_change) on_change(add, remove);
  if (fail_next_) {
    std::string m = std::move(*fail_next_);
    fail_next_.reset();
    return Error(m);
  }
  auto it = sets_.find(std::string(name));
  if (it == sets_.end()) return Error("ipset restore: The set with the given name does not exist: " + std::string(name));
  std::set<std::string> entries(it->second.entries.begin(), it->second.entries.end());
  entries.insert(add.begin(), add.end());
  for (const std::string& e : remove) entries.erase(e);
  it->second.entries.assign(entries.begin(), entries.end());
  return {};
}

Expected<std::optional<std::vector<std::string>>> FakeIpset::list(std::string_view name) {
  ++list_calls_;
  auto it = sets_.find(std::string(name));
  if (it == sets_.end()) return std::optional<std::vector<std::string>>();
  return std::optional<std::vector<std::string>>(it->second.entries);
}

Expected<bool> FakeIpset::destroy(std::string_view name) {
  ++destroy_calls_;
  auto it = sets_.find(std::string(name));
  if (it == sets_.end()) return false;
  if (referenced.contains(it->first)) {
    return Error("ipset destroy " + it->first + ": Set cannot be destroyed: it is in use by a kernel component");
  }
  sets_.erase(it);
  return true;
}

}  // namespace kproxy::kernel
