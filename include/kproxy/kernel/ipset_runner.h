// IpsetRunner: the one way kproxy programs ipsets (DESIGN.md, "Kernel adapters").
//
// The iptables backend's lean layout (docs/iptables.md, "Lean endpoint rules") keeps one set,
// KUBE-LOOP-BACK, whose content is replaced as a whole on each change: apply() writes the new
// content into a temporary set and swaps it in, so a rule matching the set never sees it
// half-written. The real implementation runs the ipset binary (ExecIpsetRunner, below); unit
// tests use a stateful fake (test/unit/kernel/fake_ipset.h).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kproxy/kernel/iptables_runner.h"
#include "kproxy/status.h"

namespace kproxy::kernel {

// The whole content of one set.
struct IpsetSpec {
  std::string name;                  // "KUBE-LOOP-BACK"
  std::string type;                  // "hash:ip,port,ip"
  IpFamily family = IpFamily::kIPv4;  // "family inet" / "family inet6"
  // Entries as ipset prints them ("10.1.0.2,tcp:8080,10.1.0.2"; bare port numbers such as
  // "30080" for bitmap:port), sorted as strings, no duplicates.
  std::vector<std::string> entries;
  // The "range FROM-TO" of a bitmap:port set (kube-proxy's IPVS mode: 0-65535 for
  // KUBE-NODE-PORT-TCP and the like). When set, the set is created as "<type> range FROM-TO",
  // with no family and no maxelem (bitmap:port refuses both; its kernel family is unspec, and
  // `family` above is then ignored). Unset for the hash types, which get "family F ... maxelem N".
  std::optional<std::pair<std::uint16_t, std::uint16_t>> port_range = std::nullopt;
  bool operator==(const IpsetSpec&) const = default;
};

class IpsetRunner {
 public:
  virtual ~IpsetRunner() = default;

  // Makes the set hold exactly spec.entries, creating it when missing. Atomic for the
  // packets: the new content is built in "<name>-tmp" and swapped in (ipset swap), then the
  // temporary set is destroyed; a set referenced by iptables rules can be swapped.
  virtual Status apply(const IpsetSpec& spec) = 0;

  // Adds and removes entries of an existing set in one "ipset restore" ("-exist": adding a
  // present entry or removing an absent one is not an error). Its cost follows the change,
  // not the set: what partial syncs use once the set exists.
  virtual Status change(std::string_view name, const std::vector<std::string>& add,
                        const std::vector<std::string>& remove) = 0;

  // The entries of a set, sorted; nullopt when there is no such set.
  virtual Expected<std::optional<std::vector<std::string>>> list(std::string_view name) = 0;

  // Destroys a set. Returns false when there was none. Fails while iptables rules still
  // reference it ("it is in use by a kernel component").
  virtual Expected<bool> destroy(std::string_view name) = 0;
};

// The temporary set apply() builds a set's new content in: "<name>-tmp", or, where that
// would pass ipset's 31 characters (KUBE-LOAD-BALANCER-SOURCE-CIDR), the name's first 22
// characters, "-" and 8 hex digits of a hash of the whole name (so two long names never share
// it, and a restarted kproxy finds a leftover).
std::string ipset_temporary_name(std::string_view name);

// "inet" / "inet6".
std::string_view ipset_family_name(IpFamily family);
// The maxelem kproxy creates a set with: at least ipset's default (65536), and room for twice
// the entries, so a set at 10,000 Services x 10 endpoints fits.
std::size_t ipset_max_elements(std::size_t entries);

// The "ipset restore" script of apply(): optional "destroy <name>-tmp" (a leftover) and
// "create <name>" (the set is missing), then create the temporary set, add every entry, swap,
// destroy the temporary set. Sets are created with "<type> family F" (the temporary one with
// "maxelem N" too), or "<type> range FROM-TO" when spec.port_range is set (bitmap:port).
std::string ipset_apply_script(const IpsetSpec& spec, bool create_set, bool destroy_leftover_tmp);

// The "ipset restore" script of change(): "add NAME ENTRY -exist" and "del NAME ENTRY -exist" lines.
std::string ipset_change_script(std::string_view name, const std::vector<std::string>& add,
                                const std::vector<std::string>& remove);

struct ExecIpsetOptions {
  std::vector<std::string> command_prefix;  // e.g. {"ip", "netns", "exec", "kpt-x-1"}
  std::chrono::milliseconds timeout = std::chrono::minutes(5);
};

// Runs /usr/sbin/ipset (looked up as run_command does): "ipset restore" for apply (after one
// "ipset list -n" per set, at the first apply or after a failure, to learn whether the set and
// a leftover temporary set exist), "ipset save NAME" for list, "ipset destroy NAME".
class ExecIpsetRunner final : public IpsetRunner {
 public:
  explicit ExecIpsetRunner(ExecIpsetOptions options);

  Status apply(const IpsetSpec& spec) override;
  Status change(std::string_view name, const std::vector<std::string>& add,
                const std::vector<std::string>& remove) override;
  Expected<std::optional<std::vector<std::string>>> list(std::string_view name) override;
  Expected<bool> destroy(std::string_view name) override;

 private:
  std::vector<std::string> with_prefix(std::vector<std::string> argv) const;

  ExecIpsetOptions options_;
  // Sets this runner created or found, so later applies skip the "ipset list -n".
  std::vector<std::string> known_;
};

// The entries of "ipset save" output ("add NAME ENTRY" lines), sorted.
std::vector<std::string> ipset_entries_in_save(std::string_view save_output);

}  // namespace kproxy::kernel
