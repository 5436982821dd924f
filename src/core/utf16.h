// SPDX-License-Identifier: Apache-2.0
// The one UTF-8 <-> UTF-16 codec of the tree (VHD parent names and locators, VHDX creator text and parent
// locator entries). Bad input never fails and never passes through raw: unpaired surrogates and malformed
// UTF-8 become U+FFFD, so that whatever a file holds can be printed and put into JSON.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "core/bytes.h"

namespace vhdkit {

std::string utf16_to_utf8(std::u16string_view s);
std::u16string utf8_to_utf16(std::string_view s);
// Is every surrogate paired? (Where a format calls text with lone surrogates corrupt.)
bool valid_utf16(std::u16string_view s);

// UTF-16LE bytes: decoding stops at the first NUL code unit (writers pad or terminate) and ignores an odd
// last byte; encoding writes no terminator.
std::u16string utf16le_decode(std::span<const std::byte> bytes);
Bytes utf16le_encode(std::u16string_view s);
std::string utf16le_to_utf8(std::span<const std::byte> bytes);
Bytes utf8_to_utf16le(std::string_view s);

// The same text with every malformed UTF-8 sequence replaced by U+FFFD (host paths are bytes).
std::string valid_utf8(std::string_view s);

}  // namespace vhdkit
