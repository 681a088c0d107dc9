// Conntrack cleanup: which UDP and SCTP flows stop being valid when the proxier's snapshot
// changes, and deleting them after a successful sync (docs/conntrack.md states each rule
// and the kube-proxy behaviour it matches or extends).
//
// A reconciler, as kube-proxy's since 1.32 (pkg/proxy/conntrack/cleanup.go): list the
// flows, compare them with what the current snapshot says should exist, delete the rest.
// The previous snapshot only adds the Service addresses that went away, so a restart (no
// previous snapshot) deletes nothing that is still valid.
#pragma once

#include <cstddef>
#include <vector>

#include "kproxy/ip.h"
#include "kproxy/kernel/conntrack.h"
#include "kproxy/proxier/snapshot.h"
#include "kproxy/status.h"

namespace kproxy::proxier {

// The flows among `flows` to delete, in their order. `previous` may be null (first sync
// since start); a previous snapshot of another family than `current` is ignored, as are
// flows of another family. `local_addresses` are the node's addresses (NodePort flows are
// those to a NodePort on one of them).
//
// Only UDP and SCTP flows are ever returned; TCP flows are left to finish. A flow is stale
// when
//  1. its original destination is a current UDP/SCTP service port's frontend (cluster IP,
//     external IP or load-balancer IP, on the port), or a NodePort on a local address, and
//     its reply source is not one of that port's serving endpoints (IP and port). This holds
//     for a port with no serving endpoints too, and for a flow that was never DNATed (reply
//     source == original destination), which is how a flow created while the Service had
//     no endpoints, or before its rules existed, goes once it has some;
//  2. its original destination was such a frontend or NodePort in `previous` and is none in
//     `current` (a deleted Service, port or address).
std::vector<kernel::Flow> stale_flows(const Snapshot* previous, const Snapshot& current,
                                      const std::vector<kernel::Flow>& flows,
                                      const std::vector<IpAddress>& local_addresses);

// Whether any flow can have become stale between the two snapshots: always at the first
// cleanup (`previous` null), otherwise only when some UDP or SCTP service port was added,
// removed or changed. Flows created after the rules of `previous` were in place were DNATed
// by them (or rejected, which leaves no entry), so they are valid for `previous`.
bool conntrack_cleanup_needed(const Snapshot* previous, const Snapshot& current);

// What the proxier calls after each successful sync: lists the UDP and SCTP flows of the
// snapshot's family (unless conntrack_cleanup_needed says nothing can be stale) and deletes
// the stale ones. Returns how many were deleted, or the listing's or deletions' error.
//
// `previous` is the snapshot of the last cleanup that SUCCEEDED (null before the first):
// after a failure, keep the old one, so that the next cleanup still sees the Services that
// were deleted meanwhile and does not skip as "nothing changed".
Expected<std::size_t> cleanup_stale_flows(kernel::ConntrackTable& table, const Snapshot* previous,
                                          const Snapshot& current, const std::vector<IpAddress>& local_addresses);

}  // namespace kproxy::proxier
