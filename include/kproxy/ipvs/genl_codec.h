// The IPVS generic-netlink messages, built and read without a socket (docs/ipvs.md, "The
// netlink client"). Pure: what NetlinkIpvs (backends/ipvs/netlink_ipvs.cc) sends and reads,
// testable byte for byte (test/unit/ipvs/genl_codec_test.cc).
//
// Encoding follows include/uapi/linux/ip_vs.h and the kernel's parser (ip_vs_ctl.c,
// ip_vs_genl_parse_service / _dest): u16 and u32 attributes in host order, ports in network
// order, addresses as 4 or 16 network-order bytes, service flags as {flags, mask} with every
// mask bit set (an update replaces every flag), and the scheduler, flags, timeout and netmask
// on every add and update (the kernel refuses one without them).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "kproxy/kernel/ipvs.h"
#include "kproxy/status.h"

namespace kproxy::ipvs {

// The genl command a change is sent as (IPVS_CMD_NEW_SERVICE, ...).
std::uint8_t command_of(kernel::IpvsChange::Kind kind);

// A whole request: nlmsghdr (type family_id, NLM_F_REQUEST | NLM_F_ACK plus extra_flags, seq,
// port 0), genlmsghdr (cmd, version 1) and the attributes.
std::vector<std::uint8_t> encode_change(std::uint16_t family_id, std::uint32_t seq, const kernel::IpvsChange& change);
// GET_SERVICE dump (every service), GET_DEST dump (the destinations of one service),
// FLUSH, GET_CONFIG and SET_CONFIG requests.
std::vector<std::uint8_t> encode_list_services(std::uint16_t family_id, std::uint32_t seq);
std::vector<std::uint8_t> encode_list_destinations(std::uint16_t family_id, std::uint32_t seq,
                                                   const kernel::IpvsService& service);
std::vector<std::uint8_t> encode_flush(std::uint16_t family_id, std::uint32_t seq);
std::vector<std::uint8_t> encode_get_timeouts(std::uint16_t family_id, std::uint32_t seq);
std::vector<std::uint8_t> encode_set_timeouts(std::uint16_t family_id, std::uint32_t seq,
                                              const kernel::IpvsTimeouts& timeouts);

// The attributes of one reply message (what follows its genlmsghdr), as the kernel's dumps
// send them: a SERVICE nest, a DEST nest, or the TIMEOUT_* attributes. Unknown attributes are
// skipped; a missing or malformed required one is an error naming it.
Expected<kernel::IpvsService> decode_service(std::span<const std::uint8_t> attributes);
Expected<kernel::IpvsDestination> decode_destination(std::span<const std::uint8_t> attributes);
Expected<kernel::IpvsTimeouts> decode_timeouts(std::span<const std::uint8_t> attributes);

}  // namespace kproxy::ipvs
