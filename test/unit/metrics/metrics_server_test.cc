#include "kproxy/metrics/metrics_server.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "kproxy/metrics/kube_proxy_metrics.h"
#include "kproxy/metrics/process_metrics.h"

namespace kproxy::metrics {
namespace {

using namespace std::chrono_literals;

IpAddress loopback() { return *IpAddress::parse("127.0.0.1"); }

class MetricsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    register_process_metrics(registry_);
    metrics_.sync_queued(IpFamily::kIPv4, std::chrono::system_clock::now());
    metrics_.observe_sync(IpFamily::kIPv4, SyncKind::kFull, 0.042);
    metrics_.healthz_answered(200);
    metrics_.object_rejected("Service", model::RejectReason::kOutOfRange);
    auto server = MetricsServer::start(registry_, loopback(), 0,
                                       MetricsServerOptions{"iptables", R"({"kubeproxy.config.k8s.io":{}})"});
    ASSERT_TRUE(server.ok()) << server.error();
    server_ = std::move(*server);
    ASSERT_NE(server_->port(), 0);
  }
  httplib::Result get(const std::string& path) {
    httplib::Client client("127.0.0.1", server_->port());
    client.set_connection_timeout(10s);
    client.set_read_timeout(10s);
    return client.Get(path);
  }

  Registry registry_;
  KubeProxyMetrics metrics_{registry_, ProxyMetricsMode::kIptables};
  std::unique_ptr<MetricsServer> server_;
};

TEST_F(MetricsServerTest, MetricsServesTheRegistryAsTextFormat004) {
  auto res = get("/metrics");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(res->body.find("# TYPE kubeproxy_sync_proxy_rules_duration_seconds histogram\n"), std::string::npos);
  EXPECT_NE(res->body.find("kubeproxy_sync_proxy_rules_duration_seconds_bucket{ip_family=\"IPv4\",le=\"0.064\"} 1\n"),
            std::string::npos);
  EXPECT_NE(res->body.find("\nprocess_resident_memory_bytes "), std::string::npos);
  EXPECT_NE(res->body.find("\nprocess_open_fds "), std::string::npos);
}

