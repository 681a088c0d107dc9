#include "kproxy/status.h"

#include <gtest/gtest.h>

#include <memory>

namespace kproxy {
namespace {

Expected<int> half(int v) {
  if (v % 2 != 0) return Error("odd value " + std::to_string(v));
  return v / 2;
}

TEST(Expected, CarriesAValueOrAMessage) {
  EXPECT_EQ(*half(8), 4);
  auto r = half(3);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), "odd value 3");
  EXPECT_FALSE(r.status().ok());
  EXPECT_EQ(r.status().message(), "odd value 3");
}

TEST(Expected, HoldsMoveOnlyValues) {
  Expected<std::unique_ptr<int>> p = std::make_unique<int>(7);
  std::unique_ptr<int> taken = std::move(p).value();
  EXPECT_EQ(*taken, 7);
}

TEST(Status, DefaultsToOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  Status e = Error("boom");
  EXPECT_FALSE(e.ok());
  EXPECT_EQ(e.message(), "boom");
}

}  // namespace
}  // namespace kproxy
