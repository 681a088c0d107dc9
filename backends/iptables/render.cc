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
  ServiceRenderer(const RenderOptions& options, bool large_cluster) : options_(options), large_cluster_(large_cluster) {}

  PortRules render(const ServicePortInfo& svc) {
    PortRules out;
    if (options_.sctp_userspace && svc.name.protocol == model::Protocol::kSctp) {
      // The userspace proxy answers this port; its addresses are local to the node
      // (docs/sctp-userspace.md, "Steering"). Other TCP and UDP to them is refused as
      // traffic to a port without endpoints is, instead of reaching the node's own sockets.
      out.sctp_not_proxied = true;
      const std::string comment = proxier::to_string(svc.name) + " userspace SCTP address: only SCTP is answered";
      auto refuse = [&](const IpAddress& ip) {
        if (ip.family() != options_.family || ip.is_unspecified()) return;
        const Address to{Address::Direction::kDestination, *Cidr::make(ip, ip.is_v4() ? 32 : 128)};
        for (auto p : {model::Protocol::kTcp, model::Protocol::kUdp}) {
          out.filter_external.push_back(Rule{{Comment{comment}, Protocol{p}, to}, Verdict{Verdict::Kind::kReject}});
        }
      };
      refuse(svc.cluster_ip);
      for (const IpAddress& ip : svc.external_ips) refuse(ip);
      for (const IpAddress& ip : svc.load_balancer_vips) refuse(ip);
      return out;
    }
    render_into(svc, out);
    std::sort(out.loop_back.begin(), out.loop_back.end());
    out.loop_back.erase(std::unique(out.loop_back.begin(), out.loop_back.end()), out.loop_back.end());
    return out;
  }

 private:
  void render_into(const ServicePortInfo& svc, PortRules& out_) {
    auto add = [](std::vector<Rule>& chain, std::vector<Term> terms, Target target) {
      chain.push_back(Rule{std::move(terms), std::move(target)});
    };
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
        ++out_.no_local_endpoints_internal;
      }
      if (!has_external_endpoints) {
        external_filter = Verdict::Kind::kDrop;
        external_filter_comment = name + " has no local endpoints";
        ++out_.no_local_endpoints_external;
      }
    }

    auto port_match = [&](const IpAddress& ip, std::uint16_t port, std::string comment) {
      return std::vector<Term>{Comment{std::move(comment)}, proto, dst(ip), DestinationPort{port}};
    };

    // Cluster IP.
    if (has_internal_endpoints) {
      add(out_.nat_services, port_match(svc.cluster_ip, svc.port, name + " cluster IP"), jump(internal_chain));
    } else {
      add(out_.filter_services, port_match(svc.cluster_ip, svc.port, internal_filter_comment),
                                        Verdict{internal_filter});
    }

    // External IPs.
    for (const IpAddress& ip : svc.external_ips) {
      if (has_endpoints) {
        add(out_.nat_services, port_match(ip, svc.port, name + " external IP"), jump(ext_chain));
      }
      if (!has_external_endpoints) {
        add(out_.filter_external, port_match(ip, svc.port, external_filter_comment), Verdict{external_filter});
      }
    }

    // Load-balancer IPs.
    for (const IpAddress& ip : svc.load_balancer_vips) {
      if (has_endpoints) {
        add(out_.nat_services, port_match(ip, svc.port, name + " loadbalancer IP"), jump(lb_chain));
      }
      if (uses_fw_chain) {
        add(out_.filter_firewall, port_match(ip, svc.port, name + " traffic not accepted by " + fw_chain),
                                          Verdict{Verdict::Kind::kDrop});
      }
    }
    if (!has_external_endpoints) {
      for (const IpAddress& ip : svc.load_balancer_vips) {
        add(out_.filter_external, port_match(ip, svc.port, external_filter_comment), Verdict{external_filter});
      }
    }

    // NodePort.
    if (svc.node_port != 0) {
      if (has_endpoints) {
        add(out_.nat_nodeports, {Comment{name}, proto, DestinationPort{svc.node_port}}, jump(ext_chain));
      }
      if (!has_external_endpoints) {
        add(out_.filter_external, 
            {Comment{external_filter_comment}, AddrTypeLocal{false}, proto, DestinationPort{svc.node_port}},
            Verdict{external_filter});
      }
    }

    // Health-check node port: always TCP, accepted even without local endpoints.
    if (svc.health_check_node_port != 0) {
      add(out_.filter_nodeports, {Comment{name + " health check node port"}, Protocol{model::Protocol::kTcp},
                                          DestinationPort{svc.health_check_node_port}},
                                         Verdict{Verdict::Kind::kAccept});
    }

    // The service port's own nat chains.
    std::vector<Chain>& chains = out_.chains;
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
      write_service_to_endpoint_rules(chain, svc, name, endpoints, out_.loop_back);
    };
    if (uses_cluster_chain) policy_chain(cluster_chain, cluster_endpoints);
    if (uses_local_chain) policy_chain(local_chain, local_endpoints);

    if (options_.lean()) {
      // No KUBE-SEP- chains: the DNAT rules are in the policy chains, and the hairpin
      // masquerade is KUBE-POSTROUTING's KUBE-LOOP-BACK rule.
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
  }

  // The lean layout's endpoint rules: one DNAT rule per endpoint, in the policy chain itself.
  // With affinity, the "--rcheck" rules also "--set" (kube-proxy's KUBE-SEP- chain refreshes
  // the entry on every new connection, the rcheck path included) and DNAT directly.
  void write_lean_endpoint_rules(Chain& chain, const ServicePortInfo& svc, const std::string& name,
                                 const std::vector<const Endpoint*>& endpoints, std::vector<std::string>& loop_back) {
    ChainWriter w{chain};
    const Protocol proto{svc.name.protocol};
    const bool affinity = svc.session_affinity == model::SessionAffinity::kClientIP;
    auto comment = [&](const Endpoint& ep, std::vector<Term>& terms) {
      if (!large_cluster_) terms.push_back(Comment{name + " -> " + ep.to_string()});
    };
    for (const Endpoint* ep : endpoints) {
      const std::string_view p = proxier::lower_case_protocol(svc.name.protocol);
      loop_back.push_back(ep->ip.to_string() + "," + std::string(p) + ":" + std::to_string(ep->port) + "," +
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

  void write_service_to_endpoint_rules(Chain& chain, const ServicePortInfo& svc, const std::string& name,
                                       const std::vector<const Endpoint*>& endpoints, std::vector<std::string>& loop_back) {
    if (options_.lean()) {
      write_lean_endpoint_rules(chain, svc, name, endpoints, loop_back);
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
};

std::string dispatch_chain_name(int level, std::uint32_t key) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s%d-%03X", kDispatchChainPrefix, level, key);
  return buf;
}

std::uint32_t low_mask(int bits) { return bits >= 32 ? ~std::uint32_t{0} : (std::uint32_t{1} << bits) - 1; }

// The destination host address ("-d IP/32", "-d IP/128") a dispatch tree files `rule` under,
// if any, as the low 32 bits the tree's levels test (for IPv6, where Service CIDRs allocate
// from the low bits).
std::optional<std::uint32_t> dispatch_address(const Rule& rule) {
  for (const Term& t : rule.terms) {
    const auto* a = std::get_if<Address>(&t);
    if (a != nullptr && a->direction == Address::Direction::kDestination && !a->negated &&
        a->cidr.prefix_length() == (a->cidr.family() == IpFamily::kIPv4 ? 32 : 128)) {
      return low_address_bits(a->cidr.network());
    }
  }
  return std::nullopt;
}

const std::vector<Chain> kNoChains;

}  // namespace

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
                               [](const std::shared_ptr<const Chain>& c, const std::string& n) { return c->name < n; });
    return it != nat_dispatch.end() && (*it)->name == name ? it->get() : nullptr;
  }
  for (const auto& [port, rules] : ports) {
    for (const Chain& c : rules->chains) {
      if (c.name == name) return &c;
    }
  }
  return nullptr;
}

