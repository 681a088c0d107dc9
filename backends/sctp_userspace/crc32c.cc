#include "kproxy/sctp_userspace/crc32c.h"

#include <array>
#include <cstring>

namespace kproxy::sctp_userspace {

namespace {

// Reflected Castagnoli polynomial.
constexpr std::uint32_t kPoly = 0x82F63B78u;

constexpr std::array<std::uint32_t, 256> make_table() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr std::array<std::uint32_t, 256> kTable = make_table();

std::uint32_t crc_table(std::uint32_t crc, const std::uint8_t* p, std::size_t n) {
  while (n-- != 0) crc = kTable[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
  return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) std::uint32_t crc_sse42(std::uint32_t crc, const std::uint8_t* p, std::size_t n) {
  std::uint64_t c = crc;
  while (n >= 8) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    c = __builtin_ia32_crc32di(c, v);
    p += 8;
    n -= 8;
  }
  std::uint32_t c32 = static_cast<std::uint32_t>(c);
  while (n-- != 0) c32 = __builtin_ia32_crc32qi(c32, *p++);
  return c32;
}
const bool kHardware = __builtin_cpu_supports("sse4.2");
#else
const bool kHardware = false;
#endif

std::uint32_t crc_raw(std::uint32_t crc, const std::uint8_t* p, std::size_t n) {
#if defined(__x86_64__)
  if (kHardware) return crc_sse42(crc, p, n);
#endif
  return crc_table(crc, p, n);
}

std::uint32_t to_header_order(std::uint32_t crc) {
  // The CRC's low byte goes first on the wire: on a little-endian host that is the value's
  // own layout.
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  return __builtin_bswap32(crc);
#else
  return crc;
#endif
}

}  // namespace

bool crc32c_hardware() { return kHardware; }

std::uint32_t crc32c(const std::uint8_t* data, std::size_t length) {
  return to_header_order(~crc_raw(0xFFFFFFFFu, data, length));
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
