// The Service addresses the userspace SCTP proxy answers (cluster, external and load-balancer
// IPs of SCTP ports) must be local to the node, so that the kernel delivers their SCTP
// packets to the proxy's raw sockets without any NAT (docs/sctp-userspace.md, "Steering").
//
// kproxy adds them to the loopback device:
//   IPv4  /32, scope host, labelled "lo:kproxy" (the label tells kproxy's addresses from the
//         operator's after a restart);
//   IPv6  /128, flags nodad (usable at once) and noprefixroute (only the local route), and
//         deprecated (preferred lifetime 0, valid forever), so that source address selection
//         never picks one for the node's own traffic, as host scope does for IPv4. IPv6
//         addresses carry no label: kproxy's are the /128s on lo with exactly that signature
//         (nodad + noprefixroute + preferred lifetime 0), which no address the kernel makes has.
//         (The kernel derives an IPv6 address's scope from the address: it cannot be "host".)
#pragma once

#include <set>
#include <string>
#include <vector>

#include "kproxy/ip.h"
#include "kproxy/status.h"

namespace kproxy::sctp_userspace {

inline constexpr const char* kAddressLabel = "lo:kproxy";

class ServiceAddresses {
 public:
  virtual ~ServiceAddresses() = default;
  // Makes kproxy's addresses of `family` exactly those of `want` in that family (addresses of
  // the other family in `want` are ignored, and the other family's present ones are left
  // alone): adds what is missing, deletes what is no longer wanted. An address that fails is
  // reported and the others are still applied. The daemon calls it once per family per sync.
  virtual Status ensure(IpFamily family, const std::set<IpAddress>& want) = 0;
  // Both families at once: kproxy's addresses become exactly `want` (ensure({}) removes them
  // all, as --cleanup and a restart without the mode do).
  Status ensure(const std::set<IpAddress>& want);
  // kproxy's addresses now present, of both families.
  virtual Expected<std::set<IpAddress>> list() = 0;
};

// The real one: rtnetlink through libnl-route, on the loopback device of the calling
// thread's network namespace.
class LoopbackAddresses final : public ServiceAddresses {
 public:
  using ServiceAddresses::ensure;
  Status ensure(IpFamily family, const std::set<IpAddress>& want) override;
  Expected<std::set<IpAddress>> list() override;
};

}  // namespace kproxy::sctp_userspace
