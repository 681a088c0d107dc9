#include "kproxy/model/rejection.h"

#include <cctype>

namespace kproxy::model {

std::string_view to_string(RejectReason reason) {
  switch (reason) {
    case RejectReason::kMalformed: return "malformed";
    case RejectReason::kWrongType: return "wrong_type";
    case RejectReason::kMissingField: return "missing_field";
    case RejectReason::kUnknownValue: return "unknown_value";
    case RejectReason::kOutOfRange: return "out_of_range";
    case RejectReason::kInvalidIp: return "invalid_ip";
    case RejectReason::kForbiddenAddress: return "forbidden_address";
    case RejectReason::kFamilyMismatch: return "family_mismatch";
    case RejectReason::kConflict: return "conflict";
    case RejectReason::kTooLarge: return "too_large";
  }
  return "unknown";
}

std::string Rejection::message() const {
  // kube-proxy's log lines name kinds in lower case ("service default/web").
  std::string out;
  for (char c : kind) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  out += ' ';
  out += object;
  out += ": ";
  if (!field.empty()) {
    out += field;
    out += ": ";
  }
  if (!value.empty()) {
    out += value;
    out += ' ';
  }
  out += detail;
  return out;
}

}  // namespace kproxy::model
