#include "kproxy/iptables/iptc_entry.h"

// The kernel's structures, as libiptc's own header includes them.
#include <libiptc/ipt_kernel_headers.h>
#include <linux/netfilter/ipset/ip_set.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/xt_addrtype.h>
#include <linux/netfilter/xt_comment.h>
#include <linux/netfilter/xt_conntrack.h>
#include <linux/netfilter/xt_mark.h>
#include <linux/netfilter/xt_recent.h>
// xt_sctp.h is C: its inline helpers use _Bool, and it defines a macro named "bytes".
#define _Bool bool
#include <linux/netfilter/xt_sctp.h>
#undef _Bool
#undef bytes
#include <linux/netfilter/xt_set.h>
#include <linux/netfilter/xt_statistic.h>
#include <linux/netfilter/xt_tcpudp.h>
#include <linux/netfilter_ipv4/ip_tables.h>
#include <linux/netfilter_ipv4/ipt_REJECT.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <optional>

namespace kproxy::iptables {
namespace {

// Appends one xtables extension (a match or a target: both start with the same header of
// size, name, revision) carrying INFO, sized and aligned as iptables sizes it.
template <typename Header, typename Info>
std::size_t append_extension(std::vector<std::uint8_t>& out, const char* name, std::uint8_t revision,
                             const Info& info) {
  const std::size_t size = XT_ALIGN(sizeof(Header)) + XT_ALIGN(sizeof(Info));
  const std::size_t offset = out.size();
  out.resize(offset + size, 0);
  Header header{};
  header.u.user.match_size = static_cast<std::uint16_t>(size);  // target_size: same place
  std::strncpy(header.u.user.name, name, sizeof header.u.user.name - 1);
  header.u.user.revision = revision;
  std::memcpy(out.data() + offset, &header, sizeof header);
  std::memcpy(out.data() + offset + XT_ALIGN(sizeof(Header)), &info, sizeof info);
  return offset + XT_ALIGN(sizeof(Header));  // where INFO starts
}

struct MatchHeader {
  union {
    struct {
      std::uint16_t match_size;
      char name[XT_EXTENSION_MAXNAMELEN];
      std::uint8_t revision;
    } user;
  } u;
};
static_assert(sizeof(MatchHeader) <= sizeof(xt_entry_match));
static_assert(XT_ALIGN(sizeof(MatchHeader)) == XT_ALIGN(sizeof(xt_entry_match)));

template <typename Info>
std::size_t append_match(std::vector<std::uint8_t>& out, const char* name, std::uint8_t revision, const Info& info) {
  return append_extension<MatchHeader>(out, name, revision, info);
}

// Arguments are stored in network order where the kernel reads them so (addresses, NAT ports)
// and in host order where the extension keeps host order (tcp/udp/sctp port ranges).
std::uint32_t be32(std::uint32_t host) { return htonl(host); }

std::uint32_t ipv4_host_order(const IpAddress& ip) {
  const auto bytes = ip.bytes();
  return (std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) | (std::uint32_t{bytes[2]} << 8) |
         std::uint32_t{bytes[3]};
}

std::uint32_t prefix_mask(int bits) { return bits == 0 ? 0 : ~std::uint32_t{0} << (32 - bits); }

// The statistic match's probability, from the text kproxy writes ("%0.10f"), exactly as
// libxt_statistic turns that text into the kernel's 31-bit fraction.
std::uint32_t statistic_probability(double p) {
  const std::string text = format_probability(p);
  return static_cast<std::uint32_t>(std::lround(0x80000000 * std::strtod(text.c_str(), nullptr)));
}

struct Encoder {
  const IpsetIndexResolver& ipsets;
  ipt_ip ip{};
  std::vector<std::uint8_t> matches = {};
  // The data offset and protocol of the last -m tcp/udp/sctp, for a --dport after it.
  std::optional<std::size_t> proto_match = {};
  model::Protocol proto = model::Protocol::kTcp;
  std::string error = {};

