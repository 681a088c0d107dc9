// kproxy-fakeapi: serves the fake Kubernetes API with a generated or file-loaded object set
// until SIGINT/SIGTERM. For benchmarks and demos; see docs/fakeapi.md.
//
//   kproxy-fakeapi --port 6443 --services 10000 --slices-per-service 1
//                  --endpoints-per-slice 10 --token bench --kubeconfig /tmp/fake.kubeconfig
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>

#include "fakeapi/fake_api_server.h"
#include "fakeapi/object_generator.h"
#include "kproxy/yaml_json.h"

int main(int argc, char** argv) {
  using kproxy::fakeapi::FakeApiServer;
  using kproxy::fakeapi::FakeApiServerOptions;

  FakeApiServerOptions options;
  kproxy::fakeapi::GeneratorOptions gen;
  bool plain_http = false;
  bool no_client_certs = false;
  std::vector<std::string> tokens;
  std::vector<std::string> object_files;
  std::string kubeconfig;
  int bookmark_ms = 0;

  CLI::App app("Fake Kubernetes API server (services, endpointslices, nodes) for kproxy tests and benchmarks");
  app.add_option("--host", options.host, "address to listen on")->capture_default_str();
  app.add_option("--port", options.port, "port (0 = ephemeral, printed on stdout)")->capture_default_str();
  app.add_flag("--plain-http", plain_http, "serve plain HTTP instead of HTTPS");
  app.add_option("--cert", options.cert_file, "server certificate (PEM)")->capture_default_str();
  app.add_option("--key", options.key_file, "server key (PEM)")->capture_default_str();
  app.add_option("--client-ca", options.client_ca_file, "CA for client certificates")->capture_default_str();
  app.add_flag("--no-client-certs", no_client_certs, "do not request client certificates");
  app.add_option("--token", tokens, "accepted bearer token (repeatable); none = no authentication");
  app.add_option("--services", gen.services, "generated Services")->capture_default_str();
  app.add_option("--slices-per-service", gen.slices_per_service, "EndpointSlices per Service")->capture_default_str();
  app.add_option("--endpoints-per-slice", gen.endpoints_per_slice, "endpoints per EndpointSlice")->capture_default_str();
  app.add_option("--nodes", gen.nodes, "generated Nodes")->capture_default_str();
  app.add_option("--namespaces", gen.namespaces, "namespaces the Services are spread over")->capture_default_str();
  app.add_option("--objects", object_files, "JSON or YAML file of objects (multi-document, Lists allowed); repeatable")
      ->check(CLI::ExistingFile);
  app.add_option("--threads", options.threads, "server worker threads (one per open watch)")->capture_default_str();
  app.add_option("--bookmark-interval-ms", bookmark_ms, "periodic BOOKMARK interval (0 = none)")->capture_default_str();
  app.add_flag("--paginate-rv0", options.paginate_rv0, "honour limit for resourceVersion=0 lists (watch cache off)");
  app.add_flag("--log-requests", options.log_requests, "log every request on stderr");
  app.add_option("--kubeconfig", kubeconfig, "write a kubeconfig for this server to this path");
  CLI11_PARSE(app, argc, argv);

  options.tls = !plain_http;
  if (no_client_certs) options.client_ca_file.clear();
  options.tokens = {tokens.begin(), tokens.end()};
  options.require_auth = !tokens.empty();
  options.bookmark_interval = std::chrono::milliseconds(bookmark_ms);

  // Block the stop signals before any thread starts so that only sigwait below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  FakeApiServer server(options);
  std::vector<nlohmann::json> objects = kproxy::fakeapi::generate_objects(gen);
  for (const auto& file : object_files) {
    std::ifstream in(file);
    std::stringstream text;
    text << in.rdbuf();
    auto docs = kproxy::yaml_documents_to_json(text.str());
    if (!docs) {
      std::cerr << "kproxy-fakeapi: " << file << ": " << docs.error() << "\n";
      return 2;
    }
    objects.insert(objects.end(), docs->begin(), docs->end());
  }
  if (auto s = server.load(objects); !s.ok()) {
    std::cerr << "kproxy-fakeapi: " << s.message() << "\n";
    return 2;
  }
  if (auto s = server.start(); !s.ok()) {
    std::cerr << "kproxy-fakeapi: " << s.message() << "\n";
    return 1;
  }
  if (!kubeconfig.empty()) {
    if (auto s = server.write_kubeconfig(kubeconfig); !s.ok()) {
      std::cerr << "kproxy-fakeapi: " << s.message() << "\n";
      return 1;
    }
  }
  std::cout << "kproxy-fakeapi listening on " << server.url() << " (" << objects.size() << " objects, resourceVersion "
            << server.resource_version() << (options.require_auth ? "" : ", no authentication") << ")" << std::endl;

  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::cerr << "kproxy-fakeapi: signal " << sig << ", stopping (" << server.request_count() << " requests served)\n";
  server.stop();
  return 0;
}
