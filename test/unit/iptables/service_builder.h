// Building ServicePortInfo values for renderer and tracer tests, without the API model.
#pragma once

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "kproxy/iptables/render.h"
#include "kproxy/proxier/snapshot.h"

namespace kproxy::iptables::testing {

inline IpAddress ip(const std::string& text) { return *IpAddress::parse(text); }
inline Cidr cidr(const std::string& text) { return *Cidr::parse(text); }

struct EndpointSpec {
  EndpointSpec(std::string ip_, std::uint16_t port_, std::string node_, bool ready_ = true, bool serving_ = true,
               bool terminating_ = false)
      : ip(std::move(ip_)), port(port_), node(std::move(node_)), ready(ready_), serving(serving_),
        terminating(terminating_) {}
  std::string ip;
  std::uint16_t port = 80;
  std::string node;  // "node1" is this node in the tests
  bool ready = true;
  bool serving = true;
  bool terminating = false;
  std::string zone;
  std::vector<std::string> zone_hints;
};

class ServiceBuilder {
 public:
  ServiceBuilder(std::string ns, std::string name, std::string port_name, model::Protocol protocol,
                 const std::string& cluster_ip, std::uint16_t port) {
    info_.name = proxier::ServicePortName{std::move(ns), std::move(name), std::move(port_name), protocol};
    info_.cluster_ip = ip(cluster_ip);
    info_.port = port;
  }
  ServiceBuilder& node_port(std::uint16_t p) { info_.node_port = p; return *this; }
  ServiceBuilder& external_ip(const std::string& a) { info_.external_ips.push_back(ip(a)); return *this; }
  ServiceBuilder& lb_ip(const std::string& a) { info_.load_balancer_vips.push_back(ip(a)); return *this; }
  ServiceBuilder& source_range(const std::string& c) { info_.load_balancer_source_ranges.push_back(cidr(c)); return *this; }
  ServiceBuilder& source_ranges_incomplete() { info_.load_balancer_source_ranges_complete = false; return *this; }
  ServiceBuilder& affinity(std::uint32_t seconds) {
    info_.session_affinity = model::SessionAffinity::kClientIP;
    info_.sticky_max_age_seconds = seconds;
    return *this;
  }
  ServiceBuilder& etp_local() { info_.external_policy_local = true; return *this; }
  ServiceBuilder& itp_local() { info_.internal_policy_local = true; return *this; }
  ServiceBuilder& health_check_node_port(std::uint16_t p) { info_.health_check_node_port = p; return *this; }
  ServiceBuilder& endpoint(const EndpointSpec& e, const std::string& this_node = "node1") {
    proxier::Endpoint ep;
    ep.ip = ip(e.ip);
    ep.port = e.port;
    ep.ready = e.ready;
    ep.serving = e.serving;
    ep.terminating = e.terminating;
    ep.node_name = e.node;
    ep.is_local = !e.node.empty() && e.node == this_node;
    ep.zone = e.zone;
    ep.zone_hints = e.zone_hints;
    info_.endpoints.push_back(ep);
    std::sort(info_.endpoints.begin(), info_.endpoints.end(),
              [](const proxier::Endpoint& a, const proxier::Endpoint& b) { return a.to_string() < b.to_string(); });
    return *this;
  }
  const proxier::ServicePortInfo& info() const { return info_; }

 private:
  proxier::ServicePortInfo info_;
};

inline proxier::Snapshot snapshot(const std::vector<ServiceBuilder>& services) {
  proxier::Snapshot s;
  for (const auto& b : services) {
    s.service_ports[b.info().name] = std::make_shared<proxier::ServicePortInfo>(b.info());
  }
  return s;
}

// The render options most tests use: this node is node1 (192.168.0.2), the cluster CIDR
// 10.0.0.0/8 detects local traffic, in the given layout.
inline RenderOptions render_options(RenderOptions::Layout layout = RenderOptions::Layout::kKubeProxy) {
  RenderOptions o;
  o.node = {"node1", ""};
  o.node_ip = ip("192.168.0.2");
  o.local_detector = {LocalDetector::Mode::kCidr, cidr("10.0.0.0/8"), ""};
  o.layout = layout;
  return o;
}

}  // namespace kproxy::iptables::testing
