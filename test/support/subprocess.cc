#include "subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <gtest/gtest.h>

#include "kproxy/kernel/exec_iptables_runner.h"

namespace kproxy::testing {

// One subprocess implementation in the project: the kernel adapter's run_command (no shell,
// stdin fed while output is drained, a timeout that kills a hung child).
RunResult run(const std::vector<std::string>& argv, const std::string& input) {
  RunResult result;
  auto r = kernel::run_command(argv, input, std::chrono::minutes(5));
  if (!r) {
    result.err = r.error();
    return result;
  }
  result.exit_code = r->exit_code;
  result.out = std::move(r->out);
  result.err = std::move(r->err);
  return result;
}

RunResult run_ok(const std::vector<std::string>& argv, const std::string& input) {
  RunResult r = run(argv, input);
  if (r.exit_code != 0) {
    std::string cmd;
    for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
    ADD_FAILURE() << "command failed (status " << r.exit_code << "): " << cmd << "\nstderr: " << r.err;
  }
  return r;
}


BackgroundProcess::BackgroundProcess(const std::vector<std::string>& argv, const std::string& netns) {
  std::vector<std::string> full;
  if (!netns.empty()) full = {"ip", "netns", "exec", netns};
  full.insert(full.end(), argv.begin(), argv.end());
  for (const auto& a : full) command_ += (command_.empty() ? "" : " ") + a;
  if (argv.empty()) {
    err_ = "empty command";
    exited_ = true;
    return;
  }
  std::vector<char*> cargv;
  for (auto& a : full) cargv.push_back(a.data());
  cargv.push_back(nullptr);

  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0) {
    err_ = std::string("pipe: ") + std::strerror(errno);
    exited_ = true;
    return;
  }
  if (pipe2(err, O_CLOEXEC) != 0) {
    err_ = std::string("pipe: ") + std::strerror(errno);
    close(out[0]);
    close(out[1]);
    exited_ = true;
    return;
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    // Only async-signal-safe calls from here to exec.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    setpgid(0, 0);
    const int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull >= 0) dup2(devnull, 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execvp(cargv[0], cargv.data());
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  if (pid < 0) {
    err_ = std::string("fork: ") + std::strerror(errno);
    close(out[0]);
    close(err[0]);
    exited_ = true;
    return;
  }
  pid_ = pid;
  out_fd_ = out[0];
  err_fd_ = err[0];
  reader_ = std::thread([this] { pump(); });
}

BackgroundProcess::~BackgroundProcess() { stop(); }

void BackgroundProcess::pump() {
  pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
  int open_fds = 2;
  while (open_fds > 0) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (auto& p : fds) {
      if (p.fd < 0 || p.revents == 0) continue;
      char buf[4096];
      const ssize_t n = read(p.fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        close(p.fd);
        p.fd = -1;
        --open_fds;
        continue;
      }
      std::lock_guard lock(mu_);
      if (p.fd == out_fd_) {
        partial_.append(buf, static_cast<size_t>(n));
        size_t nl;
        while ((nl = partial_.find('\n')) != std::string::npos) {
          lines_.push_back(partial_.substr(0, nl));
          partial_.erase(0, nl + 1);
        }
      } else {
        err_.append(buf, static_cast<size_t>(n));
      }
      cv_.notify_all();
    }
  }
  // Both pipes closed: the program exited (or closed them itself); reap it.
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  std::lock_guard lock(mu_);
  if (!partial_.empty()) lines_.push_back(partial_);
  partial_.clear();
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  exited_ = true;
  cv_.notify_all();
}

bool BackgroundProcess::wait_for(const std::function<bool(const std::vector<std::string>&)>& pred,
                                 std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return pred(lines_) || exited_; }) && pred(lines_);
}

bool BackgroundProcess::wait_for_line(const std::string& line, std::chrono::milliseconds timeout) {
  return wait_for(
      [&](const std::vector<std::string>& lines) {
        for (const auto& l : lines)
          if (l == line) return true;
        return false;
      },
      timeout);
}

std::vector<std::string> BackgroundProcess::stdout_lines() const {
  std::lock_guard lock(mu_);
  return lines_;
}

std::string BackgroundProcess::stderr_text() const {
  std::lock_guard lock(mu_);
  return err_;
}

bool BackgroundProcess::running() const {
  std::lock_guard lock(mu_);
  return !exited_;
}

int BackgroundProcess::exit_code() const {
  std::lock_guard lock(mu_);
  return exit_code_;
}

int BackgroundProcess::stop(std::chrono::milliseconds grace) {
  if (pid_ > 0) {
    std::unique_lock lock(mu_);
    if (!exited_) {
      kill(pid_, SIGTERM);
      if (!cv_.wait_for(lock, grace, [&] { return exited_; })) {
        // The whole process group: the program and anything it started.
        kill(-pid_, SIGKILL);
        kill(pid_, SIGKILL);
        cv_.wait(lock, [&] { return exited_; });
      }
    }
  }
  if (reader_.joinable()) reader_.join();
  return exit_code();
}

std::string BackgroundProcess::describe() const {
  std::lock_guard lock(mu_);
  std::string s = "command: " + command_ + "\n";
  s += exited_ ? "exit status: " + std::to_string(exit_code_) + "\n" : "still running\n";
  s += "stderr:\n" + err_;
  return s;
}

}  // namespace kproxy::testing
