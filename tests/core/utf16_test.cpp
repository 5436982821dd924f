// SPDX-License-Identifier: Apache-2.0
// core/utf16.h: the one codec. Round trips, surrogate pairs (outside the BMP), and bad input of every
// kind turning into U+FFFD instead of failing or passing through.
#include "core/utf16.h"

#include <gtest/gtest.h>

namespace vhdkit {
namespace {

const std::string kReplacement = "\xEF\xBF\xBD";

TEST(Utf16, RoundTripsBmpAndAstralText) {
  std::string s = "C:\\dir\\p\xC3\xA4rent-\xF0\x9F\x98\x80-\xE6\x97\xA5.vhdx";
  EXPECT_EQ(utf16_to_utf8(utf8_to_utf16(s)), s);
  EXPECT_EQ(utf16le_to_utf8(utf8_to_utf16le(s)), s);
  std::u16string astral = utf8_to_utf16("\xF0\x9F\x98\x80");
  ASSERT_EQ(astral.size(), 2u);  // a surrogate pair, not a truncated BMP code unit
  EXPECT_EQ(astral[0], char16_t(0xD83D));
  EXPECT_EQ(astral[1], char16_t(0xDE00));
  EXPECT_TRUE(valid_utf16(astral));
}

TEST(Utf16, LoneSurrogatesBecomeReplacementCharacters) {
  std::u16string bad = u"ab";
  bad += char16_t(0xD800);
  EXPECT_FALSE(valid_utf16(bad));
  EXPECT_EQ(utf16_to_utf8(bad), "ab" + kReplacement);
  std::u16string low = u"x";
  low += char16_t(0xDC00);
  low += u"y";
  EXPECT_EQ(utf16_to_utf8(low), "x" + kReplacement + "y");
}

TEST(Utf16, MalformedUtf8BecomesReplacementCharacters) {
  EXPECT_EQ(valid_utf8("a\xFF"
                       "b"),
            "a" + kReplacement + "b");
  EXPECT_EQ(valid_utf8("\xC0\xAF"), kReplacement + kReplacement);                     // overlong "/"
  EXPECT_EQ(valid_utf8("\xED\xA0\x80"), kReplacement + kReplacement + kReplacement);  // encoded surrogate
  EXPECT_EQ(valid_utf8("\xE6\x97"), kReplacement + kReplacement);                     // truncated
  EXPECT_EQ(valid_utf8("ok \xE6\x97\xA5"), "ok \xE6\x97\xA5");
  EXPECT_EQ(utf16_to_utf8(utf8_to_utf16("a\xFF")), "a" + kReplacement);
}

TEST(Utf16, LittleEndianDecodingStopsAtNulAndIgnoresAnOddByte) {
  Bytes b = utf8_to_utf16le("ab");
  b.push_back(std::byte{0});
  b.push_back(std::byte{0});
  b.push_back(std::byte{'z'});
  b.push_back(std::byte{0});
  EXPECT_EQ(utf16le_to_utf8(b), "ab");
  Bytes odd = utf8_to_utf16le("ab");
  odd.push_back(std::byte{'x'});
  EXPECT_EQ(utf16le_to_utf8(odd), "ab");
}

}  // namespace
}  // namespace vhdkit
