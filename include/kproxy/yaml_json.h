// YAML (and therefore JSON, a subset of it) to nlohmann::json, the way Kubernetes tools
// read manifests (sigs.k8s.io/yaml): plain scalars that look like null, booleans or numbers
// get those JSON types, quoted scalars stay strings. One JSON value per YAML document.
#pragma once

#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "kproxy/status.h"

namespace kproxy {

// Every document of a multi-document stream ("---" separated); empty documents are dropped.
// The error message carries the line and column of a syntax error.
Expected<std::vector<nlohmann::json>> yaml_documents_to_json(std::string_view text);

}  // namespace kproxy
