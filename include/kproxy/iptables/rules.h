// The iptables rule set as data: tables -> chains -> rules, each rule a list of typed match
// terms and one target.
//
// The renderer (render.h) builds it, the packet tracer (tracer.h) walks it, and
// restore_payload() serializes it to iptables-restore text. Terms keep the order kube-proxy
// writes its arguments in, so the text of a rule is byte-for-byte kube-proxy's
// (pkg/proxy/iptables/proxier.go, syncProxyRules). Only what kproxy writes is modelled: a
// match kproxy never emits has no term here.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "kproxy/ip.h"
#include "kproxy/kernel/iptables_runner.h"
#include "kproxy/model/protocol.h"

namespace kproxy::iptables {

using kernel::Table;

// ---- Match terms -------------------------------------------------------------------------

// -m comment --comment TEXT (quoted when TEXT has a space, as kube-proxy writes it).
struct Comment {
  std::string text;
  bool operator==(const Comment&) const = default;
};
// -m PROTO -p PROTO, or only -p PROTO without `match` (the IPVS layout's rules, as kube-proxy
// writes them there: no protocol match module, so no xt_sctp for SCTP; no --dport may follow).
struct Protocol {
  model::Protocol protocol = model::Protocol::kTcp;
  bool match = true;
  bool operator==(const Protocol&) const = default;
};
// [!] -s CIDR / [!] -d CIDR. A host address prints without its /32 or /128, as kube-proxy
// writes it.
struct Address {
  enum class Direction { kSource, kDestination };
  Direction direction = Direction::kDestination;
  Cidr cidr;
  bool negated = false;
  // Print a host CIDR with its prefix length ("::1/128"), where kube-proxy writes one.
  bool keep_prefix = false;
  bool operator==(const Address&) const = default;
};
// [!] -s VALUE/MASK / -d VALUE/MASK with an arbitrary (non-prefix) mask over the low 32 bits
// of the address: the address bits selected by MASK equal VALUE. IPv4 prints two dotted quads
// ("-d 0.0.0.2/0.0.0.3"); IPv6 puts both in the last 32 bits of an IPv6 address ("-d ::2/::3",
// which ip6tables accepts and prints back, nft and legacy alike).
struct AddressBits {
  Address::Direction direction = Address::Direction::kDestination;
  std::uint32_t value = 0;  // host order
  std::uint32_t mask = 0;
  IpFamily family = IpFamily::kIPv4;
  bool operator==(const AddressBits&) const = default;
};
// The low 32 bits of an address (all of an IPv4 one), host order: what AddressBits compares.
std::uint32_t low_address_bits(const IpAddress& ip);
// --dport N (after a Protocol term).
struct DestinationPort {
  std::uint16_t port = 0;
  bool operator==(const DestinationPort&) const = default;
};
// -i NAME, or -i PREFIX+ when `prefix`.
struct InInterface {
  std::string name;
  bool prefix = false;
  bool negated = false;
  bool operator==(const InInterface&) const = default;
};
// -m addrtype --src-type LOCAL / --dst-type LOCAL
struct AddrTypeLocal {
  bool source = false;  // --src-type, else --dst-type
  bool operator==(const AddrTypeLocal&) const = default;
};
// -m mark [!] --mark VALUE/MASK
struct Mark {
  std::uint32_t value = 0;
  std::uint32_t mask = 0;
  bool negated = false;
  bool operator==(const Mark&) const = default;
};
// -m conntrack [!] --ctstate S1,S2,...
struct ConntrackState {
  enum State : std::uint8_t { kNew = 1, kEstablished = 2, kRelated = 4, kInvalid = 8, kDnat = 16 };
  std::uint8_t states = 0;  // bit set of State
  bool negated = false;
  bool operator==(const ConntrackState&) const = default;
};
// -m statistic --mode random --probability P (printed "%0.10f").
struct Probability {
  double p = 1.0;
  bool operator==(const Probability&) const = default;
};
// -m recent --name NAME --rcheck --seconds N --reap
struct RecentCheck {
  std::string name;
  std::uint32_t seconds = 0;
  bool operator==(const RecentCheck&) const = default;
};
// -m recent --name NAME --set
struct RecentSet {
  std::string name;
  bool operator==(const RecentSet&) const = default;
};

// -m set --match-set NAME FLAGS: the packet's fields named by FLAGS ("dst,dst,src": destination
// address, destination port, source address, after DNAT) form an entry of the ipset NAME
// (RenderedRules::ipsets).
struct SetMatch {
  std::string name;
  std::string flags;
  bool operator==(const SetMatch&) const = default;
};

using Term = std::variant<Comment, Protocol, Address, AddressBits, DestinationPort, InInterface, AddrTypeLocal, Mark,
                          ConntrackState, Probability, RecentCheck, RecentSet, SetMatch>;

// ---- Targets -----------------------------------------------------------------------------

// No target: the rule only counts (kube-proxy's last KUBE-FW- rule).
struct NoTarget {
  bool operator==(const NoTarget&) const = default;
};
// -j CHAIN
struct Jump {
  std::string chain;
  bool operator==(const Jump&) const = default;
};
// -j ACCEPT / DROP / RETURN / REJECT
struct Verdict {
  enum class Kind { kAccept, kDrop, kReturn, kReject };
  Kind kind = Kind::kAccept;
  bool operator==(const Verdict&) const = default;
};
// -j DNAT --to-destination IP:PORT
struct Dnat {
  IpAddress ip;
  std::uint16_t port = 0;
  bool operator==(const Dnat&) const = default;
};
// -j MARK --or-mark V / --xor-mark V
struct SetMark {
  enum class Op { kOr, kXor };
  Op op = Op::kOr;
  std::uint32_t value = 0;
  bool operator==(const SetMark&) const = default;
};
// -j MASQUERADE [--random-fully]
struct Masquerade {
  bool random_fully = false;
  bool operator==(const Masquerade&) const = default;
};

using Target = std::variant<NoTarget, Jump, Verdict, Dnat, SetMark, Masquerade>;

struct Rule {
  std::vector<Term> terms;
  Target target;
  bool operator==(const Rule&) const = default;
};

struct Chain {
  std::string name;
  std::vector<Rule> rules;
  bool operator==(const Chain&) const = default;
};

// A jump from a built-in chain (INPUT, PREROUTING...) to one of kproxy's, kept at the top of
// that chain (kube-proxy's EnsureRule(Prepend)).
struct BuiltinJump {
  Table table = Table::kFilter;
  std::string chain;  // the built-in chain
  Rule rule;
};

// ---- Text --------------------------------------------------------------------------------

// A mark as kube-proxy prints it: Go's "%#08x" (0x4000 -> "0x004000").
std::string format_mark(std::uint32_t value);
// A probability as kube-proxy prints it: "%0.10f".
std::string format_probability(double p);

// The arguments of a rule after "-A CHAIN", joined by single spaces, comments quoted when
// they contain a space: exactly the line kube-proxy writes, minus "-A CHAIN ".
std::string rule_spec(const Rule& rule);
// The same as separate arguments (no quoting), for `iptables -C/-I` command lines.
std::vector<std::string> rule_args(const Rule& rule);

// One table block of an iptables-restore payload.
struct TableBlock {
  Table table = Table::kNat;
  // Chains declared (":NAME - [0:0]") and therefore flushed, in this order, followed by
  // their rules in the same order.
  std::vector<const Chain*> chains;
  // Chains to delete: declared (which flushes them), then "-X NAME" after the rules.
  std::vector<std::string> deleted_chains;
};

// "*table\n:CHAIN - [0:0]\n...-A CHAIN ...\n-X CHAIN\nCOMMIT\n" for each block.
std::string restore_payload(const std::vector<TableBlock>& blocks);

}  // namespace kproxy::iptables
