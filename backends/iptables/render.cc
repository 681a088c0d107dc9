#include "kproxy/iptables/render.h"

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <set>

#include "kproxy/proxier/service_port_name.h"

namespace kproxy::iptables {
namespace {

using proxier::Endpoint;
using proxier::ServicePortInfo;
using proxier::ServicePortName;

Cidr host_cidr(const IpAddress& ip) {
  return *Cidr::make(ip, ip.is_v4() ? 32 : 128);
}

Term dst(const IpAddress& ip) {
  return Address{Address::Direction::kDestination, host_cidr(ip), false};
}
Term src(const Cidr& cidr, bool negated = false) {
  return Address{Address::Direction::kSource, cidr, negated};
}

Target jump(std::string chain) { return Jump{std::move(chain)}; }

// Appends a rule to a chain.
struct ChainWriter {
  Chain& chain;
  void add(std::vector<Term> terms, Target target) { chain.rules.push_back(Rule{std::move(terms), std::move(target)}); }
};

// The rules of one service port, written into the shared top-level chains and its own.
class ServiceRenderer {
 public:
  ServiceRenderer(const RenderOptions& options, bool large_cluster, RenderedRules& out, Chain& filter_services,
                  Chain& filter_external, Chain& filter_nodeports, Chain& filter_firewall, Chain& nat_services,
                  Chain& nat_nodeports)
      : options_(options),
        large_cluster_(large_cluster),
        out_(out),
        filter_services_(filter_services),
        filter_external_(filter_external),
        filter_nodeports_(filter_nodeports),
        filter_firewall_(filter_firewall),
        nat_services_(nat_services),
        nat_nodeports_(nat_nodeports) {}