const std::vector<Chain>& RenderedRules::service_chains(const proxier::ServicePortName& name) const {
  auto it = ports.find(name);
  return it == ports.end() ? kNoChains : it->second->chains;
}

std::size_t RenderedRules::filter_rule_count() const {
  std::size_t n = 0;
  for (const Chain& c : filter) n += c.rules.size();
  return n;
}

std::size_t RenderedRules::nat_rule_count() const {
  std::size_t n = 0;
  for (const Chain& c : nat) n += c.rules.size();
  for (const auto& c : nat_dispatch) n += c->rules.size();
  for (const auto& [port, rules] : ports) {
    for (const Chain& c : rules->chains) n += c.rules.size();
  }
  return n;
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

void Renderer::reset(const RenderOptions& options, bool large_cluster) {
  options_ = options;
  large_cluster_ = large_cluster;
  ports_.clear();
  leaf_ports_.clear();
  leaf_tail_.clear();
  dispatch_.clear();
  loop_back_.clear();
  loop_back_spec_.reset();
}

void Renderer::rebuild_dispatch(const std::set<std::uint32_t>& dirty_leaves) {
  const int depth = std::max(options_->dispatch_depth, 1);
  const std::uint32_t leaf_mask = low_mask(2 * depth);
  // A chain whose rules are unchanged keeps its object, so that syncs can compare pointers.
  auto store = [this](Chain chain) {
    auto it = dispatch_.find(chain.name);
    if (chain.rules.empty()) {
      if (it != dispatch_.end()) dispatch_.erase(it);
    } else if (it == dispatch_.end()) {
      std::string name = chain.name;
      dispatch_.emplace(std::move(name), std::make_shared<const Chain>(std::move(chain)));
    } else if (!(*it->second == chain)) {
      it->second = std::make_shared<const Chain>(std::move(chain));
    }
  };
  for (const std::uint32_t leaf : dirty_leaves) {
    Chain chain{dispatch_chain_name(depth, leaf), {}};
    if (auto lp = leaf_ports_.find(leaf); lp != leaf_ports_.end()) {
      for (const ServicePortName& port : lp->second) {
        const PortRules& rules = *ports_.at(port).rules;
        for (std::size_t i = 0; i < rules.nat_services.size(); ++i) {
          const auto& address = rules.nat_service_addresses[i];
          if (address && (*address & leaf_mask) == leaf) chain.rules.push_back(rules.nat_services[i]);
        }
      }
    }
    if (auto lt = leaf_tail_.find(leaf); lt != leaf_tail_.end()) {
      chain.rules.insert(chain.rules.end(), lt->second.begin(), lt->second.end());
    }
    store(std::move(chain));
  }
  // Inner nodes, deepest first: a node jumps to each of its (up to four) children that exist.
  std::set<std::uint32_t> dirty = dirty_leaves;
  for (int level = depth - 1; level >= 1; --level) {
    std::set<std::uint32_t> parents;
    for (const std::uint32_t key : dirty) parents.insert(key & low_mask(2 * level));
    for (const std::uint32_t key : parents) {
      Chain chain{dispatch_chain_name(level, key), {}};
      for (std::uint32_t digit = 0; digit < 4; ++digit) {
        const std::uint32_t child = key | (digit << (2 * level));
        std::string child_name = dispatch_chain_name(level + 1, child);
        if (!dispatch_.contains(child_name)) continue;
        chain.rules.push_back(Rule{
            {AddressBits{Address::Direction::kDestination, child, low_mask(2 * level + 2), options_->family}},
            Jump{std::move(child_name)}});
      }
      store(std::move(chain));
    }
    dirty = std::move(parents);
  }
}

RenderedRules Renderer::render(const proxier::Snapshot& snapshot, const RenderOptions& options) {
  RenderedRules out;
  const std::uint32_t mark = options.masquerade_mark();
  const bool ipv6 = options.family == IpFamily::kIPv6;
  const bool tree = options.layout == RenderOptions::Layout::kKproxy;
  const int depth = std::max(options.dispatch_depth, 1);
  const std::uint32_t leaf_mask = low_mask(2 * depth);

  for (const auto& [name, port] : snapshot.service_ports) out.stats.total_endpoints += port->endpoints.size();
  out.stats.large_cluster_mode = out.stats.total_endpoints > options.large_cluster_endpoints_threshold;
  const bool fresh = !options_ || !(*options_ == options) || large_cluster_ != out.stats.large_cluster_mode;
  if (fresh) reset(options, out.stats.large_cluster_mode);

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
                                        SetMatch{loop_back_set_name(options.family), "dst,dst,src"}};
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

  // The NodePort tail: must stay the last rule of nat KUBE-SERVICES (after the tree's jumps,
  // or the last rule of its leaf when it names one address).
  std::vector<Rule> tail;
  const std::string tail_comment = "kubernetes service nodeports; NOTE: this must be the last rule in this chain";
  if (!options.node_port_ips) {
    std::vector<Term> terms{Comment{tail_comment}, AddrTypeLocal{false}};
    if (ipv6) {
      terms.push_back(Address{Address::Direction::kDestination, *Cidr::parse("::1/128"), true, true});
    } else if (!localhost_nodeports) {
      terms.push_back(Address{Address::Direction::kDestination, *Cidr::parse("127.0.0.0/8"), true});
    }
    tail.push_back(Rule{std::move(terms), jump(kNodePortsChain)});
  } else {
    for (const IpAddress& ip : *options.node_port_ips) {
      if (ip.family() != options.family) continue;
      if (ip.is_loopback() && (ipv6 || !localhost_nodeports)) continue;
      tail.push_back(Rule{{Comment{tail_comment}, dst(ip)}, jump(kNodePortsChain)});
    }
  }

  // Service ports: rendered unless cached; the dispatch leaves of changed ones are rebuilt.
  std::set<std::uint32_t> dirty_leaves;
  if (fresh && tree) {
    for (Rule& rule : tail) {
      if (const auto address = dispatch_address(rule)) {
        leaf_tail_[*address & leaf_mask].push_back(rule);
        dirty_leaves.insert(*address & leaf_mask);
      }
    }
  }
  // KUBE-LOOP-BACK entries whose count went through 0, with whether they were in the set.
  std::map<std::string, bool> loop_back_touched;
  auto link = [&](const ServicePortName& name, const PortRules& rules, bool leaves, int delta) {
    for (const std::string& entry : rules.loop_back) {
      auto [it, added] = loop_back_.try_emplace(entry, 0);
      if (added || it->second + delta == 0) loop_back_touched.try_emplace(entry, !added);
      if ((it->second += delta) == 0) loop_back_.erase(it);
    }
    if (!tree || !leaves) return;
    for (const auto& address : rules.nat_service_addresses) {
      if (!address) continue;
      const std::uint32_t leaf = *address & leaf_mask;
      dirty_leaves.insert(leaf);
      if (delta > 0) {
        leaf_ports_[leaf].insert(name);
      } else if (auto lp = leaf_ports_.find(leaf); lp != leaf_ports_.end()) {
        lp->second.erase(name);
        if (lp->second.empty()) leaf_ports_.erase(lp);
      }
    }
  };
  ServiceRenderer service_renderer(options, out.stats.large_cluster_mode);
  last_rendered_ports_ = 0;
  auto render_port = [&](const ServicePortInfo& info) {
    ++last_rendered_ports_;
    PortRules rules = service_renderer.render(info);
    for (const Rule& rule : rules.nat_services) rules.nat_service_addresses.push_back(dispatch_address(rule));
    return std::make_shared<const PortRules>(std::move(rules));
  };
  // One walk over the cache and the snapshot together (both ordered by name).
  auto cached = ports_.begin();
  auto drop_cached = [&] {
    link(cached->first, *cached->second.rules, true, -1);
    cached = ports_.erase(cached);
  };
  for (const auto& [name, info] : snapshot.service_ports) {
    while (cached != ports_.end() && cached->first < name) drop_cached();
    if (cached == ports_.end() || name < cached->first) {
      auto rules = render_port(*info);
      link(name, *rules, true, +1);
      cached = ports_.emplace_hint(cached, name, CachedPort{info, std::move(rules)});
    } else if (CachedPort& port = cached->second; port.info != info) {
      if (!(*port.info == *info)) {
        auto rules = render_port(*info);
        if (!(*port.rules == *rules)) {
          const bool leaves = port.rules->nat_services != rules->nat_services;
          link(name, *port.rules, leaves, -1);
          link(name, *rules, leaves, +1);
          port.rules = std::move(rules);
        }
      }
      port.info = info;
    }
    out.ports.emplace_hint(out.ports.end(), name, cached->second.rules);
    ++cached;
  }
  while (cached != ports_.end()) drop_cached();

  // The shared chains, port by port in name order (kube-proxy's order for its rules).
  for (const auto& [name, rules] : out.ports) {
    auto append = [](Chain& chain, const std::vector<Rule>& rules) {
      chain.rules.insert(chain.rules.end(), rules.begin(), rules.end());
    };
    append(filter_services, rules->filter_services);
    append(filter_external, rules->filter_external);
    append(filter_nodeports, rules->filter_nodeports);
    append(filter_firewall, rules->filter_firewall);
    append(nat_nodeports, rules->nat_nodeports);
    out.stats.no_local_endpoints_internal += rules->no_local_endpoints_internal;
    out.stats.no_local_endpoints_external += rules->no_local_endpoints_external;
    out.stats.sctp_ports_not_proxied += rules->sctp_not_proxied ? 1 : 0;
    if (!tree) {
      append(nat_services, rules->nat_services);
      continue;
    }
    for (std::size_t i = 0; i < rules->nat_services.size(); ++i) {
      if (!rules->nat_service_addresses[i]) nat_services.rules.push_back(rules->nat_services[i]);
    }
  }
  if (tree) {
    rebuild_dispatch(dirty_leaves);
    // The root's jumps to level 1 come first, then the rules that name no single address.
    std::vector<Rule> root;
    for (std::uint32_t digit = 0; digit < 4; ++digit) {
      std::string child = dispatch_chain_name(1, digit);
      if (!dispatch_.contains(child)) continue;
      root.push_back(Rule{{AddressBits{Address::Direction::kDestination, digit, low_mask(2), options.family}},
                          Jump{std::move(child)}});
    }
    nat_services.rules.insert(nat_services.rules.begin(), root.begin(), root.end());
    for (Rule& rule : tail) {
      if (!dispatch_address(rule)) nat_services.rules.push_back(std::move(rule));
    }
    out.nat_dispatch.reserve(dispatch_.size());
    for (const auto& [name, chain] : dispatch_) out.nat_dispatch.push_back(chain);
  } else {
    for (Rule& rule : tail) nat_services.rules.push_back(std::move(rule));
  }

  ChainWriter fwd{filter_forward};
  if (options.drop_invalid) fwd.add({ConntrackState{ConntrackState::kInvalid, false}}, Verdict{Verdict::Kind::kDrop});
  fwd.add({Comment{"kubernetes forwarding rules"}, Mark{mark, mark, false}}, Verdict{Verdict::Kind::kAccept});
  if (lean) {
    // What kube-proxy's hairpin mark also did: accept the forwarded hairpin packet.
    std::vector<Term> terms{Comment{"kubernetes forwarding rules for hairpin traffic"}};
    terms.insert(terms.end(), hairpin_match.begin(), hairpin_match.end());
    fwd.add(std::move(terms), Verdict{Verdict::Kind::kAccept});
    out.ipsets.push_back(loop_back_set(loop_back_touched, ipv6, out.ipset_changes.emplace_back()));
  }
  fwd.add({Comment{"kubernetes forwarding conntrack rule"},
           ConntrackState{ConntrackState::kRelated | ConntrackState::kEstablished, false}},
          Verdict{Verdict::Kind::kAccept});
  out.generation = ++generation_;
  return out;
}

