#include "kproxy/config/kube_proxy_configuration.h"

#include <chrono>

#include <gtest/gtest.h>

#include "kproxy/config/config_file.h"

namespace kproxy::config {
namespace {

using namespace std::chrono_literals;

IpAddress ip(const char* text) { return IpAddress::parse(text).value(); }

// The values of pkg/proxy/apis/config/v1alpha1/defaults.go and the Linux
// platformApplyDefaults(), one by one.
TEST(Defaults, AreKubeProxysDefaults) {
  const KubeProxyConfiguration c = default_configuration();
  EXPECT_EQ(c.bind_address, ip("0.0.0.0"));
  EXPECT_EQ(c.healthz_bind_address.listen().value().to_string(), "0.0.0.0:10256");
  EXPECT_EQ(c.metrics_bind_address.listen().value().to_string(), "127.0.0.1:10249");
  EXPECT_FALSE(c.bind_address_hard_fail);
  EXPECT_FALSE(c.enable_profiling);
  EXPECT_EQ(c.client_connection.content_type, "application/vnd.kubernetes.protobuf");
  EXPECT_EQ(c.client_connection.qps, 5.0F);
  EXPECT_EQ(c.client_connection.burst, 10);
  EXPECT_EQ(c.client_connection.kubeconfig, "");
  EXPECT_EQ(c.mode, ProxyMode::kIptables);
  EXPECT_EQ(c.iptables.masquerade_bit, 14);
  EXPECT_FALSE(c.iptables.masquerade_all);
  EXPECT_EQ(c.iptables.localhost_node_ports, true);
  EXPECT_EQ(c.iptables.sync_period, 30s);
  EXPECT_EQ(c.iptables.min_sync_period, 1s);
  EXPECT_EQ(c.ipvs.sync_period, 30s);
  EXPECT_EQ(c.ipvs.min_sync_period, 0s);
  EXPECT_EQ(c.ipvs.scheduler, "");
  EXPECT_FALSE(c.ipvs.strict_arp);
  EXPECT_EQ(c.ipvs.tcp_timeout, 0s);
  EXPECT_EQ(c.nftables.sync_period, 30s);
  EXPECT_EQ(c.nftables.min_sync_period, 1s);
  EXPECT_EQ(c.nftables.masquerade_bit, 14);
  EXPECT_EQ(c.detect_local_mode, LocalMode::kClusterCidr);
  EXPECT_TRUE(c.cluster_cidrs.empty());
  EXPECT_TRUE(c.node_port_addresses.all());
  EXPECT_EQ(c.oom_score_adj, -999);
  EXPECT_EQ(c.conntrack.max_per_core, 32768);
  EXPECT_EQ(c.conntrack.min, 131072);
  EXPECT_EQ(c.conntrack.tcp_established_timeout, 24h);
  EXPECT_EQ(c.conntrack.tcp_close_wait_timeout, 1h);
  EXPECT_FALSE(c.conntrack.tcp_be_liberal);
  EXPECT_EQ(c.conntrack.udp_timeout, 0s);
  EXPECT_EQ(c.conntrack.udp_stream_timeout, 0s);
  EXPECT_EQ(c.config_sync_period, 15min);
  EXPECT_EQ(c.logging.format, "text");
  EXPECT_EQ(c.logging.flush_frequency, 5s);
  EXPECT_EQ(c.logging.verbosity, 0);
  EXPECT_TRUE(c.feature_gates.empty());
  EXPECT_FALSE(c.kproxy.sctp_userspace_mode);
  EXPECT_EQ(c.kproxy.sctp_userspace_taint.value().to_string(), "sctp.kproxy.io/userspace=true:NoSchedule");
  EXPECT_EQ(c.kproxy.manifests_dir, "");
  EXPECT_EQ(c.sync_period(), 30s);
  EXPECT_EQ(c.min_sync_period(), 1s);
  EXPECT_FALSE(validate(c).has_value());
}

TEST(Defaults, FollowAnIpv6BindAddress) {
  KubeProxyConfiguration c;
  c.bind_address = ip("fd00::1");
  apply_defaults(c);
  EXPECT_EQ(c.healthz_bind_address.listen().value().to_string(), "[::]:10256");
  EXPECT_EQ(c.metrics_bind_address.listen().value().to_string(), "[::1]:10249");
}

TEST(Defaults, AppendTheDefaultPortToABareIp) {
  KubeProxyConfiguration c;
  c.healthz_bind_address.address = HostPort{ip("10.0.0.1"), 0};
  c.metrics_bind_address.address = HostPort{ip("10.0.0.1"), 9000};
  apply_defaults(c);
  EXPECT_EQ(c.healthz_bind_address.listen().value().to_string(), "10.0.0.1:10256");
  EXPECT_EQ(c.metrics_bind_address.listen().value().to_string(), "10.0.0.1:9000");
}

TEST(Defaults, LeaveSetValuesAndAreIdempotent) {
  KubeProxyConfiguration c;
  c.iptables.masquerade_bit = 0;
  c.iptables.localhost_node_ports = false;
  c.conntrack.max_per_core = 0;
  c.metrics_bind_address.disabled = true;
  apply_defaults(c);
  EXPECT_EQ(c.iptables.masquerade_bit, 0);
  EXPECT_EQ(c.iptables.localhost_node_ports, false);
  EXPECT_EQ(c.conntrack.max_per_core, 0);
  EXPECT_FALSE(c.metrics_bind_address.listen().has_value());
  KubeProxyConfiguration again = c;
  apply_defaults(again);
  EXPECT_EQ(again, c);
}

TEST(SyncPeriods, ComeFromTheSelectedModesSection) {
  KubeProxyConfiguration c = default_configuration();
  c.iptables.sync_period = 10s;
  c.ipvs.sync_period = 20s;
  c.ipvs.min_sync_period = 2s;
  EXPECT_EQ(c.sync_period(), 10s);
  c.mode = ProxyMode::kIpvs;
  EXPECT_EQ(c.sync_period(), 20s);
  EXPECT_EQ(c.min_sync_period(), 2s);
}

struct Case {
  const char* name;
  void (*mutate)(KubeProxyConfiguration&);
  const char* field;
  const char* value;
  const char* detail;
};

TEST(Validate, ReportsTheFieldTheValueAndWhatIsWrong) {
  const Case cases[] = {
      {"masquerade bit", [](KubeProxyConfiguration& c) { c.iptables.masquerade_bit = 40; }, "iptables.masqueradeBit",
       "40", "must be within the range [0, 31]"},
      {"negative masquerade bit", [](KubeProxyConfiguration& c) { c.iptables.masquerade_bit = -1; },
       "iptables.masqueradeBit", "-1", "must be within the range [0, 31]"},
      {"sync period", [](KubeProxyConfiguration& c) { c.iptables.sync_period = -1s; }, "iptables.syncPeriod", "-1s",
       "must be greater than 0"},
      {"association limit", [](KubeProxyConfiguration& c) { c.kproxy.sctp_userspace_max_associations = 0; },
       "kproxy.sctpUserspaceMaxAssociations", "0", "must be greater than 0"},
      {"min sync period", [](KubeProxyConfiguration& c) { c.iptables.min_sync_period = -1s; },
       "iptables.minSyncPeriod", "-1s", "must be greater than or equal to 0"},
      {"min above sync", [](KubeProxyConfiguration& c) { c.iptables.min_sync_period = 1min; }, "iptables.syncPeriod",
       "30s", "must be greater than or equal to iptables.minSyncPeriod (1m0s)"},
      {"ipvs periods",
       [](KubeProxyConfiguration& c) {
         c.mode = ProxyMode::kIpvs;
         c.ipvs.min_sync_period = 1min;
       },
       "ipvs.syncPeriod", "30s", "must be greater than or equal to ipvs.minSyncPeriod (1m0s)"},
      {"ipvs timeout",
       [](KubeProxyConfiguration& c) {
         c.mode = ProxyMode::kIpvs;
         c.ipvs.tcp_timeout = -1s;
       },
       "ipvs.tcpTimeout", "-1s", "must be greater than or equal to 0"},
      {"ipvs scheduler",
       [](KubeProxyConfiguration& c) {
         c.mode = ProxyMode::kIpvs;
         c.ipvs.scheduler = "fastest";
       },
       "ipvs.scheduler", "\"fastest\"", nullptr},
      {"conntrack", [](KubeProxyConfiguration& c) { c.conntrack.min = -1; }, "conntrack.min", "-1",
       "must be greater than or equal to 0"},
      {"conntrack timeout", [](KubeProxyConfiguration& c) { c.conntrack.udp_timeout = -1s; }, "conntrack.udpTimeout",
       "-1s", "must be greater than or equal to 0"},
      {"oom", [](KubeProxyConfiguration& c) { c.oom_score_adj = 1001; }, "oomScoreAdj", "1001",
       "must be within the range [-1000, 1000]"},
      {"burst", [](KubeProxyConfiguration& c) { c.client_connection.burst = -1; }, "clientConnection.burst", "-1",
       "must be greater than or equal to 0"},
      {"config sync", [](KubeProxyConfiguration& c) { c.config_sync_period = -1s; }, "configSyncPeriod", "-1s",
       "must be greater than 0"},
      {"port range", [](KubeProxyConfiguration& c) { c.port_range = "9-1"; }, "portRange", "\"9-1\"", nullptr},
      {"bridge", [](KubeProxyConfiguration& c) { c.detect_local_mode = LocalMode::kBridgeInterface; },
       "detectLocal.bridgeInterface", "\"\"", "must not be empty when detectLocalMode is BridgeInterface"},
      {"prefix", [](KubeProxyConfiguration& c) { c.detect_local_mode = LocalMode::kInterfaceNamePrefix; },
       "detectLocal.interfaceNamePrefix", "\"\"", "must not be empty when detectLocalMode is InterfaceNamePrefix"},
      {"two v4 cluster cidrs",
       [](KubeProxyConfiguration& c) {
         c.cluster_cidrs = {Cidr::parse("10.0.0.0/8").value(), Cidr::parse("11.0.0.0/8").value()};
       },
       "clusterCIDR", "\"10.0.0.0/8,11.0.0.0/8\"", nullptr},
      {"log format", [](KubeProxyConfiguration& c) { c.logging.format = "xml"; }, "logging.format", "\"xml\"", nullptr},
      {"hidden metrics", [](KubeProxyConfiguration& c) { c.show_hidden_metrics_for_version = "latest"; },
       "showHiddenMetricsForVersion", "\"latest\"", nullptr},
  };
  for (const auto& tc : cases) {
    KubeProxyConfiguration c = default_configuration();
    tc.mutate(c);
    auto e = validate(c);
    ASSERT_TRUE(e.has_value()) << tc.name;
    EXPECT_EQ(e->field, tc.field) << tc.name;
    EXPECT_EQ(e->value, tc.value) << tc.name;
    if (tc.detail) {
      EXPECT_EQ(e->detail, tc.detail) << tc.name;
    }
  }
}

TEST(Validate, AcceptsWhatKubeProxyAccepts) {
  KubeProxyConfiguration c = default_configuration();
  c.iptables.min_sync_period = 0s;  // every change syncs at once
  c.cluster_cidrs = {Cidr::parse("10.0.0.0/8").value(), Cidr::parse("fd00::/48").value()};
  c.ipvs.scheduler = "bogus";  // only checked in ipvs mode
  c.detect_local_mode = LocalMode::kClusterCidr;
  EXPECT_FALSE(validate(c).has_value());
  c.cluster_cidrs.clear();  // ClusterCIDR mode without a CIDR: kube-proxy warns and detects nothing
  EXPECT_FALSE(validate(c).has_value());
  c.mode = ProxyMode::kIpvs;
  c.ipvs.scheduler = "mh";
  EXPECT_FALSE(validate(c).has_value());
}

TEST(ToYaml, ReadsBackToTheSameConfiguration) {
  KubeProxyConfiguration c = default_configuration();
  c.mode = ProxyMode::kIpvs;
  c.bind_address = ip("::");
  c.hostname_override = "node-1";
  c.cluster_cidrs = {Cidr::parse("10.0.0.0/8").value(), Cidr::parse("fd00::/48").value()};
  c.node_port_addresses.primary = true;
  c.ipvs.exclude_cidrs = {Cidr::parse("192.168.0.0/16").value()};
  c.feature_gates = {{"A", true}};
  c.client_connection.qps = 7.5F;
  c.logging.vmodule = {"proxier*=4"};
  c.metrics_bind_address.address = HostPort{ip("::1"), 9999};
  c.kproxy.sctp_userspace_mode = true;
  c.kproxy.sctp_userspace_taint = Taint::parse("a/b:NoExecute").value();
  const std::string yaml = to_yaml(c);
  auto back = decode_config(yaml);
  ASSERT_TRUE(back.ok()) << back.error() << "\n" << yaml;
  EXPECT_TRUE(back->warnings.empty()) << back->warnings.front();
  apply_defaults(back->config);
  EXPECT_EQ(back->config, c) << yaml;
  EXPECT_EQ(to_yaml(back->config), yaml);
}

TEST(ToYaml, QuotesOnlyWhatWouldReadBackAsSomethingElse) {
  KubeProxyConfiguration c = default_configuration();
  c.hostname_override = "true";
  c.show_hidden_metrics_for_version = "1.16";
  const std::string yaml = to_yaml(c);
  EXPECT_NE(yaml.find("bindAddress: 0.0.0.0\n"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("hostnameOverride: \"true\"\n"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("showHiddenMetricsForVersion: \"1.16\"\n"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("healthzBindAddress: 0.0.0.0:10256\n"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("syncPeriod: 30s\n"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("apiVersion: kubeproxy.config.k8s.io/v1alpha1\n"), std::string::npos) << yaml;
}

}  // namespace
}  // namespace kproxy::config
