#include "kproxy/kernel/conntrack.h"

namespace kproxy::kernel {

std::string_view flow_protocol_name(FlowProtocol protocol) {
  switch (protocol) {
    case FlowProtocol::kTcp:
      return "tcp";
    case FlowProtocol::kUdp:
      return "udp";
    case FlowProtocol::kSctp:
      return "sctp";
  }
  return "unknown";
}

std::string to_string(const Flow& flow) {
  auto tuple = [](const FlowTuple& t) {
    return join_host_port(t.src, t.src_port) + " -> " + join_host_port(t.dst, t.dst_port);
  };
  std::string out =
      std::string(flow_protocol_name(flow.protocol)) + " " + tuple(flow.original) + " reply " + tuple(flow.reply);
  if (flow.zone != 0) out += ", zone " + std::to_string(flow.zone);
  if (flow.id != 0) out += ", id " + std::to_string(flow.id);
  return out;
}

}  // namespace kproxy::kernel
