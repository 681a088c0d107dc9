#include "kproxy/iptables/applier.h"

namespace kproxy::iptables {

Expected<std::size_t> RestoreApplier::apply(const std::vector<TableBlock>& blocks) {
  const std::string payload = restore_payload(blocks);
  if (Status s = runner_.restore(payload, kernel::RestoreFlags{}); !s.ok()) return Error(s.message());
  return payload.size();
}

}  // namespace kproxy::iptables
