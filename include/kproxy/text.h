// Small text helpers shared by the adapters that read command output.
#pragma once

#include <string_view>
#include <vector>

namespace kproxy {

// The lines of `text`, without their '\n'; a final line without '\n' counts, an empty text
// has none. The views point into `text`.
inline std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

}  // namespace kproxy