  void render(const ServicePortInfo& svc) {
    const std::string name = proxier::to_string(svc.name);
    const Protocol proto{svc.name.protocol};
    const auto selection = proxier::categorize_endpoints(svc, options_.node);
    const auto& cluster_endpoints = selection.cluster;
    const auto& local_endpoints = selection.local;
    const bool has_endpoints = selection.has_any_endpoints;

    const std::string cluster_chain = service_chain_name(svc.name);
    const std::string local_chain = local_service_chain_name(svc.name);
    const std::string ext_chain = external_chain_name(svc.name);
    const std::string fw_chain = firewall_chain_name(svc.name);

    const bool uses_cluster_chain = !cluster_endpoints.empty() && svc.uses_cluster_endpoints();
    const bool uses_local_chain = !local_endpoints.empty() && svc.uses_local_endpoints();

    std::string internal_chain = cluster_chain;
    bool has_internal_endpoints = has_endpoints;
    if (svc.internal_policy_local) {
      internal_chain = local_chain;
      if (local_endpoints.empty()) has_internal_endpoints = false;
    }
    std::string external_policy_chain = cluster_chain;
    bool has_external_endpoints = has_endpoints;
    if (svc.external_policy_local) {
      external_policy_chain = local_chain;
      if (local_endpoints.empty()) has_external_endpoints = false;
    }
    // The EXT chain exists whenever there are endpoints anywhere, for the short-circuit
    // rules of local traffic even without external endpoints.
    const bool uses_ext_chain = has_endpoints && svc.externally_accessible();

    // loadBalancerSourceRanges: a list that lost entries to validation still gets a firewall
    // chain (holding what survived), so traffic is refused rather than let through.
    const bool has_source_ranges =
        !svc.load_balancer_source_ranges.empty() || !svc.load_balancer_source_ranges_complete;
    const bool uses_fw_chain = has_endpoints && !svc.load_balancer_vips.empty() && has_source_ranges;
    const std::string lb_chain = uses_fw_chain ? fw_chain : ext_chain;

    Verdict::Kind internal_filter = Verdict::Kind::kAccept;  // kAccept: no filter rule
    Verdict::Kind external_filter = Verdict::Kind::kAccept;
    std::string internal_filter_comment;
    std::string external_filter_comment;
    if (!has_endpoints) {
      internal_filter = external_filter = Verdict::Kind::kReject;
      internal_filter_comment = external_filter_comment = name + " has no endpoints";
    } else {
      if (!has_internal_endpoints) {
        internal_filter = Verdict::Kind::kDrop;
        internal_filter_comment = name + " has no local endpoints";
        ++out_.stats.no_local_endpoints_internal;
      }
      if (!has_external_endpoints) {
        external_filter = Verdict::Kind::kDrop;
        external_filter_comment = name + " has no local endpoints";
        ++out_.stats.no_local_endpoints_external;
      }
    }

    auto port_match = [&](const IpAddress& ip, std::uint16_t port, std::string comment) {
      return std::vector<Term>{Comment{std::move(comment)}, proto, dst(ip), DestinationPort{port}};
    };

    // Cluster IP.
    if (has_internal_endpoints) {
      ChainWriter{nat_services_}.add(port_match(svc.cluster_ip, svc.port, name + " cluster IP"), jump(internal_chain));
    } else {
      ChainWriter{filter_services_}.add(port_match(svc.cluster_ip, svc.port, internal_filter_comment),
                                        Verdict{internal_filter});
    }

    // External IPs.
    for (const IpAddress& ip : svc.external_ips) {
      if (has_endpoints) {
        ChainWriter{nat_services_}.add(port_match(ip, svc.port, name + " external IP"), jump(ext_chain));
      }
      if (!has_external_endpoints) {
        ChainWriter{filter_external_}.add(port_match(ip, svc.port, external_filter_comment), Verdict{external_filter});
      }
    }

    // Load-balancer IPs.
    for (const IpAddress& ip : svc.load_balancer_vips) {
      if (has_endpoints) {
        ChainWriter{nat_services_}.add(port_match(ip, svc.port, name + " loadbalancer IP"), jump(lb_chain));
      }
      if (uses_fw_chain) {
        ChainWriter{filter_firewall_}.add(port_match(ip, svc.port, name + " traffic not accepted by " + fw_chain),
                                          Verdict{Verdict::Kind::kDrop});
      }
    }
    if (!has_external_endpoints) {
      for (const IpAddress& ip : svc.load_balancer_vips) {
        ChainWriter{filter_external_}.add(port_match(ip, svc.port, external_filter_comment), Verdict{external_filter});
      }
    }

    // NodePort.
    if (svc.node_port != 0) {
      if (has_endpoints) {
        ChainWriter{nat_nodeports_}.add({Comment{name}, proto, DestinationPort{svc.node_port}}, jump(ext_chain));
      }
      if (!has_external_endpoints) {
        ChainWriter{filter_external_}.add(
            {Comment{external_filter_comment}, AddrTypeLocal{false}, proto, DestinationPort{svc.node_port}},
            Verdict{external_filter});
      }
    }

    // Health-check node port: always TCP, accepted even without local endpoints.
    if (svc.health_check_node_port != 0) {
      ChainWriter{filter_nodeports_}.add({Comment{name + " health check node port"}, Protocol{model::Protocol::kTcp},
                                          DestinationPort{svc.health_check_node_port}},
                                         Verdict{Verdict::Kind::kAccept});
    }

    // The service port's own nat chains.
    std::vector<Chain>& chains = out_.service_chains[svc.name];
    auto new_chain = [&chains](std::string chain_name) -> Chain& {
      chains.push_back(Chain{std::move(chain_name), {}});
      return chains.back();
    };
    // Rules for the internal chain come first in it (the masquerade rule), so remember them
    // until the chain is created below.
    std::vector<Rule> internal_prefix;
    if (has_internal_endpoints) {
      auto terms = port_match(svc.cluster_ip, svc.port, name + " cluster IP");
      if (options_.masquerade_all) {
        internal_prefix.push_back(Rule{terms, jump(kMarkMasqChain)});
      } else if (options_.local_detector.implemented()) {
        terms.push_back(options_.local_detector.if_not_local());
        internal_prefix.push_back(Rule{terms, jump(kMarkMasqChain)});
      }
    }

    if (uses_ext_chain) {
      ChainWriter ext{new_chain(ext_chain)};
      if (!svc.external_policy_local) {
        ext.add({Comment{"masquerade traffic for " + name + " external destinations"}}, jump(kMarkMasqChain));
      } else {
        if (options_.local_detector.implemented()) {
          ext.add({Comment{"pod traffic for " + name + " external destinations"}, options_.local_detector.if_local()},
                  jump(cluster_chain));
        }
        ext.add({Comment{"masquerade LOCAL traffic for " + name + " external destinations"}, AddrTypeLocal{true}},
                jump(kMarkMasqChain));
        ext.add({Comment{"route LOCAL traffic for " + name + " external destinations"}, AddrTypeLocal{true}},
                jump(cluster_chain));
      }
      if (has_external_endpoints) ext.add({}, jump(external_policy_chain));
    }

    if (uses_fw_chain) {
      ChainWriter fw{new_chain(fw_chain)};
      bool allow_from_node = false;
      for (const Cidr& range : svc.load_balancer_source_ranges) {
        fw.add({Comment{name + " loadbalancer IP"}, src(range)}, jump(ext_chain));
        if (options_.node_ip && range.contains(*options_.node_ip)) allow_from_node = true;
      }
      if (allow_from_node) {
        for (const IpAddress& ip : svc.load_balancer_vips) {
          fw.add({Comment{name + " loadbalancer IP"}, src(host_cidr(ip))}, jump(ext_chain));
        }
      }
      fw.add({Comment{"other traffic to " + name + " will be dropped by KUBE-PROXY-FIREWALL"}}, NoTarget{});
    }

    auto policy_chain = [&](const std::string& chain_name, const std::vector<const Endpoint*>& endpoints) {
      Chain& chain = new_chain(chain_name);
      if (chain_name == internal_chain) {
        for (Rule& r : internal_prefix) chain.rules.push_back(std::move(r));
        internal_prefix.clear();
      }
      write_service_to_endpoint_rules(chain, svc, name, endpoints);
    };
    if (uses_cluster_chain) policy_chain(cluster_chain, cluster_endpoints);
    if (uses_local_chain) policy_chain(local_chain, local_endpoints);

    if (options_.lean()) {
      // No KUBE-SEP- chains: the DNAT rules are in the policy chains, and the hairpin
      // masquerade is KUBE-POSTROUTING's KUBE-LOOP-BACK rule.
      if (chains.empty()) out_.service_chains.erase(svc.name);
      return;
    }
    for (const Endpoint* ep : selection.all_reachable) {
      const std::string ep_chain = endpoint_chain_name(svc.name, *ep);
      ChainWriter sep{new_chain(ep_chain)};
      std::vector<Term> base;
      if (!large_cluster_) base.push_back(Comment{name});
      auto hairpin = base;
      hairpin.push_back(src(host_cidr(ep->ip)));
      sep.add(std::move(hairpin), jump(kMarkMasqChain));
      auto dnat = base;
      if (svc.session_affinity == model::SessionAffinity::kClientIP) dnat.push_back(RecentSet{ep_chain});
      dnat.push_back(proto);
      sep.add(std::move(dnat), Dnat{ep->ip, ep->port});
    }
    if (chains.empty()) out_.service_chains.erase(svc.name);
  }

