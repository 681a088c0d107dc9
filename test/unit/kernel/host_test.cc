// Host facts read from /proc and /sys: the kernel-SCTP probe that --sctp-userspace-mode's
// startup guard relies on (it must never open an SCTP socket, which would load the module).
#include <gtest/gtest.h>

#include "kproxy/kernel/host.h"

namespace kproxy::kernel {
namespace {

// /proc/net/protocols as a 6.1 kernel prints it, without and with the sctp module loaded.
constexpr const char* kWithoutSctp =
    "protocol  size sockets  memory press maxhdr  slab module     cl co di ac io in de sh ss gs se re bi br ha uh gp em\n"
    "PACKET    1600      0      -1   NI       0   no   kernel      n  n  n  n  n  n  n  n  n  n  n  n  n  n  n  n  n  n\n"
    "UDP       1344      4       2   NI       0   yes  kernel      y  y  y  n  y  y  y  n  y  y  y  y  y  n  n  y  y  n\n"
    "TCP       2464      9       3   no     320   yes  kernel      y  y  y  y  y  y  y  y  y  y  y  y  y  n  y  y  y  y\n";
constexpr const char* kSctpRows =
    "SCTPv6    1632      0       0   no     252   yes  sctp        y  y  y  y  y  y  y  y  y  y  y  n  y  n  y  y  y  n\n"
    "SCTP      1472      0       0   no     252   yes  sctp        y  y  y  y  y  y  y  y  y  y  y  n  y  n  y  y  y  n\n";

TEST(KernelSctpPresent, ReadsTheProtocolTableAndTheModuleDirectory) {
  EXPECT_FALSE(kernel_sctp_present(kWithoutSctp, false));
  EXPECT_TRUE(kernel_sctp_present(std::string(kWithoutSctp) + kSctpRows, false));
  EXPECT_TRUE(kernel_sctp_present(kWithoutSctp, true)) << "the module is loaded, no socket yet";
  EXPECT_FALSE(kernel_sctp_present("", false));
  // Names are compared whole: an "SCTPX" row or "sctp" in another column is not the protocol.
  EXPECT_FALSE(kernel_sctp_present("SCTPX     1 0 0 no 0 yes kernel\nUDP 1 0 0 no 0 yes sctp\n", false));
}

}  // namespace
}  // namespace kproxy::kernel
