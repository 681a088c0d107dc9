// A loopback HTTP(S) server for the API client tests: plain httplib with the fixture
// certificates, recording what each request carried. Not the fake API server (test/fakeapi):
// each test installs the few handlers it needs.
#pragma once

#include <chrono>
#include <condition_variable>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace kproxy::k8s::testing {

inline std::string fixture_path(const std::string& name) { return std::string(KPROXY_FIXTURES_DIR) + "/tls/" + name; }

inline std::string read_fixture(const std::string& name) {
  std::ifstream in(fixture_path(name));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct SeenRequest {
  std::string method, path, authorization, user_agent, host, accept, content_type, body;
  std::string client_cn;  // subject CN of the client certificate, "" without one
};

class TestServer {
 public:
  enum class Mode { kHttp, kTls, kTlsClientAuth };

  explicit TestServer(Mode mode = Mode::kTls, const std::string& bind_address = "127.0.0.1") {
    if (mode == Mode::kHttp) {
      server_ = std::make_unique<httplib::Server>();
    } else {
      const bool client_auth = mode == Mode::kTlsClientAuth;
      server_ = std::make_unique<httplib::SSLServer>([this, client_auth](SSL_CTX& ctx) {
        if (SSL_CTX_use_certificate_chain_file(&ctx, fixture_path("server.crt").c_str()) != 1) return false;
        if (SSL_CTX_use_PrivateKey_file(&ctx, fixture_path("server.key").c_str(), SSL_FILETYPE_PEM) != 1) return false;
        if (client_auth) {
          if (SSL_CTX_load_verify_locations(&ctx, fixture_path("ca.crt").c_str(), nullptr) != 1) return false;
          SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
        }
        SSL_CTX_set_tlsext_servername_callback(&ctx, &TestServer::on_servername);
        SSL_CTX_set_tlsext_servername_arg(&ctx, this);
        return true;
      });
    }
    server_->set_keep_alive_timeout(1);
    port_ = server_->bind_to_any_port(bind_address);
    if (port_ <= 0) return;
    thread_ = std::jthread([this] { server_->listen_after_bind(); });
    // httplib's stop() is a no-op until the accept loop runs, so wait for it (bounded).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!server_->is_running() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  }

  ~TestServer() {
    release();
    server_->stop();
  }

  bool bound() const { return port_ > 0; }
  int port() const { return port_; }
  httplib::Server& http() { return *server_; }

  // Call first thing in each handler.
  void record(const httplib::Request& req) {
    SeenRequest seen{req.method,
                     req.path,
                     req.get_header_value("Authorization"),
                     req.get_header_value("User-Agent"),
                     req.get_header_value("Host"),
                     req.get_header_value("Accept"),
                     req.get_header_value("Content-Type"),
                     req.body,
                     ""};
    if (req.ssl != nullptr) {
      if (X509* cert = SSL_get1_peer_certificate(req.ssl)) {
        char cn[256] = {};
        X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
        seen.client_cn = cn;
        X509_free(cert);
      }
    }
    std::lock_guard lock(mu_);
    requests_.push_back(std::move(seen));
    cv_.notify_all();
  }

  std::vector<SeenRequest> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }

  bool wait_for_requests(size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return requests_.size() >= n; });
  }

  // The SNI of the last TLS handshake ("" when the client sent none).
  std::string last_sni() const {
    std::lock_guard lock(mu_);
    return last_sni_;
  }

  // Handlers that must hang (timeouts, idle streams) wait here; the test or the destructor
  // releases them, and the bound keeps a failed test from hanging forever.
  bool wait_released(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return released_; });
  }
  void release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  static int on_servername(SSL* ssl, int* /*alert*/, void* arg) {
    auto* self = static_cast<TestServer*>(arg);
    const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    std::lock_guard lock(self->mu_);
    self->last_sni_ = name ? name : "";
    return SSL_TLSEXT_ERR_OK;
  }

  std::unique_ptr<httplib::Server> server_;
  int port_ = -1;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<SeenRequest> requests_;
  std::string last_sni_ = "<no handshake>";
  bool released_ = false;
  std::jthread thread_;  // last: joined before the members above go
};

}  // namespace kproxy::k8s::testing
