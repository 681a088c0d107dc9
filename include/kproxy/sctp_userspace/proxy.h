// The userspace SCTP proxy (--sctp-userspace-mode): terminates every client association to
// an SCTP Service on usrsctp and relays it over a second association to an endpoint.
//
// usrsctp runs without threads (usrsctp_init_nothreads) on its AF_CONN lower layer: one
// event-loop thread reads SCTP packets from a raw IPv4 and a raw IPv6 socket, hands those
// addressed to the proxy to usrsctp, drives its timers, and sends what usrsctp emits through
// the raw socket of the packet's family. No other SCTP stack of the node is disturbed: only
// packets to a Service frontend or to one of the proxy's own endpoint-side ports are taken
// (docs/sctp-userspace.md). An association is single-family end to end: an IPv6 client
// reaches an IPv6 frontend and is relayed to an IPv6 endpoint.
//
// Each family's proxier hands over a new ProxyTable of its family after each of its syncs
// (update() never blocks on the loop); the other family's table stays. New associations use
// it, and associations of that family whose endpoint left it are aborted on both sides.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "kproxy/sctp_userspace/table.h"
#include "kproxy/status.h"

namespace kproxy::sctp_userspace {

struct ProxyOptions {
  // Concurrent client associations; INITs beyond it are answered with ABORT.
  std::size_t max_associations = 10000;
  // The largest message relayed; a larger one aborts its association (bounded memory).
  std::size_t max_message_bytes = 128 * 1024;
  // Send and receive buffer of each of the two sockets of a relay.
  int socket_buffer_bytes = 256 * 1024;
  // Streams offered to clients in each direction; the endpoint is asked for as many as the
  // client opened, and an endpoint that grants fewer is refused (never remapped).
  std::uint16_t streams = 1024;
  // INIT attempts per endpoint and the ceiling of their retransmission timeout.
  std::uint16_t init_attempts = 2;
  std::uint16_t init_timeout_ms = 1000;
  // Endpoints tried for one client association before it is aborted.
  int endpoint_attempts = 3;
  // SCTP heartbeat interval on both sides: below the SCTP conntrack timeout of an
  // established flow (210 s), so that NAT and conntrack on the way never forget it.
  std::uint32_t heartbeat_interval_ms = 30000;
  // Ports for the endpoint-side associations (bound on every node address).
  std::uint16_t local_port_first = 32768;
  std::uint16_t local_port_last = 60999;
};

// Cumulative counters and the current gauge, read by the metrics collector.
struct ProxyStats {
  std::uint64_t associations_active = 0;
  std::uint64_t associations_total = 0;  // client associations accepted
  std::uint64_t messages_to_endpoint = 0, bytes_to_endpoint = 0;
  std::uint64_t messages_to_client = 0, bytes_to_client = 0;
  std::uint64_t endpoint_connect_failures = 0;  // endpoint associations that never came up
  std::uint64_t rejected = 0;                   // INITs answered with ABORT (no endpoints, limit)
  std::uint64_t packets_in = 0, packets_out = 0;
  std::uint64_t bad_checksums = 0;  // packets dropped for a wrong CRC32c
};

class SctpProxy {
 public:
  // Opens the raw sockets (CAP_NET_RAW: an error that says so otherwise; a kernel without
  // IPv6 leaves the proxy IPv4-only, with a warning), starts usrsctp and the loop thread. One
  // per process: usrsctp is process-global.
  static Expected<std::unique_ptr<SctpProxy>> start(const ProxyOptions& options);
  ~SctpProxy();  // aborts every association and stops the loop
  SctpProxy(const SctpProxy&) = delete;
  SctpProxy& operator=(const SctpProxy&) = delete;

  // Replaces `family`'s table (nullptr: that family has no SCTP frontends any more); the
  // other family's is kept. A table of another family than `family` is refused (logged).
  void update(IpFamily family, std::shared_ptr<const ProxyTable> table);
  // The same for the table's own family (table->family()).
  void update(std::shared_ptr<const ProxyTable> table);
  ProxyStats stats() const;

  struct Impl;

 private:
  explicit SctpProxy(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kproxy::sctp_userspace
