// The text forms of kube-proxy's flag and field values, read the way Go and pflag read
// them. Each error message says only what is wrong with the text; the caller adds the flag
// or field it came from.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "kproxy/config/kube_proxy_configuration.h"
#include "kproxy/status.h"

namespace kproxy::config {

// strconv.ParseBool: 1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False.
Expected<bool> parse_go_bool(std::string_view text);

// strconv.ParseInt(text, 0, 32), as pflag's Int32Var: an optional sign, then decimal, or
// 0x/0o/0b/leading-0 prefixed hexadecimal/octal/binary digits (underscores between digits
// are allowed with a prefix, as Go allows them).
Expected<std::int32_t> parse_go_int32(std::string_view text);

// strconv.ParseFloat(text, 32) for the plain decimal and exponent forms.
Expected<float> parse_go_float32(std::string_view text);

// pflag's StringSlice: one comma-separated record (double quotes protect commas, as Go's
// encoding/csv reads them). An empty text is an empty list.
Expected<std::vector<std::string>> split_go_string_slice(std::string_view text);

// component-base's MapStringBool (--feature-gates): "A=true,B=false"; spaces around keys
// and values are trimmed, values are Go booleans.
Expected<std::map<std::string, bool>> parse_go_map_string_bool(std::string_view text);

// "IP" or "IP:port" / "[IPv6]:port", as kube-proxy's IPPortVar flags and its
// AppendPortIfNeeded defaulting read them. A bare IP gives port 0, meaning "the default port".
Expected<HostPort> parse_listen_address(std::string_view text);

// nodePortAddresses: the single keyword "primary", or CIDRs.
Expected<NodePortAddresses> parse_node_port_addresses(const std::vector<std::string>& items);

// utilnet.ParsePortRange: "", "N", "N-M" or "N+offset", ports 0-65535, N <= M.
Status validate_port_range(std::string_view text);

// Each entry of --vmodule / logging.vmodule: "pattern=N" with N a non-negative integer.
Status validate_vmodule_entry(std::string_view entry);

}  // namespace kproxy::config
