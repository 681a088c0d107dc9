#include "fakeapi/resources.h"

namespace kproxy::fakeapi {

const std::vector<ResourceType>& resource_types() {
  static const std::vector<ResourceType> kTypes = {
      {"services", "service", "", "v1", "Service", true, {"svc"}, {"spec.clusterIP", "spec.type"}},
      {"endpoints", "endpoints", "", "v1", "Endpoints", true, {"ep"}, {}},
      {"nodes", "node", "", "v1", "Node", false, {"no"}, {"spec.unschedulable"}},
      {"namespaces", "namespace", "", "v1", "Namespace", false, {"ns"}, {"status.phase"}},
      {"endpointslices", "endpointslice", "discovery.k8s.io", "v1", "EndpointSlice", true, {}, {}},
      {"servicecidrs", "servicecidr", "networking.k8s.io", "v1", "ServiceCIDR", false, {}, {}},
  };
  return kTypes;
}

const ResourceType* find_resource(std::string_view group, std::string_view version, std::string_view name) {
  for (const auto& t : resource_types()) {
    if (t.group == group && t.version == version && t.name == name) return &t;
  }
  return nullptr;
}

const ResourceType* find_resource(std::string_view name) {
  for (const auto& t : resource_types()) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

}  // namespace kproxy::fakeapi
