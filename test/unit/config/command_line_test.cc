#include "kproxy/config/command_line.h"

#include <chrono>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace kproxy::config {
namespace {

using namespace std::chrono_literals;

const std::string kKubeadmExample = std::string(KPROXY_SOURCE_DIR) + "/deploy/examples/kubeadm-kube-proxy.yaml";
const std::string kCustom = std::string(KPROXY_FIXTURES_DIR) + "/config/custom-ipvs.yaml";

Expected<CommandLine> parse(std::vector<std::string> args) {
  std::vector<const char*> argv{"kproxy"};
  for (const auto& a : args) argv.push_back(a.c_str());
  return parse_command_line(argv);
}

CommandLine parse_ok(std::vector<std::string> args) {
  auto cl = parse(args);
  EXPECT_TRUE(cl.ok()) << (cl.ok() ? "" : cl.error());
  return cl.ok() ? *cl : CommandLine{};
}

std::string parse_error(std::vector<std::string> args) {
  auto cl = parse(std::move(args));
  return cl.ok() ? "(parsed)" : cl.error();
}

// A file in a fresh temporary directory, removed with the test.
class TempFile {
 public:
  explicit TempFile(const std::string& text) {
    dir_ = std::filesystem::temp_directory_path() / ("kproxy-config-test-" + std::to_string(::getpid()) + "-" +
                                                     std::to_string(counter_++));
    std::filesystem::create_directories(dir_);
    std::ofstream(path()) << text;
  }
  ~TempFile() { std::filesystem::remove_all(dir_); }
  std::string path() const { return (dir_ / "config.yaml").string(); }
  std::string dir() const { return dir_.string(); }

 private:
  static inline int counter_ = 0;
  std::filesystem::path dir_;
};

TEST(CommandLine, NoFlagsGiveKubeProxysDefaults) {
  const CommandLine cl = parse_ok({});
  EXPECT_EQ(cl.config, default_configuration());
  EXPECT_FALSE(cl.exit_after_output);
  EXPECT_TRUE(cl.ignored_flags.empty());
  EXPECT_TRUE(cl.warnings.empty());
  EXPECT_FALSE(cl.cleanup);
}

TEST(CommandLine, ValuesAreReadInBothGoSpellings) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--iptables-sync-period=45s", "--proxy-mode=ipvs", "--hostname-override=n1", "--cluster-cidr=10.0.0.0/8"},
           {"--iptables-sync-period", "45s", "--proxy-mode", "ipvs", "--hostname-override", "n1", "--cluster-cidr",
            "10.0.0.0/8"}}) {
    const CommandLine cl = parse_ok(args);
    EXPECT_EQ(cl.config.iptables.sync_period, 45s);
    EXPECT_EQ(cl.config.mode, ProxyMode::kIpvs);
    EXPECT_EQ(cl.config.hostname_override, "n1");
    ASSERT_EQ(cl.config.cluster_cidrs.size(), 1U);
  }
}

TEST(CommandLine, BooleanFlagsNeverTakeTheNextArgument) {
  EXPECT_TRUE(parse_ok({"--masquerade-all"}).config.iptables.masquerade_all);
  EXPECT_TRUE(parse_ok({"--masquerade-all=true"}).config.iptables.masquerade_all);
  EXPECT_TRUE(parse_ok({"--masquerade-all=T"}).config.iptables.masquerade_all);
  EXPECT_FALSE(parse_ok({"--masquerade-all=false"}).config.iptables.masquerade_all);
  EXPECT_FALSE(parse_ok({"--iptables-localhost-nodeports=false"}).config.iptables.localhost_node_ports.value());
  EXPECT_FALSE(parse_ok({"--masquerade-all", "--masquerade-all=0"}).config.iptables.masquerade_all);
  // "--masquerade-all false": the "false" is a stray argument, as with pflag.
  EXPECT_EQ(parse_error({"--masquerade-all", "false"}), "kproxy: kproxy does not take any arguments, got \"false\"");
  EXPECT_EQ(parse_error({"--ipvs-strict-arp=yes"}),
            "kproxy: invalid value \"yes\" for flag --ipvs-strict-arp: strconv.ParseBool: parsing \"yes\": invalid syntax");
}

