// A fake Kubernetes API server for tests and benchmarks: a stateful model of kube-apiserver's
// LIST/WATCH/GET/PATCH for services, endpoints, nodes, namespaces, endpointslices and
// servicecidrs, served over HTTPS (or plain HTTP) on loopback with bearer-token and client-cert
// authentication. Its wire format is the real API's (checked with kubectl, see docs/fakeapi.md);
// test hooks inject the failures a client must survive: 410 after compaction in both forms,
// dropped watch connections, garbage and oversized events, 429/5xx with Retry-After,
// 409 on PATCH, token rotation.
//
//   kproxy::fakeapi::FakeApiServer api;           // TLS with test/fixtures/tls, token "test-token"
//   ASSERT_TRUE(api.start().ok());
//   api.upsert("services", {{"metadata", {{"name", "web"}, {"namespace", "default"}}}, ...});
//   ... point the client at api.url() ...
//   api.compact(); api.drop_watches();            // then assert the client relists
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "fakeapi/object_store.h"
#include "kproxy/status.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace kproxy::fakeapi {

// How a WATCH from a compacted (too old) resourceVersion fails. The watch cache answers
// HTTP 200 and one ERROR event carrying a 410 Status; a request rejected before streaming
// starts gets HTTP 410 with the Status as body. Clients must handle both alike.
enum class ExpiredWatchMode { kErrorEvent, kHttpStatus };

// The directory of the fixed test certificates (test/fixtures/tls).
std::string default_tls_dir();

struct FakeApiServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0 = ephemeral
  bool tls = true;
  std::string cert_file = default_tls_dir() + "/server.crt";
  std::string key_file = default_tls_dir() + "/server.key";
  // Client certificates are requested (not required) and, when they verify against this CA,
  // authenticate the request as an alternative to a token. Empty = never requested.
  std::string client_ca_file = default_tls_dir() + "/ca.crt";
  // Accepted bearer tokens. With require_auth false every request is accepted (benchmarks).
  std::set<std::string> tokens = {"test-token"};
  bool require_auth = true;

  int threads = 64;  // server worker threads; every open watch and idle keep-alive connection holds one
  std::chrono::seconds keep_alive_timeout{1};  // idle connections are closed after this; bounds stop()
  std::chrono::seconds default_watch_timeout{1800};  // used when a watch has no timeoutSeconds
  std::chrono::milliseconds bookmark_interval{0};    // periodic BOOKMARKs; 0 = only send_bookmark()
  std::chrono::milliseconds too_large_rv_wait{3000};  // the watch cache waits this long for a future RV
  ExpiredWatchMode expired_watch_mode = ExpiredWatchMode::kErrorEvent;
  // The watch cache answers resourceVersion=0 lists in one page, ignoring limit. true models
  // a server with the watch cache disabled (every list paginated).
  bool paginate_rv0 = false;
  // Keep at most this many events of history (oldest compacted first); 0 = until compact().
  std::size_t history_limit = 0;
  std::size_t request_log_size = 2000;
  bool log_requests = false;  // one line per request on stderr ("GET /api/v1/services?... 200")
  std::string git_version = "v1.32.4";  // /version; kubectl's dispatcher picks its binary from it
};

struct RecordedRequest {
  std::string method;
  std::string target;  // path with the raw query string
  std::string path;
  bool watch = false;
  std::string user_agent;
  std::string authorization;
  std::string accept;
  std::string content_type;
  std::string body;
  int status = 0;  // the status the fake answered with (200 for a watch that started streaming)
};

class FakeApiServer {
 public:
  explicit FakeApiServer(FakeApiServerOptions options = {});
  ~FakeApiServer();
  FakeApiServer(const FakeApiServer&) = delete;
  FakeApiServer& operator=(const FakeApiServer&) = delete;

  // Binds host:port and starts serving. Process-wide side effect: SIGPIPE is ignored (the
  // Debian cpp-httplib writes without MSG_NOSIGNAL, so a client closing a watch would kill us).
  Status start();
  // Ends every watch abruptly, stops accepting and joins all server threads. Idempotent.
  void stop();

  int port() const { return port_; }
  // "https://127.0.0.1:<port>" (or http://).
  std::string url() const;
  const FakeApiServerOptions& options() const { return options_; }

  // ---- State, as a controller or a test would change it -------------------------------
  // Creates or replaces an object of `resource` ("services", "nodes", "endpointslices", ...):
  // ADDED or MODIFIED to watchers. Namespaced objects without metadata.namespace go to
  // "default". Returns the stored object with kind/apiVersion.
  nlohmann::json upsert(std::string_view resource, nlohmann::json object);
  // DELETED (last state, new resourceVersion) to watchers; false if absent.
  bool remove(std::string_view resource, std::string_view ns, std::string_view name);
  std::optional<nlohmann::json> get(std::string_view resource, std::string_view ns, std::string_view name) const;
  std::vector<nlohmann::json> list(std::string_view resource) const;
  // Objects carrying kind (and apiVersion): each is upserted into the matching resource.
  Status load(const std::vector<nlohmann::json>& objects);
  std::int64_t resource_version() const;

