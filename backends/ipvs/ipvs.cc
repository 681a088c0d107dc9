// Text forms of the IPVS adapter's values (include/kproxy/kernel/ipvs.h).
#include "kproxy/kernel/ipvs.h"

namespace kproxy::kernel {

std::string to_string(const IpvsService& s) {
  return std::string(model::to_string(s.protocol)) + " " + join_host_port(s.address, s.port);
}

std::string to_string(const IpvsDestination& d) { return join_host_port(d.address, d.port); }

std::string to_string(const IpvsChange& c) {
  switch (c.kind) {
    case IpvsChange::Kind::kAddService: return "add service " + to_string(c.service) + " (" + c.service.scheduler + ")";
    case IpvsChange::Kind::kUpdateService:
      return "update service " + to_string(c.service) + " (" + c.service.scheduler + ")";
    case IpvsChange::Kind::kDeleteService: return "delete service " + to_string(c.service);
    case IpvsChange::Kind::kAddDestination:
      return "add " + to_string(c.destination) + " to " + to_string(c.service) + " (weight " +
             std::to_string(c.destination.weight) + ")";
    case IpvsChange::Kind::kUpdateDestination:
      return "set " + to_string(c.destination) + " of " + to_string(c.service) + " to weight " +
             std::to_string(c.destination.weight);
    case IpvsChange::Kind::kDeleteDestination:
      return "delete " + to_string(c.destination) + " from " + to_string(c.service);
  }
  return "?";
}

}  // namespace kproxy::kernel