std::shared_ptr<const kernel::IpsetSpec> Renderer::loop_back_set(const std::map<std::string, bool>& touched, bool ipv6,
                                                                 RenderedRules::IpsetChange& change) {
  for (const auto& [entry, was_present] : touched) {
    const bool present = loop_back_.contains(entry);
    if (present && !was_present) change.added.push_back(entry);
    if (!present && was_present) change.removed.push_back(entry);
  }
  // A set nobody else holds is changed in place (each change moves the entries after it);
  // a first one, a shared one or a large change is built again from the counts.
  const std::size_t changes = change.added.size() + change.removed.size();
  if (loop_back_spec_ && loop_back_spec_.use_count() == 1 && changes <= 64 + loop_back_.size() / 64) {
    std::vector<std::string>& entries = loop_back_spec_->entries;
    for (const std::string& entry : change.removed) {
      auto it = std::lower_bound(entries.begin(), entries.end(), entry);
      if (it != entries.end() && *it == entry) entries.erase(it);
    }
    for (const std::string& entry : change.added) entries.insert(std::lower_bound(entries.begin(), entries.end(), entry), entry);
  } else {
    const bool had_one = loop_back_spec_ != nullptr;
    auto spec = std::make_shared<kernel::IpsetSpec>(kernel::IpsetSpec{
        loop_back_set_name(ipv6 ? IpFamily::kIPv6 : IpFamily::kIPv4), kLoopBackSetType, ipv6 ? kernel::IpFamily::kIPv6 : kernel::IpFamily::kIPv4, {}});
    spec->entries.reserve(loop_back_.size());
    for (const auto& [entry, count] : loop_back_) spec->entries.push_back(entry);
    loop_back_spec_ = std::move(spec);
    if (!had_one) {
      change = {};  // a first set: nothing to compare with
      return loop_back_spec_;
    }
  }
  change.since = generation_;  // the previous result's number
  return loop_back_spec_;
}

RenderedRules render(const proxier::Snapshot& snapshot, const RenderOptions& options) {
  Renderer renderer;
  return renderer.render(snapshot, options);
}

std::vector<TableBlock> sync_blocks(const RenderedRules& rules, const std::set<proxier::ServicePortName>* write,
                                    const std::vector<std::string>& stale_chains) {
  TableBlock filter{Table::kFilter, {}, {}};
  for (const Chain& c : rules.filter) filter.chains.push_back(&c);
  TableBlock nat{Table::kNat, {}, stale_chains};
  for (const Chain& c : rules.nat) nat.chains.push_back(&c);
  for (const auto& c : rules.nat_dispatch) nat.chains.push_back(c.get());
  for (const auto& [name, port] : rules.ports) {
    if (write != nullptr && !write->contains(name)) continue;
    for (const Chain& c : port->chains) nat.chains.push_back(&c);
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