 private:
  // The lean layout's endpoint rules: one DNAT rule per endpoint, in the policy chain itself.
  // With affinity, the "--rcheck" rules also "--set" (kube-proxy's KUBE-SEP- chain refreshes
  // the entry on every new connection, the rcheck path included) and DNAT directly.
  void write_lean_endpoint_rules(Chain& chain, const ServicePortInfo& svc, const std::string& name,
                                 const std::vector<const Endpoint*>& endpoints) {
    ChainWriter w{chain};
    const Protocol proto{svc.name.protocol};
    const bool affinity = svc.session_affinity == model::SessionAffinity::kClientIP;
    auto comment = [&](const Endpoint& ep, std::vector<Term>& terms) {
      if (!large_cluster_) terms.push_back(Comment{name + " -> " + ep.to_string()});
    };
    for (const Endpoint* ep : endpoints) {
      const std::string_view p = proxier::lower_case_protocol(svc.name.protocol);
      loop_back_.insert(ep->ip.to_string() + "," + std::string(p) + ":" + std::to_string(ep->port) + "," +
                        ep->ip.to_string());
    }
    if (affinity) {
      for (const Endpoint* ep : endpoints) {
        const std::string recent = endpoint_chain_name(svc.name, *ep);
        std::vector<Term> terms;
        comment(*ep, terms);
        terms.push_back(RecentCheck{recent, svc.sticky_max_age_seconds});
        terms.push_back(RecentSet{recent});
        terms.push_back(proto);
        w.add(std::move(terms), Dnat{ep->ip, ep->port});
      }
    }
    const std::size_t n = endpoints.size();
    for (std::size_t i = 0; i < n; ++i) {
      const Endpoint& ep = *endpoints[i];
      std::vector<Term> terms;
      comment(ep, terms);
      if (i + 1 < n) terms.push_back(Probability{1.0 / static_cast<double>(n - i)});
      if (affinity) terms.push_back(RecentSet{endpoint_chain_name(svc.name, ep)});
      terms.push_back(proto);
      w.add(std::move(terms), Dnat{ep.ip, ep.port});
    }
  }

