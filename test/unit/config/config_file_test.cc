#include "kproxy/config/config_file.h"

#include <chrono>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

namespace kproxy::config {
namespace {

using namespace std::chrono_literals;

const std::string kFixtures = std::string(KPROXY_FIXTURES_DIR) + "/config/";
const std::string kKubeadmExample = std::string(KPROXY_SOURCE_DIR) + "/deploy/examples/kubeadm-kube-proxy.yaml";

KubeProxyConfiguration load_defaulted(const std::string& path) {
  auto d = load_config_file(path);
  EXPECT_TRUE(d.ok()) << (d.ok() ? "" : d.error());
  if (!d.ok()) return {};
  apply_defaults(d->config);
  return d->config;
}

const std::string kHeader = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n";

std::string decode_error(const std::string& body) {
  auto d = decode_config(kHeader + body);
  return d.ok() ? "(decoded)" : d.error();
}

TEST(ConfigFile, KubeadmsFileGivesKubeProxysDefaultsPlusItsSettings) {
  auto d = load_config_file(kKubeadmExample);
  ASSERT_TRUE(d.ok()) << d.error();
  EXPECT_TRUE(d->warnings.empty()) << d->warnings.front();
  KubeProxyConfiguration c = d->config;
  apply_defaults(c);
  KubeProxyConfiguration want = default_configuration();
  want.client_connection.kubeconfig = "/var/lib/kube-proxy/kubeconfig.conf";
  want.cluster_cidrs = {Cidr::parse("10.244.0.0/16").value()};
  EXPECT_EQ(c, want);
  EXPECT_FALSE(validate(c).has_value());
}

TEST(ConfigFile, JsonAndYamlGiveTheSameConfiguration) {
  EXPECT_EQ(load_defaulted(kKubeadmExample), load_defaulted(kFixtures + "kubeadm-kube-proxy.json"));
  const KubeProxyConfiguration yaml = load_defaulted(kFixtures + "custom-ipvs.yaml");
  EXPECT_EQ(yaml, load_defaulted(kFixtures + "custom-ipvs.json"));
  EXPECT_NE(yaml, default_configuration());
}

TEST(ConfigFile, ReadsEveryField) {
  const KubeProxyConfiguration c = load_defaulted(kFixtures + "custom-ipvs.yaml");
  EXPECT_EQ(c.bind_address.value().to_string(), "fd00::10");
  EXPECT_TRUE(c.bind_address_hard_fail);
  EXPECT_EQ(c.client_connection.accept_content_types, "application/json");
  EXPECT_EQ(c.client_connection.burst, 20);
  EXPECT_EQ(c.client_connection.content_type, "application/json");
  EXPECT_EQ(c.client_connection.kubeconfig, "/etc/kproxy/kubeconfig");
  EXPECT_FLOAT_EQ(c.client_connection.qps, 7.5F);
  ASSERT_EQ(c.cluster_cidrs.size(), 2U);
  EXPECT_EQ(c.cluster_cidrs[1].to_string(), "fd00:10:244::/56");
  EXPECT_EQ(c.config_sync_period, 10min);
  EXPECT_EQ(c.conntrack.max_per_core, 0);
  EXPECT_EQ(c.conntrack.min, 65536);
  EXPECT_TRUE(c.conntrack.tcp_be_liberal);
  EXPECT_EQ(c.conntrack.tcp_close_wait_timeout, 30min);
  EXPECT_EQ(c.conntrack.tcp_established_timeout, 2h + 30min);
  EXPECT_EQ(c.conntrack.udp_stream_timeout, 2min);
  EXPECT_EQ(c.conntrack.udp_timeout, 30s);
  EXPECT_EQ(c.detect_local.interface_name_prefix, "veth");
  EXPECT_EQ(c.detect_local_mode, LocalMode::kInterfaceNamePrefix);
  EXPECT_EQ(c.feature_gates, (std::map<std::string, bool>{{"SomeGate", true}}));
  // An IP without a port gets the default port; the IPv6 bindAddress does not change a set address.
  EXPECT_EQ(c.healthz_bind_address.listen().value().to_string(), "[::]:10256");
  EXPECT_EQ(c.metrics_bind_address.listen().value().to_string(), "[::1]:9999");
  EXPECT_EQ(c.hostname_override, "Node-A");  // normalised by the command line, not the file reader
  EXPECT_EQ(c.iptables.localhost_node_ports, false);
  EXPECT_TRUE(c.iptables.masquerade_all);
  EXPECT_EQ(c.iptables.masquerade_bit, 0);
  EXPECT_EQ(c.iptables.min_sync_period, 2s);
  EXPECT_EQ(c.iptables.sync_period, 1min);
  ASSERT_EQ(c.ipvs.exclude_cidrs.size(), 2U);
  EXPECT_EQ(c.ipvs.exclude_cidrs[0].to_string(), "192.168.0.0/16");
  EXPECT_EQ(c.ipvs.min_sync_period, 5s);
  EXPECT_EQ(c.ipvs.scheduler, "wlc");
  EXPECT_TRUE(c.ipvs.strict_arp);
  EXPECT_EQ(c.ipvs.sync_period, 45s);
  EXPECT_EQ(c.ipvs.tcp_fin_timeout, 10s);
  EXPECT_EQ(c.ipvs.tcp_timeout, 15min);
  EXPECT_EQ(c.ipvs.udp_timeout, 5s);
  EXPECT_TRUE(c.kproxy.sctp_userspace_mode);
  EXPECT_TRUE(c.kproxy.sctp_userspace_allow_kernel_sctp);
  EXPECT_EQ(c.kproxy.sctp_userspace_max_associations, 2500);
  EXPECT_EQ(c.kproxy.iptables_applier, IptablesApplier::kRestore);
  EXPECT_EQ(c.kproxy.sctp_userspace_taint.value().to_string(), "example.com/sctp:NoExecute");
  EXPECT_EQ(c.logging.flush_frequency, 2s);
  EXPECT_EQ(c.logging.verbosity, 3);
  EXPECT_EQ(c.mode, ProxyMode::kIpvs);
  EXPECT_EQ(c.node_port_addresses.cidrs.size(), 2U);
  EXPECT_EQ(c.oom_score_adj, -500);
  EXPECT_EQ(c.sync_period(), 45s);
  EXPECT_EQ(c.min_sync_period(), 5s);
  EXPECT_FALSE(validate(c).has_value());
}

TEST(ConfigFile, ZeroDurationsAndNullsMeanDefault) {
  auto d = decode_config(kHeader + "iptables:\n  syncPeriod: 0s\n  minSyncPeriod: 0s\n  masqueradeBit: null\n");
  ASSERT_TRUE(d.ok()) << d.error();
  apply_defaults(d->config);
  EXPECT_EQ(d->config.iptables.sync_period, 30s);
  EXPECT_EQ(d->config.iptables.min_sync_period, 1s);  // as upstream: 0s in a file cannot be asked for
  EXPECT_EQ(d->config.iptables.masquerade_bit, 14);
}

TEST(ConfigFile, UnknownFieldsAreWarnedAboutAndIgnoredAsKubeProxyDoes) {
  auto d = decode_config(kHeader + "udpIdleTimeout: 250ms\niptables:\n  snatNodeInternalIP: true\nmode: ipvs\n");
  ASSERT_TRUE(d.ok()) << d.error();
  EXPECT_EQ(d->config.mode, ProxyMode::kIpvs);
  ASSERT_EQ(d->warnings.size(), 1U);
  EXPECT_NE(d->warnings[0].find("\"iptables.snatNodeInternalIP\""), std::string::npos) << d->warnings[0];
  EXPECT_NE(d->warnings[0].find("\"udpIdleTimeout\""), std::string::npos) << d->warnings[0];
}

TEST(ConfigFile, WindowsAndLoggingOptionsAreKnownAndIgnored) {
  auto d = decode_config(kHeader + "winkernel:\n  enableDSR: true\nwindowsRunAsService: true\n"
                                   "logging:\n  options:\n    json:\n      infoBufferSize: \"0\"\n");
  ASSERT_TRUE(d.ok()) << d.error();
  EXPECT_TRUE(d->warnings.empty());
}

TEST(ConfigFile, TheKproxyStanzaIsStrict) {
  EXPECT_EQ(decode_error("kproxy:\n  sctpUserspaceMod: true\n"),
            "kproxy.sctpUserspaceMod: unknown field (the kproxy stanza accepts iptablesApplier, manifests, "
            "sctpUserspaceAllowKernelSctp, sctpUserspaceMaxAssociations, sctpUserspaceMode, sctpUserspaceTaint)");
  EXPECT_EQ(decode_error("kproxy:\n  iptablesApplier: iptc\n"),
            "kproxy.iptablesApplier: \"iptc\": must be auto, restore or libiptc");
  EXPECT_EQ(decode_error("kproxy:\n  sctpUserspaceTaint: \"a=b:Never\"\n"),
            "kproxy.sctpUserspaceTaint: \"a=b:Never\": taint effect \"Never\" is not NoSchedule, PreferNoSchedule or "
            "NoExecute");
  EXPECT_EQ(decode_error("kproxy: true\n"), "kproxy: true is not a mapping");
}

TEST(ConfigFile, EveryErrorNamesTheFieldAndTheValue) {
  const struct {
    const char* body;
    const char* error;
  } cases[] = {
      {"iptables:\n  masqueradeBit: x\n", "iptables.masqueradeBit: \"x\" is not an integer"},
      {"iptables:\n  masqueradeBit: 4294967296\n", "iptables.masqueradeBit: 4294967296 is not a 32-bit integer"},
      {"iptables:\n  syncPeriod: 30\n", "iptables.syncPeriod: 30 is not a duration string such as \"30s\""},
      {"iptables:\n  syncPeriod: fast\n", "iptables.syncPeriod: \"fast\": time: invalid duration \"fast\""},
      {"iptables: []\n", "iptables: [] is not a mapping"},
      {"ipvs:\n  strictARP: \"yes\"\n", "ipvs.strictARP: \"yes\" is not a boolean (true or false)"},
      {"ipvs:\n  excludeCIDRs: [10.0.0.1]\n", "ipvs.excludeCIDRs[0]: \"10.0.0.1\": must be a valid CIDR"},
      {"mode: nftables\n", "mode: \"nftables\": the nftables proxy mode is not implemented by kproxy; use iptables or ipvs"},
      {"mode: userspace\n",
       "mode: \"userspace\": must be iptables, ipvs or blank (blank means the best-available proxy [currently iptables])"},
      {"detectLocalMode: PodCIDR\n",
       "detectLocalMode: \"PodCIDR\": supported values: \"ClusterCIDR\", \"NodeCIDR\", \"BridgeInterface\", "
       "\"InterfaceNamePrefix\", \"\""},
      {"bindAddress: localhost\n", "bindAddress: \"localhost\": not a valid textual representation of an IP address"},
      {"healthzBindAddress: 0.0.0.0:99999\n", "healthzBindAddress: \"99999\" must be a valid port"},
      {"metricsBindAddress: here:80\n", "metricsBindAddress: \"here\" must be a valid IP"},
      {"clusterCIDR: 10.0.0.0/8,bogus\n",
       "clusterCIDR: \"10.0.0.0/8,bogus\": \"bogus\" must be a valid CIDR block (e.g. 10.100.0.0/16 or "
       "fde4:8dba:82e1::/48)"},
      {"nodePortAddresses: [primary, 10.0.0.0/8]\n", "nodePortAddresses: can't use both 'primary' and CIDRs"},
      {"nodePortAddresses: 10.0.0.0/8\n", "nodePortAddresses: \"10.0.0.0/8\" is not a list of strings"},
      {"featureGates:\n  A: 1\n", "featureGates.A: 1 is not a boolean"},
      {"clientConnection:\n  qps: fast\n", "clientConnection.qps: \"fast\" is not a number"},
      {"hostnameOverride: 12\n", "hostnameOverride: 12 is not a string"},
      {"logging:\n  verbosity: -1\n", "logging.verbosity: -1 is not a non-negative integer"},
      {"conntrack:\n  tcpCloseWaitTimeout: 1y\n",
       "conntrack.tcpCloseWaitTimeout: \"1y\": time: unknown unit \"y\" in duration \"1y\""},
  };
  for (const auto& c : cases) EXPECT_EQ(decode_error(c.body), c.error) << c.body;
}

TEST(ConfigFile, ApiVersionAndKindMustBeKubeProxyConfigurationV1alpha1) {
  EXPECT_EQ(decode_config("kind: KubeProxyConfiguration\n").error(),
            "apiVersion: missing; expected \"kubeproxy.config.k8s.io/v1alpha1\"");
  EXPECT_EQ(decode_config("apiVersion: componentconfig/v1alpha1\nkind: KubeProxyConfiguration\n").error(),
            "apiVersion: \"componentconfig/v1alpha1\" is not supported; expected \"kubeproxy.config.k8s.io/v1alpha1\"");
  EXPECT_EQ(decode_config("apiVersion: kubeproxy.config.k8s.io/v1alpha1\n").error(),
            "kind: missing; expected \"KubeProxyConfiguration\"");
  EXPECT_EQ(decode_config("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeletConfiguration\n").error(),
            "kind: \"KubeletConfiguration\" is not \"KubeProxyConfiguration\"");
}

TEST(ConfigFile, MalformedOrEmptyFilesAreErrors) {
  EXPECT_EQ(decode_config("").error(), "no KubeProxyConfiguration found (the file is empty)");
  EXPECT_EQ(decode_config("- a\n- b\n").error(), "the document is [\"a\",\"b\"], not a KubeProxyConfiguration mapping");
  EXPECT_NE(decode_config("a: [\n").error().find("YAML syntax error at line"), std::string::npos);
}

TEST(ConfigFile, OnlyTheFirstDocumentIsRead) {
  auto d = decode_config(kHeader + "mode: ipvs\n---\n" + kHeader + "mode: iptables\n");
  ASSERT_TRUE(d.ok()) << d.error();
  EXPECT_EQ(d->config.mode, ProxyMode::kIpvs);
  ASSERT_EQ(d->warnings.size(), 1U);
  EXPECT_NE(d->warnings[0].find("2 YAML documents"), std::string::npos);
}

TEST(ConfigFile, UnreadableFilesNameThePath) {
  EXPECT_EQ(load_config_file("/nonexistent/kproxy.yaml").error(),
            "config file /nonexistent/kproxy.yaml: No such file or directory");
  EXPECT_NE(load_config_file(kFixtures).error().find("config file " + kFixtures + ": "), std::string::npos);
}

}  // namespace
}  // namespace kproxy::config
