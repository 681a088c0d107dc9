#include "kproxy/model/protocol.h"

namespace kproxy::model {

std::string_view to_string(Protocol protocol) {
  switch (protocol) {
    case Protocol::kTcp: return "TCP";
    case Protocol::kUdp: return "UDP";
    case Protocol::kSctp: return "SCTP";
  }
  return "unknown";
}

}  // namespace kproxy::model
