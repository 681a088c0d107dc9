// Synthetic object sets for the fake API server's executable and the scale benchmark:
// N Services, each with M EndpointSlices of K ready endpoints, plus nodes.
#pragma once

#include <vector>

#include <nlohmann/json.hpp>

namespace kproxy::fakeapi {

struct GeneratorOptions {
  int services = 0;
  int slices_per_service = 1;
  int endpoints_per_slice = 10;
  int nodes = 1;
  int namespaces = 10;  // services are spread over ns-0 .. ns-(n-1)
};

// Services "svc-<i>" (ClusterIP 10.<x>.<y>.<z>, one TCP port 80 -> 8080) and slices
// "svc-<i>-<j>" labelled kubernetes.io/service-name=svc-<i>, endpoints 172.16.x.y on nodes
// "node-<n>"; nodes "node-<n>" with an InternalIP. Deterministic.
std::vector<nlohmann::json> generate_objects(const GeneratorOptions& options);

}  // namespace kproxy::fakeapi
