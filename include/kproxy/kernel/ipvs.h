// Ipvs: the one way kproxy programs the kernel's IPVS load balancer (DESIGN.md, "Kernel
// adapters"; issue 9).
//
// The real implementation talks the IPVS generic-netlink family with libnl-genl
// (backends/ipvs/netlink_ipvs.cc, docs/ipvs.md); unit tests use a stateful fake
// (test/unit/ipvs/fake_ipvs.h). Changes go in batches: apply() sends every request of a batch
// before it reads the kernel's answers, and reports each request's own result, so one
// refused Service never stops the others.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kproxy/ip.h"
#include "kproxy/model/protocol.h"
#include "kproxy/status.h"

namespace kproxy::kernel {

// Service flags (include/uapi/linux/ip_vs.h, IP_VS_SVC_F_*).
inline constexpr std::uint32_t kIpvsPersistent = 0x1;
inline constexpr std::uint32_t kIpvsHashed = 0x2;  // set by the kernel on every service
inline constexpr std::uint32_t kIpvsOnePacket = 0x4;
inline constexpr std::uint32_t kIpvsSched1 = 0x8;   // sh/mh: fall back to another server
inline constexpr std::uint32_t kIpvsSched2 = 0x10;  // sh/mh: hash the source port too
inline constexpr std::uint32_t kIpvsSched3 = 0x20;

// Forwarding methods (IP_VS_CONN_F_*): kube-proxy, and kproxy, use masquerading (NAT).
inline constexpr std::uint32_t kIpvsMasquerade = 0;
inline constexpr std::uint32_t kIpvsLocalNode = 1;
inline constexpr std::uint32_t kIpvsTunnel = 2;
inline constexpr std::uint32_t kIpvsDirectRoute = 3;

// A virtual service, identified by (address, protocol, port); the family is the address's.
struct IpvsService {
  IpAddress address;
  model::Protocol protocol = model::Protocol::kTcp;
  std::uint16_t port = 0;
  std::string scheduler = "rr";
  std::uint32_t flags = 0;    // without kIpvsHashed (masked out when read)
  std::uint32_t timeout = 0;  // persistence, seconds (with kIpvsPersistent)
  // 0xffffffff for IPv4 (a persistence mask, network order in the kernel), 128 for IPv6
  // (a prefix length); what kube-proxy sets.
  std::uint32_t netmask = 0xffffffff;

  bool same_key(const IpvsService& o) const {
    return address == o.address && protocol == o.protocol && port == o.port;
  }
  bool operator==(const IpvsService&) const = default;
};

// "TCP 10.96.0.1:443" ("[fd00::1]:443" for IPv6), as ipvsadm lists it: for logs and errors.
std::string to_string(const IpvsService& service);

// A real server of a virtual service.
struct IpvsDestination {
  IpAddress address;
  std::uint16_t port = 0;
  std::uint32_t weight = 1;
  std::uint32_t forward = kIpvsMasquerade;
  std::uint32_t upper_threshold = 0;  // 0: none
  std::uint32_t lower_threshold = 0;
  // Read from the kernel, ignored when sent.
  std::uint32_t active_connections = 0;
  std::uint32_t inactive_connections = 0;
  std::uint32_t persistent_connections = 0;

  bool same_key(const IpvsDestination& o) const { return address == o.address && port == o.port; }
  // What a sync compares: the programmable fields, not the counters.
  bool same_settings(const IpvsDestination& o) const {
    return same_key(o) && weight == o.weight && forward == o.forward && upper_threshold == o.upper_threshold &&
           lower_threshold == o.lower_threshold;
  }
  bool operator==(const IpvsDestination&) const = default;
};

std::string to_string(const IpvsDestination& destination);

// The global connection timeouts (ipvsadm --set); 0 leaves a value as it is.
struct IpvsTimeouts {
  std::uint32_t tcp = 0;
  std::uint32_t tcp_fin = 0;
  std::uint32_t udp = 0;
  bool operator==(const IpvsTimeouts&) const = default;
};

// One request of a batch.
struct IpvsChange {
  enum class Kind : std::uint8_t {
    kAddService,
    kUpdateService,
    kDeleteService,
    kAddDestination,
    kUpdateDestination,
    kDeleteDestination,
  };
  Kind kind = Kind::kAddService;
  IpvsService service;
  IpvsDestination destination;  // for the destination kinds
};

std::string to_string(const IpvsChange& change);

class Ipvs {
 public:
  virtual ~Ipvs() = default;

  // Every virtual service of the namespace (kproxy's and anyone else's).
  virtual Expected<std::vector<IpvsService>> services() = 0;
  // The real servers of one virtual service.
  virtual Expected<std::vector<IpvsDestination>> destinations(const IpvsService& service) = 0;
  // Sends every change, in order, then collects the answers: one Status per change.
  virtual std::vector<Status> apply(const std::vector<IpvsChange>& changes) = 0;
  // Deletes every virtual service (ipvsadm -C).
  virtual Status flush() = 0;
  virtual Expected<IpvsTimeouts> timeouts() = 0;
  virtual Status set_timeouts(const IpvsTimeouts& timeouts) = 0;
};

}  // namespace kproxy::kernel
