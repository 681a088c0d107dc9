// IP addresses and CIDRs as kproxy holds them: parsed once, canonical, comparable.
//
// Parsing follows what the Kubernetes API server stores and what kube-proxy reads
// (k8s.io/utils/net ParseIPSloppy): an IPv4 octet with leading zeros is read as DECIMAL,
// never octal ("010.001.002.003" is 10.1.2.3), because clusters still hold such values
// (CVE-2021-29923). Everything kproxy writes uses the canonical text from to_string().
// Zone suffixes ("fe80::1%eth0") and bracketed forms are refused.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "kproxy/status.h"

namespace kproxy {

enum class IpFamily : std::uint8_t { kIPv4, kIPv6 };

// "IPv4" / "IPv6", the spelling of the Kubernetes API (Service.spec.ipFamilies) and of
// kube-proxy's ip_family metric label.
std::string_view to_string(IpFamily family);

class IpAddress {
 public:
  // The IPv4 unspecified address 0.0.0.0.
  IpAddress() = default;

  static Expected<IpAddress> parse(std::string_view text);
  static IpAddress from_v4(std::uint32_t host_order);
  static IpAddress from_v6(const std::array<std::uint8_t, 16>& bytes);

  IpFamily family() const { return family_; }
  bool is_v4() const { return family_ == IpFamily::kIPv4; }
  bool is_v6() const { return family_ == IpFamily::kIPv6; }
  // Network byte order. For IPv4 only the first 4 bytes are used (the rest are zero).
  const std::array<std::uint8_t, 16>& bytes() const { return bytes_; }
  std::uint32_t v4_host_order() const;

  bool is_unspecified() const;  // 0.0.0.0, ::
  bool is_loopback() const;     // 127.0.0.0/8, ::1
  bool is_link_local() const;   // 169.254.0.0/16, fe80::/10 (unicast)
  bool is_multicast() const;    // 224.0.0.0/4, ff00::/8
  bool is_ipv4_mapped() const;  // ::ffff:0:0/96

  // Canonical text: dotted decimal for IPv4, RFC 5952 for IPv6.
  std::string to_string() const;

  auto operator<=>(const IpAddress&) const = default;

 private:
  IpFamily family_ = IpFamily::kIPv4;
  std::array<std::uint8_t, 16> bytes_{};
};

// "IP:port", or "[IP]:port" for IPv6 (Go's net.JoinHostPort, which kube-proxy uses in
// chain-name hashes and comments).
std::string join_host_port(const IpAddress& ip, std::uint16_t port);

class Cidr {
 public:
  Cidr() = default;

  // Accepts "a.b.c.d/n" and "x::y/n". Host bits are masked off, as Go's ParseCIDR does,
  // so to_string() always prints the network ("10.0.0.7/8" -> "10.0.0.0/8").
  static Expected<Cidr> parse(std::string_view text);
  // A CIDR from an address and a prefix length; host bits are masked off.
  static Expected<Cidr> make(const IpAddress& address, int prefix_length);

  const IpAddress& network() const { return network_; }
  int prefix_length() const { return prefix_length_; }
  IpFamily family() const { return network_.family(); }
  bool contains(const IpAddress& ip) const;
  std::string to_string() const;

  auto operator<=>(const Cidr&) const = default;

 private:
  IpAddress network_;
  int prefix_length_ = 0;
};

}  // namespace kproxy
