#include "kproxy/log.h"

#include <atomic>

#include <spdlog/sinks/stdout_sinks.h>

namespace kproxy::log {
namespace {
std::atomic<int> g_verbosity{0};
}  // namespace

void init(int verbosity) {
  // klog's header: Lmmdd hh:mm:ss.uuuuuu threadid file:line] msg. spdlog has no caller
  // location without macros, so kproxy writes the level letter, time and thread id.
  auto logger = spdlog::stderr_logger_mt("kproxy");
  logger->set_pattern("%L%m%d %H:%M:%S.%f %6t] %v");
  // %L prints "I", "W", "E" with the default short level names.
  logger->set_level(spdlog::level::info);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  set_verbosity(verbosity);
}

void set_verbosity(int verbosity) { g_verbosity.store(verbosity, std::memory_order_relaxed); }
int verbosity() { return g_verbosity.load(std::memory_order_relaxed); }

}  // namespace kproxy::log
