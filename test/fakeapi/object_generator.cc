#include "fakeapi/object_generator.h"

#include <string>

namespace kproxy::fakeapi {

using json = nlohmann::json;

namespace {

std::string ipv4(std::uint32_t v) {
  return std::to_string((v >> 24) & 0xFF) + "." + std::to_string((v >> 16) & 0xFF) + "." +
         std::to_string((v >> 8) & 0xFF) + "." + std::to_string(v & 0xFF);
}

}  // namespace

std::vector<json> generate_objects(const GeneratorOptions& o) {
  std::vector<json> out;
  int nodes = o.nodes > 0 ? o.nodes : 1;
  int namespaces = o.namespaces > 0 ? o.namespaces : 1;
  for (int n = 0; n < nodes; ++n) {
    out.push_back({{"kind", "Node"},
                   {"apiVersion", "v1"},
                   {"metadata", {{"name", "node-" + std::to_string(n)},
                                 {"labels", {{"kubernetes.io/hostname", "node-" + std::to_string(n)},
                                             {"topology.kubernetes.io/zone", "zone-" + std::to_string(n % 3)}}}}},
                   {"spec", {{"podCIDR", "10.244." + std::to_string(n % 256) + ".0/24"},
                             {"podCIDRs", {"10.244." + std::to_string(n % 256) + ".0/24"}}}},
                   {"status", {{"addresses", json::array({{{"type", "InternalIP"}, {"address", ipv4(0xC0A80000u + 10 + n)}},
                                                          {{"type", "Hostname"}, {"address", "node-" + std::to_string(n)}}})}}}});
  }
  std::uint32_t endpoint_ip = 0xAC100000u + 1;  // 172.16.0.1
  for (int i = 0; i < o.services; ++i) {
    std::string name = "svc-" + std::to_string(i);
    std::string ns = "ns-" + std::to_string(i % namespaces);
    out.push_back({{"kind", "Service"},
                   {"apiVersion", "v1"},
                   {"metadata", {{"name", name}, {"namespace", ns}, {"labels", {{"app", name}}}}},
                   {"spec", {{"type", "ClusterIP"},
                             {"clusterIP", ipv4(0x0A600000u + 1 + static_cast<std::uint32_t>(i))},
                             {"clusterIPs", {ipv4(0x0A600000u + 1 + static_cast<std::uint32_t>(i))}},
                             {"ipFamilies", {"IPv4"}},
                             {"ipFamilyPolicy", "SingleStack"},
                             {"selector", {{"app", name}}},
                             {"sessionAffinity", "None"},
                             {"internalTrafficPolicy", "Cluster"},
                             {"ports", json::array({{{"name", "http"}, {"protocol", "TCP"}, {"port", 80}, {"targetPort", 8080}}})}}},
                   {"status", {{"loadBalancer", json::object()}}}});
    for (int j = 0; j < o.slices_per_service; ++j) {
      json endpoints = json::array();
      for (int k = 0; k < o.endpoints_per_slice; ++k) {
        int node = (i + k) % nodes;
        endpoints.push_back({{"addresses", {ipv4(endpoint_ip++)}},
                             {"conditions", {{"ready", true}, {"serving", true}, {"terminating", false}}},
                             {"nodeName", "node-" + std::to_string(node)},
                             {"zone", "zone-" + std::to_string(node % 3)}});
      }
      out.push_back({{"kind", "EndpointSlice"},
                     {"apiVersion", "discovery.k8s.io/v1"},
                     {"metadata", {{"name", name + "-" + std::to_string(j)},
                                   {"namespace", ns},
                                   {"labels", {{"kubernetes.io/service-name", name},
                                               {"endpointslice.kubernetes.io/managed-by", "endpointslice-controller.k8s.io"}}}}},
                     {"addressType", "IPv4"},
                     {"endpoints", endpoints},
                     {"ports", json::array({{{"name", "http"}, {"protocol", "TCP"}, {"port", 8080}}})}});
    }
  }
  return out;
}

}  // namespace kproxy::fakeapi
