// LibiptcApplier: writes a sync's table blocks in-process through libiptc, on nodes whose
// iptables flavour is legacy (libiptc speaks ip_tables' get/setsockopt interface, which
// nf_tables-based iptables does not use). Semantics are iptables-restore --noflush's
// (applier.h); it takes the xtables lock (/run/xtables.lock) for the whole write, as
// iptables-legacy-restore does, and resolves ipset names to the kernel's indices.
// IPv4 only. docs/iptables.md, "The libiptc applier".
#pragma once

#include <string>

#include "kproxy/iptables/applier.h"

namespace kproxy::iptables {

struct LibiptcApplierOptions {
  std::string lock_path = "/run/xtables.lock";
  int wait_seconds = 5;  // as iptables' -w 5: give up on the lock after this long
};

class LibiptcApplier final : public RuleApplier {
 public:
  explicit LibiptcApplier(LibiptcApplierOptions options = {}) : options_(std::move(options)) {}
  Expected<std::size_t> apply(const std::vector<TableBlock>& blocks) override;
  // One read and at most one commit per table, in-process.
  Expected<std::size_t> ensure_jumps(const std::vector<BuiltinJump>& jumps) override;
  std::string_view name() const override { return "libiptc"; }

 private:
  LibiptcApplierOptions options_;
};

}  // namespace kproxy::iptables
