#include "subprocess.h"

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

}  // namespace kproxy::testing
