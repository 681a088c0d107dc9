#include "kproxy/iptables/tracer.h"

#include <algorithm>
#include <map>

#include "kproxy/proxier/service_port_name.h"

namespace kproxy::iptables {
namespace {

enum class Flow { kContinue, kReturn, kTerminal };

// One walk of the packet, taking the branch `choices[i]` at the i-th statistic rule met
// (true: the rule matches), and "matches" for any choice point beyond the script.
class Walk {
 public:
  Walk(const RenderedRules& rules, const std::vector<BuiltinJump>& jumps, const Packet& packet,
       const TraceEnvironment& env, const std::vector<bool>& script)
      : rules_(rules), jumps_(jumps), packet_(packet), env_(env), script_(script) {
    dst_ = packet.destination;
    dport_ = packet.destination_port;
  }

  TraceOutcome run() {
    out_.verdict = TraceOutcome::Verdict::kAccepted;
    if (packet_.locally_generated) {
      if (hook(Table::kNat, "OUTPUT") && hook(Table::kFilter, "OUTPUT")) {
        out_.delivered_locally = is_local(dst_);
        hook(Table::kNat, "POSTROUTING");
      }
    } else if (hook(Table::kNat, "PREROUTING")) {
      if (is_local(dst_)) {
        out_.delivered_locally = true;
        hook(Table::kFilter, "INPUT");
      } else if (hook(Table::kFilter, "FORWARD")) {
        hook(Table::kNat, "POSTROUTING");
      }
    }
    return out_;
  }

  // (probability of each choice taken, whether it matched)
  const std::vector<std::pair<double, bool>>& choices() const { return taken_; }

 private:
  // Runs a built-in chain; false when the packet was dropped or rejected.
  bool hook(Table table, const std::string& chain) {
    out_.chains.push_back(std::string(kernel::table_name(table)) + "/" + chain);
    table_ = table;
    // Each jump was inserted at position 1, so the last ensured comes first.
    for (auto it = jumps_.rbegin(); it != jumps_.rend(); ++it) {
      if (it->table != table || it->chain != chain) continue;
      if (evaluate_rule(it->rule) == Flow::kTerminal) break;
    }
    return out_.verdict == TraceOutcome::Verdict::kAccepted;
  }

  Flow evaluate_chain(const std::string& name, int depth) {
    out_.chains.push_back(std::string(kernel::table_name(table_)) + "/" + name);
    const Chain* chain = rules_.find(table_, name);
    if (chain == nullptr || depth > 64) return Flow::kReturn;
    for (const Rule& rule : chain->rules) {
      const Flow flow = evaluate_rule(rule, depth);
      if (flow != Flow::kContinue) return flow;
    }
    return Flow::kReturn;
  }

  Flow evaluate_rule(const Rule& rule, int depth = 0) {
    ++out_.rules_evaluated;
    for (const Term& term : rule.terms) {
      if (!std::visit([this](const auto& t) { return matches(t); }, term)) return Flow::kContinue;
    }
    return std::visit([this, depth](const auto& t) { return apply(t, depth); }, rule.target);
  }

  bool is_local(const IpAddress& ip) const {
    if (ip.is_loopback()) return true;
    return std::find(env_.local_addresses.begin(), env_.local_addresses.end(), ip) != env_.local_addresses.end();
  }

  bool matches(const Comment&) { return true; }
  bool matches(const Protocol& p) { return p.protocol == packet_.protocol; }
  bool matches(const Address& a) {
    const IpAddress& ip = a.direction == Address::Direction::kSource ? packet_.source : dst_;
    return (ip.family() == a.cidr.family() && a.cidr.contains(ip)) != a.negated;
  }
  bool matches(const AddressBits& a) {
    const IpAddress& ip = a.direction == Address::Direction::kSource ? packet_.source : dst_;
    return ip.family() == a.family && (low_address_bits(ip) & a.mask) == a.value;
  }
  bool matches(const DestinationPort& d) { return d.port == dport_; }
  bool matches(const InInterface& i) {
    const std::string& in = packet_.in_interface;
    const bool hit = !in.empty() && (i.prefix ? in.starts_with(i.name) : in == i.name);
    return hit != i.negated;
  }
  bool matches(const AddrTypeLocal& a) { return is_local(a.source ? packet_.source : dst_); }
  bool matches(const Mark& m) { return ((mark_ & m.mask) == m.value) != m.negated; }
  bool matches(const ConntrackState& c) {
    std::uint8_t state = ConntrackState::kNew;
    if (out_.dnat_ip) state |= ConntrackState::kDnat;
    return ((state & c.states) != 0) != c.negated;
  }
  bool matches(const Probability& p) {
    const std::size_t i = next_choice_++;
    const bool take = i < script_.size() ? script_[i] : true;
    taken_.emplace_back(p.p, take);
    return take;
  }
  bool matches(const RecentCheck& r) { return env_.recent.contains(r.name); }
  bool matches(const RecentSet& r) {
    out_.recent_set.push_back(r.name);
    return true;
  }

