// Internal to kproxy_model: the name syntaxes of k8s.io/apimachinery/pkg/util/validation.
//
// Names end up in iptables comments, chain-name hashes and log lines, so kproxy checks them
// as the API server does rather than trusting hand-written manifests.
#pragma once

#include <string_view>

namespace kproxy::model::detail {

// RFC 1123 label (IsDNS1123Label): 1-63 of [a-z0-9-], alphanumeric at both ends. Namespaces,
// port names, and Service names (kube-proxy never relied on the stricter DNS-1035 form, and
// KEP-5311 relaxes Service names to this).
bool is_dns1123_label(std::string_view text);
// RFC 1123 subdomain (IsDNS1123Subdomain): at most 253 characters, dot-separated labels.
// Node names and EndpointSlice names.
bool is_dns1123_subdomain(std::string_view text);
// Label value (IsValidLabelValue): empty, or 1-63 of [A-Za-z0-9._-] with alphanumeric ends.
// Zones.
bool is_label_value(std::string_view text);

}  // namespace kproxy::model::detail
