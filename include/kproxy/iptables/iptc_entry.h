// The binary form of a rule for the kernel's ip_tables (struct ipt_entry with its matches and
// target), as iptables-legacy builds it from the same arguments.
//
// A pure function of the typed rule (rules.h): every Term and Target maps to one xtables
// extension at the revision iptables 1.8 picks on current kernels, filled the way that
// extension's parser fills it (iptables' extensions/libxt_*.c), so that the kernel holds
// the same rule whichever applier wrote it; the netns test compares iptables-legacy-save of
// both. IPv4 only (ip6tables has its own entry type).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "kproxy/iptables/rules.h"
#include "kproxy/status.h"

namespace kproxy::iptables {

// The kernel's index of an ipset, by name (the set match refers to sets by index).
using IpsetIndexResolver = std::function<Expected<std::uint16_t>(std::string_view name)>;

// The bytes of one ipt_entry: ip header part, matches, then the target. A jump (or ACCEPT,
// DROP, RETURN, no target) is a standard target whose name libiptc resolves.
Expected<std::vector<std::uint8_t>> encode_ipv4_entry(const Rule& rule, const IpsetIndexResolver& ipsets);

}  // namespace kproxy::iptables
