// The userspace SCTP proxy's metrics (kproxy_sctp_userspace_*), read from its counters at
// each scrape (docs/metrics.md).
#pragma once

#include "kproxy/metrics/registry.h"
#include "kproxy/sctp_userspace/proxy.h"

namespace kproxy::sctp_userspace {

void register_proxy_metrics(metrics::Registry& registry, const SctpProxy& proxy);

}  // namespace kproxy::sctp_userspace
