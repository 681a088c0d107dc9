// Golden tests of the renderer: the text kube-proxy writes for the same Services
// (pkg/proxy/iptables/proxier_test.go uses the same names, so the chain hashes match).
#include "kproxy/iptables/render.h"

#include <gtest/gtest.h>

#include "service_builder.h"

namespace kproxy::iptables {
namespace {

using testing::cidr;
using testing::EndpointSpec;
using testing::ip;
using testing::ServiceBuilder;
using testing::snapshot;
constexpr auto kTcp = model::Protocol::kTcp;
constexpr auto kUdp = model::Protocol::kUdp;
constexpr auto kSctp = model::Protocol::kSctp;

RenderOptions options() { return testing::render_options(); }

std::string payload(const RenderedRules& rules) { return restore_payload(sync_blocks(rules, nullptr, {})); }

// The rules of one chain, one per line, as "-A CHAIN spec".
bool no_service_chains(const RenderedRules& rules) {
  for (const auto& [name, port] : rules.ports) {
    if (!port->chains.empty()) return false;
  }
  return true;
}

std::string chain_text(const RenderedRules& rules, Table table, const std::string& name) {
  const Chain* chain = rules.find(table, name);
  if (chain == nullptr) return "<no chain " + name + ">";
  std::string out;
  for (const Rule& r : chain->rules) out += "-A " + name + " " + rule_spec(r) + "\n";
  return out;
}

TEST(Render, OneClusterIpServiceMatchesKubeProxyByteForByte) {
  auto svc1 = ServiceBuilder("ns1", "svc1", "p80", kTcp, "172.30.0.41", 80).endpoint({"10.180.0.1", 80, "node2"});
  EXPECT_EQ(payload(render(snapshot({svc1}), options())),
            R"(*filter
:KUBE-SERVICES - [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-FIREWALL - [0:0]
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x004000/0x004000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
COMMIT
*nat
:KUBE-SERVICES - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]
:KUBE-SEP-SXIVWICOYRO3J4NJ - [0:0]
-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-POSTROUTING -m mark ! --mark 0x004000/0x004000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x004000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-MARK-MASQ -j MARK --or-mark 0x004000
-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -j KUBE-SEP-SXIVWICOYRO3J4NJ
-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ
-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80
COMMIT
)");
}

TEST(Render, SctpPortsUseTheSctpMatchEverywhere) {
  auto mme = ServiceBuilder("core", "mme", "s1ap", kSctp, "10.96.0.20", 36412)
                 .node_port(30412)
                 .endpoint({"10.244.1.5", 36412, "node1"});
  const auto rules = render(snapshot({mme}), options());
  const std::string svc = service_chain_name(mme.info().name);
  const std::string text = payload(rules);
  EXPECT_NE(text.find("-m comment --comment \"core/mme:s1ap cluster IP\" -m sctp -p sctp -d 10.96.0.20 --dport 36412 -j " + svc),
            std::string::npos);
  EXPECT_NE(text.find("-A KUBE-NODEPORTS -m comment --comment core/mme:s1ap -m sctp -p sctp --dport 30412 -j KUBE-EXT-"),
            std::string::npos);
  EXPECT_NE(text.find("-m sctp -p sctp -j DNAT --to-destination 10.244.1.5:36412"), std::string::npos);
  EXPECT_EQ(text.find("-p tcp -j DNAT"), std::string::npos);
}

// --sctp-userspace-mode: no rule names SCTP, in either layout; SCTP ports get no rules (the
// userspace proxy will take them), TCP and UDP ports are rendered exactly as without the mode.
TEST(Render, SctpUserspaceModeWritesNoSctpRule) {
  auto mme = ServiceBuilder("core", "mme", "s1ap", kSctp, "10.96.0.20", 36412)
                 .node_port(30412)
                 .external_ip("203.0.113.20")
                 .endpoint({"10.180.0.20", 36412, "node1"});
  auto empty_sctp = ServiceBuilder("core", "amf", "ngap", kSctp, "10.96.0.21", 38412);
  auto web = ServiceBuilder("ns", "web", "http", kTcp, "10.96.0.10", 80).endpoint({"10.180.0.10", 8080, "node1"});
  auto dns = ServiceBuilder("ns", "dns", "dns", kUdp, "10.96.0.53", 53).endpoint({"10.180.0.53", 53, "node2"});
  for (auto layout : {RenderOptions::Layout::kKubeProxy, RenderOptions::Layout::kKproxy}) {
    auto o = testing::render_options(layout);
    o.lean_endpoints = layout == RenderOptions::Layout::kKproxy;
    o.sctp_userspace = true;
    const auto rules = render(snapshot({mme, empty_sctp, web, dns}), o);
    const std::string text = payload(rules);
    EXPECT_EQ(text.find("sctp"), std::string::npos) << text;
    EXPECT_EQ(rules.stats.sctp_ports_not_proxied, 2);
    EXPECT_TRUE(rules.service_chains(mme.info().name).empty());
    // The SCTP ports' addresses are local to the node: other TCP and UDP to them is refused.
    const std::string external = chain_text(rules, Table::kFilter, kExternalServicesChain);
    for (const char* ip : {"10.96.0.20", "203.0.113.20", "10.96.0.21"}) {
      for (const char* proto : {"tcp", "udp"}) {
        EXPECT_NE(external.find(std::string("only SCTP is answered\" -m ") + proto + " -p " + proto + " -d " + ip +
                                " -j REJECT\n"),
                  std::string::npos)
            << external;
      }
    }
    for (const auto& set : rules.ipsets) {
      for (const auto& entry : set->entries) EXPECT_EQ(entry.find("sctp"), std::string::npos) << entry;
    }
    // TCP and UDP as without the mode.
    auto normal = o;
    normal.sctp_userspace = false;
    const auto without = render(snapshot({web, dns}), normal);
    EXPECT_EQ(rules.service_chains(web.info().name), without.service_chains(web.info().name));
    EXPECT_EQ(rules.service_chains(dns.info().name), without.service_chains(dns.info().name));
    EXPECT_NE(payload(render(snapshot({mme, web}), normal)).find("-p sctp"), std::string::npos);
  }
}

TEST(Render, NoEndpointsRejectsInFilterAndWritesNoNatChains) {
  auto svc = ServiceBuilder("ns", "empty", "p", kUdp, "10.96.0.30", 53)
                 .node_port(30053)
                 .external_ip("203.0.113.7")
                 .lb_ip("203.0.113.8");
  const auto rules = render(snapshot({svc}), options());
  EXPECT_TRUE(no_service_chains(rules));
  EXPECT_EQ(chain_text(rules, Table::kFilter, kServicesChain),
            "-A KUBE-SERVICES -m comment --comment \"ns/empty:p has no endpoints\" -m udp -p udp -d 10.96.0.30 --dport 53 -j REJECT\n");
  EXPECT_EQ(chain_text(rules, Table::kFilter, kExternalServicesChain),
            "-A KUBE-EXTERNAL-SERVICES -m comment --comment \"ns/empty:p has no endpoints\" -m udp -p udp -d 203.0.113.7 --dport 53 -j REJECT\n"
            "-A KUBE-EXTERNAL-SERVICES -m comment --comment \"ns/empty:p has no endpoints\" -m udp -p udp -d 203.0.113.8 --dport 53 -j REJECT\n"
            "-A KUBE-EXTERNAL-SERVICES -m comment --comment \"ns/empty:p has no endpoints\" -m addrtype --dst-type LOCAL -m udp -p udp --dport 30053 -j REJECT\n");
  // Only the NodePort tail remains in nat KUBE-SERVICES.
  EXPECT_EQ(rules.find(Table::kNat, kServicesChain)->rules.size(), 1u);
  EXPECT_EQ(chain_text(rules, Table::kNat, kNodePortsChain), "");
}

TEST(Render, ExternalTrafficPolicyLocalChainsAndDropWithoutLocalEndpoints) {
  auto svc = ServiceBuilder("ns", "lb", "", kTcp, "10.96.0.40", 80)
                 .node_port(30080)
                 .lb_ip("203.0.113.9")
                 .etp_local()
                 .health_check_node_port(30999)
                 .endpoint({"10.244.2.5", 8080, "node2"});
  const auto rules = render(snapshot({svc}), options());
  const std::string h = proxier::service_port_hash(svc.info().name);
  EXPECT_EQ(chain_text(rules, Table::kNat, "KUBE-EXT-" + h),
            "-A KUBE-EXT-" + h + " -m comment --comment \"pod traffic for ns/lb external destinations\" -s 10.0.0.0/8 -j KUBE-SVC-" + h + "\n" +
            "-A KUBE-EXT-" + h + " -m comment --comment \"masquerade LOCAL traffic for ns/lb external destinations\" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ\n" +
            "-A KUBE-EXT-" + h + " -m comment --comment \"route LOCAL traffic for ns/lb external destinations\" -m addrtype --src-type LOCAL -j KUBE-SVC-" + h + "\n");
  EXPECT_EQ(rules.find(Table::kNat, "KUBE-SVL-" + h), nullptr);
  EXPECT_EQ(chain_text(rules, Table::kFilter, kExternalServicesChain),
            "-A KUBE-EXTERNAL-SERVICES -m comment --comment \"ns/lb has no local endpoints\" -m tcp -p tcp -d 203.0.113.9 --dport 80 -j DROP\n"
            "-A KUBE-EXTERNAL-SERVICES -m comment --comment \"ns/lb has no local endpoints\" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 30080 -j DROP\n");
  EXPECT_EQ(chain_text(rules, Table::kFilter, kNodePortsChain),
            "-A KUBE-NODEPORTS -m comment --comment \"ns/lb health check node port\" -m tcp -p tcp --dport 30999 -j ACCEPT\n");
  EXPECT_EQ(rules.stats.no_local_endpoints_external, 1);
  EXPECT_EQ(rules.stats.no_local_endpoints_internal, 0);

  // With a local endpoint, EXT ends in the SVL chain, which holds only the local endpoint.
  svc.endpoint({"10.244.1.5", 8080, "node1"});
  const auto with_local = render(snapshot({svc}), options());
  const Chain* ext = with_local.find(Table::kNat, "KUBE-EXT-" + h);
  ASSERT_NE(ext, nullptr);
  EXPECT_EQ(rule_spec(ext->rules.back()), "-j KUBE-SVL-" + h);
  const std::string svl = chain_text(with_local, Table::kNat, "KUBE-SVL-" + h);
  EXPECT_NE(svl.find("10.244.1.5:8080"), std::string::npos);
  EXPECT_EQ(svl.find("10.244.2.5"), std::string::npos);
  EXPECT_EQ(svl.find("KUBE-MARK-MASQ"), std::string::npos) << "SVL masquerades only under internalTrafficPolicy Local";
  EXPECT_EQ(chain_text(with_local, Table::kFilter, kExternalServicesChain), "");
}

TEST(Render, InternalTrafficPolicyLocalWithoutLocalEndpointsDropsTheClusterIp) {
  auto svc = ServiceBuilder("ns", "itp", "p", kTcp, "10.96.0.50", 80).itp_local().endpoint({"10.244.2.5", 80, "node2"});
  const auto rules = render(snapshot({svc}), options());
  EXPECT_EQ(chain_text(rules, Table::kFilter, kServicesChain),
            "-A KUBE-SERVICES -m comment --comment \"ns/itp:p has no local endpoints\" -m tcp -p tcp -d 10.96.0.50 --dport 80 -j DROP\n");
  EXPECT_TRUE(no_service_chains(rules));
  EXPECT_EQ(rules.stats.no_local_endpoints_internal, 1);
}

TEST(Render, LoadBalancingProbabilitiesAndAffinity) {
  auto svc = ServiceBuilder("ns", "web", "http", kTcp, "10.96.0.60", 80)
                 .affinity(600)
                 .endpoint({"10.244.1.2", 80, "node1"})
                 .endpoint({"10.244.1.3", 80, "node1"})
                 .endpoint({"10.244.2.2", 80, "node2"});
  const auto rules = render(snapshot({svc}), options());
  const Chain* chain = rules.find(Table::kNat, service_chain_name(svc.info().name));
  ASSERT_NE(chain, nullptr);
  ASSERT_EQ(chain->rules.size(), 1u + 3u + 3u);  // masquerade, 3 affinity checks, 3 balancing
  const std::string sep0 = endpoint_chain_name(svc.info().name, svc.info().endpoints[0]);
  EXPECT_EQ(rule_spec(chain->rules[1]), "-m comment --comment \"ns/web:http -> 10.244.1.2:80\" -m recent --name " + sep0 +
                                            " --rcheck --seconds 600 --reap -j " + sep0);
  EXPECT_EQ(rule_spec(chain->rules[4]), "-m comment --comment \"ns/web:http -> 10.244.1.2:80\" -m statistic --mode random "
                                        "--probability 0.3333333333 -j " + sep0);
  EXPECT_NE(rule_spec(chain->rules[5]).find("--probability 0.5000000000"), std::string::npos);
  EXPECT_EQ(rule_spec(chain->rules[6]).find("statistic"), std::string::npos);
  EXPECT_EQ(chain_text(rules, Table::kNat, sep0),
            "-A " + sep0 + " -m comment --comment ns/web:http -s 10.244.1.2 -j KUBE-MARK-MASQ\n" + "-A " + sep0 +
                " -m comment --comment ns/web:http -m recent --name " + sep0 +
                " --set -m tcp -p tcp -j DNAT --to-destination 10.244.1.2:80\n");
}

TEST(Render, SourceRangesFirewallChain) {
  auto svc = ServiceBuilder("ns", "fw", "", kTcp, "10.96.0.70", 443)
                 .lb_ip("203.0.113.20")
                 .source_range("198.51.100.0/24")
                 .source_range("192.168.0.0/16")  // holds the node IP
                 .endpoint({"10.244.2.9", 8443, "node2"});
  const auto rules = render(snapshot({svc}), options());
  const std::string h = proxier::service_port_hash(svc.info().name);
  EXPECT_EQ(chain_text(rules, Table::kNat, "KUBE-FW-" + h),
            "-A KUBE-FW-" + h + " -m comment --comment \"ns/fw loadbalancer IP\" -s 198.51.100.0/24 -j KUBE-EXT-" + h + "\n" +
            "-A KUBE-FW-" + h + " -m comment --comment \"ns/fw loadbalancer IP\" -s 192.168.0.0/16 -j KUBE-EXT-" + h + "\n" +
            "-A KUBE-FW-" + h + " -m comment --comment \"ns/fw loadbalancer IP\" -s 203.0.113.20 -j KUBE-EXT-" + h + "\n" +
            "-A KUBE-FW-" + h + " -m comment --comment \"other traffic to ns/fw will be dropped by KUBE-PROXY-FIREWALL\"\n");
  EXPECT_EQ(chain_text(rules, Table::kFilter, kProxyFirewallChain),
            "-A KUBE-PROXY-FIREWALL -m comment --comment \"ns/fw traffic not accepted by KUBE-FW-" + h +
                "\" -m tcp -p tcp -d 203.0.113.20 --dport 443 -j DROP\n");
  EXPECT_NE(chain_text(rules, Table::kNat, kServicesChain).find("-d 203.0.113.20 --dport 443 -j KUBE-FW-" + h),
            std::string::npos);
}

TEST(Render, SourceRangesThatLostEntriesFailClosed) {
  // Every range was refused by validation: the firewall chain still exists and lets nothing in.
  auto svc = ServiceBuilder("ns", "fw", "", kTcp, "10.96.0.70", 443)
                 .lb_ip("203.0.113.20")
                 .source_ranges_incomplete()
                 .endpoint({"10.244.2.9", 8443, "node2"});
  const auto rules = render(snapshot({svc}), options());
  const std::string h = proxier::service_port_hash(svc.info().name);
  EXPECT_EQ(chain_text(rules, Table::kNat, "KUBE-FW-" + h),
            "-A KUBE-FW-" + h + " -m comment --comment \"other traffic to ns/fw will be dropped by KUBE-PROXY-FIREWALL\"\n");
  EXPECT_NE(chain_text(rules, Table::kFilter, kProxyFirewallChain).find("-j DROP"), std::string::npos);
}

TEST(Render, NodePortAddressesAndLocalhostVariants) {
  auto o = options();
  o.node_port_ips = std::vector<IpAddress>{ip("127.0.0.1"), ip("192.168.0.2"), ip("fd00::2")};
  auto rules = render(snapshot({}), o);
  const std::string tail = "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" ";
  EXPECT_EQ(chain_text(rules, Table::kNat, kServicesChain),
            tail + "-d 127.0.0.1 -j KUBE-NODEPORTS\n" + tail + "-d 192.168.0.2 -j KUBE-NODEPORTS\n");

  o.localhost_nodeports = false;
  rules = render(snapshot({}), o);
  EXPECT_EQ(chain_text(rules, Table::kNat, kServicesChain), tail + "-d 192.168.0.2 -j KUBE-NODEPORTS\n");
  EXPECT_EQ(rules.find(Table::kFilter, kKubeletFirewallChain), nullptr);

  o.node_port_ips.reset();
  rules = render(snapshot({}), o);
  EXPECT_EQ(chain_text(rules, Table::kNat, kServicesChain),
            tail + "-m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS\n");

  o.family = IpFamily::kIPv6;
  o.localhost_nodeports = true;  // never on IPv6
  rules = render(snapshot({}), o);
  EXPECT_EQ(chain_text(rules, Table::kNat, kServicesChain),
            tail + "-m addrtype --dst-type LOCAL ! -d ::1/128 -j KUBE-NODEPORTS\n");
  EXPECT_EQ(rules.find(Table::kFilter, kKubeletFirewallChain), nullptr);
}

TEST(Render, MasqueradeAllAndNoOpDetector) {
  auto svc = ServiceBuilder("ns", "m", "", kTcp, "10.96.0.80", 80).endpoint({"10.244.2.5", 80, "node2"});
  auto o = options();
  o.masquerade_all = true;
  auto rules = render(snapshot({svc}), o);
  EXPECT_EQ(rule_spec(rules.find(Table::kNat, service_chain_name(svc.info().name))->rules[0]),
            "-m comment --comment \"ns/m cluster IP\" -m tcp -p tcp -d 10.96.0.80 --dport 80 -j KUBE-MARK-MASQ");
  o.masquerade_all = false;
  o.local_detector = {};
  rules = render(snapshot({svc}), o);
  EXPECT_EQ(rules.find(Table::kNat, service_chain_name(svc.info().name))->rules.size(), 1u);
}

TEST(Render, InterfaceDetectors) {
  auto svc = ServiceBuilder("ns", "m", "", kTcp, "10.96.0.80", 80).endpoint({"10.244.2.5", 80, "node2"});
  auto o = options();
  o.local_detector = {LocalDetector::Mode::kInterfacePrefix, {}, "veth"};
  auto rules = render(snapshot({svc}), o);
  EXPECT_NE(rule_spec(rules.find(Table::kNat, service_chain_name(svc.info().name))->rules[0]).find("! -i veth+ -j KUBE-MARK-MASQ"),
            std::string::npos);
  o.local_detector = {LocalDetector::Mode::kInterface, {}, "cbr0"};
  rules = render(snapshot({svc}), o);
  EXPECT_NE(rule_spec(rules.find(Table::kNat, service_chain_name(svc.info().name))->rules[0]).find("! -i cbr0 -j KUBE-MARK-MASQ"),
            std::string::npos);
}

TEST(Render, LargeClustersDropPerEndpointComments) {
  auto o = options();
  o.large_cluster_endpoints_threshold = 1;
  auto svc = ServiceBuilder("ns", "big", "", kTcp, "10.96.0.90", 80)
                 .endpoint({"10.244.1.2", 80, "node1"})
                 .endpoint({"10.244.2.2", 80, "node2"});
  const auto rules = render(snapshot({svc}), o);
  EXPECT_TRUE(rules.stats.large_cluster_mode);
  for (const Chain& c : rules.ports.begin()->second->chains) {
    for (const Rule& r : c.rules) {
      const std::string spec = rule_spec(r);
      EXPECT_EQ(spec.find("->"), std::string::npos) << spec;
      if (c.name.starts_with("KUBE-SEP-")) {
        EXPECT_EQ(spec.find("comment"), std::string::npos) << spec;
      }
    }
  }
  // The cluster IP rule keeps its comment.
  EXPECT_NE(chain_text(rules, Table::kNat, kServicesChain).find("ns/big cluster IP"), std::string::npos);
}

TEST(Render, DropInvalidIsLeftOutWhenConntrackIsLiberal) {
  auto o = options();
  o.drop_invalid = false;
  EXPECT_EQ(chain_text(render(snapshot({}), o), Table::kFilter, kForwardChain).find("INVALID"), std::string::npos);
}

TEST(Render, BuiltinJumpsAsKubeProxyEnsuresThem) {
  const auto jumps = builtin_jumps(options());
  ASSERT_EQ(jumps.size(), 14u);
  EXPECT_EQ(jumps[0].chain, "INPUT");
  EXPECT_EQ(rule_spec(jumps[0].rule),
            "-m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES");
  EXPECT_EQ(rule_spec(jumps[9].rule), "-m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES");
  EXPECT_EQ(rule_spec(jumps[13].rule), "-j KUBE-FIREWALL");
  auto v6 = options();
  v6.family = IpFamily::kIPv6;
  EXPECT_EQ(builtin_jumps(v6).size(), 12u);
}

TEST(Render, EveryJumpTargetExistsAndPartialBlocksHoldOnlyChangedPorts) {
  std::vector<ServiceBuilder> services;
  services.push_back(ServiceBuilder("a", "one", "p", kTcp, "10.96.1.1", 80)
                         .node_port(30001)
                         .external_ip("203.0.113.1")
                         .lb_ip("203.0.113.2")
                         .source_range("10.0.0.0/8")
                         .etp_local()
                         .affinity(100)
                         .endpoint({"10.244.1.2", 80, "node1"})
                         .endpoint({"10.244.2.2", 80, "node2"}));
  services.push_back(ServiceBuilder("a", "two", "p", kUdp, "10.96.1.2", 53).itp_local().endpoint({"10.244.1.3", 53, "node1"}));
  services.push_back(ServiceBuilder("b", "three", "", kSctp, "10.96.1.3", 3868)
                         .node_port(30002)
                         .endpoint({"10.244.2.3", 3868, "node2", false, true, true}));
  const auto rules = render(snapshot(services), options());
  for (Table table : {Table::kFilter, Table::kNat}) {
    std::vector<const Chain*> all;
    for (const Chain& c : table == Table::kFilter ? rules.filter : rules.nat) all.push_back(&c);
    if (table == Table::kNat) {
      for (const auto& [n, port] : rules.ports) {
        for (const Chain& c : port->chains) all.push_back(&c);
      }
    }
    for (const Chain* c : all) {
      for (const Rule& r : c->rules) {
        if (const auto* j = std::get_if<Jump>(&r.target)) {
          EXPECT_NE(rules.find(table, j->chain), nullptr) << c->name << " jumps to missing " << j->chain;
        }
      }
    }
  }
  const std::set<proxier::ServicePortName> changed{services[1].info().name};
  const auto blocks = sync_blocks(rules, &changed, {"KUBE-SEP-STALE"});
  ASSERT_EQ(blocks.size(), 2u);
  std::size_t service_chains = 0;
  for (const Chain* c : blocks[1].chains) service_chains += is_service_chain(c->name) ? 1 : 0;
  EXPECT_EQ(service_chains, rules.service_chains(services[1].info().name).size());
  EXPECT_EQ(blocks[1].deleted_chains, std::vector<std::string>{"KUBE-SEP-STALE"});
}

}  // namespace
}  // namespace kproxy::iptables