TEST(CommandLine, VerbosityTakesEveryPflagForm) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"-v=3"}, {"-v", "3"}, {"-v3"}, {"--v=3"}, {"--v", "3"}, {"--v=1", "-v=3"}}) {
    EXPECT_EQ(parse_ok(args).config.logging.verbosity, 3) << args.front();
  }
  EXPECT_EQ(parse_error({"--v=-1"}), "kproxy: invalid value \"-1\" for flag --v: strconv.ParseUint: parsing \"-1\": invalid syntax");
  EXPECT_EQ(parse_error({"-v=high"}), "kproxy: invalid value \"high\" for flag --v: strconv.ParseUint: parsing \"high\": invalid syntax");
  EXPECT_EQ(parse_error({"--v"}), "kproxy: flag needs an argument: --v");
}

TEST(CommandLine, DurationsAreGoDurations) {
  const CommandLine cl = parse_ok({"--iptables-sync-period=1h30m", "--iptables-min-sync-period=500ms",
                                   "--config-sync-period=2h45m0.5s", "--conntrack-tcp-timeout-established=0",
                                   "--ipvs-tcp-timeout=1m0s"});
  EXPECT_EQ(cl.config.iptables.sync_period, 90min);
  EXPECT_EQ(cl.config.iptables.min_sync_period, 500ms);
  EXPECT_EQ(cl.config.config_sync_period, 2h + 45min + 500ms);
  EXPECT_EQ(cl.config.conntrack.tcp_established_timeout, 0s);
  EXPECT_EQ(cl.config.ipvs.tcp_timeout, 1min);
  // A flag can ask for 0 (no minimum), unlike the file.
  EXPECT_EQ(parse_ok({"--iptables-min-sync-period=0"}).config.iptables.min_sync_period, 0s);
}

TEST(CommandLine, ListsAreCommaSeparatedAndRepeatable) {
  const CommandLine cl = parse_ok({"--nodeport-addresses=10.0.0.0/8,192.168.0.0/16", "--nodeport-addresses",
                                   "fd00::/8", "--ipvs-exclude-cidrs=1.2.3.0/24", "--feature-gates=A=true,B=false",
                                   "--feature-gates=C=true"});
  ASSERT_EQ(cl.config.node_port_addresses.cidrs.size(), 3U);
  EXPECT_EQ(cl.config.node_port_addresses.cidrs[2].to_string(), "fd00::/8");
  EXPECT_EQ(cl.config.ipvs.exclude_cidrs.size(), 1U);
  EXPECT_EQ(cl.config.feature_gates, (std::map<std::string, bool>{{"A", true}, {"B", false}, {"C", true}}));
  EXPECT_TRUE(parse_ok({"--nodeport-addresses=primary"}).config.node_port_addresses.primary);
  EXPECT_EQ(parse_error({"--nodeport-addresses=primary,10.0.0.0/8"}),
            "kproxy: invalid value \"primary,10.0.0.0/8\" for flag --nodeport-addresses: can't use both 'primary' and "
            "CIDRs");
  const CommandLine dual = parse_ok({"--cluster-cidr=10.0.0.0/8,fd00::/48"});
  EXPECT_EQ(dual.config.cluster_cidrs.size(), 2U);
}

