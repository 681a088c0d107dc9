// Clients for the fake API server's own tests: an HTTPS client with the test CA, a watch
// stream read on its own thread, and child processes (kubectl, kproxy-fakeapi) with deadlines.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "fakeapi/fake_api_server.h"

namespace kproxy::fakeapi::testing {

using namespace std::chrono_literals;

// A client for `api` verifying its certificate against the test CA, sending `token` (if not
// empty) and, when `client_cert`, presenting test/fixtures/tls/client.crt.
std::unique_ptr<httplib::Client> make_client(const FakeApiServer& api, const std::string& token = "test-token",
                                             bool client_cert = false);

struct Reply {
  int status = 0;  // 0 = transport error
  std::string body;
  httplib::Headers headers;
  nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
};

Reply get(const FakeApiServer& api, const std::string& target, const std::string& token = "test-token",
          const httplib::Headers& headers = {});
Reply patch(const FakeApiServer& api, const std::string& target, const std::string& body,
            const std::string& content_type, const std::string& token = "test-token");

// A WATCH read on its own thread; lines are queued as they arrive.
class WatchStream {
 public:
  WatchStream(const FakeApiServer& api, std::string target, std::string token = "test-token",
              httplib::Headers headers = {});
  ~WatchStream();
  WatchStream(const WatchStream&) = delete;
  WatchStream& operator=(const WatchStream&) = delete;

  // The next complete line (without "\n"), or nullopt at the deadline or end of stream.
  std::optional<std::string> next_line(std::chrono::milliseconds timeout = 10s);
  // The next line parsed as JSON (discarded value if it is not JSON).
  std::optional<nlohmann::json> next_event(std::chrono::milliseconds timeout = 10s);
  // Waits for the stream to end; true if it did before the deadline.
  bool wait_closed(std::chrono::milliseconds timeout = 10s);
  int status() const;
  // How the stream ended: Success for a clean end (terminal chunk), Read etc. when truncated.
  httplib::Error error() const;
  std::map<std::string, std::string> response_headers() const;

 private:
  std::unique_ptr<httplib::Client> client_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string partial_;
  std::deque<std::string> lines_;
  bool closed_ = false;
  int status_ = 0;
  httplib::Error error_ = httplib::Error::Success;
  std::map<std::string, std::string> headers_;
  std::thread thread_;
};

// A child process with piped stdout/stderr, killed (SIGKILL) and reaped on destruction.
// argv[0] is searched in PATH; `env` entries ("NAME=value") override the inherited environment.
class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& argv, const std::vector<std::string>& env = {});
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  bool started() const { return pid_ > 0; }
  // Reads output until `done(stdout)` holds, the process exits, or the deadline passes.
  bool wait_for_output(const std::function<bool(const std::string&)>& done, std::chrono::milliseconds timeout);
  // Waits for exit (reading output meanwhile); the exit status, 128+signal, or -1 at the deadline.
  int wait(std::chrono::milliseconds timeout);
  void signal(int sig);  // to the child's process group
  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }

 private:
  bool pump(std::chrono::milliseconds timeout);  // one poll round; false when nothing is left to wait for
  void reap();
  pid_t pid_ = -1;
  int pid_fd_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  int status_ = -1;
  std::string out_;
  std::string err_;
};

struct CommandResult {
  int exit_code = -1;  // -1: killed at the deadline
  std::string out;
  std::string err;
};
CommandResult run_with_deadline(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                                std::chrono::milliseconds timeout);

}  // namespace kproxy::fakeapi::testing
