// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include "core/guid.h"

namespace vhdkit {

TEST(Guid, MicrosoftTextRoundTrips) {
  auto g = Guid::parse_ms("{2DC27766-F623-4200-9D64-115E9BFD4A08}");  // VHDX file parameters item
  ASSERT_TRUE(g);
  EXPECT_EQ(static_cast<unsigned>(g->bytes[0]), 0x66u);  // first field stored little-endian
  EXPECT_EQ(g->to_string_ms(), "2dc27766-f623-4200-9d64-115e9bfd4a08");
  EXPECT_FALSE(Guid::parse_ms("not-a-guid"));
}

TEST(Guid, RandomIsVersion4AndDistinct) {
  Guid a = Guid::random(), b = Guid::random();
  EXPECT_NE(a, b);
  EXPECT_FALSE(a.is_zero());
}

}  // namespace vhdkit
