// Links: the network devices and addresses kproxy keeps (DESIGN.md, "Kernel adapters").
//
// The IPVS backend keeps a dummy device, kube-ipvs0, holding every virtual service address as
// a host address (/32 or /128), because IPVS only sees packets addressed to the node
// (docs/ipvs.md, "The dummy device"). The real implementation is rtnetlink through libnl-route
// (NetlinkLinks, backends/kernel/netlink_links.cc), in the calling thread's network namespace;
// unit tests use a stateful fake (test/unit/kernel/fake_links.h).
#pragma once

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "kproxy/ip.h"
#include "kproxy/status.h"

namespace kproxy::kernel {

class Links {
 public:
  virtual ~Links() = default;
  // Makes a dummy device of that name exist. It is left down, as kube-proxy leaves
  // kube-ipvs0: its addresses are local all the same. True when it had to be created.
  virtual Expected<bool> ensure_dummy(const std::string& name) = 0;
  // Deletes the device; false when there was none.
  virtual Expected<bool> delete_link(const std::string& name) = 0;
  // The addresses on the device (nullopt-like error when there is no such device).
  virtual Expected<std::set<IpAddress>> addresses(const std::string& name) = 0;
  // A host address (/32, /128) on the device; adding a present one is not an error.
  virtual Status add_address(const std::string& name, const IpAddress& ip) = 0;
  // Removing an absent one is not an error.
  virtual Status delete_address(const std::string& name, const IpAddress& ip) = 0;
  // Every address of every device, with the device's name: where NodePorts are served.
  virtual Expected<std::vector<std::pair<std::string, IpAddress>>> all_addresses() = 0;
};

class NetlinkLinks final : public Links {
 public:
  Expected<bool> ensure_dummy(const std::string& name) override;
  Expected<bool> delete_link(const std::string& name) override;
  Expected<std::set<IpAddress>> addresses(const std::string& name) override;
  Status add_address(const std::string& name, const IpAddress& ip) override;
  Status delete_address(const std::string& name, const IpAddress& ip) override;
  Expected<std::vector<std::pair<std::string, IpAddress>>> all_addresses() override;
};

}  // namespace kproxy::kernel