  void operator()(const Comment& c) {
    xt_comment_info info{};
    if (c.text.size() >= sizeof info.comment) {
      error = "comment longer than " + std::to_string(sizeof info.comment - 1) + " bytes";
      return;
    }
    std::memcpy(info.comment, c.text.data(), c.text.size());
    append_match(matches, "comment", 0, info);
  }
  void operator()(const Protocol& p) {
    proto = p.protocol;
    if (!p.match) {
      ip.proto = p.protocol == model::Protocol::kTcp   ? IPPROTO_TCP
                 : p.protocol == model::Protocol::kUdp ? IPPROTO_UDP
                                                       : IPPROTO_SCTP;
      return;
    }
    switch (p.protocol) {
      case model::Protocol::kTcp: {
        ip.proto = IPPROTO_TCP;
        xt_tcp info{};
        info.spts[1] = info.dpts[1] = 0xFFFF;
        proto_match = append_match(matches, "tcp", 0, info);
        break;
      }
      case model::Protocol::kUdp: {
        ip.proto = IPPROTO_UDP;
        xt_udp info{};
        info.spts[1] = info.dpts[1] = 0xFFFF;
        proto_match = append_match(matches, "udp", 0, info);
        break;
      }
      case model::Protocol::kSctp: {
        ip.proto = IPPROTO_SCTP;
        xt_sctp_info info{};
        info.spts[1] = info.dpts[1] = 0xFFFF;
        proto_match = append_match(matches, "sctp", 0, info);
        break;
      }
    }
  }
  void operator()(const Address& a) {
    if (a.cidr.family() != IpFamily::kIPv4) {
      error = "address " + a.cidr.to_string() + " is not IPv4";
      return;
    }
    const std::uint32_t mask = prefix_mask(a.cidr.prefix_length());
    const std::uint32_t addr = ipv4_host_order(a.cidr.network()) & mask;
    if (a.direction == Address::Direction::kSource) {
      ip.src.s_addr = be32(addr);
      ip.smsk.s_addr = be32(mask);
      if (a.negated) ip.invflags |= IPT_INV_SRCIP;
    } else {
      ip.dst.s_addr = be32(addr);
      ip.dmsk.s_addr = be32(mask);
      if (a.negated) ip.invflags |= IPT_INV_DSTIP;
    }
  }
  void operator()(const AddressBits& a) {
    if (a.family != IpFamily::kIPv4) {
      error = "address bits of an IPv6 address";
      return;
    }
    if (a.direction == Address::Direction::kSource) {
      ip.src.s_addr = be32(a.value & a.mask);
      ip.smsk.s_addr = be32(a.mask);
    } else {
      ip.dst.s_addr = be32(a.value & a.mask);
      ip.dmsk.s_addr = be32(a.mask);
    }
  }
  void operator()(const DestinationPort& d) {
    if (!proto_match) {
      error = "--dport " + std::to_string(d.port) + " without a protocol match";
      return;
    }
    // dpts is the second field of xt_tcp and xt_udp, the first of xt_sctp_info.
    const std::size_t field = proto == model::Protocol::kSctp ? offsetof(xt_sctp_info, dpts)
                              : proto == model::Protocol::kTcp ? offsetof(xt_tcp, dpts)
                                                               : offsetof(xt_udp, dpts);
    const std::uint16_t ports[2] = {d.port, d.port};
    std::memcpy(matches.data() + *proto_match + field, ports, sizeof ports);
    if (proto == model::Protocol::kSctp) {
      std::uint32_t flags = XT_SCTP_DEST_PORTS;
      std::memcpy(matches.data() + *proto_match + offsetof(xt_sctp_info, flags), &flags, sizeof flags);
    }
  }
  void operator()(const InInterface& i) {
    // libxtables' xtables_parse_interface: "NAME+" matches the prefix; a plain name also
    // matches its terminating NUL, so it is not a prefix of a longer name.
    if (i.name.size() >= IFNAMSIZ) {
      error = "interface name " + i.name + " is too long";
      return;
    }
    std::memcpy(ip.iniface, i.name.data(), i.name.size());
    std::memset(ip.iniface_mask, 0xFF, i.prefix ? i.name.size() : i.name.size() + 1);
    if (i.negated) ip.invflags |= IPT_INV_VIA_IN;
  }
  void operator()(const AddrTypeLocal& a) {
    xt_addrtype_info_v1 info{};
    (a.source ? info.source : info.dest) = XT_ADDRTYPE_LOCAL;
    append_match(matches, "addrtype", 1, info);
  }
  void operator()(const Mark& m) {
    xt_mark_mtinfo1 info{};
    info.mark = m.value;
    info.mask = m.mask;
    info.invert = m.negated ? 1 : 0;
    append_match(matches, "mark", 1, info);
  }
  void operator()(const ConntrackState& c) {
    xt_conntrack_mtinfo3 info{};
    std::uint16_t mask = 0;
    if ((c.states & ConntrackState::kInvalid) != 0) mask |= XT_CONNTRACK_STATE_INVALID;
    if ((c.states & ConntrackState::kEstablished) != 0) mask |= XT_CONNTRACK_STATE_BIT(IP_CT_ESTABLISHED);
    if ((c.states & ConntrackState::kRelated) != 0) mask |= XT_CONNTRACK_STATE_BIT(IP_CT_RELATED);
    if ((c.states & ConntrackState::kNew) != 0) mask |= XT_CONNTRACK_STATE_BIT(IP_CT_NEW);
    if ((c.states & ConntrackState::kDnat) != 0) mask |= XT_CONNTRACK_STATE_DNAT;
    info.state_mask = mask;
    info.match_flags = XT_CONNTRACK_STATE;
    if (c.negated) info.invert_flags = XT_CONNTRACK_STATE;
    append_match(matches, "conntrack", 3, info);
  }
  void operator()(const Probability& p) {
    xt_statistic_info info{};
    info.mode = XT_STATISTIC_MODE_RANDOM;
    info.u.random.probability = statistic_probability(p.p);
    append_match(matches, "statistic", 0, info);
  }
  void recent(const std::string& name, std::uint8_t check_set, std::uint32_t seconds) {
    xt_recent_mtinfo_v1 info{};
    if (name.size() >= sizeof info.name) {
      error = "recent list name " + name + " is too long";
      return;
    }
    std::memcpy(info.name, name.data(), name.size());
    info.check_set = check_set;
    info.seconds = seconds;
    info.side = XT_RECENT_SOURCE;
    std::memset(&info.mask, 0xFF, sizeof info.mask);
    append_match(matches, "recent", 1, info);
  }
  void operator()(const RecentCheck& r) { recent(r.name, XT_RECENT_CHECK | XT_RECENT_REAP, r.seconds); }
  void operator()(const RecentSet& r) { recent(r.name, XT_RECENT_SET, 0); }
  void operator()(const SetMatch& m) {
    xt_set_info_match_v4 info{};
    auto index = ipsets(m.name);
    if (!index.ok()) {
      error = "ipset " + m.name + ": " + index.error();
      return;
    }
    info.match_set.index = *index;
    // libxt_set's parse_dirs: one dimension per comma-separated word, "src" setting the bit
    // of its (1-based) dimension.
    std::string_view flags = m.flags;
    while (!flags.empty()) {
      const std::string_view word = flags.substr(0, flags.find(','));
      flags.remove_prefix(std::min(flags.size(), word.size() + 1));
      if (info.match_set.dim == IPSET_DIM_MAX) {
        error = "ipset flags " + m.flags + " have too many dimensions";
        return;
      }
      ++info.match_set.dim;
      if (word == "src") {
        info.match_set.flags |= 1U << info.match_set.dim;
      } else if (word != "dst") {
        error = "ipset flags " + m.flags + ": " + std::string(word) + " is neither src nor dst";
        return;
      }
    }
    append_match(matches, "set", 4, info);
  }
};

// append_extension writes the size through u.user.match_size; give targets the same spelling.
struct TargetHeaderView {
  union {
    struct {
      std::uint16_t match_size;
      char name[XT_EXTENSION_MAXNAMELEN];
      std::uint8_t revision;
    } user;
  } u;
};
static_assert(XT_ALIGN(sizeof(TargetHeaderView)) == XT_ALIGN(sizeof(xt_entry_target)));

template <typename Info>
void append_target(std::vector<std::uint8_t>& out, const char* name, std::uint8_t revision, const Info& info) {
  append_extension<TargetHeaderView>(out, name, revision, info);
}

// A standard target: the verdict field is filled by libiptc from the name (a chain, ACCEPT,
// DROP, RETURN, or "" to fall through).
void append_standard(std::vector<std::uint8_t>& out, const std::string& name) {
  const int verdict = 0;
  append_target(out, name.c_str(), 0, verdict);
}

}  // namespace

Expected<std::vector<std::uint8_t>> encode_ipv4_entry(const Rule& rule, const IpsetIndexResolver& ipsets) {
  Encoder enc{ipsets};
  for (const Term& term : rule.terms) {
    std::visit(enc, term);
    if (!enc.error.empty()) return Error(enc.error);
  }

  std::vector<std::uint8_t> target;
  std::string error;
  std::visit(
      [&](const auto& t) {
        using T = std::decay_t<decltype(t)>;
        if constexpr (std::is_same_v<T, NoTarget>) {
          append_standard(target, "");
        } else if constexpr (std::is_same_v<T, Jump>) {
          if (t.chain.size() >= XT_EXTENSION_MAXNAMELEN) {
            error = "chain name " + t.chain + " is too long";
            return;
          }
          append_standard(target, t.chain);
        } else if constexpr (std::is_same_v<T, Verdict>) {
          switch (t.kind) {
            case Verdict::Kind::kAccept: append_standard(target, "ACCEPT"); break;
            case Verdict::Kind::kDrop: append_standard(target, "DROP"); break;
            case Verdict::Kind::kReturn: append_standard(target, "RETURN"); break;
            case Verdict::Kind::kReject: {
              ipt_reject_info info{};
              info.with = IPT_ICMP_PORT_UNREACHABLE;
              append_target(target, "REJECT", 0, info);
              break;
            }
          }
        } else if constexpr (std::is_same_v<T, Dnat>) {
          if (t.ip.family() != IpFamily::kIPv4) {
            error = "DNAT to " + t.ip.to_string() + " is not IPv4";
            return;
          }
          // Revision 2 (nf_nat_range2), the one iptables 1.8 writes and prints; it cannot
          // print revision 0 back ("[unsupported revision]").
          nf_nat_range2 info{};
          info.flags = NF_NAT_RANGE_MAP_IPS;
          info.min_addr.ip = info.max_addr.ip = be32(ipv4_host_order(t.ip));
          if (t.port != 0) {
            info.flags |= NF_NAT_RANGE_PROTO_SPECIFIED;
            info.min_proto.all = info.max_proto.all = htons(t.port);
          }
          append_target(target, "DNAT", 2, info);
        } else if constexpr (std::is_same_v<T, SetMark>) {
          // libxt_MARK: --or-mark V sets mark = mask = V; --xor-mark V sets mark = V, mask = 0.
          xt_mark_tginfo2 info{};
          info.mark = t.value;
          info.mask = t.op == SetMark::Op::kOr ? t.value : 0;
          append_target(target, "MARK", 2, info);
        } else if constexpr (std::is_same_v<T, Masquerade>) {
          nf_nat_ipv4_multi_range_compat info{};
          info.rangesize = 1;
          if (t.random_fully) info.range[0].flags = NF_NAT_RANGE_PROTO_RANDOM_FULLY;
          append_target(target, "MASQUERADE", 0, info);
        }
      },
      rule.target);
  if (!error.empty()) return Error(error);

  std::vector<std::uint8_t> out(sizeof(ipt_entry), 0);
  auto* entry = reinterpret_cast<ipt_entry*>(out.data());
  entry->ip = enc.ip;
  entry->target_offset = static_cast<std::uint16_t>(sizeof(ipt_entry) + enc.matches.size());
  entry->next_offset = static_cast<std::uint16_t>(entry->target_offset + target.size());
  out.insert(out.end(), enc.matches.begin(), enc.matches.end());
  out.insert(out.end(), target.begin(), target.end());
  return out;
}

}  // namespace kproxy::iptables
