#include "kproxy/k8s/backoff.h"

#include <algorithm>

namespace kproxy::k8s {

std::chrono::milliseconds Backoff::next(Clock::time_point now, double random01) {
  // A long quiet spell means the earlier failures were a different incident: start over.
  if (any_failure_ && now - last_failure_ >= p_.reset_after) current_ = p_.initial;
  any_failure_ = true;
  last_failure_ = now;
  const auto base = current_;
  const auto grown = std::chrono::milliseconds(static_cast<long long>(static_cast<double>(current_.count()) * p_.factor));
  current_ = std::min(grown, p_.cap);
  const double jitter = std::clamp(random01, 0.0, 1.0) * p_.jitter;
  return std::chrono::milliseconds(static_cast<long long>(static_cast<double>(base.count()) * (1.0 + jitter)));
}

}  // namespace kproxy::k8s
