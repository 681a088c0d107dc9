#include "netns.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <sstream>

namespace kproxy::testing {

std::vector<std::string> Netns::list() {
  std::vector<std::string> names;
  RunResult r = run({"ip", "netns", "list"});
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    auto space = line.find(' ');
    names.push_back(line.substr(0, space));
  }
  return names;
}

void Netns::remove_stale(const std::string& tag) {
  // Only namespaces whose owner is gone: tests of the same tag may be running in parallel
  // (ctest -j), and the name ends with the owner's pid.
  const std::string prefix = "kpt-" + tag + "-";
  for (const auto& n : list()) {
    if (n.rfind(prefix, 0) != 0) continue;
    const auto dash = n.rfind('-');
    const std::string pid_text = n.substr(dash + 1);
    if (pid_text.empty() || pid_text.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t owner = static_cast<pid_t>(std::stol(pid_text));
    if (owner == getpid() || kill(owner, 0) == 0 || errno != ESRCH) continue;
    run({"ip", "netns", "delete", n});
  }
}

Netns::Netns(const std::string& tag) : name_("kpt-" + tag + "-" + std::to_string(getpid())) {
  run({"ip", "netns", "delete", name_});
  ok_ = run_ok({"ip", "netns", "add", name_}).exit_code == 0 &&
        exec_ok({"ip", "link", "set", "lo", "up"}).exit_code == 0;
}

Netns::~Netns() { run({"ip", "netns", "delete", name_}); }

RunResult Netns::exec(const std::vector<std::string>& argv, const std::string& input) const {
  std::vector<std::string> full = {"ip", "netns", "exec", name_};
  full.insert(full.end(), argv.begin(), argv.end());
  return run(full, input);
}

RunResult Netns::exec_ok(const std::vector<std::string>& argv, const std::string& input) const {
  std::vector<std::string> full = {"ip", "netns", "exec", name_};
  full.insert(full.end(), argv.begin(), argv.end());
  return run_ok(full, input);
}

ScopedNetnsEntry::ScopedNetnsEntry(const std::string& name) {
  original_fd_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (original_fd_ < 0) {
    error_ = std::string("open /proc/thread-self/ns/net: ") + std::strerror(errno);
    return;
  }
  const std::string path = "/run/netns/" + name;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error_ = "open " + path + ": " + std::strerror(errno);
    return;
  }
  if (::setns(fd, CLONE_NEWNET) != 0) {
    error_ = "setns " + path + ": " + std::strerror(errno);
  } else {
    entered_ = true;
  }
  ::close(fd);
}

ScopedNetnsEntry::~ScopedNetnsEntry() {
  // Failing to return would leave the test thread in a throwaway namespace, and later
  // "ip netns" commands and fixtures would act there: stop rather than go on.
  if (entered_ && ::setns(original_fd_, CLONE_NEWNET) != 0) std::abort();
  if (original_fd_ >= 0) ::close(original_fd_);
}

bool can_create_netns() { return geteuid() == 0 && run({"ip", "-V"}).exit_code == 0; }

}  // namespace kproxy::testing
