// Logging: spdlog underneath, kube-proxy's klog verbosity (-v / --v) on top.
//
// Operators know kube-proxy's levels: 0 is always shown, 2 is one line per sync, 4 is
// per-object detail, 5+ is debugging. kproxy keeps that scale: a message at level n is
// written when --v >= n. Warnings and errors are always written.
//   if (kproxy::log::v(2)) spdlog::info("synced {} services in {} ms", n, ms);
#pragma once

#include <spdlog/spdlog.h>

namespace kproxy::log {

// Sets up the default logger (klog-like line prefix on stderr) and the verbosity.
void init(int verbosity);
void set_verbosity(int verbosity);
int verbosity();
inline bool v(int level) { return verbosity() >= level; }

}  // namespace kproxy::log
