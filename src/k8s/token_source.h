// The bearer token of one API client: a static token, or a token file re-read when the cached
// copy is older than a TTL and after a 401 (client-go transport/token_source.go,
// NewCachedFileTokenSource). A failed or empty re-read keeps the previous token.
#pragma once

#include <chrono>
#include <functional>
#include <string>

namespace kproxy::k8s {

class TokenSource {
 public:
  using Clock = std::chrono::steady_clock;

  // `initial` is the token read at startup (may be empty: then the file is read on first use).
  TokenSource(std::string initial, std::string file, std::chrono::milliseconds ttl,
              std::function<Clock::time_point()> now);

  bool has_file() const { return !file_.empty(); }
  // The token to send now ("" = none).
  const std::string& current();
  // After a 401 for `used`: re-read the file now. True when that yields a different token,
  // i.e. a retry may succeed.
  bool refresh_after_unauthorized(const std::string& used);
  // Forget the cache age so the next current() re-reads (a 401 on a stream).
  void invalidate() { stale_ = true; }

 private:
  void reload();
  Clock::time_point now() const { return now_ ? now_() : Clock::now(); }

  std::string token_;
  std::string file_;
  std::chrono::milliseconds ttl_;
  std::function<Clock::time_point()> now_;
  Clock::time_point read_at_;
  bool stale_;
};

}  // namespace kproxy::k8s
