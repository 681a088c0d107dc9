// Kubernetes JSON -> model values: the one place where API objects are validated.
//
//   auto result = kproxy::model::parse_service(item);   // an item of a LIST or WATCH event
//   for (const auto& r : result.rejections) spdlog::warn("{}; skipping it", r.message());
//   if (result.value) tracker.on_service(*result.value);
//
// None of these functions throws: parser exceptions (and std::bad_alloc) are caught here
// and reported as rejections. Unknown fields are ignored, for forward compatibility; JSON null
// is read as "absent", as Go's decoder does. docs/model.md lists every rule and where kproxy
// is stricter than kube-proxy.
#pragma once

#include <cstddef>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "kproxy/model/endpoint_slice.h"
#include "kproxy/model/json_value.h"
#include "kproxy/model/node.h"
#include "kproxy/model/rejection.h"
#include "kproxy/model/service.h"

namespace kproxy::model {

// Limits. Where the API server has one, kproxy uses the same number, so nothing the API
// accepts is refused; the rest bound the work hostile input can cause.
//
// The API server's maximum request body (apiserver options, MaxRequestBodyBytes = 3 MiB).
// etcd stores at most 1.5 MiB per object, so no real object comes near it.
inline constexpr std::size_t kMaxObjectBytes = 3 * 1024 * 1024;
// JSON nesting of the text entry points (the same bound as kproxy::yaml_documents_to_json).
// The deepest part of a real Service, Node or slice is managedFields, about ten levels.
inline constexpr int kMaxJsonDepth = 64;
// pkg/apis/core/validation: clusterIPs and ipFamilies hold at most one entry per family.
inline constexpr std::size_t kMaxClusterIPs = 2;
inline constexpr std::size_t kMaxIPFamilies = 2;
inline constexpr std::size_t kMaxPodCIDRs = 2;
// pkg/apis/discovery/validation: maxEndpoints, maxAddresses, maxPorts (20000 since
// kubernetes#99795, 1.21 and backports; it was 100 before), maxZoneHints.
inline constexpr std::size_t kMaxSliceEndpoints = 1000;
inline constexpr std::size_t kMaxEndpointAddresses = 100;
inline constexpr std::size_t kMaxSlicePorts = 20000;
inline constexpr std::size_t kMaxEndpointHints = 8;
// A rejection's value is cut to this many characters ("..." marks the cut).
inline constexpr std::size_t kMaxRejectedValueChars = 64;
// Rejections kept per object; the rest are only counted (ParseResult::more_rejections).
// Without a cap, 3 MiB of ["",""...] would become a million rejections and log lines.
inline constexpr std::size_t kMaxRejectionsPerObject = 100;

// From a JSON value: an item of a LIST response or the object of a WATCH event, parsed from
// its text (JsonValue::parse, the fast path), or an nlohmann tree. Both give the same result.
ParseResult<Service> parse_service(const JsonValue& object) noexcept;
ParseResult<EndpointSlice> parse_endpoint_slice(const JsonValue& object) noexcept;
ParseResult<Node> parse_node(const JsonValue& object) noexcept;
ParseResult<Service> parse_service(const nlohmann::json& object) noexcept;
ParseResult<EndpointSlice> parse_endpoint_slice(const nlohmann::json& object) noexcept;
ParseResult<Node> parse_node(const nlohmann::json& object) noexcept;

// From the JSON text of one object. Refuses input over kMaxObjectBytes or nested deeper than
// kMaxJsonDepth before parsing it.
ParseResult<Service> parse_service_json(std::string_view text) noexcept;
ParseResult<EndpointSlice> parse_endpoint_slice_json(std::string_view text) noexcept;
ParseResult<Node> parse_node_json(std::string_view text) noexcept;

}  // namespace kproxy::model
