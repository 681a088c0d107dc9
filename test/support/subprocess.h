// Running programs from tests: capture stdout/stderr and the exit status. No shell is
// involved; arguments are passed as they are.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace kproxy::testing {

struct RunResult {
  int exit_code = -1;  // the exit status, or 128 + signal number
  std::string out;
  std::string err;
};

// Runs argv[0] (searched in PATH) with the given arguments, writing `input` to its stdin.
RunResult run(const std::vector<std::string>& argv, const std::string& input = "");

// run() that fails the current test with the command, status and stderr if it exits non-zero.
RunResult run_ok(const std::vector<std::string>& argv, const std::string& input = "");

// A program running in the background while a test drives it: stdout is collected line by
// line (wait_for_line), stderr into a buffer a test can print on failure. The destructor
// stops it (SIGTERM, then SIGKILL after a grace period) and reaps it. The child also gets
// SIGKILL when the thread that started it dies (PR_SET_PDEATHSIG), so a crashed test leaves
// no process behind: start it from the test's main thread.
class BackgroundProcess {
 public:
  // Runs argv (argv[0] searched in PATH); with `netns` non-empty, inside that namespace
  // ("ip netns exec", which execs in place: pid() is the program itself).
  explicit BackgroundProcess(const std::vector<std::string>& argv, const std::string& netns = "");
  ~BackgroundProcess();
  BackgroundProcess(const BackgroundProcess&) = delete;
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;

  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  const std::string& command() const { return command_; }

  // Waits until a stdout line equals `line` (true), the process exits or the timeout passes.
  bool wait_for_line(const std::string& line, std::chrono::milliseconds timeout);
  // Waits until `pred` holds for the stdout lines so far.
  bool wait_for(const std::function<bool(const std::vector<std::string>&)>& pred, std::chrono::milliseconds timeout);

  std::vector<std::string> stdout_lines() const;
  std::string stderr_text() const;
  // Whether it is still running; exit_code() is valid (status or 128 + signal) once not.
  bool running() const;
  int exit_code() const;

  // SIGTERM, up to `grace` for it to exit, then SIGKILL; reaps it. Returns the exit code.
  // Idempotent.
  int stop(std::chrono::milliseconds grace = std::chrono::seconds(3));

  // The command line, exit status and stderr: for failure messages.
  std::string describe() const;

 private:
  void pump();  // reader thread: drains stdout and stderr, reaps the child at EOF

  std::string command_;
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;
  std::string partial_;
  std::string err_;
  bool exited_ = false;
  int exit_code_ = -1;
  std::thread reader_;
};

}  // namespace kproxy::testing
