#include "fake_conntrack.h"

#include <algorithm>

namespace kproxy::kernel {
namespace {

bool same_tuple(FlowProtocol protocol, const FlowTuple& tuple, std::uint16_t zone, const Flow& entry,
                const FlowTuple& entry_tuple) {
  return entry.protocol == protocol && entry.zone == zone && entry_tuple == tuple;
}

// Whether `entry` is found in the kernel's hash under `tuple` (either of its directions).
bool hashed_under(const Flow& entry, FlowProtocol protocol, const FlowTuple& tuple, std::uint16_t zone) {
  return same_tuple(protocol, tuple, zone, entry, entry.original) ||
         same_tuple(protocol, tuple, zone, entry, entry.reply);
}

bool one_family(const Flow& flow) {
  const ::kproxy::IpFamily f = flow.family();
  return flow.original.dst.family() == f && flow.reply.src.family() == f && flow.reply.dst.family() == f;
}

}  // namespace

Expected<Flow> FakeConntrack::add(Flow flow) {
  if (!one_family(flow)) return Error("fake conntrack: " + to_string(flow) + ": addresses of two families");
  for (const Flow& entry : flows_) {
    if (hashed_under(entry, flow.protocol, flow.original, flow.zone) ||
        hashed_under(entry, flow.protocol, flow.reply, flow.zone)) {
      return Error("fake conntrack: " + to_string(flow) + ": a tuple clashes with " + to_string(entry) +
                   " (File exists)");
    }
  }
  if (flow.id == 0) flow.id = next_id_++;
  flows_.push_back(flow);
  return flow;
}

Expected<std::vector<Flow>> FakeConntrack::list(::kproxy::IpFamily family, const std::vector<FlowProtocol>& protocols) {
  ++list_calls_;
  if (fail_next_list_) {
    std::string message = *fail_next_list_;
    fail_next_list_.reset();
    return Error(message);
  }
  std::vector<Flow> out;
  for (const Flow& entry : flows_) {
    if (entry.family() != family) continue;
    if (std::find(protocols.begin(), protocols.end(), entry.protocol) == protocols.end()) continue;
    out.push_back(entry);
  }
  return out;
}

Expected<std::size_t> FakeConntrack::remove(const std::vector<Flow>& flows) {
  ++remove_calls_;
  if (fail_next_remove_) {
    std::string message = *fail_next_remove_;
    fail_next_remove_.reset();
    return Error(message);
  }
  std::size_t deleted = 0;
  for (const Flow& flow : flows) {
    auto it = std::find_if(flows_.begin(), flows_.end(), [&](const Flow& entry) {
      return entry.family() == flow.family() && hashed_under(entry, flow.protocol, flow.original, flow.zone);
    });
    // Not found, or found under another id: ENOENT in the kernel, which the adapter reads as
    // "already gone".
    if (it == flows_.end() || (flow.id != 0 && it->id != flow.id)) continue;
    flows_.erase(it);
    ++deleted;
  }
  return deleted;
}

bool FakeConntrack::contains(const Flow& flow) const {
  return std::any_of(flows_.begin(), flows_.end(), [&](const Flow& entry) {
    return same_tuple(flow.protocol, flow.original, flow.zone, entry, entry.original);
  });
}

}  // namespace kproxy::kernel