TEST(CommandLine, EveryKubeProxyFlagLandsInItsField) {
  const CommandLine cl = parse_ok({
      "--bind-address=10.1.1.1", "--bind-address-hard-fail", "--cluster-cidr=10.0.0.0/8",
      "--conntrack-max-per-core=0", "--conntrack-min=1024", "--conntrack-tcp-be-liberal",
      "--conntrack-tcp-timeout-close-wait=2h", "--conntrack-udp-timeout=30s", "--conntrack-udp-timeout-stream=2m",
      "--detect-local-mode=BridgeInterface", "--pod-bridge-interface=cbr0", "--pod-interface-name-prefix=veth",
      "--healthz-bind-address=10.1.1.1:1234", "--metrics-bind-address=0.0.0.0", "--iptables-masquerade-bit=0",
      "--ipvs-scheduler=lc", "--ipvs-strict-arp", "--ipvs-sync-period=10s", "--ipvs-min-sync-period=1s",
      "--ipvs-tcpfin-timeout=5s", "--ipvs-udp-timeout=6s", "--kube-api-burst=50", "--kube-api-qps=25.5",
      "--kube-api-content-type=application/json", "--kubeconfig=/etc/kc", "--oom-score-adj", "-500",
      "--show-hidden-metrics-for-version=1.29", "--proxy-port-range=30000-30100", "--master=https://api:6443",
      "--sctp-userspace-mode", "--sctp-userspace-allow-kernel-sctp", "--sctp-userspace-max-associations=300", "--sctp-userspace-taint=x/y:NoExecute", "--log-flush-frequency=1s", "--iptables-applier=libiptc",
      "--vmodule=proxier*=4,sync=2", "--logging-format=text"});
  const KubeProxyConfiguration& c = cl.config;
  EXPECT_EQ(c.bind_address.value().to_string(), "10.1.1.1");
  EXPECT_TRUE(c.bind_address_hard_fail);
  EXPECT_EQ(c.conntrack.max_per_core, 0);
  EXPECT_EQ(c.conntrack.min, 1024);
  EXPECT_TRUE(c.conntrack.tcp_be_liberal);
  EXPECT_EQ(c.conntrack.tcp_close_wait_timeout, 2h);
  EXPECT_EQ(c.conntrack.udp_timeout, 30s);
  EXPECT_EQ(c.conntrack.udp_stream_timeout, 2min);
  EXPECT_EQ(c.detect_local_mode, LocalMode::kBridgeInterface);
  EXPECT_EQ(c.detect_local.bridge_interface, "cbr0");
  EXPECT_EQ(c.detect_local.interface_name_prefix, "veth");
  EXPECT_EQ(c.healthz_bind_address.listen().value().to_string(), "10.1.1.1:1234");
  EXPECT_EQ(c.metrics_bind_address.listen().value().to_string(), "0.0.0.0:10249");  // --metrics-port's default
  EXPECT_EQ(c.iptables.masquerade_bit, 0);
  EXPECT_EQ(c.ipvs.scheduler, "lc");
  EXPECT_TRUE(c.ipvs.strict_arp);
  EXPECT_EQ(c.ipvs.sync_period, 10s);
  EXPECT_EQ(c.ipvs.min_sync_period, 1s);
  EXPECT_EQ(c.ipvs.tcp_fin_timeout, 5s);
  EXPECT_EQ(c.ipvs.udp_timeout, 6s);
  EXPECT_EQ(c.client_connection.burst, 50);
  EXPECT_FLOAT_EQ(c.client_connection.qps, 25.5F);
  EXPECT_EQ(c.client_connection.content_type, "application/json");
  EXPECT_EQ(c.client_connection.kubeconfig, "/etc/kc");
  EXPECT_EQ(c.oom_score_adj, -500);
  EXPECT_EQ(c.show_hidden_metrics_for_version, "1.29");
  EXPECT_EQ(c.port_range, "30000-30100");
  EXPECT_EQ(cl.master, "https://api:6443");
  EXPECT_TRUE(c.kproxy.sctp_userspace_mode);
  EXPECT_EQ(c.kproxy.sctp_userspace_taint.value().to_string(), "x/y:NoExecute");
  EXPECT_TRUE(c.kproxy.sctp_userspace_allow_kernel_sctp);
  EXPECT_EQ(c.kproxy.sctp_userspace_max_associations, 300);
  EXPECT_EQ(c.kproxy.iptables_applier, IptablesApplier::kLibiptc);
  EXPECT_EQ(c.logging.flush_frequency, 1s);
  EXPECT_EQ(c.logging.vmodule, (std::vector<std::string>{"proxier*=4", "sync=2"}));
  // Accepted without effect: each says so once.
  EXPECT_EQ(cl.warnings.size(), 3U);
}

