// The cluster as kube-proxy watches it: Services, EndpointSlices and this node's Node,
// each through its own reflector thread, feeding the informers (kubernetes-api notes §4).
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "kproxy/k8s/api_client.h"
#include "kproxy/k8s/client_config.h"
#include "kproxy/k8s/reflector.h"

namespace kproxy::k8s {

// Services and EndpointSlices that another proxy owns or that are headless are not ours
// (service.kubernetes.io/service-proxy-name, service.kubernetes.io/headless).
inline constexpr const char* kServiceLabelSelector =
    "!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless";

ResourceSpec services_resource();
ResourceSpec endpoint_slices_resource();
ResourceSpec node_resource(const std::string& node_name);

class ApiSource {
 public:
  struct Sinks {
    ReflectorSink& services;
    ReflectorSink& endpoint_slices;
    ReflectorSink& nodes;
  };

  ApiSource(ClientConfig config, std::string node_name, Sinks sinks, ReflectorOptions reflector_options = {},
            ApiClientOptions client_options = {});
  ~ApiSource() { stop(); }

  // One thread per reflector; returns at once.
  void start();
  // Stops the reflectors (cancelling blocked requests) and joins them.
  void stop();

  const std::vector<std::unique_ptr<Reflector>>& reflectors() const { return reflectors_; }

 private:
  std::vector<std::unique_ptr<Reflector>> reflectors_;
  std::vector<std::jthread> threads_;
};

}  // namespace kproxy::k8s
