// Stateful fakes of the IPVS backend's adapters (include/kproxy/kernel/ipvs.h, links.h): they
// hold what the kernel would, refuse what the kernel refuses (a second add of one service,
// a destination of a missing service, a scheduler it lacks), and count the calls.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "kproxy/kernel/ipvs.h"
#include "kproxy/kernel/links.h"

namespace kproxy::ipvs::testing {

class FakeIpvs final : public kernel::Ipvs {
 public:
  using Key = std::tuple<IpAddress, model::Protocol, std::uint16_t>;
  struct Entry {
    kernel::IpvsService service;
    std::vector<kernel::IpvsDestination> destinations;
  };
  std::map<Key, Entry> table;
  std::set<std::string> schedulers{"rr", "wrr", "lc", "wlc", "sh", "mh"};
  std::set<Key> refused;  // every change of these services fails with EINVAL
  int service_lists = 0, destination_lists = 0, batches = 0, messages = 0;

  static Key key(const kernel::IpvsService& s) { return {s.address, s.protocol, s.port}; }

  Expected<std::vector<kernel::IpvsService>> services() override {
    ++service_lists;
    std::vector<kernel::IpvsService> out;
    for (const auto& [k, e] : table) out.push_back(e.service);
    return out;
  }
  Expected<std::vector<kernel::IpvsDestination>> destinations(const kernel::IpvsService& s) override {
    ++destination_lists;
    auto it = table.find(key(s));
    if (it == table.end()) return Error(std::strerror(ESRCH));
    return it->second.destinations;
  }
  std::vector<Status> apply(const std::vector<kernel::IpvsChange>& changes) override {
    ++batches;
    std::vector<Status> out;
    for (const auto& c : changes) {
      ++messages;
      const int e = one(c);
      out.push_back(e == 0 ? Status() : Status(Error("IPVS: " + to_string(c) + ": " + std::strerror(e))));
    }
    return out;
  }
  Status flush() override {
    table.clear();
    return {};
  }
  Expected<kernel::IpvsTimeouts> timeouts() override { return timeouts_; }
  Status set_timeouts(const kernel::IpvsTimeouts& t) override {
    timeouts_ = t;
    return {};
  }

  kernel::IpvsDestination* find(const std::string& service_ip, std::uint16_t port, const std::string& dest_ip) {
    for (auto& [k, e] : table) {
      if (e.service.address.to_string() != service_ip || e.service.port != port) continue;
      for (auto& d : e.destinations) {
        if (d.address.to_string() == dest_ip) return &d;
      }
    }
    return nullptr;
  }

 private:
  int one(const kernel::IpvsChange& c) {
    using Kind = kernel::IpvsChange::Kind;
    if (refused.contains(key(c.service))) return EINVAL;
    auto it = table.find(key(c.service));
    switch (c.kind) {
      case Kind::kAddService:
        if (it != table.end()) return EEXIST;
        if (!schedulers.contains(c.service.scheduler)) return ENOENT;
        table[key(c.service)] = Entry{c.service, {}};
        return 0;
      case Kind::kUpdateService:
        if (it == table.end()) return ESRCH;
        if (!schedulers.contains(c.service.scheduler)) return ENOENT;
        it->second.service = c.service;
        return 0;
      case Kind::kDeleteService:
        if (it == table.end()) return ESRCH;
        table.erase(it);
        return 0;
      default: break;
    }
    if (it == table.end()) return ESRCH;
    auto& dests = it->second.destinations;
    auto d = std::find_if(dests.begin(), dests.end(), [&](const auto& x) { return x.same_key(c.destination); });
    switch (c.kind) {
      case Kind::kAddDestination:
        if (d != dests.end()) return EEXIST;
        dests.push_back(c.destination);
        return 0;
      case Kind::kUpdateDestination:
        if (d == dests.end()) return ENOENT;
        d->weight = c.destination.weight;
        return 0;
      case Kind::kDeleteDestination:
        if (d == dests.end()) return ENOENT;
        dests.erase(d);
        return 0;
      default: return EINVAL;
    }
  }
  kernel::IpvsTimeouts timeouts_;
};

class FakeLinks final : public kernel::Links {
 public:
  std::map<std::string, std::set<IpAddress>> devices{{"lo", {}}, {"eth0", {}}};
  int created = 0;

  Expected<bool> ensure_dummy(const std::string& name) override {
    if (devices.contains(name)) return false;
    devices[name];
    ++created;
    return true;
  }
  Expected<bool> delete_link(const std::string& name) override { return devices.erase(name) > 0; }
  Expected<std::set<IpAddress>> addresses(const std::string& name) override {
    auto it = devices.find(name);
    if (it == devices.end()) return Error("no link " + name);
    return it->second;
  }
  Status add_address(const std::string& name, const IpAddress& ip) override {
    auto it = devices.find(name);
    if (it == devices.end()) return Error("add " + ip.to_string() + " to " + name + ": no such link");
    it->second.insert(ip);
    return {};
  }
  Status delete_address(const std::string& name, const IpAddress& ip) override {
    if (auto it = devices.find(name); it != devices.end()) it->second.erase(ip);
    return {};
  }
  Expected<std::vector<std::pair<std::string, IpAddress>>> all_addresses() override {
    std::vector<std::pair<std::string, IpAddress>> out;
    for (const auto& [name, ips] : devices) {
      for (const auto& ip : ips) out.emplace_back(name, ip);
    }
    return out;
  }
};

}  // namespace kproxy::ipvs::testing
