#include "kproxy/k8s/informer.h"

namespace kproxy::k8s {

void log_rejection(const model::Rejection& rejection) { spdlog::warn("{}; skipped", rejection.message()); }

}  // namespace kproxy::k8s
