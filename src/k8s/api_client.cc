// The API client on cpp-httplib 0.11.4 (Debian) and OpenSSL 3.
//
// TLS verification is done by OpenSSL itself, not by httplib: httplib 0.11.4 can only check
// the certificate against the host it connects to, always sends that host as SNI (IP
// literals included), and adds the system roots to any custom store (load_certs calls
// SSL_CTX_set_default_verify_paths). kproxy turns httplib's check off and configures the
// SSL_CTX instead: its own X509_STORE built from the in-memory CA, SSL_VERIFY_PEER, and an
// X509_VERIFY_PARAM host or IP (tls-server-name when set), so a failed check aborts the
// handshake. SNI is rewritten in an info callback at handshake start (tls-server-name, or
// the host unless it is an IP literal, as Go's crypto/tls does).
#include "kproxy/k8s/api_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <csignal>
#include <mutex>

#include <httplib.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include "kproxy/log.h"
#include "tls.h"
#include "token_source.h"

namespace kproxy::k8s {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr size_t kMaxErrorBody = 1 << 20;

bool is_ip_literal(const std::string& host) {
  in6_addr a6{};
  in_addr a4{};
  return inet_pton(AF_INET6, host.c_str(), &a6) == 1 || inet_pton(AF_INET, host.c_str(), &a4) == 1;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

ResponseHeaders lower_case_headers(const httplib::Headers& headers) {
  ResponseHeaders out;
  for (const auto& [name, value] : headers) {
    auto [it, inserted] = out.emplace(lower(name), value);
    if (!inserted) it->second += ", " + value;
  }
  return out;
}

std::string seconds_text(milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
  return std::to_string(d.count()) + " ms";
}

// Lives in the SSL_CTX's app data; owned by the client and outlives the SSL_CTX.
struct TlsState {
  std::string sni;           // "" = send no SNI
  std::string verify_error;  // the first verification failure of the current handshake
};

TlsState* tls_state_of(const SSL* ssl) {
  return static_cast<TlsState*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
}

int verify_callback(int ok, X509_STORE_CTX* store) {
  if (ok) return ok;
  auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  TlsState* state = ssl ? tls_state_of(ssl) : nullptr;
  if (state && state->verify_error.empty()) {
    state->verify_error = X509_verify_cert_error_string(X509_STORE_CTX_get_error(store));
    if (X509* cert = X509_STORE_CTX_get_current_cert(store)) {
      char subject[256];
      X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof subject);
      state->verify_error += std::string(" (certificate ") + subject + ")";
    }
  }
  return ok;
}

// httplib sets SNI to the connect host just before SSL_connect; OpenSSL builds the
// ClientHello after SSL_CB_HANDSHAKE_START, so this is the last word on it.
void info_callback(const SSL* ssl, int where, int /*ret*/) {
  if ((where & SSL_CB_HANDSHAKE_START) == 0) return;
  TlsState* state = tls_state_of(ssl);
  if (state == nullptr) return;
  // The callback type hands a const SSL; the SNI setter (a macro over SSL_ctrl) is not const.
  SSL* mutable_ssl = const_cast<SSL*>(ssl);
  char* name = state->sni.empty() ? nullptr : const_cast<char*>(state->sni.c_str());
  SSL_set_tlsext_host_name(mutable_ssl, name);
}

class HttpApiClient final : public ApiClient {
 public:
  HttpApiClient(const ClientConfig& config, const ApiClientOptions& options)
      : config_(config),
        options_(options),
        tokens_(config.token, config.token_file, options.token_file_ttl, options.now) {
    host_header_ = (config_.host.find(':') != std::string::npos ? "[" + config_.host + "]" : config_.host) + ":" +
                   std::to_string(config_.port);
    if (config_.scheme == "https") {
      setup_tls();
    } else if (config_.scheme == "http") {
      http_ = std::make_unique<httplib::ClientImpl>(config_.host, config_.port);
    } else {
      setup_error_ = "scheme \"" + config_.scheme + "\" is not https or http";
    }
    if (!http_) return;
    http_->set_keep_alive(true);
    http_->set_follow_location(false);
    http_->set_tcp_nodelay(true);
    http_->set_connection_timeout(config_.connect_timeout);
    http_->set_write_timeout(config_.request_timeout);
    http_->set_socket_options([this](socket_t fd) { on_socket_created(fd); });
  }

