// What IPVS should hold for a snapshot, and the changes that take the kernel there
// (docs/ipvs.md, "Syncs"). Pure: the IPVS proxier (backends/ipvs/proxier.cc) reads the
// kernel, calls these, and sends the plan's changes as one batch.
//
// The layout is kube-proxy's IPVS mode (pkg/proxy/ipvs/proxier.go, syncService and
// syncEndpoint): one virtual service per frontend of a service port (its cluster IP, each
// external IP, each load-balancer IP, and the NodePort on each node address), masquerading
// destinations of weight 1, sessionAffinity ClientIP as persistence with its timeout. The
// destinations of the cluster IP follow internalTrafficPolicy, those of every other frontend
// externalTrafficPolicy, chosen by proxier::categorize_endpoints as the iptables backend's are.
#pragma once

#include <cstddef>
#include <string>
#include <tuple>
#include <vector>

#include "kproxy/ip.h"
#include "kproxy/kernel/ipvs.h"
#include "kproxy/proxier/endpoint_selection.h"
#include "kproxy/proxier/service_port_name.h"
#include "kproxy/proxier/snapshot.h"

namespace kproxy::ipvs {

struct IpvsOptions {
  // The proxier's family: a frontend or an endpoint of the other family is never programmed
  // (the meta-proxier gives each family's proxier only its own, as kube-proxy's does; this
  // keeps an IPv4 proxier from binding an IPv6 address or adding an IPv6 service if one
  // slipped through, and the other way round).
  IpFamily family = IpFamily::kIPv4;
  std::string scheduler = "rr";  // --ipvs-scheduler
  proxier::NodeFacts node;
  // The node addresses NodePorts are served on (--nodeport-addresses applied), of the
  // snapshot's family. kube-proxy gives each its own virtual service.
  std::vector<IpAddress> node_port_addresses;
  // --sctp-userspace-mode: SCTP ports take the userspace proxy, never an IPVS service.
  bool skip_sctp = false;
};

struct VirtualServer {
  kernel::IpvsService service;
  std::vector<kernel::IpvsDestination> destinations;  // sorted by address and port
  proxier::ServicePortName owner;                      // for logs and errors
};

struct DesiredState {
  std::vector<VirtualServer> servers;  // sorted by service key, one per key
  // The addresses bound to kube-ipvs0 (cluster, external and load-balancer IPs; never the
  // node's own), sorted, without repeats.
  std::vector<IpAddress> bound_addresses;
};

DesiredState build_desired(const proxier::Snapshot& snapshot, const IpvsOptions& options);

// A virtual service's identity (address, protocol, port) and its total order.
using ServiceKey = std::tuple<IpAddress, model::Protocol, std::uint16_t>;
inline ServiceKey service_key(const kernel::IpvsService& s) { return {s.address, s.protocol, s.port}; }
bool service_key_less(const kernel::IpvsService& a, const kernel::IpvsService& b);

// A service as the kernel holds it, with its destinations.
struct KernelServer {
  kernel::IpvsService service;
  std::vector<kernel::IpvsDestination> destinations;
};

struct PlanOptions {
  IpFamily family = IpFamily::kIPv4;  // services of the other family are not this proxier's
  // --ipvs-exclude-cidrs: services on these addresses are never deleted.
  std::vector<Cidr> exclude_cidrs;
};

struct Plan {
  // Service additions and updates, then destination changes, then service deletions.
  std::vector<kernel::IpvsChange> changes;
  // TCP destinations no longer wanted that still carry connections: they stay at weight 0
  // (new connections avoid them) and are deleted by a later plan once their connections end.
  std::size_t draining = 0;
};

// Everything that differs, and nothing else: a service or destination that is already right
// is not touched (so a restart rewrites nothing). Destinations no longer wanted: UDP and
// SCTP ones are deleted at once; TCP ones drop to weight 0 and are deleted when the kernel
// reports no active and no inactive connection (kube-proxy's graceful termination).
Plan plan(const DesiredState& desired, const std::vector<KernelServer>& actual, const PlanOptions& options);

}  // namespace kproxy::ipvs
