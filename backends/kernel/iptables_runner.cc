// Table/flavour names and the iptables-restore error report shared by the real runner and
// the fake.
#include "kproxy/kernel/iptables_runner.h"
#include "kproxy/text.h"

#include <algorithm>
#include <cctype>
#include <vector>

namespace kproxy::kernel {

std::string_view table_name(Table table) {
  switch (table) {
    case Table::kFilter: return "filter";
    case Table::kNat: return "nat";
    case Table::kMangle: return "mangle";
    case Table::kRaw: return "raw";
  }
  return "?";
}

std::optional<Table> parse_table(std::string_view name) {
  for (Table t : {Table::kFilter, Table::kNat, Table::kMangle, Table::kRaw}) {
    if (table_name(t) == name) return t;
  }
  return std::nullopt;
}

std::string_view flavour_name(IptablesFlavour flavour) {
  return flavour == IptablesFlavour::kNft ? "nft" : "legacy";
}

std::optional<int> restore_error_line(std::string_view text) {
  // Every iptables-restore message names the line as "line N" or "line: N".
  std::size_t pos = 0;
  while ((pos = text.find("line", pos)) != std::string_view::npos) {
    std::size_t i = pos + 4;
    if (i < text.size() && text[i] == ':') ++i;
    while (i < text.size() && text[i] == ' ') ++i;
    std::size_t start = i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
    if (i > start && i - start < 9) return std::stoi(std::string(text.substr(start, i - start)));
    pos += 4;
  }
  return std::nullopt;
}

std::string format_restore_error(std::string_view what, std::string_view stderr_text, std::string_view payload,
                                 std::optional<int> line, int context) {
  // Drop iptables-legacy's notice about -W and trailing blank lines; keep the rest verbatim.
  std::string err;
  for (std::string_view l : split_lines(stderr_text)) {
    if (!l.empty() && l.find("Ignoring deprecated --wait-interval") == std::string_view::npos) {
      if (!err.empty()) err += "; ";
      err += l;
    }
  }
  std::string msg(what);
  if (!err.empty()) msg += ": " + err;
  if (!line) return msg;

  const std::vector<std::string_view> lines = split_lines(payload);
  const int n = static_cast<int>(lines.size());
  if (*line < 1 || *line > n) return msg;
  msg += "\npayload around line " + std::to_string(*line) + ":";
  for (int i = std::max(1, *line - context); i <= std::min(n, *line + context); ++i) {
    msg += "\n";
    msg += (i == *line ? "> " : "  ");
    msg += std::to_string(i) + ": ";
    msg += lines[static_cast<std::size_t>(i - 1)];
  }
  return msg;
}

}  // namespace kproxy::kernel
