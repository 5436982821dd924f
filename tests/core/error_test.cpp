// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include "core/error.h"

namespace vhdkit {

TEST(Error, MessageNamesFileAndProblem) {
  Error e(ReturnCode::Failed, "disk.vhdx", "BAT entry 17 points past the end of the file");
  EXPECT_EQ(e.what(), "disk.vhdx: BAT entry 17 points past the end of the file");
  EXPECT_EQ(e.with_context("while compacting").what(),
            "disk.vhdx: while compacting: BAT entry 17 points past the end of the file");
}

TEST(Error, ReferenceValuesAreExact) {
  EXPECT_EQ(static_cast<uint32_t>(ReturnCode::JobStarted), 4096u);
  EXPECT_EQ(static_cast<uint32_t>(ReturnCode::AccessDenied), 32769u);
  EXPECT_EQ(static_cast<uint32_t>(ReturnCode::InUse), 32774u);
  EXPECT_EQ(static_cast<uint32_t>(ReturnCode::FileNotFound), 32779u);
  EXPECT_EQ(describe(ReturnCode::InUse), "System is in use");
}

static Result<int> half(int v) {
  if (v % 2) return fail(ReturnCode::InvalidParameter, "", "odd");
  return v / 2;
}
static Result<int> quarter(int v) {
  VHDKIT_ASSIGN(int h, half(v));
  VHDKIT_ASSIGN(int q, half(h));
  return q;
}

TEST(Error, PropagationMacros) {
  EXPECT_EQ(*quarter(8), 2);
  auto r = quarter(6);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ReturnCode::InvalidParameter);
}

}  // namespace vhdkit