  bool matches(const SetMatch& m) {
    const kernel::IpsetSpec* set = nullptr;
    for (const auto& s : rules_.ipsets) {
      if (s->name == m.name) set = s.get();
    }
    if (set == nullptr) return false;
    // The entry the packet's fields form, for the set types kproxy writes.
    std::vector<std::string> fields;
    std::size_t start = 0;
    while (start <= m.flags.size()) {
      std::size_t end = m.flags.find(',', start);
      if (end == std::string::npos) end = m.flags.size();
      fields.push_back(m.flags.substr(start, end - start));
      start = end + 1;
    }
    std::vector<std::string> kinds;  // "ip" / "port" per dimension of the set type
    const std::string type = set->type.substr(set->type.find(':') + 1);
    start = 0;
    while (start <= type.size()) {
      std::size_t end = type.find(',', start);
      if (end == std::string::npos) end = type.size();
      kinds.push_back(type.substr(start, end - start));
      start = end + 1;
    }
    if (kinds.size() != fields.size()) return false;
    std::string entry;
    for (std::size_t i = 0; i < kinds.size(); ++i) {
      const bool is_src = fields[i] == "src";
      if (i != 0) entry += ',';
      if (kinds[i] == "ip") {
        entry += (is_src ? packet_.source : dst_).to_string();
      } else if (kinds[i] == "port") {
        if (is_src) return false;  // kproxy never matches a source port
        entry += std::string(proxier::lower_case_protocol(packet_.protocol)) + ":" + std::to_string(dport_);
      } else {
        return false;
      }
    }
    return std::binary_search(set->entries.begin(), set->entries.end(), entry);
  }

  Flow apply(const NoTarget&, int) { return Flow::kContinue; }
  Flow apply(const Jump& j, int depth) {
    const Table saved = table_;
    const Flow flow = evaluate_chain(j.chain, depth + 1);
    table_ = saved;
    return flow == Flow::kTerminal ? Flow::kTerminal : Flow::kContinue;
  }
  Flow apply(const Verdict& v, int) {
    switch (v.kind) {
      case Verdict::Kind::kReturn: return Flow::kReturn;
      case Verdict::Kind::kAccept: out_.verdict = TraceOutcome::Verdict::kAccepted; break;
      case Verdict::Kind::kDrop: out_.verdict = TraceOutcome::Verdict::kDropped; break;
      case Verdict::Kind::kReject: out_.verdict = TraceOutcome::Verdict::kRejected; break;
    }
    return Flow::kTerminal;
  }
  Flow apply(const Dnat& d, int) {
    out_.dnat_ip = d.ip;
    out_.dnat_port = d.port;
    dst_ = d.ip;
    dport_ = d.port;
    return Flow::kTerminal;
  }
  Flow apply(const SetMark& m, int) {
    mark_ = m.op == SetMark::Op::kOr ? (mark_ | m.value) : (mark_ ^ m.value);
    return Flow::kContinue;
  }
  Flow apply(const Masquerade&, int) {
    out_.masqueraded = true;
    return Flow::kTerminal;
  }

  const RenderedRules& rules_;
  const std::vector<BuiltinJump>& jumps_;
  const Packet& packet_;
  const TraceEnvironment& env_;
  const std::vector<bool>& script_;
  std::vector<std::pair<double, bool>> taken_;
  std::size_t next_choice_ = 0;
  Table table_ = Table::kNat;
  IpAddress dst_;
  std::uint16_t dport_ = 0;
  std::uint32_t mark_ = 0;
  TraceOutcome out_;
};

}  // namespace

std::string TraceOutcome::summary() const {
  std::string s;
  switch (verdict) {
    case Verdict::kDropped: return "DROP";
    case Verdict::kRejected: return "REJECT";
    case Verdict::kAccepted: break;
  }
  if (dnat_ip) {
    s = "DNAT " + join_host_port(*dnat_ip, dnat_port);
  } else {
    s = "ACCEPT";
  }
  if (masqueraded) s += " masq";
  if (delivered_locally) s += " local";
  return s;
}

std::vector<TraceOutcome> trace(const RenderedRules& rules, const std::vector<BuiltinJump>& jumps, const Packet& packet,
                                const TraceEnvironment& env) {
  std::vector<TraceOutcome> outcomes;
  std::vector<bool> script;
  // Depth-first over the statistic choices: run, then flip the last "matched" choice to
  // "not matched" and drop everything after it, until no choice is left to flip. Bounded:
  // a chain of N probability rules has N+1 outcomes.
  for (int guard = 0; guard < 100000; ++guard) {
    Walk walk(rules, jumps, packet, env, script);
    TraceOutcome out = walk.run();
    double p = 1.0;
    for (const auto& [prob, taken] : walk.choices()) p *= taken ? prob : 1.0 - prob;
    out.probability = p;
    outcomes.push_back(std::move(out));

    std::vector<bool> taken;
    for (const auto& c : walk.choices()) taken.push_back(c.second);
    while (!taken.empty() && !taken.back()) taken.pop_back();
    if (taken.empty()) break;
    taken.back() = false;
    script = std::move(taken);
  }
  std::stable_sort(outcomes.begin(), outcomes.end(),
                   [](const TraceOutcome& a, const TraceOutcome& b) { return a.probability > b.probability; });
  return outcomes;
}

}  // namespace kproxy::iptables
