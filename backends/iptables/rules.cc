#include "kproxy/iptables/rules.h"

#include <array>
#include <cstdio>

#include "kproxy/proxier/service_port_name.h"

namespace kproxy::iptables {

std::uint32_t low_address_bits(const IpAddress& ip) {
  if (ip.is_v4()) return ip.v4_host_order();
  const auto& b = ip.bytes();
  return (std::uint32_t{b[12]} << 24) | (std::uint32_t{b[13]} << 16) | (std::uint32_t{b[14]} << 8) | b[15];
}
namespace {

// A host CIDR prints as a bare address ("-d 10.96.0.10"), as kube-proxy passes IP strings.
std::string address_text(const Cidr& cidr, bool keep_prefix) {
  const int host_bits = cidr.family() == IpFamily::kIPv4 ? 32 : 128;
  return cidr.prefix_length() == host_bits && !keep_prefix ? cidr.network().to_string() : cidr.to_string();
}

std::string ctstate_text(std::uint8_t states) {
  static constexpr std::pair<ConntrackState::State, const char*> kNames[] = {
      {ConntrackState::kNew, "NEW"},         {ConntrackState::kRelated, "RELATED"},
      {ConntrackState::kEstablished, "ESTABLISHED"}, {ConntrackState::kDnat, "DNAT"},
      {ConntrackState::kInvalid, "INVALID"},
  };
  std::string out;
  for (const auto& [bit, name] : kNames) {
    if ((states & bit) != 0) {
      if (!out.empty()) out += ',';
      out += name;
    }
  }
  return out;
}

struct ArgWriter {
  std::vector<std::string>& args;
  std::vector<bool>& quote;  // parallel to args: this argument is a comment text

  void add(std::string a, bool q = false) {
    args.push_back(std::move(a));
    quote.push_back(q);
  }
  void not_if(bool negated) {
    if (negated) add("!");
  }

  void operator()(const Comment& c) {
    add("-m");
    add("comment");
    add("--comment");
    add(c.text, true);
  }
  void operator()(const Protocol& p) {
    const std::string proto(proxier::lower_case_protocol(p.protocol));
    if (p.match) {
      add("-m");
      add(proto);
    }
    add("-p");
    add(proto);
  }
  void operator()(const Address& a) {
    not_if(a.negated);
    add(a.direction == Address::Direction::kSource ? "-s" : "-d");
    add(address_text(a.cidr, a.keep_prefix));
  }
  void operator()(const AddressBits& a) {
    add(a.direction == Address::Direction::kSource ? "-s" : "-d");
    auto text = [&](std::uint32_t bits) {
      if (a.family == IpFamily::kIPv4) return IpAddress::from_v4(bits).to_string();
      std::array<std::uint8_t, 16> b{};
      for (int i = 0; i < 4; ++i) b[12 + i] = static_cast<std::uint8_t>(bits >> (24 - 8 * i));
      return IpAddress::from_v6(b).to_string();
    };
    add(text(a.value) + "/" + text(a.mask));
  }
  void operator()(const DestinationPort& d) {
    add("--dport");
    add(std::to_string(d.port));
  }
  void operator()(const InInterface& i) {
    not_if(i.negated);
    add("-i");
    add(i.prefix ? i.name + "+" : i.name);
  }
  void operator()(const AddrTypeLocal& a) {
    add("-m");
    add("addrtype");
    add(a.source ? "--src-type" : "--dst-type");
    add("LOCAL");
  }
  void operator()(const Mark& m) {
    add("-m");
    add("mark");
    not_if(m.negated);
    add("--mark");
    add(format_mark(m.value) + "/" + format_mark(m.mask));
  }
  void operator()(const ConntrackState& c) {
    add("-m");
    add("conntrack");
    not_if(c.negated);
    add("--ctstate");
    add(ctstate_text(c.states));
  }
  void operator()(const Probability& p) {
    add("-m");
    add("statistic");
    add("--mode");
    add("random");
    add("--probability");
    add(format_probability(p.p));
  }
  void operator()(const RecentCheck& r) {
    add("-m");
    add("recent");
    add("--name");
    add(r.name);
    add("--rcheck");
    add("--seconds");
    add(std::to_string(r.seconds));
    add("--reap");
  }
  void operator()(const RecentSet& r) {
    add("-m");
    add("recent");
    add("--name");
    add(r.name);
    add("--set");
  }
  void operator()(const SetMatch& m) {
    add("-m");
    add("set");
    add("--match-set");
    add(m.name);
    add(m.flags);
  }

