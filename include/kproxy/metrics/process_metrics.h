// The process_* metrics every Go component serves (client_golang's process collector, which
// kube-proxy's legacy registry includes): CPU time, memory, file descriptors, start time, read
// from /proc/self at each scrape. Dashboards that watch kube-proxy's memory and fd use keep
// working. A value that cannot be read is left out of that scrape.
#pragma once

#include <string>

#include "kproxy/metrics/registry.h"

namespace kproxy::metrics {

// Registers process_cpu_seconds_total, process_open_fds, process_max_fds,
// process_virtual_memory_bytes, process_virtual_memory_max_bytes,
// process_resident_memory_bytes and process_start_time_seconds.
// `proc_self` is the /proc directory to read (tests point it at a fixture).
void register_process_metrics(Registry& registry, std::string proc_self = "/proc/self");

}  // namespace kproxy::metrics
