// LibIpsetRunner: the IpsetRunner over Debian's libipset (DESIGN.md, "Kernel adapters").
//
// The same semantics as ExecIpsetRunner (include/kproxy/kernel/ipset_runner.h), without a
// process per call: libipset's session API parses each entry with ipset's own element parsers
// and sends the commands over one netlink socket; adds and deletes of one set go out batched,
// as "ipset restore" sends them. Errors name the set and the entry or command that failed.
//
// Each call opens its own libipset session, and so its own netlink socket, and closes it on
// return: the runner works on the network namespace of the thread that calls it, at that call
// (the daemon calls it from the node's namespace; tests call it from a thread that entered a
// test namespace). Needs CAP_NET_ADMIN there. A session lives for one call because libipset
// is built for one-shot use, as the ipset binary uses it: after a dump that fails (saving a
// missing set) the session's next command fails ("Internal protocol error"), and its set-name
// cache is process-wide and knows no namespaces. libipset's state is
// process-wide (registered types, that cache, its print state), so the runners of a process
// take one lock per call; a runner may be called from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kproxy/kernel/ipset_runner.h"
#include "kproxy/status.h"

namespace kproxy::kernel {

class LibIpsetRunner final : public IpsetRunner {
 public:
  LibIpsetRunner() = default;

  Status apply(const IpsetSpec& spec) override;
  Status change(std::string_view name, const std::vector<std::string>& add,
                const std::vector<std::string>& remove) override;
  Expected<std::optional<std::vector<std::string>>> list(std::string_view name) override;
  Expected<bool> destroy(std::string_view name) override;

 private:
  // Sets this runner created or found, so later applies skip the existence checks
  // (as ExecIpsetRunner's "ipset list -n").
  std::vector<std::string> known_;
};

}  // namespace kproxy::kernel