 public:
  // "EP_IP,PROTO:PORT,EP_IP" of every endpoint written (lean layout).
  const std::set<std::string>& loop_back_entries() const { return loop_back_; }

 private:
  void write_service_to_endpoint_rules(Chain& chain, const ServicePortInfo& svc, const std::string& name,
                                       const std::vector<const Endpoint*>& endpoints) {
    if (options_.lean()) {
      write_lean_endpoint_rules(chain, svc, name, endpoints);
      return;
    }
    ChainWriter w{chain};
    auto comment = [&](const Endpoint& ep, std::vector<Term>& terms) {
      if (!large_cluster_) terms.push_back(Comment{name + " -> " + ep.to_string()});
    };
    if (svc.session_affinity == model::SessionAffinity::kClientIP) {
      for (const Endpoint* ep : endpoints) {
        const std::string ep_chain = endpoint_chain_name(svc.name, *ep);
        std::vector<Term> terms;
        comment(*ep, terms);
        terms.push_back(RecentCheck{ep_chain, svc.sticky_max_age_seconds});
        w.add(std::move(terms), jump(ep_chain));
      }
    }
    const std::size_t n = endpoints.size();
    for (std::size_t i = 0; i < n; ++i) {
      std::vector<Term> terms;
      comment(*endpoints[i], terms);
      if (i + 1 < n) terms.push_back(Probability{1.0 / static_cast<double>(n - i)});
      w.add(std::move(terms), jump(endpoint_chain_name(svc.name, *endpoints[i])));
    }
  }

  const RenderOptions& options_;
  bool large_cluster_;
  RenderedRules& out_;
  Chain& filter_services_;
  Chain& filter_external_;
  Chain& filter_nodeports_;
  Chain& filter_firewall_;
  Chain& nat_services_;
  Chain& nat_nodeports_;
  std::set<std::string> loop_back_;
};

// One rule of a chain to place in the dispatch tree, keyed by its destination host address.
struct TreeEntry {
  std::uint32_t ip;
  std::size_t order;  // position in the root, to keep the relative order inside a leaf
  Rule rule;
};

std::string dispatch_chain_name(int level, std::uint32_t key) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s%d-%03X", kDispatchChainPrefix, level, key);
  return buf;
}

std::uint32_t low_mask(int bits) { return bits >= 32 ? ~std::uint32_t{0} : (std::uint32_t{1} << bits) - 1; }

// Fills `chain` (level `level`, holding the entries whose low 2*level bits equal `key`).
void build_node(std::vector<TreeEntry*>& entries, int level, std::uint32_t key, int depth, Chain& chain,
                std::vector<Chain>& out) {
  if (level == depth) {
    std::sort(entries.begin(), entries.end(), [](const TreeEntry* a, const TreeEntry* b) { return a->order < b->order; });
    for (TreeEntry* e : entries) chain.rules.push_back(std::move(e->rule));
    return;
  }
  const int shift = 2 * level;
  const std::uint32_t child_mask = low_mask(shift + 2);
  for (std::uint32_t digit = 0; digit < 4; ++digit) {
    std::vector<TreeEntry*> child_entries;
    for (TreeEntry* e : entries) {
      if (((e->ip >> shift) & 3u) == digit) child_entries.push_back(e);
    }
    if (child_entries.empty()) continue;
    const std::uint32_t child_key = key | (digit << shift);
    Chain child{dispatch_chain_name(level + 1, child_key), {}};
    build_node(child_entries, level + 1, child_key, depth, child, out);
    chain.rules.push_back(
        Rule{{AddressBits{Address::Direction::kDestination, child_key, child_mask}}, Jump{child.name}});
    out.push_back(std::move(child));
  }
}

}  // namespace

