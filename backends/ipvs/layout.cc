// The IPVS mode's ipsets and iptables rules (include/kproxy/ipvs/layout.h).
#include "kproxy/ipvs/layout.h"

#include <algorithm>
#include <map>
#include <set>

namespace kproxy::ipvs {

using iptables::AddrTypeLocal;
using iptables::BuiltinJump;
using iptables::Chain;
using iptables::Comment;
using iptables::ConntrackState;
using iptables::Jump;
using iptables::Mark;
using iptables::Masquerade;
using iptables::Rule;
using iptables::SetMark;
using iptables::SetMatch;
using iptables::Term;
using iptables::Verdict;
using kernel::IpsetSpec;
using kernel::Table;

namespace {

struct SetInfo {
  const char* name;
  const char* type;
  const char* comment;
};

// kube-proxy's ipsetInfo, in its order.
constexpr SetInfo kSets[] = {
    {"KUBE-LOOP-BACK", "hash:ip,port,ip", "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose"},
    {"KUBE-CLUSTER-IP", "hash:ip,port", "Kubernetes service cluster ip + port for masquerade purpose"},
    {"KUBE-EXTERNAL-IP", "hash:ip,port", "Kubernetes service external ip + port for masquerade and filter purpose"},
    {"KUBE-EXTERNAL-IP-LOCAL", "hash:ip,port", "Kubernetes service external ip + port with externalTrafficPolicy=local"},
    {"KUBE-LOAD-BALANCER", "hash:ip,port", "Kubernetes service lb portal"},
    {"KUBE-LOAD-BALANCER-FW", "hash:ip,port",
     "Kubernetes service load balancer ip + port for load balancer with sourceRange"},
    {"KUBE-LOAD-BALANCER-LOCAL", "hash:ip,port",
     "Kubernetes service load balancer ip + port with externalTrafficPolicy=local"},
    {"KUBE-LOAD-BALANCER-SOURCE-IP", "hash:ip,port,ip",
     "Kubernetes service load balancer ip + port + source IP for packet filter purpose"},
    {"KUBE-LOAD-BALANCER-SOURCE-CIDR", "hash:ip,port,net",
     "Kubernetes service load balancer ip + port + source cidr for packet filter purpose"},
    {"KUBE-NODE-PORT-TCP", "bitmap:port", "Kubernetes nodeport TCP port for masquerade purpose"},
    {"KUBE-NODE-PORT-LOCAL-TCP", "bitmap:port", "Kubernetes nodeport TCP port with externalTrafficPolicy=local"},
    {"KUBE-NODE-PORT-UDP", "bitmap:port", "Kubernetes nodeport UDP port for masquerade purpose"},
    {"KUBE-NODE-PORT-LOCAL-UDP", "bitmap:port", "Kubernetes nodeport UDP port with externalTrafficPolicy=local"},
    {"KUBE-NODE-PORT-SCTP-HASH", "hash:ip,port",
     "Kubernetes nodeport SCTP port for masquerade purpose with type 'hash ip:port'"},
    {"KUBE-NODE-PORT-LOCAL-SCTP-HASH", "hash:ip,port",
     "Kubernetes nodeport SCTP port with externalTrafficPolicy=local with type 'hash ip:port'"},
    {"KUBE-HEALTH-CHECK-NODE-PORT", "bitmap:port", "Kubernetes health check node port"},
    {"KUBE-IPVS-IPS", "hash:ip", "Addresses on the ipvs interface"},
};

// IPv6 sets are "KUBE-6-...", cut to ipset's 31 characters (kube-proxy's newIPSet).
std::string family_name(const std::string& name, IpFamily family) {
  if (family == IpFamily::kIPv4) return name;
  std::string out = "KUBE-6-" + name.substr(5);
  if (out.size() > 31) out.resize(31);
  return out;
}

const SetInfo& info(const std::string& name) {
  for (const SetInfo& s : kSets) {
    if (name == s.name) return s;
  }
  return kSets[0];
}

// Entries as `ipset save` prints them: "10.96.0.1,tcp:443", "10.244.1.5,tcp:8080,10.244.1.5",
// "203.0.113.9,tcp:80,198.51.100.0/24", "30080", "10.96.0.1".
std::string ip_port(const IpAddress& ip, model::Protocol p, std::uint16_t port) {
  return ip.to_string() + "," + std::string(proxier::lower_case_protocol(p)) + ":" + std::to_string(port);
}

}  // namespace

const IpsetSpec* Layout::set(const std::string& name) const {
  for (const IpsetSpec& s : sets) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

std::string Layout::restore_payload() const {
  iptables::TableBlock n{Table::kNat, {}, {}};
  for (const Chain& c : nat) n.chains.push_back(&c);
  iptables::TableBlock f{Table::kFilter, {}, {}};
  for (const Chain& c : filter) f.chains.push_back(&c);
  return iptables::restore_payload({n, f});
}

std::vector<std::string> layout_set_names(IpFamily family) {
  std::vector<std::string> out;
  for (const SetInfo& s : kSets) out.push_back(family_name(s.name, family));
  return out;
}

std::vector<std::string> layout_chain_names(Table table) {
  if (table == Table::kNat) return {"KUBE-SERVICES", "KUBE-POSTROUTING", "KUBE-NODE-PORT", "KUBE-LOAD-BALANCER", "KUBE-MARK-MASQ"};
  return {"KUBE-FORWARD", "KUBE-NODE-PORT", "KUBE-PROXY-FIREWALL", "KUBE-SOURCE-RANGES-FIREWALL", "KUBE-IPVS-FILTER",
          "KUBE-IPVS-OUT-FILTER"};
}

Layout build_layout(const proxier::Snapshot& snapshot, const DesiredState& desired, const LayoutOptions& options) {
  std::map<std::string, std::set<std::string>> entries;
  auto add = [&](const char* set, std::string entry) { entries[set].insert(std::move(entry)); };

  // Only this family's addresses: a set of family inet refuses an IPv6 entry (and the whole
  // set's update with it), so one of the other family that slipped through is left out.
  auto ours = [&](const IpAddress& ip) { return ip.family() == options.family; };
  for (const auto& [name, info_ptr] : snapshot.service_ports) {
    const proxier::ServicePortInfo& port = *info_ptr;
    const model::Protocol proto = name.protocol;
    if (options.skip_sctp && proto == model::Protocol::kSctp) continue;
    for (const proxier::Endpoint& e : port.endpoints) {
      if (e.is_local && ours(e.ip)) add("KUBE-LOOP-BACK", ip_port(e.ip, proto, e.port) + "," + e.ip.to_string());
    }
    if (!port.cluster_ip.is_unspecified() && ours(port.cluster_ip)) {
      add("KUBE-CLUSTER-IP", ip_port(port.cluster_ip, proto, port.port));
    }
    for (const IpAddress& ip : port.external_ips) {
      if (!ours(ip)) continue;
      add(port.external_policy_local ? "KUBE-EXTERNAL-IP-LOCAL" : "KUBE-EXTERNAL-IP", ip_port(ip, proto, port.port));
    }
    for (const IpAddress& ip : port.load_balancer_vips) {
      if (!ours(ip)) continue;
      const std::string entry = ip_port(ip, proto, port.port);
      add("KUBE-LOAD-BALANCER", entry);
      if (port.external_policy_local) add("KUBE-LOAD-BALANCER-LOCAL", entry);
      if (!port.load_balancer_source_ranges.empty() || !port.load_balancer_source_ranges_complete) {
        add("KUBE-LOAD-BALANCER-FW", entry);
        bool from_node = false;
        for (const Cidr& c : port.load_balancer_source_ranges) {
          if (c.family() != options.family) continue;
          add("KUBE-LOAD-BALANCER-SOURCE-CIDR", entry + "," + c.to_string());
          if (options.node_ip && c.contains(*options.node_ip)) from_node = true;
        }
        if (from_node) add("KUBE-LOAD-BALANCER-SOURCE-IP", entry + "," + ip.to_string());
      }
    }
    if (port.node_port != 0) {
      const std::string number = std::to_string(port.node_port);
      switch (proto) {
        case model::Protocol::kTcp:
          add("KUBE-NODE-PORT-TCP", number);
          if (port.external_policy_local) add("KUBE-NODE-PORT-LOCAL-TCP", number);
          break;
        case model::Protocol::kUdp:
          add("KUBE-NODE-PORT-UDP", number);
          if (port.external_policy_local) add("KUBE-NODE-PORT-LOCAL-UDP", number);
          break;
        case model::Protocol::kSctp:
          // bitmap:port did not work for SCTP (k8s#73300): one entry per node address.
          for (const IpAddress& ip : options.node_port_addresses) {
            if (!ours(ip)) continue;
            add("KUBE-NODE-PORT-SCTP-HASH", ip_port(ip, proto, port.node_port));
            if (port.external_policy_local) add("KUBE-NODE-PORT-LOCAL-SCTP-HASH", ip_port(ip, proto, port.node_port));
          }
          break;
      }
    }
    if (port.health_check_node_port != 0) add("KUBE-HEALTH-CHECK-NODE-PORT", std::to_string(port.health_check_node_port));
  }
  for (const IpAddress& ip : desired.bound_addresses) {
    if (ours(ip)) add("KUBE-IPVS-IPS", ip.to_string());
  }

  Layout out;
  for (const SetInfo& s : kSets) {
    IpsetSpec spec;
    spec.name = family_name(s.name, options.family);
    spec.type = s.type;
    spec.family = options.family == IpFamily::kIPv4 ? kernel::IpFamily::kIPv4 : kernel::IpFamily::kIPv6;
    if (spec.type == "bitmap:port") spec.port_range = std::pair<std::uint16_t, std::uint16_t>{0, 65535};
    const auto& e = entries[s.name];
    spec.entries.assign(e.begin(), e.end());
    std::sort(spec.entries.begin(), spec.entries.end());
    out.sets.push_back(std::move(spec));
  }
  auto nonempty = [&](const char* set) { return !entries[set].empty(); };
  auto set_name = [&](const char* set) { return family_name(set, options.family); };
  auto comment = [](const char* set) { return Comment{info(set).comment}; };

  const std::uint32_t mark = std::uint32_t{1} << options.masquerade_bit;
  Chain services{"KUBE-SERVICES", {}}, postrouting{"KUBE-POSTROUTING", {}}, nat_node_port{"KUBE-NODE-PORT", {}},
      load_balancer{"KUBE-LOAD-BALANCER", {}}, mark_masq{"KUBE-MARK-MASQ", {}};
  Chain forward{"KUBE-FORWARD", {}}, filter_node_port{"KUBE-NODE-PORT", {}}, firewall{"KUBE-PROXY-FIREWALL", {}},
      source_ranges{"KUBE-SOURCE-RANGES-FIREWALL", {}}, ipvs_filter{"KUBE-IPVS-FILTER", {}},
      ipvs_out_filter{"KUBE-IPVS-OUT-FILTER", {}};

  // Loopback sources leave KUBE-SERVICES at once.
  services.rules.push_back(
      {{iptables::Address{iptables::Address::Direction::kSource,
                          *Cidr::parse(options.family == IpFamily::kIPv4 ? "127.0.0.0/8" : "::1/128"), false, true}},
       Verdict{Verdict::Kind::kReturn}});
  // ipsetWithIptablesChain, in its order, for the sets that have entries.
  struct Link {
    const char* set;
    Chain* from;
    iptables::Target to;
    const char* flags;
    std::optional<model::Protocol> protocol;
  };
  const Link links[] = {
      {"KUBE-LOOP-BACK", &postrouting, Masquerade{false}, "dst,dst,src", std::nullopt},
      {"KUBE-LOAD-BALANCER", &services, Jump{"KUBE-LOAD-BALANCER"}, "dst,dst", std::nullopt},
      {"KUBE-LOAD-BALANCER-LOCAL", &load_balancer, Verdict{Verdict::Kind::kReturn}, "dst,dst", std::nullopt},
      {"KUBE-NODE-PORT-LOCAL-TCP", &nat_node_port, Verdict{Verdict::Kind::kReturn}, "dst", model::Protocol::kTcp},
      {"KUBE-NODE-PORT-TCP", &nat_node_port, Jump{"KUBE-MARK-MASQ"}, "dst", model::Protocol::kTcp},
      {"KUBE-NODE-PORT-LOCAL-UDP", &nat_node_port, Verdict{Verdict::Kind::kReturn}, "dst", model::Protocol::kUdp},
      {"KUBE-NODE-PORT-UDP", &nat_node_port, Jump{"KUBE-MARK-MASQ"}, "dst", model::Protocol::kUdp},
      {"KUBE-NODE-PORT-LOCAL-SCTP-HASH", &nat_node_port, Verdict{Verdict::Kind::kReturn}, "dst,dst", model::Protocol::kSctp},
      {"KUBE-NODE-PORT-SCTP-HASH", &nat_node_port, Jump{"KUBE-MARK-MASQ"}, "dst,dst", model::Protocol::kSctp},
      {"KUBE-LOAD-BALANCER-FW", &firewall, Jump{"KUBE-SOURCE-RANGES-FIREWALL"}, "dst,dst", std::nullopt},
      {"KUBE-LOAD-BALANCER-SOURCE-CIDR", &source_ranges, Verdict{Verdict::Kind::kReturn}, "dst,dst,src", std::nullopt},
      {"KUBE-LOAD-BALANCER-SOURCE-IP", &source_ranges, Verdict{Verdict::Kind::kReturn}, "dst,dst,src", std::nullopt},
  };
  for (const Link& l : links) {
    if (!nonempty(l.set)) continue;
    std::vector<Term> terms;
    if (l.protocol) terms.push_back(iptables::Protocol{*l.protocol, false});
    terms.push_back(comment(l.set));
    terms.push_back(SetMatch{set_name(l.set), l.flags});
    l.from->rules.push_back({std::move(terms), l.to});
  }
  if (nonempty("KUBE-CLUSTER-IP")) {
    std::vector<Term> terms{comment("KUBE-CLUSTER-IP")};
    if (options.masquerade_all) {
      terms.push_back(SetMatch{set_name("KUBE-CLUSTER-IP"), "dst,dst"});
    } else if (options.local_detector.implemented()) {
      // Off-cluster traffic to a cluster IP (a static route to the Service range) is masqueraded.
      terms.push_back(SetMatch{set_name("KUBE-CLUSTER-IP"), "dst,dst"});
      terms.push_back(options.local_detector.if_not_local());
    } else {
      // The node's own connections leave with a VIP source (kube-ipvs0 holds them): masquerade.
      terms.push_back(SetMatch{set_name("KUBE-CLUSTER-IP"), "src,dst"});
    }
    services.rules.push_back({std::move(terms), Jump{"KUBE-MARK-MASQ"}});
  }
  if (nonempty("KUBE-EXTERNAL-IP")) {
    services.rules.push_back(
        {{comment("KUBE-EXTERNAL-IP"), SetMatch{set_name("KUBE-EXTERNAL-IP"), "dst,dst"}}, Jump{"KUBE-MARK-MASQ"}});
  }
  services.rules.push_back({{AddrTypeLocal{false}}, Jump{"KUBE-NODE-PORT"}});
  load_balancer.rules.push_back({{}, Jump{"KUBE-MARK-MASQ"}});
  source_ranges.rules.push_back({{}, Verdict{Verdict::Kind::kDrop}});
  // Service traffic is accepted, whatever other nat rules would do.
  for (const char* set : {"KUBE-CLUSTER-IP", "KUBE-LOAD-BALANCER"}) {
    if (nonempty(set)) services.rules.push_back({{SetMatch{set_name(set), "dst,dst"}}, Verdict{Verdict::Kind::kAccept}});
  }
  forward.rules.push_back({{Comment{"kubernetes forwarding rules"}, Mark{mark, mark, false}}, Verdict{Verdict::Kind::kAccept}});
  forward.rules.push_back({{Comment{"kubernetes forwarding conntrack rule"},
                            ConntrackState{ConntrackState::kRelated | ConntrackState::kEstablished, false}},
                           Verdict{Verdict::Kind::kAccept}});
  filter_node_port.rules.push_back(
      {{comment("KUBE-HEALTH-CHECK-NODE-PORT"), SetMatch{set_name("KUBE-HEALTH-CHECK-NODE-PORT"), "dst"}},
       Verdict{Verdict::Kind::kAccept}});
  // No host port through a Service address (k8s#72236): what matches no Service set is refused.
  for (const auto& [set, flags] : std::vector<std::pair<const char*, const char*>>{
           {"KUBE-LOAD-BALANCER", "dst,dst"},
           {"KUBE-CLUSTER-IP", "dst,dst"},
           {"KUBE-EXTERNAL-IP", "dst,dst"},
           {"KUBE-EXTERNAL-IP-LOCAL", "dst,dst"},
           {"KUBE-HEALTH-CHECK-NODE-PORT", "dst"}}) {
    ipvs_filter.rules.push_back({{SetMatch{set_name(set), flags}}, Verdict{Verdict::Kind::kReturn}});
  }
  ipvs_filter.rules.push_back({{ConntrackState{ConntrackState::kNew, false}, SetMatch{set_name("KUBE-IPVS-IPS"), "dst"}},
                               Verdict{Verdict::Kind::kReject}});
  postrouting.rules.push_back({{Mark{mark, mark, true}}, Verdict{Verdict::Kind::kReturn}});
  postrouting.rules.push_back({{}, SetMark{SetMark::Op::kXor, mark}});
  postrouting.rules.push_back({{Comment{"kubernetes service traffic requiring SNAT"}}, Masquerade{options.random_fully}});
  mark_masq.rules.push_back({{}, SetMark{SetMark::Op::kOr, mark}});

  out.nat = {services, postrouting, nat_node_port, load_balancer, mark_masq};
  out.filter = {forward, filter_node_port, firewall, source_ranges, ipvs_filter, ipvs_out_filter};
  // kube-proxy's iptablesJumpChain.
  auto jump = [](Table t, const char* from, const char* comment_text, const char* to) {
    return BuiltinJump{t, from, Rule{{Comment{comment_text}}, Jump{to}}};
  };
  out.jumps = {
      jump(Table::kNat, "OUTPUT", "kubernetes service portals", "KUBE-SERVICES"),
      jump(Table::kNat, "PREROUTING", "kubernetes service portals", "KUBE-SERVICES"),
      jump(Table::kNat, "POSTROUTING", "kubernetes postrouting rules", "KUBE-POSTROUTING"),
      jump(Table::kFilter, "FORWARD", "kubernetes forwarding rules", "KUBE-FORWARD"),
      jump(Table::kFilter, "INPUT", "kubernetes health check rules", "KUBE-NODE-PORT"),
      jump(Table::kFilter, "INPUT", "kube-proxy firewall rules", "KUBE-PROXY-FIREWALL"),
      jump(Table::kFilter, "FORWARD", "kube-proxy firewall rules", "KUBE-PROXY-FIREWALL"),
      jump(Table::kFilter, "INPUT", "kubernetes ipvs access filter", "KUBE-IPVS-FILTER"),
      jump(Table::kFilter, "OUTPUT", "kubernetes ipvs access filter", "KUBE-IPVS-OUT-FILTER"),
  };
  return out;
}

}  // namespace kproxy::ipvs