  Expected<Response> get(const std::string& path_and_query) override {
    return request("GET", path_and_query, "", "");
  }

  Expected<Response> patch(const std::string& path, const std::string& content_type,
                           const std::string& body) override {
    return request("PATCH", path, content_type, body);
  }

  using ApiClient::stream;
  Expected<StreamEnd> stream(const std::string& path_and_query, const StreamHandlers& handlers,
                             milliseconds idle_timeout) override;

  void cancel() override {
    {
      std::lock_guard lock(mu_);
      if (cancelled_) return;
      cancelled_ = true;
    }
    cv_.notify_all();
    // httplib's stop() is its one thread-safe way in: with a request in flight it shuts the
    // socket down (the blocked read returns), otherwise it closes the idle connection.
    if (http_) http_->stop();
  }

 private:
  void setup_tls();
  void on_socket_created(socket_t fd);
  bool cancelled() {
    std::lock_guard lock(mu_);
    return cancelled_;
  }
  // Sleeps unless cancel() comes first; false when cancelled.
  bool sleep_unless_cancelled(milliseconds d) {
    std::unique_lock lock(mu_);
    return !cv_.wait_for(lock, d, [this] { return cancelled_; });
  }
  std::string describe(const std::string& method, const std::string& path) const {
    return method + " " + config_.server_url() + path;
  }
  std::optional<std::string> precheck(const std::string& what) {
    if (!setup_error_.empty()) return what + ": " + setup_error_;
    if (cancelled()) return what + ": cancelled";
    return std::nullopt;
  }
  httplib::Request make_request(const std::string& method, const std::string& path, const std::string& token) const;
  std::string transport_error(httplib::Error error) const;
  Expected<Response> send_once(const std::string& method, const std::string& path, const std::string& content_type,
                               const std::string& body, const std::string& token);
  Expected<Response> request(const std::string& method, const std::string& path, const std::string& content_type,
                             const std::string& body);

  ClientConfig config_;
  ApiClientOptions options_;
  TokenSource tokens_;
  std::string host_header_;
  std::string setup_error_;
  TlsState tls_state_;  // declared before http_: the SSL_CTX points at it
  std::unique_ptr<httplib::ClientImpl> http_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool cancelled_ = false;
};

void HttpApiClient::setup_tls() {
  tls::X509Ptr cert;
  tls::PKeyPtr key;
  std::vector<tls::X509Ptr> chain;
  if (!config_.client_cert_pem.empty() || !config_.client_key_pem.empty()) {
    auto certs = tls::parse_certificates(config_.client_cert_pem);
    if (!certs) {
      setup_error_ = "client certificate: " + certs.error();
      return;
    }
    auto k = tls::parse_private_key(config_.client_key_pem);
    if (!k) {
      setup_error_ = "client key: " + k.error();
      return;
    }
    chain = std::move(*certs);
    cert = std::move(chain.front());
    key = std::move(*k);
    if (auto s = tls::check_key_matches(cert.get(), key.get()); !s) {
      setup_error_ = "client key: " + s.message();
      return;
    }
  }
  // SSL_CTX_use_certificate/PrivateKey take their own references.
  auto client = std::make_unique<httplib::SSLClient>(config_.host, config_.port, cert.get(), key.get());
  if (!client->is_valid()) {
    setup_error_ = "TLS setup failed: " + tls::take_openssl_error();
    return;
  }
  SSL_CTX* ctx = client->ssl_context();
  for (size_t i = 1; i < chain.size(); ++i) SSL_CTX_add1_chain_cert(ctx, chain[i].get());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);  // crypto/tls's client minimum
  SSL_CTX_set_app_data(ctx, &tls_state_);
  SSL_CTX_set_info_callback(ctx, info_callback);
  client->enable_server_certificate_verification(false);  // OpenSSL verifies, see the top of this file

  const std::string name = config_.tls_server_name.empty() ? config_.host : config_.tls_server_name;
  tls_state_.sni = is_ip_literal(name) ? "" : name;
  if (config_.insecure_skip_tls_verify) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  } else {
    if (!config_.ca_pem.empty()) {
      auto store = tls::make_store(config_.ca_pem);
      if (!store) {
        setup_error_ = "CA certificate: " + store.error();
        return;
      }
      SSL_CTX_set_cert_store(ctx, store->release());  // the context owns it now
    } else {
      SSL_CTX_set_default_verify_paths(ctx);
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_callback);
    X509_VERIFY_PARAM* param = SSL_CTX_get0_param(ctx);
    if (is_ip_literal(name)) {
      X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
    } else {
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      X509_VERIFY_PARAM_set1_host(param, name.c_str(), 0);
    }
  }
  ERR_clear_error();
  http_ = std::move(client);
}

