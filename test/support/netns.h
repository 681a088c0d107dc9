// Throwaway network namespaces for the netns tier.
//
// Every kernel test works inside namespaces that it creates and always deletes; the root
// namespace (its addresses, routes, iptables and sysctls) is never changed. Names carry
// the prefix "kpt-" plus a test-specific part and the process id, so leftovers of a crashed
// run are recognisable and removed by the next run of the same test.
#pragma once

#include <string>
#include <vector>

#include "subprocess.h"

namespace kproxy::testing {

class Netns {
 public:
  // Creates "kpt-<tag>-<pid>" (deleting a stale one of that name first) and brings up lo.
  explicit Netns(const std::string& tag);
  ~Netns();
  Netns(const Netns&) = delete;
  Netns& operator=(const Netns&) = delete;

  const std::string& name() const { return name_; }
  bool ok() const { return ok_; }

  // Runs a command inside the namespace (ip netns exec).
  RunResult exec(const std::vector<std::string>& argv, const std::string& input = "") const;
  RunResult exec_ok(const std::vector<std::string>& argv, const std::string& input = "") const;

  // Deletes every namespace named "kpt-<tag>-<pid>" whose process is gone (leftovers of a
  // crashed run); namespaces of live processes, such as parallel tests, are left alone.
  static void remove_stale(const std::string& tag);
  static std::vector<std::string> list();

 private:
  std::string name_;
  bool ok_ = false;
};

// Moves the calling thread into the named namespace (/run/netns/<name>) for its lifetime, then
// back to the one it was in. Threads and sockets created meanwhile stay in the named
// namespace: that is how an in-process server (the fake API server) is made to listen inside
// a test namespace. Only the calling thread moves; use it from one thread at a time.
class ScopedNetnsEntry {
 public:
  explicit ScopedNetnsEntry(const std::string& name);
  ~ScopedNetnsEntry();
  ScopedNetnsEntry(const ScopedNetnsEntry&) = delete;
  ScopedNetnsEntry& operator=(const ScopedNetnsEntry&) = delete;

  bool ok() const { return entered_; }
  const std::string& error() const { return error_; }

 private:
  int original_fd_ = -1;
  bool entered_ = false;
  std::string error_;
};

// True when the process may create namespaces (root, /run/netns writable, iproute2 present).
bool can_create_netns();

}  // namespace kproxy::testing
