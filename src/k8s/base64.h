// Strict base64 (RFC 4648, standard alphabet, padding required), as Go's
// base64.StdEncoding decodes kubeconfig "-data" fields: '\r' and '\n' are skipped, anything
// else outside the alphabet is an error naming the input byte offset.
#pragma once

#include <string>
#include <string_view>

#include "kproxy/status.h"

namespace kproxy::k8s {

Expected<std::string> base64_decode(std::string_view text);

}  // namespace kproxy::k8s