std::vector<Chain> build_dispatch_tree(Chain& root, int depth) {
  std::vector<TreeEntry> entries;
  std::vector<Rule> rest;
  std::size_t order = 0;
  for (Rule& rule : root.rules) {
    const Address* host = nullptr;
    for (const Term& t : rule.terms) {
      const auto* a = std::get_if<Address>(&t);
      if (a != nullptr && a->direction == Address::Direction::kDestination && !a->negated &&
          a->cidr.family() == IpFamily::kIPv4 && a->cidr.prefix_length() == 32) {
        host = a;
        break;
      }
    }
    if (host == nullptr) {
      rest.push_back(std::move(rule));
    } else {
      entries.push_back(TreeEntry{host->cidr.network().v4_host_order(), order++, std::move(rule)});
    }
  }
  std::vector<Chain> out;
  root.rules.clear();
  std::vector<TreeEntry*> all;
  for (TreeEntry& e : entries) all.push_back(&e);
  if (!all.empty()) build_node(all, 0, 0, std::max(depth, 1), root, out);
  for (Rule& r : rest) root.rules.push_back(std::move(r));
  std::sort(out.begin(), out.end(), [](const Chain& a, const Chain& b) { return a.name < b.name; });
  return out;
}

Term LocalDetector::if_local() const {
  switch (mode) {
    case Mode::kCidr: return src(cidr);
    case Mode::kInterface: return InInterface{interface, false, false};
    case Mode::kInterfacePrefix: return InInterface{interface, true, false};
    case Mode::kNone: break;
  }
  assert(false && "if_local on the no-op detector");
  return Comment{};
}

Term LocalDetector::if_not_local() const {
  switch (mode) {
    case Mode::kCidr: return src(cidr, true);
    case Mode::kInterface: return InInterface{interface, false, true};
    case Mode::kInterfacePrefix: return InInterface{interface, true, true};
    case Mode::kNone: break;
  }
  assert(false && "if_not_local on the no-op detector");
  return Comment{};
}

const Chain* RenderedRules::find(Table table, const std::string& name) const {
  const auto& top = table == Table::kFilter ? filter : nat;
  for (const Chain& c : top) {
    if (c.name == name) return &c;
  }
  if (table != Table::kNat) return nullptr;
  if (name.starts_with(kDispatchChainPrefix)) {
    auto it = std::lower_bound(nat_dispatch.begin(), nat_dispatch.end(), name,
                               [](const Chain& c, const std::string& n) { return c.name < n; });
    return it != nat_dispatch.end() && it->name == name ? &*it : nullptr;
  }
  for (const auto& [port, chains] : service_chains) {
    for (const Chain& c : chains) {
      if (c.name == name) return &c;
    }
  }
  return nullptr;
}

std::string service_chain_name(const proxier::ServicePortName& name) {
  return "KUBE-SVC-" + proxier::service_port_hash(name);
}
std::string local_service_chain_name(const proxier::ServicePortName& name) {
  return "KUBE-SVL-" + proxier::service_port_hash(name);
}
std::string external_chain_name(const proxier::ServicePortName& name) {
  return "KUBE-EXT-" + proxier::service_port_hash(name);
}
std::string firewall_chain_name(const proxier::ServicePortName& name) {
  return "KUBE-FW-" + proxier::service_port_hash(name);
}
std::string endpoint_chain_name(const proxier::ServicePortName& name, const proxier::Endpoint& endpoint) {
  return "KUBE-SEP-" + proxier::endpoint_hash(name, endpoint.ip, endpoint.port);
}

bool is_service_chain(std::string_view chain) {
  for (std::string_view prefix : {"KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-", "KUBE-SEP-", "KUBE-SVCS-"}) {
    if (chain.starts_with(prefix)) return true;
  }
  return false;
}

