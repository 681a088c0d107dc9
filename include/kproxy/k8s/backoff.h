// client-go's reflector backoff (wait.NewExponentialBackoffManager(800ms, 30s, 2min, 2.0,
// 1.0)): 0.8 s doubling to a 30 s cap, plus up to 100 % jitter, and back to the start once
// two minutes have passed without a failure. Pure: the caller passes `now` and a random
// number in [0, 1).
#pragma once

#include <chrono>

namespace kproxy::k8s {

class Backoff {
 public:
  using Clock = std::chrono::steady_clock;

  struct Params {
    std::chrono::milliseconds initial{800};
    std::chrono::milliseconds cap{30'000};
    std::chrono::milliseconds reset_after{120'000};
    double factor = 2.0;
    double jitter = 1.0;
  };

  Backoff() : Backoff(Params{}) {}
  explicit Backoff(Params p) : p_(p), current_(p.initial) {}

  // The delay before the next attempt after a failure at `now`; `random01` in [0, 1).
  std::chrono::milliseconds next(Clock::time_point now, double random01);

 private:
  Params p_;
  std::chrono::milliseconds current_;
  Clock::time_point last_failure_{};
  bool any_failure_ = false;
};

}  // namespace kproxy::k8s
