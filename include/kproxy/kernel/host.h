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

// Whether the kernel's SCTP protocol module (lksctp, "sctp") is in the kernel, from the text of
// /proc/net/protocols (a row named SCTP or SCTPv6) and whether /sys/module/sctp exists.
// Reading both loads nothing; opening an SCTP socket to probe would load the module.
bool kernel_sctp_present(std::string_view proc_net_protocols, bool sys_module_sctp);
// The same, read from this host; an unreadable /proc/net/protocols counts as absent.
bool kernel_sctp_present();

}  // namespace kproxy::kernel