void HttpApiClient::on_socket_created(socket_t fd) {
  // TCP keepalive as Go's default dialer (30 s), so a dead peer is noticed on an idle watch.
  const int on = 1;
  const int idle = 30;
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &idle, sizeof idle);

  std::lock_guard lock(mu_);
  if (!cancelled_) return;
  // cancel() ran after this request checked the flag but before httplib took its socket
  // lock, so its stop() found nothing to shut down. Make this connect fail at once: put a
  // socket of another family at this descriptor (httplib still owns and closes it).
  const int other = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (other >= 0) {
    ::dup3(other, fd, O_CLOEXEC);
    ::close(other);
  }
}

httplib::Request HttpApiClient::make_request(const std::string& method, const std::string& path,
                                             const std::string& token) const {
  httplib::Request req;
  req.method = method;
  req.path = config_.path_prefix + path;
  req.headers.emplace("Host", host_header_);  // httplib would not bracket an IPv6 host
  req.headers.emplace("Accept", "application/json");
  req.headers.emplace("User-Agent", config_.user_agent);
  if (!token.empty()) req.headers.emplace("Authorization", "Bearer " + token);
  return req;
}

std::string HttpApiClient::transport_error(httplib::Error error) const {
  switch (error) {
    case httplib::Error::Connection:
      return "cannot connect";
    case httplib::Error::ConnectionTimeout:
      return "connect timed out after " + seconds_text(config_.connect_timeout);
    case httplib::Error::SSLConnection: {
      std::string why = tls_state_.verify_error;
      if (why.empty()) why = tls::take_openssl_error();
      return "TLS handshake failed" + (why.empty() ? std::string() : ": " + why);
    }
    case httplib::Error::SSLServerVerification:
      return "server certificate verification failed";
    case httplib::Error::Read:
      return "connection lost while reading the response";
    case httplib::Error::Write:
      return "connection lost while sending the request";
    case httplib::Error::Compression:
      return "cannot decompress the response";
    default:
      return "request failed (" + httplib::to_string(error) + ")";
  }
}

Expected<Response> HttpApiClient::send_once(const std::string& method, const std::string& path,
                                            const std::string& content_type, const std::string& body,
                                            const std::string& token) {
  httplib::Request req = make_request(method, path, token);
  req.headers.emplace("Accept-Encoding", "gzip");  // as Go's transport; httplib inflates it
  if (!content_type.empty()) req.headers.emplace("Content-Type", content_type);
  req.body = body;

  // httplib 0.11.4 has only per-read timeouts; the whole-response deadline is enforced here.
  const auto deadline = Clock::now() + config_.request_timeout;
  bool timed_out = false;
  Response out;
  req.response_handler = [this](const httplib::Response&) { return !cancelled(); };
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    if (cancelled()) return false;
    if (Clock::now() > deadline) {
      timed_out = true;
      return false;
    }
    out.body.append(data, n);
    return true;
  };

  tls_state_.verify_error.clear();
  http_->set_read_timeout(config_.request_timeout);
  httplib::Response res;
  httplib::Error error = httplib::Error::Success;
  const bool ok = http_->send(req, res, error);
  if (cancelled()) return Error(describe(method, path) + ": cancelled");
  if (!ok) {
    if (timed_out || (error == httplib::Error::Read && Clock::now() + milliseconds(20) >= deadline)) {
      return Error(describe(method, path) + ": timed out after " + seconds_text(config_.request_timeout));
    }
    return Error(describe(method, path) + ": " + transport_error(error));
  }
  out.status = res.status;
  out.headers = lower_case_headers(res.headers);
  return out;
}