TEST(CommandLine, SyncPeriodFlagsFollowTheMode) {
  const CommandLine ipt = parse_ok({"--sync-period=10s", "--min-sync-period=2s"});
  EXPECT_EQ(ipt.config.iptables.sync_period, 10s);
  EXPECT_EQ(ipt.config.iptables.min_sync_period, 2s);
  const CommandLine ipvs = parse_ok({"--sync-period=10s", "--min-sync-period=2s", "--proxy-mode=ipvs"});
  EXPECT_EQ(ipvs.config.sync_period(), 10s);
  EXPECT_EQ(ipvs.config.min_sync_period(), 2s);
  EXPECT_EQ(ipvs.config.iptables.sync_period, 30s);
}

TEST(CommandLine, DeprecatedPortFlagsCompleteOrDisableTheServers) {
  const CommandLine off = parse_ok({"--metrics-port=0", "--healthz-port=0"});
  EXPECT_FALSE(off.config.metrics_bind_address.listen().has_value());
  EXPECT_FALSE(off.config.healthz_bind_address.listen().has_value());
  EXPECT_EQ(off.warnings.size(), 2U);
  const CommandLine port = parse_ok({"--healthz-bind-address=10.0.0.1", "--healthz-port=8080"});
  EXPECT_EQ(port.config.healthz_bind_address.listen().value().to_string(), "10.0.0.1:8080");
  // As in kube-proxy, an address that has a port keeps it, and an empty address keeps the default.
  EXPECT_EQ(parse_ok({"--healthz-port=8080"}).config.healthz_bind_address.listen().value().to_string(),
            "0.0.0.0:10256");
  EXPECT_EQ(parse_ok({"--metrics-bind-address="}).config.metrics_bind_address.listen().value().to_string(),
            "127.0.0.1:10249");
  const CommandLine disabled = parse_ok({"--metrics-port=0", "--v=2"});
  EXPECT_NE(to_yaml(disabled.config).find("metricsBindAddress: \"\"\n"), std::string::npos);
}

TEST(CommandLine, HostnameOverrideIsTrimmedAndLowerCased) {
  EXPECT_EQ(parse_ok({"--hostname-override= Node-1 "}).config.hostname_override, "node-1");
  EXPECT_EQ(parse_error({"--hostname-override=  "}),
            "kproxy: invalid value \"  \" for flag --hostname-override: empty hostname-override is invalid");
  EXPECT_EQ(parse_ok({"--hostname-override="}).config.hostname_override, "");
  EXPECT_EQ(parse_ok({"--hostname-override", ""}).config.hostname_override, "");
  EXPECT_EQ(parse_error({"--masquerade-all="}),
            "kproxy: invalid value \"\" for flag --masquerade-all: strconv.ParseBool: parsing \"\": invalid syntax");
}

TEST(CommandLine, ConfigFileReplacesTheFlagsItCoversAndReportsThem) {
  const CommandLine cl = parse_ok({"--config", kKubeadmExample, "--proxy-mode=ipvs", "--masquerade-all",
                                   "--iptables-sync-period=1s", "--hostname-override=N1", "--v=2", "--cleanup",
                                   "--master=https://10.0.0.1:6443", "--sctp-userspace-mode", "--healthz-port=0"});
  EXPECT_EQ(cl.config.mode, ProxyMode::kIptables);
  EXPECT_FALSE(cl.config.iptables.masquerade_all);
  EXPECT_EQ(cl.config.iptables.sync_period, 30s);
  EXPECT_FALSE(cl.config.kproxy.sctp_userspace_mode);
  EXPECT_TRUE(cl.config.healthz_bind_address.listen().has_value());
  EXPECT_EQ(cl.config.hostname_override, "n1");
  EXPECT_EQ(cl.config.logging.verbosity, 2);
  EXPECT_TRUE(cl.cleanup);
  EXPECT_EQ(cl.master, "https://10.0.0.1:6443");
  EXPECT_EQ(cl.config_file, kKubeadmExample);
  EXPECT_EQ(cl.config.client_connection.kubeconfig, "/var/lib/kube-proxy/kubeconfig.conf");
  EXPECT_EQ(cl.ignored_flags, (std::vector<std::string>{"--healthz-port", "--iptables-sync-period", "--masquerade-all",
                                                        "--proxy-mode", "--sctp-userspace-mode"}));
  EXPECT_EQ(ignored_flags_warning(cl),
            "ignoring flags --healthz-port, --iptables-sync-period, --masquerade-all, --proxy-mode, "
            "--sctp-userspace-mode: a config file was given with --config, and kube-proxy ignores the flags that the "
            "file covers");
}