  void target(const Target& t) {
    std::visit(
        [this](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, NoTarget>) {
          } else if constexpr (std::is_same_v<T, Jump>) {
            add("-j");
            add(v.chain);
          } else if constexpr (std::is_same_v<T, Verdict>) {
            add("-j");
            switch (v.kind) {
              case Verdict::Kind::kAccept: add("ACCEPT"); break;
              case Verdict::Kind::kDrop: add("DROP"); break;
              case Verdict::Kind::kReturn: add("RETURN"); break;
              case Verdict::Kind::kReject: add("REJECT"); break;
            }
          } else if constexpr (std::is_same_v<T, Dnat>) {
            add("-j");
            add("DNAT");
            add("--to-destination");
            add(join_host_port(v.ip, v.port));
          } else if constexpr (std::is_same_v<T, SetMark>) {
            add("-j");
            add("MARK");
            add(v.op == SetMark::Op::kOr ? "--or-mark" : "--xor-mark");
            add(format_mark(v.value));
          } else if constexpr (std::is_same_v<T, Masquerade>) {
            add("-j");
            add("MASQUERADE");
            if (v.random_fully) add("--random-fully");
          }
        },
        t);
  }
};

void collect(const Rule& rule, std::vector<std::string>& args, std::vector<bool>& quote) {
  ArgWriter w{args, quote};
  for (const Term& term : rule.terms) std::visit(w, term);
  w.target(rule.target);
}

}  // namespace

std::string format_mark(std::uint32_t value) {
  char buf[32];
  // Go's %#08x: "0x" counts towards the width of 8, zero padded.
  std::snprintf(buf, sizeof buf, "%#08x", value);
  // C's %#08x pads the same way ("0x004000"); 0 prints as "00000000" in C but "0x000000"
  // in Go. kproxy never writes a zero mark, but stay exact.
  if (value == 0) return "0x000000";
  return buf;
}

std::string format_probability(double p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%0.10f", p);
  return buf;
}

std::string rule_spec(const Rule& rule) {
  std::vector<std::string> args;
  std::vector<bool> quote;
  collect(rule, args, quote);
  std::string out;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (i != 0) out += ' ';
    if (quote[i] && args[i].find(' ') != std::string::npos) {
      out += '"';
      out += args[i];
      out += '"';
    } else {
      out += args[i];
    }
  }
  return out;
}

std::vector<std::string> rule_args(const Rule& rule) {
  std::vector<std::string> args;
  std::vector<bool> quote;
  collect(rule, args, quote);
  return args;
}

std::string restore_payload(const std::vector<TableBlock>& blocks) {
  std::string out;
  for (const TableBlock& block : blocks) {
    out += '*';
    out += kernel::table_name(block.table);
    out += '\n';
    for (const Chain* chain : block.chains) {
      out += ':';
      out += chain->name;
      out += " - [0:0]\n";
    }
    // A chain is flushed by its declaration before it can be deleted (kube-proxy does the same).
    for (const std::string& name : block.deleted_chains) {
      out += ':';
      out += name;
      out += " - [0:0]\n";
    }
    for (const Chain* chain : block.chains) {
      for (const Rule& rule : chain->rules) {
        out += "-A ";
        out += chain->name;
        out += ' ';
        out += rule_spec(rule);
        out += '\n';
      }
    }
    for (const std::string& name : block.deleted_chains) {
      out += "-X ";
      out += name;
      out += '\n';
    }
    out += "COMMIT\n";
  }
  return out;
}

}  // namespace kproxy::iptables
