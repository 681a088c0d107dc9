// IptablesProxier: the iptables backend of the proxier loop. Each sync renders the snapshot
// (render.h) and applies it in ONE iptables-restore --noflush transaction (filter, then nat),
// as kube-proxy does; full syncs then ensure the jumps from the built-in chains.
//
// Partial syncs (KEP-3453) write the top-level chains and only the chains of the service
// ports that changed. Stale service chains (of deleted ports or endpoints) are flushed and
// deleted in the same transaction. Which service chains the kernel holds is read once, with
// one iptables-save of nat at the first sync (to remove a previous run's leftovers), and
// tracked in memory after that: nothing saves a table in a loop.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "kproxy/iptables/applier.h"
#include "kproxy/iptables/render.h"
#include "kproxy/kernel/ipset_runner.h"
#include "kproxy/kernel/iptables_runner.h"
#include "kproxy/proxier/proxier_loop.h"

namespace kproxy::iptables {

struct IptablesProxierOptions {
  // Everything but the node facts, which come with each sync.
  RenderOptions render;
  // --nodeport-addresses: CIDRs selecting the local addresses that accept NodePorts. Empty:
  // every local address. (The keyword "primary" is resolved by the caller to the node IPs'
  // host CIDRs.)
  std::vector<Cidr> node_port_cidrs;
  // --detect-local-mode NodeCIDR: local traffic comes from this node's pod CIDR of the
  // family, read from its Node object (no detector until the Node has one).
  bool local_detector_from_node_cidr = false;
  // The node's local addresses, read at each sync when node_port_cidrs is set.
  std::function<std::vector<IpAddress>()> local_addresses;
};

// What the last sync wrote, for logs, metrics and benchmarks.
struct IptablesSyncFigures {
  proxier::SyncKind kind = proxier::SyncKind::kFull;
  std::size_t payload_bytes = 0;  // bytes the applier handed to the kernel path
  std::size_t filter_rules = 0;   // rules written to filter
  std::size_t nat_rules = 0;      // rules written to nat
  std::size_t nat_chains = 0;     // nat chains written (declared)
  std::size_t deleted_chains = 0;
  std::size_t jumps_inserted = 0;
  std::size_t ipset_entries = 0;  // entries of the ipsets the rules reference (lean layout)
  std::size_t ipset_applies = 0;  // ipset writes by this sync (0 when no set changed)
  RenderStats stats;
};

class IptablesProxier final : public proxier::ProxierBackend {
 public:
  // `ipsets` is needed by the lean layout (RenderOptions::lean_endpoints), whose rules
  // reference the KUBE-LOOP-BACK set; a sync that needs it without one fails. `applier`
  // writes the rules (applier.h); without one, iptables-restore through `runner` does.
  // `runner` also serves the startup read of the nat table and the built-in jumps.
  IptablesProxier(kernel::IptablesRunner& runner, IptablesProxierOptions options,
                  kernel::IpsetRunner* ipsets = nullptr, RuleApplier* applier = nullptr);

  Status sync(const proxier::SyncRequest& request) override;

  const IptablesSyncFigures& last_figures() const { return figures_; }
  // The last rule set rendered (for the tracer and debugging).
  const std::optional<RenderedRules>& last_rendered() const { return rendered_; }
  // The options of the last render: the configured ones completed from the Node object
  // (node IP, pod CIDR) and the local addresses (--nodeport-addresses).
  const RenderOptions& last_render_options() const { return last_render_options_; }

 private:
  Status load_kernel_chains();
  Status ensure_jumps();
  // Before the restore: each set the rules reference holds what it held and what it must
  // hold (so rules still in the kernel keep their entries until the restore replaces them).
  // `after` gets the entries to remove once the restore succeeded, which trim_ipsets does.
  // Only the difference is written: the renderer's, when the kernel holds its previous
  // result, else the difference with the set read from the kernel.
  struct IpsetRemoval {
    std::string name;
    std::vector<std::string> entries;
  };
  Status apply_ipsets_before(const RenderedRules& rules, std::vector<IpsetRemoval>& after);
  Status trim_ipsets(const std::vector<IpsetRemoval>& after);

  kernel::IptablesRunner& runner_;
  RestoreApplier restore_applier_;
  RuleApplier& applier_;
  IptablesProxierOptions options_;
  kernel::IpsetRunner* ipsets_;
  // The service chains (KUBE-SVC-/SVL-/EXT-/FW-/SEP-/SVCS-) in the kernel's nat table after
  // the last successful restore; unknown until the first sync reads them.
  std::optional<std::set<std::string>> kernel_chains_;
  // Whether the kernel holds rendered_ (the last sync succeeded), and the renderer's result
  // whose ipset contents the kernel holds (valid while last_ipsets_ok_).
  bool last_sync_ok_ = false;
  bool last_ipsets_ok_ = false;
  std::uint64_t ipsets_generation_ = 0;
  IptablesSyncFigures figures_;
  Renderer renderer_;
  std::optional<RenderedRules> rendered_;
  RenderOptions last_render_options_;
};

// The service chains declared in an iptables-save output (":KUBE-SVC-... - [0:0]" lines).
std::set<std::string> service_chains_in_save(std::string_view save_output);

}  // namespace kproxy::iptables
