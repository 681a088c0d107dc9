// FakeIpset: a stateful model of the kernel's ipsets for unit tests: sets by name with their
// type, family and entries. apply() replaces a set's content as ExecIpsetRunner's swap does;
// destroy() refuses a set marked as referenced (the kernel refuses a set iptables rules use).
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "kproxy/kernel/ipset_runner.h"

namespace kproxy::kernel {

class FakeIpset final : public IpsetRunner {
 public:
  Status apply(const IpsetSpec& spec) override;
  Status change(std::string_view name, const std::vector<std::string>& add,
                const std::vector<std::string>& remove) override;
  Expected<std::optional<std::vector<std::string>>> list(std::string_view name) override;
  Expected<bool> destroy(std::string_view name) override;

  // Inspection and control for tests.
  const std::map<std::string, IpsetSpec>& sets() const { return sets_; }
  int apply_calls() const { return apply_calls_; }
  int change_calls() const { return change_calls_; }
  int destroy_calls() const { return destroy_calls_; }
  int list_calls() const { return list_calls_; }
  // Called at each apply(), before it changes anything (to record the order of kernel calls).
  std::function<void(const IpsetSpec&)> on_apply;
  // Called at each change(), before it changes anything.
  std::function<void(const std::vector<std::string>& add, const std::vector<std::string>& remove)> on_change;
  // The next apply() or change() fails and changes nothing.
  void fail_next_apply(std::string message) { fail_next_ = std::move(message); }
  // Sets "in use by a kernel component": destroy() fails for them.
  std::set<std::string> referenced;

 private:
  std::map<std::string, IpsetSpec> sets_;
  int apply_calls_ = 0;
  int change_calls_ = 0;
  int destroy_calls_ = 0;
  int list_calls_ = 0;
  std::optional<std::string> fail_next_;
};

}  // namespace kproxy::kernel
