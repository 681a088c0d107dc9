// libFuzzer target: arbitrary bytes into the three text entry points of the API model.
//
// Besides "no crash, no leak, no undefined behaviour" (ASan/UBSan in the sanitizer build), it
// checks what validation promises: every rejection is complete, and every accepted value
// holds only what the rules allow. A broken promise aborts, so libFuzzer keeps the input.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "kproxy/model/parse.h"

namespace {

using namespace kproxy;
using namespace kproxy::model;

#define FUZZ_CHECK(cond)                                                      \
  do {                                                                        \
    if (!(cond)) {                                                            \
      std::fprintf(stderr, "%s:%d: broken promise: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                           \
    }                                                                         \
  } while (0)

void check_rejections(const std::vector<Rejection>& rejections) {
  for (const auto& r : rejections) {
    FUZZ_CHECK(!r.kind.empty());
    FUZZ_CHECK(!r.object.empty());
    FUZZ_CHECK(!r.detail.empty());
    // Only whole-input refusals have no field.
    FUZZ_CHECK(!r.field.empty() || r.reason == RejectReason::kTooLarge || r.reason == RejectReason::kMalformed ||
               r.reason == RejectReason::kWrongType);
    FUZZ_CHECK(!to_string(r.reason).empty());
    FUZZ_CHECK(!r.message().empty());
    // Values are cut: the quotes, the limit, "..." and escapes of at most 8 bytes each.
    FUZZ_CHECK(r.value.size() <= 2 + 3 + 8 * kMaxRejectedValueChars);
  }
}

void check_ip(const IpAddress& ip, bool special_allowed) {
  FUZZ_CHECK(!ip.is_ipv4_mapped());
  if (!special_allowed) {
    FUZZ_CHECK(!ip.is_unspecified() && !ip.is_loopback() && !ip.is_link_local() && !ip.is_multicast());
  }
  // Canonical text parses back to the same address.
  auto again = IpAddress::parse(ip.to_string());
  FUZZ_CHECK(again.ok() && *again == ip);
}

void check_service(const Service& svc) {
  FUZZ_CHECK(!svc.meta.name.empty() && !svc.meta.ns.empty());
  FUZZ_CHECK(svc.cluster_ips.size() <= kMaxClusterIPs);
  FUZZ_CHECK(!svc.headless || svc.cluster_ips.empty());
  if (svc.cluster_ips.size() == 2) FUZZ_CHECK(svc.cluster_ips[0].family() != svc.cluster_ips[1].family());
  FUZZ_CHECK(svc.ip_families.size() >= svc.cluster_ips.size());
  for (std::size_t i = 0; i < svc.cluster_ips.size(); ++i) {
    check_ip(svc.cluster_ips[i], false);
    FUZZ_CHECK(svc.ip_families[i] == svc.cluster_ips[i].family());
  }
  std::set<std::string> names;
  for (const auto& p : svc.ports) {
    FUZZ_CHECK(p.port != 0);
    FUZZ_CHECK(names.insert(p.name).second);
  }
  for (const auto& ip : svc.external_ips) check_ip(ip, false);
  for (const auto& lb : svc.load_balancer_ingress) check_ip(lb.ip, false);
  FUZZ_CHECK(svc.session_affinity_timeout_seconds >= 1 &&
             svc.session_affinity_timeout_seconds <= kMaxSessionAffinityTimeoutSeconds);
}

void check_slice(const EndpointSlice& slice) {
  FUZZ_CHECK(!slice.meta.name.empty() && !slice.service_name.empty());
  FUZZ_CHECK(slice.endpoints.size() <= kMaxSliceEndpoints);
  if (slice.address_type == AddressType::kFQDN) FUZZ_CHECK(slice.endpoints.empty());
  for (const auto& e : slice.endpoints) {
    check_ip(e.address, false);
    FUZZ_CHECK(e.address.is_v4() == (slice.address_type == AddressType::kIPv4));
    FUZZ_CHECK(e.zone_hints.size() <= kMaxEndpointHints && e.node_hints.size() <= kMaxEndpointHints);
  }
  std::set<std::string> names;
  for (const auto& p : slice.ports) {
    FUZZ_CHECK(p.port != 0);
    FUZZ_CHECK(names.insert(p.name).second);
  }
}

void check_node(const Node& node) {
  FUZZ_CHECK(!node.meta.name.empty() && node.meta.ns.empty());
  FUZZ_CHECK(node.pod_cidrs.size() <= kMaxPodCIDRs);
  for (const auto& a : node.addresses) check_ip(a.ip, true);
  for (const auto& t : node.taints) FUZZ_CHECK(!t.key.empty());
}

}  // namespace

template <typename T>
void same_result(const ParseResult<T>& text, const ParseResult<T>& tree) {
  FUZZ_CHECK(text.value == tree.value);
  FUZZ_CHECK(text.rejections == tree.rejections);
  FUZZ_CHECK(text.more_rejections == tree.more_rejections);
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  auto service = parse_service_json(text);
  check_rejections(service.rejections);
  if (service.value) check_service(*service.value);

  auto slice = parse_endpoint_slice_json(text);
  check_rejections(slice.rejections);
  if (slice.value) check_slice(*slice.value);

  auto node = parse_node_json(text);
  check_rejections(node.rejections);
  if (node.value) check_node(*node.value);

  // The text path (simdjson) and the tree path (nlohmann) read JSON the same way
  // (docs/model.md, "JSON semantics"): same values, byte-identical rejections.
  // Text over the size or depth limit is refused before parsing; a tree is not.
  if (!service.rejections.empty() && service.rejections[0].reason == RejectReason::kTooLarge &&
      service.rejections[0].field.empty()) {
    return 0;
  }
  nlohmann::json tree = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (tree.is_discarded()) return 0;
  same_result(service, parse_service(tree));
  same_result(slice, parse_endpoint_slice(tree));
  same_result(node, parse_node(tree));
  return 0;
}
