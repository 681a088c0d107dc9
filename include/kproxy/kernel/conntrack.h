// ConntrackTable: the one way kproxy reads and deletes the kernel's connection-tracking
// entries (DESIGN.md, "Kernel adapters"; docs/conntrack.md).
//
// Two narrow verbs: list the flows of one family and some transport protocols, and delete
// given flows. The real implementation speaks ctnetlink through libnl-nf-3
// (open_netlink_conntrack_table); unit tests use a stateful fake
// (test/unit/kernel/fake_conntrack.h). What to delete is decided elsewhere, by a pure
// function of snapshots (include/kproxy/proxier/conntrack_cleanup.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kproxy/ip.h"
#include "kproxy/status.h"

namespace kproxy::kernel {

// The transport protocols kproxy proxies, with their IANA protocol numbers (what ctnetlink
// carries in CTA_PROTO_NUM).
enum class FlowProtocol : std::uint8_t { kTcp = 6, kUdp = 17, kSctp = 132 };

// "tcp", "udp", "sctp", as conntrack(8) prints them.
std::string_view flow_protocol_name(FlowProtocol protocol);

// One direction of a flow: addresses and ports as the packets of that direction carry them.
struct FlowTuple {
  IpAddress src;
  IpAddress dst;
  std::uint16_t src_port = 0;
  std::uint16_t dst_port = 0;

  auto operator<=>(const FlowTuple&) const = default;
};

// A conntrack entry, reduced to what identifies it and what kproxy decides on. For a flow to
// a Service, `original.dst` is the Service address the client used and `reply.src` the
// backend it was DNATed to (equal to `original.dst` when it was not DNATed).
struct Flow {
  FlowProtocol protocol = FlowProtocol::kUdp;
  FlowTuple original;
  FlowTuple reply;
  // The conntrack zone (CTA_ZONE); 0 is the default zone, where kproxy's traffic lives.
  std::uint16_t zone = 0;
  // The kernel's id of the entry (CTA_ID). When not 0, remove() deletes the entry only if it
  // still has this id, so an entry that expired and was re-created under the same tuple
  // since it was listed survives. 0: delete by tuple alone.
  std::uint32_t id = 0;

  // kproxy::IpFamily, not kernel::IpFamily of iptables_runner.h (which this header does not
  // need): both are visible in this namespace when the two headers meet.
  ::kproxy::IpFamily family() const { return original.src.family(); }
  auto operator<=>(const Flow&) const = default;
};

// "udp 10.244.1.10:40000 -> 10.96.0.53:53 reply 10.244.1.11:8080 -> 10.244.1.10:40000"
// (", zone 3" and ", id 123" appended when set): for logs and test messages.
std::string to_string(const Flow& flow);

class ConntrackTable {
 public:
  virtual ~ConntrackTable() = default;

  // Every flow of `family` whose protocol is one of `protocols` (an empty list yields none),
  // in the kernel's order.
  virtual Expected<std::vector<Flow>> list(::kproxy::IpFamily family, const std::vector<FlowProtocol>& protocols) = 0;

  // Deletes each flow, found by its original tuple and zone (and id when set). A flow that
  // is already gone is not an error and is not counted. Returns how many entries were
  // deleted. On errors it still tries every flow, then returns an error that says how many
  // were deleted and names the first failure.
  virtual Expected<std::size_t> remove(const std::vector<Flow>& flows) = 0;
};

// The real table over ctnetlink (libnl-nf-3). The netlink socket is opened now, so the table
// works on the network namespace the calling thread is in at this moment, for its whole
// life, whichever thread later uses it: the daemon opens it in the node's namespace, tests
// open it from a thread that entered a test namespace. Needs CAP_NET_ADMIN there.
Expected<std::unique_ptr<ConntrackTable>> open_netlink_conntrack_table();

}  // namespace kproxy::kernel
