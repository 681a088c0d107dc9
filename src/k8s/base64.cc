#include "base64.h"

#include <array>
#include <cstdint>

namespace kproxy::k8s {
namespace {

constexpr std::array<int8_t, 256> make_table() {
  std::array<int8_t, 256> table{};
  for (auto& v : table) v = -1;
  constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (size_t i = 0; i < kAlphabet.size(); ++i) table[static_cast<unsigned char>(kAlphabet[i])] = static_cast<int8_t>(i);
  return table;
}
constexpr auto kTable = make_table();

Error illegal_at(size_t offset) {
  // Go's wording (base64.CorruptInputError), which operators may recognise from kubectl.
  return Error("illegal base64 data at input byte " + std::to_string(offset));
}

}  // namespace

Expected<std::string> base64_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size() / 4 * 3);
  uint32_t quantum[4];
  int have = 0;
  int padding = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\r' || c == '\n') continue;
    if (padding > 0 && c != '=') return illegal_at(i);  // data after padding
    if (c == '=') {
      if (have < 2) return illegal_at(i);
      ++padding;
      quantum[have++] = 0;
    } else {
      const int8_t v = kTable[static_cast<unsigned char>(c)];
      if (v < 0) return illegal_at(i);
      quantum[have++] = static_cast<uint32_t>(v);
    }
    if (have == 4) {
      const uint32_t n = quantum[0] << 18 | quantum[1] << 12 | quantum[2] << 6 | quantum[3];
      out.push_back(static_cast<char>(n >> 16 & 0xff));
      if (padding < 2) out.push_back(static_cast<char>(n >> 8 & 0xff));
      if (padding < 1) out.push_back(static_cast<char>(n & 0xff));
      have = 0;
    }
  }
  if (have != 0) return illegal_at(text.size());  // truncated: not a multiple of 4
  return out;
}

}  // namespace kproxy::k8s
