#include "test_clients.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

extern char** environ;

namespace kproxy::fakeapi::testing {

using Clock = std::chrono::steady_clock;

std::unique_ptr<httplib::Client> make_client(const FakeApiServer& api, const std::string& token, bool client_cert) {
  std::unique_ptr<httplib::Client> cli;
  if (client_cert) {
    cli = std::make_unique<httplib::Client>(api.url(), default_tls_dir() + "/client.crt",
                                            default_tls_dir() + "/client.key");
  } else {
    cli = std::make_unique<httplib::Client>(api.url());
  }
  if (api.options().tls) {
    cli->set_ca_cert_path(default_tls_dir() + "/ca.crt");
    cli->enable_server_certificate_verification(true);
  }
  if (!token.empty()) cli->set_bearer_token_auth(token);
  cli->set_connection_timeout(5, 0);
  cli->set_read_timeout(60, 0);
  return cli;
}

namespace {
Reply to_reply(const httplib::Result& r) {
  Reply out;
  if (r) {
    out.status = r->status;
    out.body = r->body;
    out.headers = r->headers;
  }
  return out;
}
}  // namespace

Reply get(const FakeApiServer& api, const std::string& target, const std::string& token,
          const httplib::Headers& headers) {
  auto cli = make_client(api, token);
  return to_reply(cli->Get(target, headers));
}

Reply patch(const FakeApiServer& api, const std::string& target, const std::string& body,
            const std::string& content_type, const std::string& token) {
  auto cli = make_client(api, token);
  return to_reply(cli->Patch(target, body, content_type));
}

// ---- WatchStream ----------------------------------------------------------------------------

WatchStream::WatchStream(const FakeApiServer& api, std::string target, std::string token, httplib::Headers headers)
    : client_(make_client(api, token)) {
  thread_ = std::thread([this, target = std::move(target), headers = std::move(headers)] {
    auto result = client_->Get(
        target, headers,
        [this](const httplib::Response& r) {
          std::lock_guard lk(mu_);
          status_ = r.status;
          for (const auto& [k, v] : r.headers) headers_[k] = v;
          cv_.notify_all();
          return true;
        },
        [this](const char* data, std::size_t n) {
          std::lock_guard lk(mu_);
          partial_.append(data, n);
          std::size_t start = 0, nl;
          while ((nl = partial_.find('\n', start)) != std::string::npos) {
            lines_.push_back(partial_.substr(start, nl - start));
            start = nl + 1;
          }
          partial_.erase(0, start);
          cv_.notify_all();
          return true;
        });
    std::lock_guard lk(mu_);
    if (result && status_ == 0) status_ = result->status;
    if (result && result->status != 200) lines_.push_back(result->body);  // an error Status body
    error_ = result.error();
    closed_ = true;
    cv_.notify_all();
  });
}

WatchStream::~WatchStream() {
  client_->stop();
  thread_.join();
}

std::optional<std::string> WatchStream::next_line(std::chrono::milliseconds timeout) {
  std::unique_lock lk(mu_);
  cv_.wait_for(lk, timeout, [&] { return !lines_.empty() || closed_; });
  if (lines_.empty()) return std::nullopt;
  std::string line = std::move(lines_.front());
  lines_.pop_front();
  return line;
}

std::optional<nlohmann::json> WatchStream::next_event(std::chrono::milliseconds timeout) {
  auto line = next_line(timeout);
  if (!line) return std::nullopt;
  return nlohmann::json::parse(*line, nullptr, false);
}

bool WatchStream::wait_closed(std::chrono::milliseconds timeout) {
  std::unique_lock lk(mu_);
  return cv_.wait_for(lk, timeout, [&] { return closed_; });
}

int WatchStream::status() const {
  std::lock_guard lk(mu_);
  return status_;
}

httplib::Error WatchStream::error() const {
  std::lock_guard lk(mu_);
  return error_;
}

std::map<std::string, std::string> WatchStream::response_headers() const {
  std::lock_guard lk(mu_);
  return headers_;
}

// ---- ChildProcess -------------------------------------------------------------------------------

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  // Everything the child needs is allocated before fork: the test process has threads.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) {
    std::string entry = *e;
    auto name = entry.substr(0, entry.find('=') + 1);
    bool overridden = false;
    for (const auto& o : env) overridden = overridden || o.compare(0, name.size(), name) == 0;
    if (!overridden) env_strings.push_back(entry);
  }
  env_strings.insert(env_strings.end(), env.begin(), env.end());
  std::vector<char*> envp, args;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (auto& a : argv_copy) args.push_back(a.data());
  args.push_back(nullptr);

  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return;
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    close(out_pipe[0]);
    close(out_pipe[1]);
    return;
  }
  pid_ = fork();
  if (pid_ == 0) {
    setpgid(0, 0);  // its own process group, so that helpers it spawns are killed with it
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    execvpe(args[0], args.data(), envp.data());
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (pid_ < 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    return;
  }
  setpgid(pid_, pid_);
  out_fd_ = out_pipe[0];
  err_fd_ = err_pipe[0];
  pid_fd_ = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && status_ < 0) {
    kill(-pid_, SIGKILL);
    int st = 0;
    waitpid(pid_, &st, 0);
  } else if (pid_ > 0) {
    kill(-pid_, SIGKILL);  // helpers left in the group
  }
  if (pid_fd_ >= 0) close(pid_fd_);
  if (out_fd_ >= 0) close(out_fd_);
  if (err_fd_ >= 0) close(err_fd_);
}

