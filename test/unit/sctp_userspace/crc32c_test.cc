#include "kproxy/sctp_userspace/crc32c.h"

#include <gtest/gtest.h>
#include <usrsctp.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace kproxy::sctp_userspace {
namespace {

// The stored form of a CRC32c: little-endian bytes of ~crc. Check values from RFC 3720
// (B.4) and the usual "123456789" vector.
TEST(Crc32c, KnownVectors) {
  const std::string digits = "123456789";
  EXPECT_EQ(crc32c(reinterpret_cast<const std::uint8_t*>(digits.data()), digits.size()), 0xE3069283u);
  std::vector<std::uint8_t> zeros(32, 0), ones(32, 0xFF), inc(32);
  for (int i = 0; i < 32; ++i) inc[static_cast<size_t>(i)] = static_cast<std::uint8_t>(i);
  EXPECT_EQ(crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
  EXPECT_EQ(crc32c(ones.data(), ones.size()), 0x62A8AB43u);
  EXPECT_EQ(crc32c(inc.data(), inc.size()), 0x46DD794Eu);
}

// Byte for byte what usrsctp stores in a packet, for every length up to 2 KiB and every
// alignment (the hardware path works in 8-byte steps).
TEST(Crc32c, AgreesWithUsrsctp) {
  std::mt19937 rng(11);
  std::vector<std::uint8_t> buf(2100);
  for (auto& b : buf) b = static_cast<std::uint8_t>(rng());
  for (size_t offset = 0; offset < 8; ++offset) {
    for (size_t len = 0; len < 2048; len += (len < 64 ? 1 : 37)) {
      ASSERT_EQ(crc32c(buf.data() + offset, len), usrsctp_crc32c(buf.data() + offset, len)) << offset << " " << len;
    }
  }
}

TEST(Crc32c, SetsAndChecksAPacketsChecksum) {
  std::vector<std::uint8_t> packet(64, 0x5A);
  set_sctp_checksum(packet.data(), packet.size());
  std::vector<std::uint8_t> copy = packet;
  std::memset(copy.data() + 8, 0, 4);
  const std::uint32_t want = usrsctp_crc32c(copy.data(), copy.size());
  std::uint32_t got = 0;
  std::memcpy(&got, packet.data() + 8, 4);
  EXPECT_EQ(got, want);
  EXPECT_TRUE(sctp_checksum_ok(packet.data(), packet.size()));
  const auto before = packet;
  EXPECT_EQ(packet, before) << "checking leaves the packet as it was";
  packet[40] ^= 1;
  EXPECT_FALSE(sctp_checksum_ok(packet.data(), packet.size()));
  EXPECT_FALSE(sctp_checksum_ok(packet.data(), 11));
}

}  // namespace
}  // namespace kproxy::sctp_userspace