TEST(CommandLine, IgnoredFlagsStillNeedWellFormedValues) {
  // pflag parses every flag before --config replaces the covered ones: a malformed value is
  // still an error, a well-formed but invalid one is simply ignored.
  EXPECT_EQ(parse_error({"--config", kKubeadmExample, "--iptables-sync-period=abc"}),
            "kproxy: invalid value \"abc\" for flag --iptables-sync-period: time: invalid duration \"abc\"");
  EXPECT_EQ(parse_ok({"--config", kKubeadmExample, "--iptables-masquerade-bit=99"}).ignored_flags,
            std::vector<std::string>{"--iptables-masquerade-bit"});
}

TEST(CommandLine, LoggingVerbosityComesFromTheFileUnlessGiven) {
  EXPECT_EQ(parse_ok({"--config", kCustom}).config.logging.verbosity, 3);
  EXPECT_EQ(parse_ok({"--config", kCustom, "-v", "5"}).config.logging.verbosity, 5);
  EXPECT_EQ(parse_ok({"--config", kCustom, "--v=0"}).config.logging.verbosity, 0);
}

TEST(CommandLine, FileHostnameIsNormalisedLikeTheFlag) {
  EXPECT_EQ(parse_ok({"--config", kCustom}).config.hostname_override, "node-a");
}

