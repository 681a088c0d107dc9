// FakeConntrack: a stateful model of the kernel's conntrack table for unit tests (STYLE.md
// practice 2). Entries are unique per zone by either tuple, as in the kernel's hash, which
// holds each entry under its original and its reply tuple: add() refuses an entry whose
// original or reply tuple is already some entry's, and remove() finds an entry by a tuple
// of either direction (ctnetlink_del_conntrack looks the tuple up in that hash), honouring
// the id when one is given.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kproxy/kernel/conntrack.h"

namespace kproxy::kernel {

class FakeConntrack final : public ConntrackTable {
 public:
  // Inserts an entry, giving it the next id when its id is 0; returns it as stored. Fails
  // when either of its tuples is taken in its zone, or its addresses mix families.
  Expected<Flow> add(Flow flow);

  Expected<std::vector<Flow>> list(::kproxy::IpFamily family, const std::vector<FlowProtocol>& protocols) override;
  Expected<std::size_t> remove(const std::vector<Flow>& flows) override;

  // Inspection for tests: every entry, in insertion order.
  const std::vector<Flow>& flows() const { return flows_; }
  // Whether an entry with this original tuple (protocol, zone) exists.
  bool contains(const Flow& flow) const;
  int list_calls() const { return list_calls_; }
  int remove_calls() const { return remove_calls_; }
  // The next list() fails with this message.
  void fail_next_list(std::string message) { fail_next_list_ = std::move(message); }
  // The next remove() deletes nothing and fails with this message (a lost netlink socket).
  void fail_next_remove(std::string message) { fail_next_remove_ = std::move(message); }

 private:
  std::vector<Flow> flows_;
  std::uint32_t next_id_ = 1;
  int list_calls_ = 0;
  int remove_calls_ = 0;
  std::optional<std::string> fail_next_list_;
  std::optional<std::string> fail_next_remove_;
};

}  // namespace kproxy::kernel
