// kproxy's entry point: wiring only. Parse the command line, set up logging, report the
// effective configuration, start the source of cluster state (the API server's informers,
// or --manifests), and run until SIGTERM or SIGINT. The proxier and the servers are wired in
// here by later issues; until then the informers' events are logged.
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <optional>
#include <span>
#include <thread>

#include "kproxy/config/command_line.h"
#include "kproxy/k8s/api_source.h"
#include "kproxy/k8s/event_queue.h"
#include "kproxy/k8s/informer.h"
#include "kproxy/k8s/manifest_source.h"
#include "kproxy/log.h"
#include "kproxy/version.h"

namespace {

// Blocks SIGTERM and SIGINT in this thread and every thread it starts, so that they stay
// pending until main() collects them with sigwait().
sigset_t block_termination_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

int write_config(const kproxy::config::CommandLine& cl) {
  std::ofstream out(cl.write_config_to, std::ios::trunc);
  out << kproxy::config::to_yaml(cl.config);
  out.close();
  if (!out) {
    spdlog::error("could not write the configuration to {}; exiting", cl.write_config_to);
    return 1;
  }
  spdlog::info("wrote the configuration to {}; exiting", cl.write_config_to);
  return 0;
}

// Until the proxier lands (issue 4), the consumer of the informers' events logs them:
// one line per object at --v=4, a summary when each kind has synced.
template <typename T>
class LoggingHandler : public kproxy::k8s::InformerHandler<T> {
 public:
  using Ptr = typename kproxy::k8s::InformerHandler<T>::Ptr;
  explicit LoggingHandler(const char* kind) : kind_(kind) {}
  void on_add(const Ptr& o) override {
    ++count_;
    if (kproxy::log::v(4)) spdlog::info("{} {} added", kind_, o->meta.key());
  }
  void on_update(const Ptr&, const Ptr& o) override {
    if (kproxy::log::v(4)) spdlog::info("{} {} updated", kind_, o->meta.key());
  }
  void on_delete(const Ptr& o) override {
    --count_;
    if (kproxy::log::v(4)) spdlog::info("{} {} deleted", kind_, o->meta.key());
  }
  void on_synced() override { spdlog::info("{}s synced: {} usable objects", kind_, count_); }

 private:
  const char* kind_;
  long count_ = 0;
};

// kube-proxy's node name: --hostname-override, else the host name, lower-cased.
std::string node_name(const kproxy::config::KubeProxyConfiguration& config) {
  std::string name = config.hostname_override;
  if (name.empty()) {
    char buf[256] = {};
    gethostname(buf, sizeof buf - 1);
    name = buf;
  }
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  return name;
}

}  // namespace

int main(int argc, char** argv) {
  const sigset_t termination = block_termination_signals();

  auto parsed = kproxy::config::parse_command_line(std::span<const char* const>(argv, static_cast<std::size_t>(argc)));
  if (!parsed) {
    std::fprintf(stderr, "%s\n", parsed.error().c_str());
    return 1;
  }
  const kproxy::config::CommandLine& cl = *parsed;
  if (cl.exit_after_output) {
    std::fputs(cl.output.c_str(), stdout);
    return 0;
  }

  kproxy::log::init(cl.config.logging.verbosity);
  spdlog::info("kproxy v{} starting", kproxy::kVersion);
  if (auto ignored = kproxy::config::ignored_flags_warning(cl); !ignored.empty()) spdlog::warn("{}", ignored);
  for (const auto& warning : cl.warnings) spdlog::warn("{}", warning);
  if (kproxy::log::v(2)) {
    std::string yaml = kproxy::config::to_yaml(cl.config);
    if (!yaml.empty() && yaml.back() == '\n') yaml.pop_back();
    spdlog::info("effective configuration:\n{}", yaml);
  }

  if (!cl.write_config_to.empty()) return write_config(cl);
  if (cl.cleanup) {
    spdlog::info("--cleanup: kproxy has installed no rules yet (no proxier in this build); exiting");
    return 0;
  }
  if (cl.init_only) {
    spdlog::info("--init-only: no privileged initialization to do yet; exiting");
    return 0;
  }

  namespace k8s = kproxy::k8s;
  namespace model = kproxy::model;
  const std::string node = node_name(cl.config);
  k8s::EventQueue queue;
  LoggingHandler<model::Service> services("Service");
  LoggingHandler<model::EndpointSlice> slices("EndpointSlice");
  LoggingHandler<model::Node> nodes("Node");
  k8s::Informer<model::Service> service_informer("Service", model::parse_service, queue, services);
  k8s::Informer<model::EndpointSlice> slice_informer("EndpointSlice", model::parse_endpoint_slice, queue, slices);
  k8s::Informer<model::Node> node_informer("Node", model::parse_node, queue, nodes);

  std::optional<k8s::ManifestSource> manifests;
  std::optional<k8s::ApiSource> api;
  std::jthread manifest_thread;
  if (!cl.config.kproxy.manifests_dir.empty()) {
    manifests.emplace(cl.config.kproxy.manifests_dir, node, k8s::ManifestSource::Sinks{service_informer, slice_informer, node_informer});
    // Open here so that an unreadable directory is a startup error, then follow it.
    if (auto s = manifests->open(); !s.ok()) {
      std::fprintf(stderr, "kproxy: --manifests: %s\n", s.message().c_str());
      return 1;
    }
    spdlog::info("reading Services, EndpointSlices and Node {} from {}", node, cl.config.kproxy.manifests_dir);
    manifest_thread = std::jthread([&manifests](std::stop_token stop) {
      if (auto s = manifests->run(stop); !s.ok()) spdlog::error("manifests: {}; no longer following changes", s.message());
    });
  } else {
    auto client = k8s::resolve_client_config(cl.config.client_connection.kubeconfig, cl.master);
    if (!client) {
      std::fprintf(stderr, "kproxy: %s\n", client.error().c_str());
      return 1;
    }
    spdlog::info("watching Services, EndpointSlices and Node {} at {} ({})", node, client->server_url(),
                 client->source);
    api.emplace(*client, node, k8s::ApiSource::Sinks{service_informer, slice_informer, node_informer});
    api->start();
  }
  // The one consumer of the informers' events (the proxier's thread, once it exists).
  std::jthread consumer([&queue](std::stop_token stop) {
    while (!stop.stop_requested()) queue.run_until(stop, k8s::EventQueue::Clock::now() + std::chrono::seconds(1));
  });

  spdlog::info("running (the proxier arrives with issue 4: nothing is programmed yet); waiting for SIGTERM or SIGINT");
  int signal = 0;
  if (sigwait(&termination, &signal) != 0) {
    spdlog::error("sigwait failed; exiting");
    return 1;
  }
  spdlog::info("received {}; exiting", signal == SIGTERM ? "SIGTERM" : "SIGINT");
  manifest_thread = {};
  if (api) api->stop();
  consumer = {};
  return 0;
}