TEST(CommandLine, ErrorsNameTheFlagAndTheValue) {
  const struct {
    std::vector<std::string> args;
    const char* error;
  } cases[] = {
      {{"--iptables-sync-period=abc"},
       "kproxy: invalid value \"abc\" for flag --iptables-sync-period: time: invalid duration \"abc\""},
      {{"--iptables-sync-period=30"},
       "kproxy: invalid value \"30\" for flag --iptables-sync-period: time: missing unit in duration \"30\""},
      {{"--iptables-masquerade-bit=40"},
       "kproxy: invalid value \"40\" for flag --iptables-masquerade-bit: must be within the range [0, 31]"},
      {{"--iptables-masquerade-bit=x"},
       "kproxy: invalid value \"x\" for flag --iptables-masquerade-bit: strconv.ParseInt: parsing \"x\": invalid syntax"},
      {{"--proxy-mode=fast"},
       "kproxy: invalid value \"fast\" for flag --proxy-mode: must be iptables, ipvs or blank (blank means the "
       "best-available proxy [currently iptables])"},
      {{"--proxy-mode=nftables"},
       "kproxy: invalid value \"nftables\" for flag --proxy-mode: the nftables proxy mode is not implemented by "
       "kproxy; use iptables or ipvs"},
      {{"--detect-local-mode=Pods"},
       "kproxy: invalid value \"Pods\" for flag --detect-local-mode: supported values: \"ClusterCIDR\", "
       "\"NodeCIDR\", \"BridgeInterface\", \"InterfaceNamePrefix\", \"\""},
      {{"--bind-address=localhost"},
       "kproxy: invalid value \"localhost\" for flag --bind-address: \"localhost\" is not a valid IP address"},
      {{"--healthz-bind-address=0.0.0.0:x"},
       "kproxy: invalid value \"0.0.0.0:x\" for flag --healthz-bind-address: \"x\" must be a valid port"},
      {{"--cluster-cidr=10.0.0.0/33"},
       "kproxy: invalid value \"10.0.0.0/33\" for flag --cluster-cidr: \"10.0.0.0/33\" must be a valid CIDR block "
       "(e.g. 10.100.0.0/16 or fde4:8dba:82e1::/48)"},
      {{"--cluster-cidr=10.0.0.0/8,11.0.0.0/8"},
       "kproxy: invalid value \"10.0.0.0/8,11.0.0.0/8\" for flag --cluster-cidr: must be a either a single CIDR or "
       "dual-stack pair of CIDRs (e.g. 10.100.0.0/16,fde4:8dba:82e1::/48)"},
      {{"--iptables-min-sync-period=1m"},
       "kproxy: invalid value \"1m\" for flag --iptables-min-sync-period: iptables.syncPeriod 30s must be greater "
       "than or equal to iptables.minSyncPeriod (1m0s)"},
      {{"--iptables-sync-period=1m", "--iptables-min-sync-period=2m"},
       "kproxy: invalid value \"1m\" for flag --iptables-sync-period: must be greater than or equal to "
       "iptables.minSyncPeriod (2m0s)"},
      {{"--sync-period=0s"}, "kproxy: invalid value \"0s\" for flag --sync-period: must be greater than 0"},
      {{"--sctp-userspace-max-associations=0"},
       "kproxy: invalid value \"0\" for flag --sctp-userspace-max-associations: must be greater than 0"},
      {{"--proxy-mode=ipvs", "--ipvs-scheduler=fast"},
       "kproxy: invalid value \"fast\" for flag --ipvs-scheduler: must be one of the kernel's IPVS schedulers (rr, "
       "wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos) or blank (rr)"},
      {{"--detect-local-mode=InterfaceNamePrefix"},
       "kproxy: invalid value \"InterfaceNamePrefix\" for flag --detect-local-mode: detectLocal.interfaceNamePrefix "
       "\"\" must not be empty when detectLocalMode is InterfaceNamePrefix"},
      {{"--oom-score-adj=-1001"},
       "kproxy: invalid value \"-1001\" for flag --oom-score-adj: must be within the range [-1000, 1000]"},
      {{"--conntrack-min=-1"}, "kproxy: invalid value \"-1\" for flag --conntrack-min: must be greater than or equal to 0"},
      {{"--kube-api-qps=fast"},
       "kproxy: invalid value \"fast\" for flag --kube-api-qps: strconv.ParseFloat: parsing \"fast\": invalid syntax"},
      {{"--feature-gates=A"}, "kproxy: invalid value \"A\" for flag --feature-gates: missing bool value for A"},
      {{"--logging-format=xml"},
       "kproxy: invalid value \"xml\" for flag --logging-format: unsupported log format; supported: \"json\", \"text\""},
      {{"--vmodule=x"}, "kproxy: invalid value \"x\" for flag --vmodule: \"x\" is not of the form pattern=N"},
      {{"--proxy-port-range=9-1"},
       "kproxy: invalid value \"9-1\" for flag --proxy-port-range: \"9-1\" must be a valid port range (e.g. 300-2000)"},
      {{"--metrics-port=70000"}, "kproxy: invalid value \"70000\" for flag --metrics-port: 70000 is not a valid port"},
      {{"--sctp-userspace-taint=sctp=yes:Sometimes"},
       "kproxy: invalid value \"sctp=yes:Sometimes\" for flag --sctp-userspace-taint: taint effect \"Sometimes\" is "
       "not NoSchedule, PreferNoSchedule or NoExecute"},
      {{"--manifests="}, "kproxy: invalid value \"\" for flag --manifests: must name a directory"},
      {{"--iptables-applier=iptc"},
       "kproxy: invalid value \"iptc\" for flag --iptables-applier: must be auto, restore or libiptc"},
      {{"--manifests=/nonexistent/manifests"},
       "kproxy: invalid value \"/nonexistent/manifests\" for flag --manifests: not a directory"},
  };
  for (const auto& c : cases) EXPECT_EQ(parse_error(c.args), c.error) << c.args.front();
}

