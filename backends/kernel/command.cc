// run_command: a child process with stdin/stdout/stderr on pipes, no shell.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <algorithm>

#include "kproxy/kernel/exec_iptables_runner.h"

extern char** environ;

namespace kproxy::kernel {
namespace {

std::string errno_text(const char* what, int err) { return std::string(what) + ": " + std::strerror(err); }

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

struct PipePair {
  Fd read, write;
};

Status make_pipe(PipePair& p) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Error(errno_text("pipe2", errno));
  p.read.reset(fds[0]);
  p.write.reset(fds[1]);
  return {};
}

// argv[0] as given when it has a '/', else the first executable in PATH, /usr/sbin, /sbin.
std::string resolve(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  std::string dirs;
  if (const char* path = std::getenv("PATH")) dirs = path;
  dirs += ":/usr/sbin:/sbin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    std::size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    if (!dir.empty()) {
      std::string candidate = dir + "/" + name;
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    start = end + 1;
  }
  return {};
}

// Blocks SIGPIPE in this thread while writing to the child, and drops one that a write to
// an exited child raised, so a child that dies early is an error, not the end of kproxy.
class SigpipeGuard {
 public:
  SigpipeGuard() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &old_);
  }
  ~SigpipeGuard() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    timespec zero{0, 0};
    while (sigtimedwait(&set, nullptr, &zero) > 0) {
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }

 private:
  sigset_t old_;
};

}  // namespace

Expected<CommandResult> run_command(const std::vector<std::string>& argv, std::string_view input,
                                    std::chrono::milliseconds timeout) {
  if (argv.empty()) return Error("run_command: empty argv");
  const std::string path = resolve(argv[0]);
  if (path.empty()) return Error(argv[0] + ": not found in PATH, /usr/sbin or /sbin");

  PipePair in, out, err;
  for (PipePair* p : {&in, &out, &err}) {
    if (Status s = make_pipe(*p); !s.ok()) return Error(argv[0] + ": " + s.message());
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in.read.get(), 0);
  posix_spawn_file_actions_adddup2(&actions, out.write.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, err.write.get(), 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, path.c_str(), &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return Error(errno_text(("spawn " + path).c_str(), rc));
  in.read.reset();
  out.write.reset();
  err.write.reset();

  CommandResult result;
  SigpipeGuard guard;
  std::size_t written = 0;
  if (input.empty()) in.write.reset();
  else ::fcntl(in.write.get(), F_SETFL, O_NONBLOCK);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timed_out = false;
  while (out.read.get() >= 0 || err.read.get() >= 0) {
    pollfd fds[3];
    nfds_t n = 0;
    int out_i = -1, err_i = -1, in_i = -1;
    if (out.read.get() >= 0) { out_i = static_cast<int>(n); fds[n++] = {out.read.get(), POLLIN, 0}; }
    if (err.read.get() >= 0) { err_i = static_cast<int>(n); fds[n++] = {err.read.get(), POLLIN, 0}; }
    if (in.write.get() >= 0) { in_i = static_cast<int>(n); fds[n++] = {in.write.get(), POLLOUT, 0}; }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    int pr = ::poll(fds, n, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (pr < 0) {
      if (errno == EINTR) continue;
      ::kill(pid, SIGKILL);
      break;
    }
    char buf[65536];
    auto drain = [&](int idx, Fd& fd, std::string& sink) {
      if (idx < 0 || !(fds[idx].revents & (POLLIN | POLLHUP | POLLERR))) return;
      ssize_t r = ::read(fd.get(), buf, sizeof buf);
      if (r > 0) sink.append(buf, static_cast<std::size_t>(r));
      else if (r == 0 || errno != EINTR) fd.reset();
    };
    drain(out_i, out.read, result.out);
    drain(err_i, err.read, result.err);
    if (in_i >= 0 && (fds[in_i].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t w = ::write(in.write.get(), input.data() + written, input.size() - written);
      if (w > 0) written += static_cast<std::size_t>(w);
      else if (w < 0 && errno != EINTR && errno != EAGAIN) in.write.reset();  // EPIPE: child closed stdin
      if (written == input.size()) in.write.reset();
    }
  }
  in.write.reset();
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0) {
    if (errno != EINTR) return Error(errno_text(("waitpid " + path).c_str(), errno));
  }
  if (timed_out) {
    return Error(argv[0] + ": killed after " + std::to_string(timeout.count()) + " ms" +
                 (result.err.empty() ? "" : "; stderr: " + result.err));
  }
  if (WIFEXITED(wstatus)) result.exit_code = WEXITSTATUS(wstatus);
  else if (WIFSIGNALED(wstatus)) result.exit_code = 128 + WTERMSIG(wstatus);
  return result;
}

}  // namespace kproxy::kernel