RenderedRules render(const proxier::Snapshot& snapshot, const RenderOptions& options) {
  RenderedRules out;
  const std::uint32_t mark = options.masquerade_mark();
  const bool ipv6 = options.family == IpFamily::kIPv6;

  for (const auto& [name, port] : snapshot.service_ports) out.stats.total_endpoints += port->endpoints.size();
  out.stats.large_cluster_mode = out.stats.total_endpoints > options.large_cluster_endpoints_threshold;

  out.filter = {Chain{kServicesChain, {}}, Chain{kExternalServicesChain, {}}, Chain{kForwardChain, {}},
                Chain{kNodePortsChain, {}}, Chain{kProxyFirewallChain, {}}};
  out.nat = {Chain{kServicesChain, {}}, Chain{kNodePortsChain, {}}, Chain{kPostroutingChain, {}},
             Chain{kMarkMasqChain, {}}};
  const bool localhost_nodeports = !ipv6 && options.localhost_nodeports;
  if (localhost_nodeports) out.filter.push_back(Chain{kKubeletFirewallChain, {}});
  Chain& filter_services = out.filter[0];
  Chain& filter_external = out.filter[1];
  Chain& filter_forward = out.filter[2];
  Chain& filter_nodeports = out.filter[3];
  Chain& filter_firewall = out.filter[4];
  Chain& nat_services = out.nat[0];
  Chain& nat_nodeports = out.nat[1];
  Chain& nat_postrouting = out.nat[2];
  Chain& nat_mark_masq = out.nat[3];

  ChainWriter post{nat_postrouting};
  const bool lean = options.lean();
  // Lean layout: the hairpin masquerade, decided once (kube-proxy's IPVS mode writes the same
  // rule, without the ctstate match, which keeps it to connections a Service DNATed).
  const std::vector<Term> hairpin_match{ConntrackState{ConntrackState::kDnat, false},
                                        SetMatch{kLoopBackSet, "dst,dst,src"}};
  if (lean) {
    std::vector<Term> terms{Comment{"Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose"}};
    terms.insert(terms.end(), hairpin_match.begin(), hairpin_match.end());
    post.add(std::move(terms), Masquerade{options.random_fully});
  }
  post.add({Mark{mark, mark, true}}, Verdict{Verdict::Kind::kReturn});
  post.add({}, SetMark{SetMark::Op::kXor, mark});
  post.add({Comment{"kubernetes service traffic requiring SNAT"}}, Masquerade{options.random_fully});
  ChainWriter{nat_mark_masq}.add({}, SetMark{SetMark::Op::kOr, mark});

  if (localhost_nodeports) {
    const Cidr loopback = *Cidr::parse("127.0.0.0/8");
    ChainWriter{out.filter[5]}.add(
        {Comment{"block incoming localnet connections"}, Address{Address::Direction::kDestination, loopback, false},
         Address{Address::Direction::kSource, loopback, true},
         ConntrackState{ConntrackState::kRelated | ConntrackState::kEstablished | ConntrackState::kDnat, true}},
        Verdict{Verdict::Kind::kDrop});
  }

  ServiceRenderer service_renderer(options, out.stats.large_cluster_mode, out, filter_services, filter_external,
                                   filter_nodeports, filter_firewall, nat_services, nat_nodeports);
  for (const auto& [name, port] : snapshot.service_ports) service_renderer.render(*port);

  // The NodePort tail: must stay the last rule of nat KUBE-SERVICES.
  const std::string tail_comment = "kubernetes service nodeports; NOTE: this must be the last rule in this chain";
  if (!options.node_port_ips) {
    std::vector<Term> terms{Comment{tail_comment}, AddrTypeLocal{false}};
    if (ipv6) {
      terms.push_back(Address{Address::Direction::kDestination, *Cidr::parse("::1/128"), true, true});
    } else if (!localhost_nodeports) {
      terms.push_back(Address{Address::Direction::kDestination, *Cidr::parse("127.0.0.0/8"), true});
    }
    ChainWriter{nat_services}.add(std::move(terms), jump(kNodePortsChain));
  } else {
    for (const IpAddress& ip : *options.node_port_ips) {
      if (ip.family() != options.family) continue;
      if (ip.is_loopback() && (ipv6 || !localhost_nodeports)) continue;
      ChainWriter{nat_services}.add({Comment{tail_comment}, dst(ip)}, jump(kNodePortsChain));
    }
  }

  if (options.layout == RenderOptions::Layout::kKproxy && !ipv6) {
    out.nat_dispatch = build_dispatch_tree(nat_services, options.dispatch_depth);
  }

  ChainWriter fwd{filter_forward};
  if (options.drop_invalid) fwd.add({ConntrackState{ConntrackState::kInvalid, false}}, Verdict{Verdict::Kind::kDrop});
  fwd.add({Comment{"kubernetes forwarding rules"}, Mark{mark, mark, false}}, Verdict{Verdict::Kind::kAccept});
  if (lean) {
    // What kube-proxy's hairpin mark also did: accept the forwarded hairpin packet.
    std::vector<Term> terms{Comment{"kubernetes forwarding rules for hairpin traffic"}};
    terms.insert(terms.end(), hairpin_match.begin(), hairpin_match.end());
    fwd.add(std::move(terms), Verdict{Verdict::Kind::kAccept});
    const auto& entries = service_renderer.loop_back_entries();
    out.ipsets.push_back(kernel::IpsetSpec{kLoopBackSet, kLoopBackSetType,
                                           ipv6 ? kernel::IpFamily::kIPv6 : kernel::IpFamily::kIPv4,
                                           std::vector<std::string>(entries.begin(), entries.end())});
  }
  fwd.add({Comment{"kubernetes forwarding conntrack rule"},
           ConntrackState{ConntrackState::kRelated | ConntrackState::kEstablished, false}},
          Verdict{Verdict::Kind::kAccept});
  return out;
}