TEST(CommandLine, UnknownFlagsAndArgumentsAreErrors) {
  EXPECT_EQ(parse_error({"--no-such-flag"}), "kproxy: unknown flag: --no-such-flag");
  EXPECT_EQ(parse_error({"--no-such-flag=1"}), "kproxy: unknown flag: --no-such-flag");
  EXPECT_EQ(parse_error({"-x"}), "kproxy: unknown flag: -x");
  EXPECT_EQ(parse_error({"-config=/x"}), "kproxy: unknown flag: -config");
  // Removed from kube-proxy in 1.26 along with the other klog flags.
  EXPECT_EQ(parse_error({"--logtostderr"}), "kproxy: unknown flag: --logtostderr");
  EXPECT_EQ(parse_error({"run"}), "kproxy: kproxy does not take any arguments, got \"run\"");
  EXPECT_EQ(parse_error({"--", "x"}), "kproxy: kproxy does not take any arguments, got \"x\"");
}

TEST(CommandLine, ConfigFileErrorsNameTheFileTheFieldAndTheValue) {
  TempFile bad_bit("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n"
                   "iptables:\n  masqueradeBit: 40\n");
  EXPECT_EQ(parse_error({"--config=" + bad_bit.path()}),
            "kproxy: config file " + bad_bit.path() + ": iptables.masqueradeBit: invalid value 40: must be within the "
            "range [0, 31]");
  TempFile bad_type("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: fast\n");
  EXPECT_EQ(parse_error({"--config", bad_type.path()}),
            "kproxy: config file " + bad_type.path() + ": mode: \"fast\": must be iptables, ipvs or blank (blank means "
            "the best-available proxy [currently iptables])");
  TempFile periods("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n"
                   "iptables:\n  syncPeriod: 1s\n  minSyncPeriod: 5s\n");
  EXPECT_EQ(parse_error({"--config", periods.path()}),
            "kproxy: config file " + periods.path() + ": iptables.syncPeriod: invalid value 1s: must be greater than or "
            "equal to iptables.minSyncPeriod (5s)");
  EXPECT_EQ(parse_error({"--config=/nonexistent.yaml"}), "kproxy: config file /nonexistent.yaml: No such file or directory");
  // An override flag combined with a file: blamed on the flag.
  EXPECT_EQ(parse_error({"--config", kKubeadmExample, "--logging-format=xml"}),
            "kproxy: invalid value \"xml\" for flag --logging-format: unsupported log format; supported: \"json\", "
            "\"text\"");
}

TEST(CommandLine, UnknownFileFieldsAreWarnings) {
  TempFile f("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nudpIdleTimeout: 250ms\n");
  const CommandLine cl = parse_ok({"--config", f.path()});
  ASSERT_EQ(cl.warnings.size(), 1U);
  EXPECT_NE(cl.warnings[0].find("\"udpIdleTimeout\""), std::string::npos);
}

TEST(CommandLine, KproxyStanzaAndManifests) {
  TempFile f("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n"
             "kproxy:\n  sctpUserspaceMode: true\n");
  const CommandLine cl = parse_ok({"--config", f.path(), "--manifests", f.dir()});
  EXPECT_TRUE(cl.config.kproxy.sctp_userspace_mode);
  EXPECT_EQ(cl.config.kproxy.manifests_dir, f.dir());  // --manifests applies on top of the file
  EXPECT_TRUE(cl.ignored_flags.empty());
  EXPECT_EQ(parse_error({"--manifests", f.dir(), "--master=https://x"}),
            "kproxy: --master \"https://x\" cannot be combined with --manifests \"" + f.dir() +
                "\": --manifests runs without an API server");
  TempFile bad("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n"
               "kproxy:\n  manifests: /nonexistent/dir\n");
  EXPECT_EQ(parse_error({"--config", bad.path()}),
            "kproxy: config file " + bad.path() + ": kproxy.manifests: invalid value \"/nonexistent/dir\": not a directory");
}

