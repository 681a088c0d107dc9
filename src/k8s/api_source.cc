#include "kproxy/k8s/api_source.h"

namespace kproxy::k8s {

ResourceSpec services_resource() { return {"Service", "/api/v1/services", kServiceLabelSelector, ""}; }

ResourceSpec endpoint_slices_resource() {
  return {"EndpointSlice", "/apis/discovery.k8s.io/v1/endpointslices", kServiceLabelSelector, ""};
}

ResourceSpec node_resource(const std::string& node_name) {
  return {"Node", "/api/v1/nodes", "", "metadata.name=" + node_name};
}

ApiSource::ApiSource(ClientConfig config, std::string node_name, Sinks sinks, ReflectorOptions reflector_options,
                     ApiClientOptions client_options) {
  // One client (one keep-alive connection) per reflector: a watch holds its connection.
  reflectors_.push_back(std::make_unique<Reflector>(make_api_client(config, client_options), services_resource(),
                                                    sinks.services, reflector_options));
  reflectors_.push_back(std::make_unique<Reflector>(make_api_client(config, client_options),
                                                    endpoint_slices_resource(), sinks.endpoint_slices,
                                                    reflector_options));
  reflectors_.push_back(std::make_unique<Reflector>(make_api_client(config, client_options),
                                                    node_resource(node_name), sinks.nodes, reflector_options));
}

void ApiSource::start() {
  for (auto& r : reflectors_) {
    threads_.emplace_back([&r](std::stop_token stop) { r->run(stop); });
  }
}

void ApiSource::stop() {
  for (auto& t : threads_) t.request_stop();
  threads_.clear();  // jthread joins
}

}  // namespace kproxy::k8s
