// The Service addresses the userspace SCTP proxy answers (cluster, external and load-balancer
// IPs of SCTP ports) must be local to the node, so that the kernel delivers their SCTP
// packets to the proxy's raw socket without any NAT (docs/sctp-userspace.md, "Steering").
// kproxy adds them to the loopback device as /32 host-scope addresses labelled "lo:kproxy",
// the label telling its own addresses from the operator's after a restart.
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
  // Makes the labelled addresses exactly `want` (IPv4 ones; others are ignored): adds what is
  // missing, deletes what is no longer wanted. An address that fails is reported and the
  // others are still applied.
  virtual Status ensure(const std::set<IpAddress>& want) = 0;
  // The labelled addresses now present.
  virtual Expected<std::set<IpAddress>> list() = 0;
};

// The real one: rtnetlink through libnl-route, on the loopback device of the calling
// thread's network namespace.
class LoopbackAddresses final : public ServiceAddresses {
 public:
  Status ensure(const std::set<IpAddress>& want) override;
  Expected<std::set<IpAddress>> list() override;
};

}  // namespace kproxy::sctp_userspace