TEST(CommandLine, SctpUserspaceModeCombinesWithEitherMode) {
  EXPECT_TRUE(parse_ok({"--sctp-userspace-mode", "--proxy-mode=ipvs"}).config.kproxy.sctp_userspace_mode);
  EXPECT_TRUE(parse_ok({"--sctp-userspace-mode"}).config.kproxy.sctp_userspace_mode);
}

TEST(CommandLine, HelpAndVersionAreOutputOnly) {
  const CommandLine help = parse_ok({"--help"});
  EXPECT_TRUE(help.exit_after_output);
  EXPECT_EQ(help.output, help_text());
  EXPECT_EQ(parse_ok({"-h"}).output, help_text());
  // --help wins over a broken configuration, as with cobra.
  EXPECT_EQ(parse_ok({"--config=/nonexistent", "--help"}).output, help_text());
  EXPECT_EQ(parse_ok({"--version"}).output, version_text());
  EXPECT_EQ(parse_ok({"--version=raw"}).output, version_text());
  EXPECT_FALSE(parse_ok({"--version=false"}).exit_after_output);
  EXPECT_EQ(version_text().rfind("kproxy v", 0), 0U);
}

TEST(CommandLine, HelpDocumentsEveryFlag) {
  // Compare with the wrapping undone.
  std::string help;
  for (char c : help_text()) {
    if (c == '\n') c = ' ';
    if (!(c == ' ' && !help.empty() && help.back() == ' ')) help += c;
  }
  for (const char* flag :
       {"--config string", "--kubeconfig string", "--master string", "--hostname-override string",
        "--proxy-mode ProxyMode", "--cluster-cidr string", "--detect-local-mode LocalMode", "--masquerade-all",
        "--iptables-sync-period duration", "--iptables-min-sync-period duration", "--iptables-masquerade-bit int32",
        "--ipvs-scheduler string", "--ipvs-sync-period duration", "--ipvs-min-sync-period duration",
        "--ipvs-strict-arp", "--nodeport-addresses strings", "--healthz-bind-address ipport",
        "--metrics-bind-address ipport", "--bind-address ip", "--conntrack-max-per-core int32",
        "--conntrack-min int32", "--conntrack-tcp-timeout-established duration",
        "--conntrack-tcp-timeout-close-wait duration", "--conntrack-tcp-be-liberal", "--conntrack-udp-timeout duration",
        "--conntrack-udp-timeout-stream duration", "--cleanup", "-v, --v Level", "--version", "-h, --help",
        "--sctp-userspace-mode", "--sctp-userspace-taint string", "--manifests string", "--iptables-applier string", "--write-config-to string",
        "--init-only", "--feature-gates mapStringBool", "--oom-score-adj int32", "--profiling",
        "--proxy-port-range port-range", "--vmodule pattern=N,...", "--logging-format string",
        "--sync-period duration", "--min-sync-period duration", "--iptables-localhost-nodeports",
        "--ipvs-exclude-cidrs strings", "--ipvs-tcp-timeout duration", "--pod-bridge-interface string",
        "--pod-interface-name-prefix string", "--healthz-port int32", "--metrics-port int32",
        "--kube-api-qps float32", "--kube-api-burst int32", "--kube-api-content-type string",
        "--config-sync-period duration", "--bind-address-hard-fail", "--show-hidden-metrics-for-version string",
        "--log-flush-frequency duration"}) {
    EXPECT_NE(help.find(flag), std::string::npos) << flag;
  }
  EXPECT_NE(help.find("(default sctp.kproxy.io/userspace=true:NoSchedule)"), std::string::npos);
  EXPECT_NE(help.find("(default 30s)"), std::string::npos);
}

TEST(CommandLine, WriteConfigToAndActionsAreReported) {
  const CommandLine cl = parse_ok({"--write-config-to=/tmp/x.yaml", "--init-only", "--cleanup=false"});
  EXPECT_EQ(cl.write_config_to, "/tmp/x.yaml");
  EXPECT_TRUE(cl.init_only);
  EXPECT_FALSE(cl.cleanup);
}

}  // namespace
}  // namespace kproxy::config