Expected<Response> HttpApiClient::request(const std::string& method, const std::string& path,
                                          const std::string& content_type, const std::string& body) {
  if (auto e = precheck(describe(method, path))) return Error(*e);
  bool retried_unauthorized = false;
  for (int attempt = 0;; ++attempt) {
    const std::string token = tokens_.current();
    auto response = send_once(method, path, content_type, body, token);
    if (!response) return response;

    if (response->status == 401 && !retried_unauthorized && tokens_.has_file()) {
      retried_unauthorized = true;
      if (tokens_.refresh_after_unauthorized(token)) {
        if (log::v(2)) spdlog::info("{}: HTTP 401, retrying with the re-read token", describe(method, path));
        continue;
      }
      return response;
    }

    // client-go (rest.Request checkWait) retries 429 and 5xx only when Retry-After is set.
    const bool retryable = response->status == 429 || (response->status >= 500 && response->status <= 599);
    const auto after = retryable ? retry_after(response->headers) : std::nullopt;
    if (!after || attempt >= options_.max_retries) return response;
    const milliseconds delay = std::min<milliseconds>(*after, options_.max_retry_after);
    if (log::v(2)) {
      spdlog::info("{}: HTTP {}, retrying in {} as Retry-After asks (retry {} of {})", describe(method, path),
                   response->status, seconds_text(delay), attempt + 1, options_.max_retries);
    }
    if (!sleep_unless_cancelled(delay)) return Error(describe(method, path) + ": cancelled");
  }
}

Expected<ApiClient::StreamEnd> HttpApiClient::stream(const std::string& path_and_query,
                                                     const StreamHandlers& handlers, milliseconds idle_timeout) {
  const std::string what = describe("GET", path_and_query);
  if (!setup_error_.empty()) return Error(what + ": " + setup_error_);
  StreamEnd end;
  if (cancelled()) {
    end.cancelled = true;
    return end;
  }
  const std::string token = tokens_.current();
  httplib::Request req = make_request("GET", path_and_query, token);
  bool got_status = false;
  auto last_activity = Clock::now();
  req.response_handler = [&](const httplib::Response& res) {
    if (cancelled()) return false;
    got_status = true;
    last_activity = Clock::now();
    end.status = res.status;
    end.headers = lower_case_headers(res.headers);
    if (handlers.on_status) handlers.on_status(end.status, end.headers);
    return true;
  };
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    if (cancelled()) return false;
    last_activity = Clock::now();
    if (end.status == 200) {
      if (handlers.on_data && !handlers.on_data(std::string_view(data, n))) {
        end.stopped = true;
        return false;
      }
    } else if (end.error_body.size() < kMaxErrorBody) {
      end.error_body.append(data, std::min(n, kMaxErrorBody - end.error_body.size()));
    }
    return true;
  };

  tls_state_.verify_error.clear();
  // Every read waits at most idle_timeout, so this is the "no bytes for that long" limit.
  http_->set_read_timeout(idle_timeout);
  httplib::Response res;
  httplib::Error error = httplib::Error::Success;
  const bool ok = http_->send(req, res, error);
  if (cancelled()) {
    end.cancelled = true;
    return end;
  }
  if (end.stopped) return end;
  if (!ok) {
    if (error == httplib::Error::Read && Clock::now() - last_activity + milliseconds(20) >= idle_timeout) {
      return Error(what + ": " + (got_status ? "no data" : "no response") + " for " + seconds_text(idle_timeout) +
                   " (idle timeout)");
    }
    return Error(what + ": " + transport_error(error));
  }
  if (!got_status) {  // e.g. 204: httplib skips the handler when there is no body
    end.status = res.status;
    end.headers = lower_case_headers(res.headers);
    if (handlers.on_status) handlers.on_status(end.status, end.headers);
  }
  if (end.status == 401) tokens_.invalidate();
  return end;
}

}  // namespace

std::optional<std::chrono::seconds> retry_after(const ResponseHeaders& headers) {
  const auto it = headers.find("retry-after");
  if (it == headers.end()) return std::nullopt;
  const std::string& v = it->second;
  if (v.empty() || v.size() > 9 || !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  return std::chrono::seconds(std::stol(v));
}

std::unique_ptr<ApiClient> make_api_client(const ClientConfig& config, const ApiClientOptions& options) {
  // Debian's cpp-httplib 0.11.4 writes with send()/SSL_write without MSG_NOSIGNAL, so a
  // request on a keep-alive connection that the server has just closed raises SIGPIPE,
  // whose default action kills the daemon. The write error is handled as a transport
  // error instead; nothing in kproxy wants SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  return std::make_unique<HttpApiClient>(config, options);
}

}  // namespace kproxy::k8s
