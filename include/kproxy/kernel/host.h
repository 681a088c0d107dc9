// The host facts kproxy reads or sets directly: sysctls under /proc/sys and the node's local
// addresses. Small, so that main and the backends do not open files themselves.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "kproxy/ip.h"
#include "kproxy/status.h"

namespace kproxy::kernel {

// Reads /proc/sys/<name with dots as slashes>, trimmed ("net.ipv4.ip_forward" -> "1").
Expected<std::string> read_sysctl(std::string_view name);
// Writes it (only when the value differs, as kube-proxy's EnsureSysctl).
Status write_sysctl(std::string_view name, std::string_view value);

// Every address configured on the node's interfaces (getifaddrs), loopback included.
std::vector<IpAddress> local_addresses();

}  // namespace kproxy::kernel