  // ---- Authentication --------------------------------------------------------------------
  // Replaces the accepted bearer tokens (rotation: the old token gets 401 from now on).
  void set_tokens(std::set<std::string> tokens);

  // ---- Failure injection and observation hooks ---------------------------------------------
  // Forgets history up to the current resourceVersion: LIST at an older exact RV, continue
  // tokens from before and WATCH from an older RV get 410 Expired. Open watches still get
  // every event they were due (the watch cache keeps feeding them).
  void compact();
  // Continue tokens issued so far get 410 Expired (with a fresh token in metadata.continue),
  // as when the real server's token outlives etcd's compaction window (~5 min).
  void expire_continue_tokens();
  void set_expired_watch_mode(ExpiredWatchMode mode);
  // Every open watch that asked for bookmarks gets a BOOKMARK at the current resourceVersion
  // (after the events before it).
  void send_bookmark();
  // Closes every open watch without the terminal chunk (the client sees a truncated stream).
  void drop_watches();
  // Writes `bytes` verbatim into every open watch stream (after pending events): garbage
  // lines, partial JSON, an oversized event. A watch stream carries only what is written;
  // add "\n" yourself.
  void inject_raw(std::string bytes);
  // The next `count` requests whose path contains `path_contains` ("" = any) are answered
  // with `status` (429, 500, 503, 504, ...), a Status body and Retry-After.
  void fail_next_requests(int count, int status, int retry_after_seconds = 1, std::string path_contains = "");
  // The next `count` PATCH requests conflict: the object is first modified behind the
  // client's back (new resourceVersion, MODIFIED to watchers), then the patch gets 409.
  void conflict_next_patches(int count);

  std::size_t open_watches() const;
  // Waits until at least `count` watches are open (optionally of `resource`).
  bool wait_for_watches(std::size_t count, std::chrono::milliseconds timeout, std::string_view resource = "") const;
  // Waits until no watch is open (clients gone; a closed client is noticed within ~1 s).
  bool wait_for_no_watches(std::chrono::milliseconds timeout) const;
  std::uint64_t request_count() const;
  // The most recent requests (up to options().request_log_size), oldest first.
  std::vector<RecordedRequest> requests() const;
  // Waits until some recorded request satisfies `predicate`; returns it.
  std::optional<RecordedRequest> wait_for_request(const std::function<bool(const RecordedRequest&)>& predicate,
                                                  std::chrono::milliseconds timeout) const;
  void clear_requests();

  // ---- kubectl -------------------------------------------------------------------------------
  // Writes a kubeconfig for this server (certificate-authority = the test CA, the first
  // accepted token, or the client certificate when `use_client_cert`) to `path`.
  Status write_kubeconfig(const std::string& path, bool use_client_cert = false) const;

 private:
  struct Watcher;
  struct ParsedPath;
  struct FailureRule {
    int remaining;
    int status;
    int retry_after;
    std::string path_contains;
  };

  void handle(const httplib::Request& req, httplib::Response& res);
  bool authenticate(const httplib::Request& req) const;
  void serve_discovery(const std::string& path, httplib::Response& res);
  void serve_resource(const httplib::Request& req, httplib::Response& res, const ParsedPath& p);
  void serve_list(const httplib::Request& req, httplib::Response& res, const ParsedPath& p);
  void serve_watch(const httplib::Request& req, httplib::Response& res, const ParsedPath& p);
  void serve_get(const httplib::Request& req, httplib::Response& res, const ParsedPath& p);
  void serve_patch(const httplib::Request& req, httplib::Response& res, const ParsedPath& p);
  void serve_create_or_update(const httplib::Request& req, httplib::Response& res, const ParsedPath& p);
  void serve_delete(const httplib::Request& req, httplib::Response& res, const ParsedPath& p);
  bool watch_step(const std::shared_ptr<Watcher>& w, std::string& out, bool& finished);
  void after_write_locked();  // history_limit, notify
  std::int64_t oldest_watch_position_locked() const;

  FakeApiServerOptions options_;
  std::unique_ptr<httplib::Server> server_;
  std::thread listen_thread_;
  int port_ = 0;

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool stopping_ = false;
  ObjectStore store_;
  std::set<std::string> tokens_;
  std::int64_t continue_expired_before_ = 0;  // tokens with a snapshot RV <= this are expired
  ExpiredWatchMode expired_watch_mode_;
  std::list<std::shared_ptr<Watcher>> watchers_;
  std::uint64_t bookmark_generation_ = 0;
  std::vector<FailureRule> failures_;
  int conflict_patches_ = 0;
  std::uint64_t request_count_ = 0;
  std::vector<RecordedRequest> request_log_;  // ring, oldest first after trimming
};

}  // namespace kproxy::fakeapi
