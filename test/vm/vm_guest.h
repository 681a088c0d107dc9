// Helpers for tests that run inside the vm tier's guest (test/vm/run), label vm-guest.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

namespace kproxy::testing {

// True inside test/vm/run's guest (its job folder is mounted): the guest tests skip
// elsewhere, so `ctest -L vm` on a host (which also matches vm-guest) changes nothing there.
inline bool in_vm_guest() { return access("/run/kproxy-vm/job", F_OK) == 0; }

// Whether the kernel SCTP module is loaded: /sys/module/sctp exists exactly then (Debian
// builds sctp as a module). test/vm/sctp-module is the same check for shell tests.
inline bool sctp_module_loaded() {
  struct stat st;
  return stat("/sys/module/sctp", &st) == 0;
}

}  // namespace kproxy::testing
