// The packet tracer: walks the first packet of a new connection through a rendered rule set
// as the kernel's netfilter hooks would, and says what happens to it.
//
// It evaluates every term kproxy writes (rules.h), follows jumps, RETURNs and built-in chain
// policies, and forks at each "-m statistic" rule, so one trace returns every possible
// outcome with its probability. Tests use it to prove Service semantics on the rule set
// itself (who gets DNATed where, who is masqueraded, what is dropped or rejected), and the
// benchmarks use its rule-evaluation count. The netns tests prove the same on the kernel.
//
// Model: a NEW packet. Not locally generated: nat PREROUTING, then routing (local
// destination -> filter INPUT, else filter FORWARD and nat POSTROUTING). Locally generated:
// nat OUTPUT, filter OUTPUT, nat POSTROUTING. Built-in chains hold only kproxy's jumps (in
// the order a fresh table has them) and accept by policy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "kproxy/ip.h"
#include "kproxy/iptables/render.h"

namespace kproxy::iptables {

struct Packet {
  IpAddress source;
  IpAddress destination;
  model::Protocol protocol = model::Protocol::kTcp;
  std::uint16_t destination_port = 0;
  // The interface it arrived on; empty for a locally generated packet.
  std::string in_interface;
  // Sent by a process on the node itself (nat OUTPUT path), not received.
  bool locally_generated = false;
};

struct TraceEnvironment {
  // The node's own addresses (what "-m addrtype --src-type/--dst-type LOCAL" matches and
  // what routing delivers locally). Loopback addresses are always local.
  std::vector<IpAddress> local_addresses;
  // "-m recent" lists that already hold the packet's source (an affinity already made).
  std::set<std::string> recent;
};

struct TraceOutcome {
  enum class Verdict { kAccepted, kDropped, kRejected };
  double probability = 1.0;
  Verdict verdict = Verdict::kAccepted;
  // Where DNAT sent it, if anywhere.
  std::optional<IpAddress> dnat_ip;
  std::uint16_t dnat_port = 0;
  // Marked for SNAT and masqueraded in POSTROUTING.
  bool masqueraded = false;
  // After nat, routed to the node itself (filter INPUT) rather than forwarded.
  bool delivered_locally = false;
  // "-m recent --set" lists the packet was added to.
  std::vector<std::string> recent_set;
  // Every rule looked at, across all chains (matched or not).
  std::size_t rules_evaluated = 0;
  // "table/CHAIN" for each chain entered, in order.
  std::vector<std::string> chains;

  // "DNAT 10.244.1.5:8080 masq" / "REJECT" / "DROP" / "ACCEPT": for test messages.
  std::string summary() const;
};

// All outcomes, most probable first; their probabilities sum to 1. Throws nothing: an unknown
// jump target counts as an empty chain (the kernel would refuse such a rule set; the
// renderer's tests check it never writes one).
std::vector<TraceOutcome> trace(const RenderedRules& rules, const std::vector<BuiltinJump>& jumps, const Packet& packet,
                                const TraceEnvironment& env);

}  // namespace kproxy::iptables