TEST_F(MetricsServerTest, HealthzProxyModeConfigzAndNotFound) {
  auto healthz = get("/healthz");
  ASSERT_TRUE(healthz);
  EXPECT_EQ(healthz->status, 200);
  EXPECT_EQ(healthz->body, "ok");
  EXPECT_EQ(healthz->get_header_value("Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(healthz->get_header_value("X-Content-Type-Options"), "nosniff");
  auto verbose = get("/healthz?verbose");
  ASSERT_TRUE(verbose);
  EXPECT_EQ(verbose->body, "[+]ping ok\nhealthz check passed\n");
  auto ping = get("/healthz/ping");
  ASSERT_TRUE(ping);
  EXPECT_EQ(ping->body, "ok");
  auto mode = get("/proxyMode");
  ASSERT_TRUE(mode);
  EXPECT_EQ(mode->body, "iptables");
  auto configz = get("/configz");
  ASSERT_TRUE(configz);
  EXPECT_EQ(configz->status, 200);
  EXPECT_EQ(configz->get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(configz->body, R"({"kubeproxy.config.k8s.io":{}})");
  auto missing = get("/debug/pprof/");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(missing->body, "404 page not found\n");
}

TEST(MetricsServer, ReportsAnAddressInUse) {
  Registry registry;
  auto first = MetricsServer::start(registry, loopback(), 0);
  ASSERT_TRUE(first.ok()) << first.error();
  auto second = MetricsServer::start(registry, loopback(), (*first)->port());
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().find("listen tcp 127.0.0.1:" + std::to_string((*first)->port())), std::string::npos)
      << second.error();
}

// The scraped text through a real Prometheus parser: Debian's python3-prometheus-client.
std::string python_with_prometheus_client() {
  for (const char* python : {"/usr/bin/python3", "python3"}) {
    const std::string cmd = std::string(python) + " -c 'import prometheus_client.parser' >/dev/null 2>&1";
    if (std::system(cmd.c_str()) == 0) return python;
  }
  return "";
}

TEST_F(MetricsServerTest, ARealPrometheusParserReadsTheScrape) {
  const std::string python = python_with_prometheus_client();
  if (python.empty()) GTEST_SKIP() << "python3 with prometheus_client (python3-prometheus-client) is not installed";
  metrics_.enable_nfacct_counters([](std::string_view) { return std::optional<std::uint64_t>(3); });
  metrics_.set_no_local_endpoints(IpFamily::kIPv6, 1, 0);
  auto res = get("/metrics");
  ASSERT_TRUE(res);
  const std::filesystem::path dir = std::filesystem::temp_directory_path();
  const std::filesystem::path scrape = dir / ("kproxy-metrics-" + std::to_string(::getpid()) + ".txt");
  std::ofstream(scrape) << res->body;
  // Prints "name type" per family, and fails on any parse error. The client strips _total
  // from counter family names.
  const std::string script =
      "import sys\n"
      "from prometheus_client.parser import text_string_to_metric_families\n"
      "n = 0\n"
      "for f in text_string_to_metric_families(open(sys.argv[1]).read()):\n"
      "    assert f.samples, f.name\n"
      "    print(f.name, f.type, len(f.samples))\n"
      "    n += 1\n"
      "print('families', n)\n";
  const std::filesystem::path script_file = dir / ("kproxy-metrics-" + std::to_string(::getpid()) + ".py");
  std::ofstream(script_file) << script;
  const std::string cmd = python + " " + script_file.string() + " " + scrape.string() + " 2>&1";
  std::string out;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::array<char, 4096> buf{};
  while (std::fgets(buf.data(), buf.size(), pipe) != nullptr) out += buf.data();
  const int status = ::pclose(pipe);
  std::filesystem::remove(scrape);
  std::filesystem::remove(script_file);
  ASSERT_EQ(status, 0) << out;
  std::size_t types = 0;
  for (std::size_t at = 0; (at = res->body.find("# TYPE ", at)) != std::string::npos; ++at) ++types;
  EXPECT_NE(out.find("families " + std::to_string(types) + "\n"), std::string::npos) << out;
  for (const char* family : {
           "kubeproxy_sync_proxy_rules_duration_seconds histogram 18",  // 16 buckets, sum, count
           "kubeproxy_sync_full_proxy_rules_duration_seconds histogram 18",
           "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds gauge 1",
           "kubeproxy_sync_proxy_rules_no_local_endpoints_total gauge 2",
           "kubeproxy_sync_proxy_rules_endpoint_changes_pending gauge 1",
           "kubeproxy_sync_proxy_rules_service_changes counter",
           "kubeproxy_proxy_healthz counter 1",
           "kubeproxy_iptables_ct_state_invalid_dropped_packets counter 1",
           "kproxy_objects_rejected counter 1",
           "process_cpu_seconds counter 1",
           "process_resident_memory_bytes gauge 1",
           "process_start_time_seconds gauge 1",
       }) {
    EXPECT_NE(out.find(family), std::string::npos) << family << "\n" << out;
  }
}

TEST(ProcessMetrics, ReadTheProcFiles) {
  const std::filesystem::path root =
      std::filesystem::temp_directory_path() / ("kproxy-proc-" + std::to_string(::getpid()));
  std::filesystem::create_directories(root / "self" / "fd");
  std::ofstream(root / "stat") << "cpu  1 2 3\nbtime 1763000000\nprocesses 5\n";
  // Fields 14/15 utime/stime, 22 starttime, 23 vsize, 24 rss; the command has spaces and ')'.
  std::string stat = "42 (kproxy (x) y) S";
  for (int field = 4; field <= 30; ++field) {
    const char* v = field == 14   ? "250"
                    : field == 15 ? "50"
                    : field == 22 ? "1000"
                    : field == 23 ? "1048576"
                    : field == 24 ? "10"
                                  : "0";
    stat += std::string(" ") + v;
  }
  std::ofstream(root / "self" / "stat") << stat << "\n";
  std::ofstream(root / "self" / "limits")
      << "Limit                     Soft Limit           Hard Limit           Units\n"
         "Max open files            1024                 4096                 files\n"
         "Max address space         unlimited            unlimited            bytes\n";
  std::ofstream(root / "self" / "fd" / "0");
  std::ofstream(root / "self" / "fd" / "1");
  Registry registry;
  register_process_metrics(registry, (root / "self").string());
  const std::string text = registry.render();
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  for (const std::string& line : std::vector<std::string>{
           "process_cpu_seconds_total " + format_float(300 / ticks) + "\n",
           "process_max_fds 1024\n",
           "process_open_fds 2\n",
           "process_virtual_memory_bytes 1.048576e+06\n",
           "process_virtual_memory_max_bytes 1.8446744073709552e+19\n",
           "process_resident_memory_bytes " + format_float(10 * page) + "\n",
           "process_start_time_seconds " + format_float(1763000000 + 1000 / ticks) + "\n",
           "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n",
       }) {
    EXPECT_NE(text.find(line), std::string::npos) << line << text;
  }
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace kproxy::metrics
