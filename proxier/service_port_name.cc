#include "kproxy/proxier/service_port_name.h"

#include <openssl/sha.h>

#include <array>

namespace kproxy::proxier {

std::string to_string(const ServicePortName& name) {
  std::string out = name.ns + "/" + name.name;
  if (!name.port.empty()) out += ":" + name.port;
  return out;
}

std::string_view lower_case_protocol(model::Protocol protocol) {
  switch (protocol) {
    case model::Protocol::kTcp:
      return "tcp";
    case model::Protocol::kUdp:
      return "udp";
    case model::Protocol::kSctp:
      return "sctp";
  }
  return "tcp";
}

namespace {

// base32.StdEncoding.EncodeToString(sha256(input))[:16]. Sixteen base32 characters carry 80
// bits, exactly the first 10 bytes of the digest, so only those are encoded.
std::string hash16(const std::string& input) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
  SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest.data());
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";  // RFC 4648
  std::string out;
  out.reserve(16);
  for (int group = 0; group < 2; ++group) {
    std::uint64_t bits = 0;
    for (int i = 0; i < 5; ++i) bits = (bits << 8) | digest[group * 5 + i];
    for (int i = 7; i >= 0; --i) out.push_back(kAlphabet[(bits >> (i * 5)) & 0x1f]);
  }
  return out;
}

}  // namespace

std::string service_port_hash(const ServicePortName& name) {
  return hash16(to_string(name) + std::string(lower_case_protocol(name.protocol)));
}

std::string endpoint_hash(const ServicePortName& name, const IpAddress& ip, std::uint16_t port) {
  return hash16(to_string(name) + std::string(lower_case_protocol(name.protocol)) + join_host_port(ip, port));
}

}  // namespace kproxy::proxier
