// The one queue between the API side and the proxier: reflector threads post, one consumer
// thread runs the handlers, in order, so the proxier sees a consistent stream of events
// (DESIGN.md, "Threads").
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <stop_token>

namespace kproxy::k8s {

class EventQueue {
 public:
  using Task = std::function<void()>;
  using Clock = std::chrono::steady_clock;

  void post(Task task) {
    {
      std::lock_guard lock(mu_);
      tasks_.push_back(std::move(task));
    }
    cv_.notify_one();
  }

  // Waits until something is queued, `deadline` passes or `stop` is requested, then runs
  // everything queued at that moment. Returns how many tasks ran. The consumer (the proxier
  // loop) calls this with its next sync time as the deadline.
  std::size_t run_until(std::stop_token stop, Clock::time_point deadline) {
    std::deque<Task> batch;
    {
      std::unique_lock lock(mu_);
      cv_.wait_until(lock, stop, deadline, [this] { return !tasks_.empty(); });
      batch.swap(tasks_);
    }
    for (auto& t : batch) t();
    return batch.size();
  }

  // Runs everything queued now without waiting (tests, shutdown).
  std::size_t drain() {
    std::deque<Task> batch;
    {
      std::lock_guard lock(mu_);
      batch.swap(tasks_);
    }
    for (auto& t : batch) t();
    return batch.size();
  }

  std::size_t size() const {
    std::lock_guard lock(mu_);
    return tasks_.size();
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable_any cv_;
  std::deque<Task> tasks_;
};

}  // namespace kproxy::k8s
