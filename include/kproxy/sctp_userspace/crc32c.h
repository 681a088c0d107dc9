// The SCTP checksum (CRC32c, RFC 4960 appendix B), for the proxy's packets: usrsctp is told
// the checksum is offloaded (usrsctp_enable_crc32c_offload) and the loop computes and checks
// it here, with the CPU's crc32 instruction where there is one (SSE 4.2) and usrsctp's own
// table code otherwise (which was about a tenth of the proxy's CPU under load).
#pragma once

#include <cstddef>
#include <cstdint>

namespace kproxy::sctp_userspace {

// CRC32c of `data` (initial value ~0, final complement), as it is stored in an SCTP common
// header on a little-endian host: memcpy the result into bytes 8..11.
std::uint32_t crc32c(const std::uint8_t* data, std::size_t length);

// Writes the checksum of an SCTP packet (common header first) into its header.
void set_sctp_checksum(std::uint8_t* packet, std::size_t length);
// Whether an SCTP packet's checksum is right (the packet is left as it was).
bool sctp_checksum_ok(std::uint8_t* packet, std::size_t length);

// Whether crc32c() uses the CPU's instruction (for logs and the bench).
bool crc32c_hardware();

}  // namespace kproxy::sctp_userspace
