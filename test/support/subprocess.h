// Running programs from tests: capture stdout/stderr and the exit status. No shell is
// involved; arguments are passed as they are.
#pragma once

#include <string>
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

}  // namespace kproxy::testing
