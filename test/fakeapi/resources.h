// The resource types the fake API server serves, as a table: the same facts the real
// apiserver publishes in discovery (/api/v1, /apis/<group>/<version>), plus the field
// labels each type accepts in a fieldSelector.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace kproxy::fakeapi {

struct ResourceType {
  std::string name;           // plural, as in the URL: "services"
  std::string singular;       // "service"
  std::string group;          // "" for the core group
  std::string version;        // "v1"
  std::string kind;           // "Service"
  bool namespaced = true;
  std::vector<std::string> short_names;
  // Field labels accepted by fieldSelector besides metadata.name (and metadata.namespace for
  // namespaced types); from each type's GetAttrs/field label conversion funcs upstream
  // (pkg/registry/core/service/strategy.go, pkg/apis/core/v1/conversion.go).
  std::vector<std::string> extra_field_labels;

  // "v1" or "discovery.k8s.io/v1".
  std::string api_version() const { return group.empty() ? version : group + "/" + version; }
  std::string list_kind() const { return kind + "List"; }
  // "/api/v1" or "/apis/discovery.k8s.io/v1".
  std::string path_prefix() const {
    return group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
  }
};

// Every served type: services, endpoints, nodes, namespaces (core v1), endpointslices
// (discovery.k8s.io/v1), servicecidrs (networking.k8s.io/v1).
const std::vector<ResourceType>& resource_types();

// Looks a type up by its plural name ("services"); group "" is the core group. nullptr if unknown.
const ResourceType* find_resource(std::string_view group, std::string_view version, std::string_view name);
// By plural name only (names are unique across the served groups).
const ResourceType* find_resource(std::string_view name);

}  // namespace kproxy::fakeapi
