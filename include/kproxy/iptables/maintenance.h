// What the iptables backend does besides syncing: the canary that notices when another
// program flushed the tables, and --cleanup.
#pragma once

#include <string>
#include <vector>

#include "kproxy/kernel/ipset_runner.h"
#include "kproxy/kernel/iptables_runner.h"
#include "kproxy/status.h"

namespace kproxy::iptables {

// KUBE-PROXY-CANARY in mangle, nat and filter, as kube-proxy's Monitor creates it, but with
// one rule in it: "iptables -t T -F" (a firewalld reload, an operator's flush) empties the
// chain without deleting it, which kube-proxy's existence check misses. intact() is three
// cheap "iptables -S KUBE-PROXY-CANARY 1" calls; the caller checks every --sync-period and
// forces a full sync when it returns false, then calls ensure() again.
class Canary {
 public:
  explicit Canary(kernel::IptablesRunner& runner) : runner_(runner) {}

  // Creates (or refills) the three canary chains in one restore.
  Status ensure();
  // False when some table lost the canary chain or its rule. `which` names those tables.
  Expected<bool> intact(std::vector<std::string>* which = nullptr);

  static const char* const kComment;

 private:
  kernel::IptablesRunner& runner_;
};

// kproxy --cleanup: removes what kproxy (or kube-proxy: the chain names are the same) created
// in this family's tables: the jumps from the built-in chains, the top-level KUBE- chains, every
// per-service chain and the canaries. Leaves KUBE-FIREWALL and its jumps (kubelet owns an
// identical chain) and every rule kproxy does not own. Reads nat once (iptables-save) to find
// the service chains. With `ipsets`, then destroys the lean layout's KUBE-LOOP-BACK set (which
// fails, and is reported, while other rules, kube-proxy's IPVS mode say, still use it).
// Returns an error naming what could not be removed.
Status cleanup(kernel::IptablesRunner& runner, kernel::IpsetRunner* ipsets = nullptr);

}  // namespace kproxy::iptables
