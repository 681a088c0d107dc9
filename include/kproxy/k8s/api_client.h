// An HTTP/1.1 client for the Kubernetes API: one keep-alive connection, JSON, bearer-token
// or client-certificate auth, Retry-After handling and timeouts (docs/api-client.md).
//
// HTTP statuses are values: a 404 or 409 is an ok Expected holding that Response. An error
// means no usable response: connection or TLS failure, timeout, cancel().
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "kproxy/k8s/client_config.h"
#include "kproxy/status.h"

namespace kproxy::k8s {

// Response header names are lower-case; repeated headers are joined with ", ".
using ResponseHeaders = std::map<std::string, std::string>;

struct Response {
  int status = 0;
  std::string body;
  ResponseHeaders headers;
};

// Retry-After as delta-seconds (the only form the API server sends, and the only one
// client-go reads); nullopt when absent or not a non-negative integer.
std::optional<std::chrono::seconds> retry_after(const ResponseHeaders& headers);

// Behaviour knobs; the defaults are client-go's. Tests shrink them.
struct ApiClientOptions {
  // get()/patch() retry a 429 or 5xx that carries Retry-After at most this many times
  // (client-go's rest.Request maxRetries), sleeping min(Retry-After, max_retry_after).
  int max_retries = 10;
  std::chrono::milliseconds max_retry_after{std::chrono::seconds(30)};
  // The token file is re-read when the cached token is older than this
  // (client-go NewCachedFileTokenSource: 1 min minus 10 s leeway).
  std::chrono::milliseconds token_file_ttl{std::chrono::seconds(50)};
  // Clock for the token cache; null = steady_clock::now.
  std::function<std::chrono::steady_clock::time_point()> now;
};

class ApiClient {
 public:
  virtual ~ApiClient() = default;

  // `path_and_query` starts with '/', e.g. "/api/v1/nodes/n1"; the config's path prefix is
  // prepended. A 429 or 5xx with Retry-After is retried (bounded, capped, interruptible by
  // cancel()); a 401 when a token file is configured re-reads the file and, if the token
  // changed, retries once. The final status is returned whatever it is.
  virtual Expected<Response> get(const std::string& path_and_query) = 0;
  virtual Expected<Response> patch(const std::string& path, const std::string& content_type,
                                   const std::string& body) = 0;

  struct StreamEnd {
    int status = 0;            // the HTTP status (0 if cancelled before a response)
    std::string error_body;    // the body when status != 200 (capped at 1 MiB)
    ResponseHeaders headers;   // e.g. Retry-After on a 429, for the caller's own backoff
    bool cancelled = false;    // cancel() ended it
    bool stopped = false;      // on_data returned false
  };
  struct StreamHandlers {
    std::function<void(int status, const ResponseHeaders& headers)> on_status;  // optional, once
    std::function<bool(std::string_view data)> on_data;  // per received piece; false stops
  };

  // A streamed GET (a watch). on_status, if set, is called once when the status line and
  // headers arrive; with status 200 on_data then receives the body as it arrives (pieces do
  // not align with JSON lines); otherwise the body lands in StreamEnd::error_body. Returns an
  // ok StreamEnd at the end of the body, when on_data returns false, or on cancel(); an error
  // when nothing arrives for `idle_timeout`, or on a connection/TLS failure. No retries here:
  // the caller (the reflector) backs off itself, using StreamEnd::headers for Retry-After.
  // A 401 marks the cached token stale so the next call re-reads the token file.
  virtual Expected<StreamEnd> stream(const std::string& path_and_query, const StreamHandlers& handlers,
                                     std::chrono::milliseconds idle_timeout) = 0;
  Expected<StreamEnd> stream(const std::string& path_and_query,
                             const std::function<bool(std::string_view)>& on_data,
                             std::chrono::milliseconds idle_timeout) {
    return stream(path_and_query, StreamHandlers{{}, on_data}, idle_timeout);
  }

  // Thread-safe, callable from any thread, idempotent. Wakes a blocked stream() or a
  // Retry-After sleep at once (a TCP connect or TLS handshake in progress finishes first,
  // bounded by connect_timeout). Permanent: every later call fails with "cancelled", so
  // make a new client to talk to the API again.
  virtual void cancel() = 0;
};

// One client per thread: calls on one client must not overlap (cancel() excepted). TLS
// material is parsed here; if it is bad, every call returns that error (load_kubeconfig
// and in_cluster_config have already checked it, so this is for hand-built configs).
std::unique_ptr<ApiClient> make_api_client(const ClientConfig& config, const ApiClientOptions& options = {});

}  // namespace kproxy::k8s
