#include <set>

#include <gtest/gtest.h>

#include "json_reader.h"  // internal: escaping and value rendering
#include "kproxy/model/parse.h"
#include "model_test_support.h"

namespace kproxy::model {
namespace {

using testing::base_service;
using testing::json;
using testing::with;

TEST(RejectReasons, HaveDistinctSnakeCaseMetricLabels) {
  std::set<std::string_view> seen;
  for (auto reason : kAllRejectReasons) {
    const auto label = to_string(reason);
    EXPECT_TRUE(seen.insert(label).second) << label;
    for (char c : label) EXPECT_TRUE((c >= 'a' && c <= 'z') || c == '_') << label;
  }
  EXPECT_EQ(seen, (std::set<std::string_view>{"malformed", "wrong_type", "missing_field", "unknown_value",
                                              "out_of_range", "invalid_ip", "forbidden_address", "family_mismatch",
                                              "conflict", "too_large"}));
}

TEST(RejectionMessage, ReadsAsOneSentenceNamingObjectFieldAndValue) {
  Rejection r{"Service", "default/web", "spec.ports[1].protocol", "\"QUIC\"", RejectReason::kUnknownValue,
              "is not TCP, UDP or SCTP"};
  EXPECT_EQ(r.message(), "service default/web: spec.ports[1].protocol: \"QUIC\" is not TCP, UDP or SCTP");
}

TEST(RejectionMessage, LeavesOutAnAbsentValueAndAnEmptyField) {
  Rejection missing{"EndpointSlice", "default/web-1", "ports[0].port", "", RejectReason::kMissingField,
                    "is required"};
  EXPECT_EQ(missing.message(), "endpointslice default/web-1: ports[0].port: is required");
  Rejection whole{"Node", "(unknown)", "", "", RejectReason::kMalformed, "input is not JSON"};
  EXPECT_EQ(whole.message(), "node (unknown): input is not JSON");
}

TEST(RejectedValue, EscapesControlBytesAndInvalidUtf8) {
  EXPECT_EQ(detail::escape_text("a\x01\x7f\n\t\"\\b", 64), "a\\x01\\x7f\\n\\t\\\"\\\\b");
  EXPECT_EQ(detail::escape_text("\xff\xc3(\xe2\x82", 64), "\\xff\\xc3(\\xe2\\x82");
  // Overlong encoding of '/' and a UTF-16 surrogate are not UTF-8.
  EXPECT_EQ(detail::escape_text("\xc0\xaf\xed\xa0\x80", 64), "\\xc0\\xaf\\xed\\xa0\\x80");
}

TEST(RejectedValue, KeepsPrintableUnicodeButEscapesInvisibleCharacters) {
  EXPECT_EQ(detail::escape_text("Ωμέγα 鯹", 64), "Ωμέγα 鯹");
  // U+202E RIGHT-TO-LEFT OVERRIDE and U+200B ZERO WIDTH SPACE could disguise a log line.
  EXPECT_EQ(detail::escape_text("a\u202eb\u200bc", 64), "a\\u{202e}b\\u{200b}c");
}

TEST(RejectedValue, IsCutAfterTheLimit) {
  EXPECT_EQ(detail::escape_text(std::string(100, 'x'), 8), "xxxxxxxx...");
  EXPECT_EQ(detail::escape_text("ΩΩΩ", 2), "ΩΩ...");  // counted in characters, never cut mid-character
  auto result = parse_service(with(base_service(), "/spec/externalIPs", {std::string(5000, '1')}));
  ASSERT_EQ(result.rejections.size(), 1u);
  EXPECT_EQ(result.rejections[0].value, "\"" + std::string(kMaxRejectedValueChars, '1') + "...\"");
}

TEST(RejectedValue, ShowsContainersWithoutTheirContents) {
  EXPECT_EQ(detail::render_value(json::parse(R"({"a": [1, 2]})")), "{...}");
  EXPECT_EQ(detail::render_value(json::array()), "[]");
  EXPECT_EQ(detail::render_value(json(-474380055)), "-474380055");
  EXPECT_EQ(detail::render_value(json(true)), "true");
}

TEST(RejectedValue, NeverThrowsOnInvalidUtf8InsideJsonValues) {
  // nlohmann's dump() throws on invalid UTF-8; JSON built from YAML can hold it.
  auto object = with(base_service(), "/spec/ports/0/protocol", "T\xffP");
  auto result = parse_service(object);
  ASSERT_TRUE(result.ok());
  ASSERT_EQ(result.rejections.size(), 1u);
  EXPECT_EQ(result.rejections[0].value, "\"T\\xffP\"");
}

}  // namespace
}  // namespace kproxy::model
