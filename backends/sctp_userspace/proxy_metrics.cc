#include "kproxy/sctp_userspace/proxy_metrics.h"

namespace kproxy::sctp_userspace {

void register_proxy_metrics(metrics::Registry& registry, const SctpProxy& proxy) {
  using metrics::FamilyOptions;
  using metrics::MetricType;
  using metrics::Sample;
  const SctpProxy* p = &proxy;
  auto one = [p](std::uint64_t ProxyStats::*field) {
    return [p, field]() { return std::vector<Sample>{{{}, static_cast<double>(p->stats().*field)}}; };
  };
  auto both = [p](std::uint64_t ProxyStats::*to_endpoint, std::uint64_t ProxyStats::*to_client) {
    return [p, to_endpoint, to_client]() {
      const ProxyStats s = p->stats();
      return std::vector<Sample>{{{"to_client"}, static_cast<double>(s.*to_client)},
                                 {{"to_endpoint"}, static_cast<double>(s.*to_endpoint)}};
    };
  };
  registry.add_collector(FamilyOptions{"kproxy_sctp_userspace_associations", "Client associations the userspace SCTP proxy relays now", {}},
                         MetricType::kGauge, one(&ProxyStats::associations_active));
  registry.add_collector(FamilyOptions{"kproxy_sctp_userspace_associations_total", "Cumulative client associations accepted by the userspace SCTP proxy", {}},
                         MetricType::kCounter, one(&ProxyStats::associations_total));
  registry.add_collector(FamilyOptions{"kproxy_sctp_userspace_messages_total", "Cumulative SCTP messages relayed, by direction", {"direction"}},
                         MetricType::kCounter, both(&ProxyStats::messages_to_endpoint, &ProxyStats::messages_to_client));
  registry.add_collector(FamilyOptions{"kproxy_sctp_userspace_bytes_total", "Cumulative SCTP message bytes relayed, by direction", {"direction"}},
                         MetricType::kCounter, both(&ProxyStats::bytes_to_endpoint, &ProxyStats::bytes_to_client));
  registry.add_collector(FamilyOptions{"kproxy_sctp_userspace_endpoint_connect_failures_total", "Cumulative endpoint associations that did not come up (refused, timed out, or too few streams)", {}},
                         MetricType::kCounter, one(&ProxyStats::endpoint_connect_failures));
  registry.add_collector(FamilyOptions{"kproxy_sctp_userspace_rejected_total", "Cumulative INITs answered with ABORT: no endpoints, or the association limit", {}},
                         MetricType::kCounter, one(&ProxyStats::rejected));
}

}  // namespace kproxy::sctp_userspace
