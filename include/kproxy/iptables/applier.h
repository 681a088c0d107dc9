// RuleApplier: how a sync's table blocks reach the kernel.
//
// The proxier decides WHAT to write (render.h, sync_blocks); an applier writes it, with
// iptables-restore's --noflush semantics: each declared chain is created or flushed, the
// rules are appended in order, the deleted chains are removed, and each table is committed
// atomically (a failed table leaves the kernel as it was; tables committed before it stay).
// Two implementations:
//   - RestoreApplier: the restore payload text through an IptablesRunner (iptables-restore,
//     nft or legacy), what kube-proxy does;
//   - LibiptcApplier (libiptc_applier.h): in-process through libiptc, legacy nodes only
//     (docs/iptables.md, "The libiptc applier").
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

#include "kproxy/iptables/rules.h"
#include "kproxy/kernel/iptables_runner.h"
#include "kproxy/status.h"

namespace kproxy::iptables {

class RuleApplier {
 public:
  virtual ~RuleApplier() = default;
  // Writes the blocks; returns the bytes handed to the kernel path (the restore payload, or
  // the entries built for libiptc), for the sync's figures.
  virtual Expected<std::size_t> apply(const std::vector<TableBlock>& blocks) = 0;
  // Ensures each jump is in its built-in chain, inserting the missing ones at the top (as
  // "iptables -C || iptables -I" does); returns how many were inserted.
  virtual Expected<std::size_t> ensure_jumps(const std::vector<BuiltinJump>& jumps) = 0;
  // "restore" or "libiptc", for logs.
  virtual std::string_view name() const = 0;
};

class RestoreApplier final : public RuleApplier {
 public:
  explicit RestoreApplier(kernel::IptablesRunner& runner) : runner_(runner) {}
  Expected<std::size_t> apply(const std::vector<TableBlock>& blocks) override;
  // One "iptables -C" per jump, and "iptables -I" for a missing one.
  Expected<std::size_t> ensure_jumps(const std::vector<BuiltinJump>& jumps) override;
  std::string_view name() const override { return "restore"; }

 private:
  kernel::IptablesRunner& runner_;
};

// "ensuring the jump to KUBE-SERVICES in nat PREROUTING: <error>".
std::string jump_error(const BuiltinJump& jump, std::string_view error);

}  // namespace kproxy::iptables