bool ChildProcess::pump(std::chrono::milliseconds timeout) {
  pollfd fds[3];
  int n = 0;
  if (out_fd_ >= 0) fds[n++] = {out_fd_, POLLIN, 0};
  if (err_fd_ >= 0) fds[n++] = {err_fd_, POLLIN, 0};
  if (pid_fd_ >= 0 && status_ < 0) fds[n++] = {pid_fd_, POLLIN, 0};  // readable once the child exits
  if (n == 0) return false;
  int r = poll(fds, static_cast<nfds_t>(n), static_cast<int>(timeout.count()));
  if (r <= 0) return true;
  for (int i = 0; i < n; ++i) {
    if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    if (fds[i].fd == pid_fd_) {
      reap();
      continue;
    }
    char buf[65536];
    ssize_t got = read(fds[i].fd, buf, sizeof buf);
    bool is_out = fds[i].fd == out_fd_;
    if (got > 0) {
      (is_out ? out_ : err_).append(buf, static_cast<std::size_t>(got));
    } else if (got == 0 || errno != EINTR) {
      close(fds[i].fd);
      (is_out ? out_fd_ : err_fd_) = -1;
    }
  }
  return out_fd_ >= 0 || err_fd_ >= 0 || status_ < 0;
}

void ChildProcess::reap() {
  if (status_ >= 0 || pid_ <= 0) return;
  int st = 0;
  if (waitpid(pid_, &st, WNOHANG) == pid_) status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

bool ChildProcess::wait_for_output(const std::function<bool(const std::string&)>& done,
                                   std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (!done(out_)) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    if (!pump(left)) return done(out_);
  }
  return true;
}

int ChildProcess::wait(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  auto deadline = Clock::now() + timeout;
  bool exited = false;
  for (;;) {
    reap();
    if (status_ >= 0 && out_fd_ < 0 && err_fd_ < 0) break;
    if (status_ >= 0 && !exited) {
      // Exited; its output may still be held open by helpers it left behind: drain briefly.
      exited = true;
      deadline = std::min(deadline, Clock::now() + std::chrono::seconds(1));
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    if (!pump(left) && status_ < 0 && pid_fd_ < 0) {
      // No pidfd (old kernel): the pipes are closed, the exit follows shortly.
      int st = 0;
      if (waitpid(pid_, &st, 0) == pid_) status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
  }
  return status_;
}

void ChildProcess::signal(int sig) {
  if (pid_ > 0 && status_ < 0) kill(-pid_, sig);
}

CommandResult run_with_deadline(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                                std::chrono::milliseconds timeout) {
  ChildProcess p(argv, env);
  CommandResult r;
  r.exit_code = p.wait(timeout);
  r.out = p.out();
  r.err = p.err();
  return r;
}

}  // namespace kproxy::fakeapi::testing