std::vector<TableBlock> sync_blocks(const RenderedRules& rules, const std::set<proxier::ServicePortName>* write,
                                    const std::vector<std::string>& stale_chains) {
  TableBlock filter{Table::kFilter, {}, {}};
  for (const Chain& c : rules.filter) filter.chains.push_back(&c);
  TableBlock nat{Table::kNat, {}, stale_chains};
  for (const Chain& c : rules.nat) nat.chains.push_back(&c);
  for (const Chain& c : rules.nat_dispatch) nat.chains.push_back(&c);
  for (const auto& [name, chains] : rules.service_chains) {
    if (write != nullptr && !write->contains(name)) continue;
    for (const Chain& c : chains) nat.chains.push_back(&c);
  }
  return {std::move(filter), std::move(nat)};
}

std::vector<BuiltinJump> builtin_jumps(const RenderOptions& options) {
  auto j = [](Table table, const char* from, const char* to, const char* comment, bool new_only) {
    std::vector<Term> terms;
    if (new_only) terms.push_back(ConntrackState{ConntrackState::kNew, false});
    terms.push_back(Comment{comment});
    return BuiltinJump{table, from, Rule{std::move(terms), Jump{to}}};
  };
  std::vector<BuiltinJump> jumps{
      j(Table::kFilter, "INPUT", kExternalServicesChain, "kubernetes externally-visible service portals", true),
      j(Table::kFilter, "FORWARD", kExternalServicesChain, "kubernetes externally-visible service portals", true),
      j(Table::kFilter, "INPUT", kNodePortsChain, "kubernetes health check service ports", false),
      j(Table::kFilter, "FORWARD", kServicesChain, "kubernetes service portals", true),
      j(Table::kFilter, "OUTPUT", kServicesChain, "kubernetes service portals", true),
      j(Table::kFilter, "FORWARD", kForwardChain, "kubernetes forwarding rules", false),
      j(Table::kFilter, "INPUT", kProxyFirewallChain, "kubernetes load balancer firewall", true),
      j(Table::kFilter, "OUTPUT", kProxyFirewallChain, "kubernetes load balancer firewall", true),
      j(Table::kFilter, "FORWARD", kProxyFirewallChain, "kubernetes load balancer firewall", true),
      j(Table::kNat, "OUTPUT", kServicesChain, "kubernetes service portals", false),
      j(Table::kNat, "PREROUTING", kServicesChain, "kubernetes service portals", false),
      j(Table::kNat, "POSTROUTING", kPostroutingChain, "kubernetes postrouting rules", false),
  };
  if (options.family == IpFamily::kIPv4 && options.localhost_nodeports) {
    for (const char* from : {"INPUT", "OUTPUT"}) {
      jumps.push_back(BuiltinJump{Table::kFilter, from, Rule{{}, Jump{kKubeletFirewallChain}}});
    }
  }
  return jumps;
}

}  // namespace kproxy::iptables
