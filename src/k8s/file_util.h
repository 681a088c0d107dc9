// Reading credential files with errno text ("No such file or directory") for messages that
// name the file.
#pragma once

#include <string>
#include <string_view>

#include "kproxy/status.h"

namespace kproxy::k8s {

// The whole file; the error is strerror(errno) alone, for the caller to prefix with context.
Expected<std::string> read_file(const std::string& path);

// Leading and trailing ASCII whitespace removed (tokens, as client-go's strings.TrimSpace).
std::string trim(std::string_view s);

}  // namespace kproxy::k8s
