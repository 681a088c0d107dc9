#include "token_source.h"

#include <spdlog/spdlog.h>

#include "file_util.h"
#include "kproxy/log.h"

namespace kproxy::k8s {

TokenSource::TokenSource(std::string initial, std::string file, std::chrono::milliseconds ttl,
                         std::function<Clock::time_point()> now)
    : token_(std::move(initial)), file_(std::move(file)), ttl_(ttl), now_(std::move(now)) {
  read_at_ = this->now();
  stale_ = token_.empty();
}

const std::string& TokenSource::current() {
  if (!file_.empty() && (stale_ || now() - read_at_ >= ttl_)) reload();
  return token_;
}

bool TokenSource::refresh_after_unauthorized(const std::string& used) {
  if (file_.empty()) return false;
  reload();
  return token_ != used;
}

void TokenSource::reload() {
  // The attempt counts as a read even when it fails: retry after the TTL, not on every
  // request, and keep using the previous token meanwhile (client-go keeps it too).
  read_at_ = now();
  stale_ = false;
  auto contents = read_file(file_);
  if (!contents) {
    spdlog::warn("token file {}: {}; keeping the previous token, will re-read in {} s", file_, contents.error(),
                 ttl_.count() / 1000);
    return;
  }
  std::string token = trim(*contents);
  if (token.empty()) {
    spdlog::warn("token file {} is empty; keeping the previous token, will re-read in {} s", file_,
                 ttl_.count() / 1000);
    return;
  }
  if (token != token_ && log::v(2)) spdlog::info("token file {}: read a new token", file_);
  token_ = std::move(token);
}

}  // namespace kproxy::k8s
