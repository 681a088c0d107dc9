// NetlinkIpvs: kernel::Ipvs over the IPVS generic-netlink family, with libnl-genl
// (docs/ipvs.md, "The netlink client").
//
// One netlink socket, opened in the calling thread's network namespace. The family id is
// resolved through the genl controller at open(); asking for it makes the kernel load ip_vs
// when it is a module (its genl family alias). apply() streams its requests (each with
// NLM_F_ACK) in windows of up to 512 and matches the kernel's answers to them by sequence
// number, so one refused request is reported with its change and the rest still go through.
#pragma once

#include <memory>

#include "kproxy/kernel/ipvs.h"

namespace kproxy::ipvs {

class NetlinkIpvs final : public kernel::Ipvs {
 public:
  static Expected<std::unique_ptr<NetlinkIpvs>> open();
  ~NetlinkIpvs() override;

  Expected<std::vector<kernel::IpvsService>> services() override;
  Expected<std::vector<kernel::IpvsDestination>> destinations(const kernel::IpvsService& service) override;
  std::vector<Status> apply(const std::vector<kernel::IpvsChange>& changes) override;
  Status flush() override;
  Expected<kernel::IpvsTimeouts> timeouts() override;
  Status set_timeouts(const kernel::IpvsTimeouts& timeouts) override;

  // Netlink messages sent so far (requests, not their answers): what bench/ reports per change.
  std::uint64_t messages_sent() const;

 private:
  struct Impl;
  explicit NetlinkIpvs(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kproxy::ipvs
