// Scale benchmark for the API side (issue 3): list and watch N Services and N EndpointSlices
// of E endpoints each from the fake API server, and report
//   - time to synced (both informers have delivered their first list to the consumer),
//   - bytes received, peak RSS of this process (the server runs as a child process),
//   - the baseline: the time to merely parse the same list bodies with nlohmann::json,
//     measured in the same run, and the ratio synced / baseline (target: <= 2).
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "kproxy/k8s/api_client.h"
#include "kproxy/k8s/api_source.h"
#include "kproxy/k8s/informer.h"

using namespace kproxy;
using Clock = std::chrono::steady_clock;

namespace {

template <typename T>
struct CountingHandler : k8s::InformerHandler<T> {
  using Ptr = typename k8s::InformerHandler<T>::Ptr;
  void on_add(const Ptr&) override { ++adds; }
  void on_update(const Ptr&, const Ptr&) override { ++updates; }
  void on_delete(const Ptr&) override {}
  void on_synced() override { synced = true; }
  std::atomic<std::size_t> adds{0}, updates{0};
  std::atomic<bool> synced{false};
};

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

long peak_rss_kib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

struct Child {
  pid_t pid = -1;
  int port = 0;
  ~Child() {
    if (pid > 0) {
      kill(pid, SIGTERM);
      waitpid(pid, nullptr, 0);
    }
  }
};

bool start_fakeapi(Child& child, int services, int endpoints) {
  int out[2];
  if (pipe(out) != 0) return false;
  child.pid = fork();
  if (child.pid == 0) {
    dup2(out[1], 1);
    close(out[0]);
    std::string s = std::to_string(services), e = std::to_string(endpoints);
    execl(KPROXY_FAKEAPI_BINARY, KPROXY_FAKEAPI_BINARY, "--port", "0", "--services", s.c_str(),
          "--slices-per-service", "1", "--endpoints-per-slice", e.c_str(), "--nodes", "1", "--token", "bench",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  // The fake prints its port on the first line of stdout once it serves.
  std::string line;
  char c;
  while (read(out[0], &c, 1) == 1 && c != '\n') line += c;
  close(out[0]);
  // "kproxy-fakeapi listening on https://127.0.0.1:<port> (...)"
  auto scheme = line.find("://");
  auto colon = scheme == std::string::npos ? scheme : line.find(':', scheme + 3);
  if (colon != std::string::npos) child.port = std::atoi(line.c_str() + colon + 1);
  return child.port > 0;
}

}  // namespace

int main(int argc, char** argv) {
  int services = 10000, endpoints = 10, port = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--services")) services = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--endpoints")) endpoints = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--port")) port = std::atoi(argv[i + 1]);  // an already running kproxy-fakeapi
  }
  log::init(0);
  spdlog::set_level(spdlog::level::warn);

  Child fake;
  if (port) {
    fake.port = port;
  } else if (!start_fakeapi(fake, services, endpoints)) {
    std::fprintf(stderr, "could not start %s\n", KPROXY_FAKEAPI_BINARY);
    return 1;
  }
  k8s::ClientConfig config;
  config.host = "127.0.0.1";
  config.port = fake.port;
  config.insecure_skip_tls_verify = true;  // the fixture CA would do; the cost is the same
  config.token = "bench";
  const long rss_before = peak_rss_kib();

  // 1. kproxy: list + watch through the informers until both have synced on the consumer.
  k8s::EventQueue queue;
  CountingHandler<model::Service> svc;
  CountingHandler<model::EndpointSlice> eps;
  CountingHandler<model::Node> node;
  k8s::Informer<model::Service> si("Service", model::parse_service, queue, svc);
  k8s::Informer<model::EndpointSlice> ei("EndpointSlice", model::parse_endpoint_slice, queue, eps);
  k8s::Informer<model::Node> ni("Node", model::parse_node, queue, node);
  const double cpu0 = cpu_seconds();
  auto t0 = Clock::now();
  k8s::ApiSource source(config, "node-0", {si, ei, ni});
  source.start();
  std::stop_source never;
  while (!(svc.synced && eps.synced)) queue.run_until(never.get_token(), Clock::now() + std::chrono::milliseconds(50));
  const auto synced = Clock::now() - t0;
  const double sync_cpu = cpu_seconds() - cpu0;
  std::uint64_t bytes = 0;
  for (const auto& r : source.reflectors()) bytes += r->stats().bytes_received.load();
  const long rss_synced = peak_rss_kib();
  source.stop();

  // 2. Baseline, same run: fetch the same list bodies and time only parsing them.
  auto client = k8s::make_api_client(config);
  auto f0 = Clock::now();
  auto services_body = client->get("/api/v1/services?resourceVersion=0&limit=500");
  auto slices_body = client->get("/apis/discovery.k8s.io/v1/endpointslices?resourceVersion=0&limit=500");
  if (!services_body || !slices_body) {
    std::fprintf(stderr, "baseline fetch failed\n");
    return 1;
  }
  const auto fetch = Clock::now() - f0;
  auto p0 = Clock::now();
  auto j1 = nlohmann::json::parse(services_body->body);
  auto j2 = nlohmann::json::parse(slices_body->body);
  const auto parse = Clock::now() - p0;
  auto m0 = Clock::now();
  std::size_t models = 0;
  for (const auto& item : j1["items"]) models += model::parse_service(item).ok();
  for (const auto& item : j2["items"]) models += model::parse_endpoint_slice(item).ok();
  const auto model_time = Clock::now() - m0;

  std::printf("services=%d endpoint_slices=%d endpoints_per_slice=%d\n", services, services, endpoints);
  std::printf("delivered: %zu services, %zu slices\n", svc.adds.load(), eps.adds.load());
  std::printf("bytes received: %.1f MiB (list bodies: %.1f MiB)\n", static_cast<double>(bytes) / (1 << 20),
              static_cast<double>(services_body->body.size() + slices_body->body.size()) / (1 << 20));
  std::printf("time to synced: %.3f s\n", seconds(synced));
  std::printf("baseline (nlohmann::json::parse of the same bodies): %.3f s\n", seconds(parse));
  std::printf("for reference: fetching both bodies (one client, sequential) %.3f s; nlohmann trees -> model of %zu "
              "items %.3f s\n",
              seconds(fetch), models, seconds(model_time));
  std::printf("ratio synced/baseline: %.2f (target <= 2)\n", seconds(synced) / seconds(parse));
  std::printf("kproxy CPU time until synced: %.3f s, ratio to baseline %.2f (the rest of the wall time is the server,\n"
              "  which shares this machine's cores)\n",
              sync_cpu, sync_cpu / seconds(parse));
  std::printf("peak RSS: before %.1f MiB, at synced %.1f MiB (target < 200 MiB)\n",
              static_cast<double>(rss_before) / 1024, static_cast<double>(rss_synced) / 1024);
  return 0;
}
