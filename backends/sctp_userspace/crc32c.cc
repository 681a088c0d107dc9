#include "kproxy/sctp_userspace/crc32c.h"

#include <usrsctp.h>

#include <cstring>

namespace kproxy::sctp_userspace {

namespace {

#if defined(__x86_64__)
// CRC32c with the SSE 4.2 crc32 instruction, 8 bytes a step; x86-64 is little-endian, so
// the complemented result is already in the header's byte order.
__attribute__((target("sse4.2"))) std::uint32_t crc_sse42(const std::uint8_t* p, std::size_t n) {
  std::uint64_t c = 0xFFFFFFFFu;
  while (n >= 8) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    c = __builtin_ia32_crc32di(c, v);
    p += 8;
    n -= 8;
  }
  auto c32 = static_cast<std::uint32_t>(c);
  while (n-- != 0) c32 = __builtin_ia32_crc32qi(c32, *p++);
  return ~c32;
}
const bool kHardware = __builtin_cpu_supports("sse4.2");
#else
const bool kHardware = false;
#endif

}  // namespace

bool crc32c_hardware() { return kHardware; }

std::uint32_t crc32c(const std::uint8_t* data, std::size_t length) {
#if defined(__x86_64__)
  if (kHardware) return crc_sse42(data, length);
#endif
  // usrsctp's own table code (what it would have computed without the offload).
  return usrsctp_crc32c(const_cast<std::uint8_t*>(data), length);
}

void set_sctp_checksum(std::uint8_t* packet, std::size_t length) {
  if (length < 12) return;
  std::memset(packet + 8, 0, 4);
  const std::uint32_t c = crc32c(packet, length);
  std::memcpy(packet + 8, &c, 4);
}

bool sctp_checksum_ok(std::uint8_t* packet, std::size_t length) {
  if (length < 12) return false;
  std::uint32_t stored = 0;
  std::memcpy(&stored, packet + 8, 4);
  std::memset(packet + 8, 0, 4);
  const bool ok = crc32c(packet, length) == stored;
  std::memcpy(packet + 8, &stored, 4);
  return ok;
}

}  // namespace kproxy::sctp_userspace
