// SPDX-License-Identifier: Apache-2.0
// Linux swap (the kernel's union swap_header, include/linux/swap.h): the first page holds 1024 bytes of
// boot area, then version (u32 @1024), last_page (u32 @1028), nr_badpages (u32 @1032), uuid and label, and
// the 10-byte signature in the page's last 10 bytes. A swap area's pages hold nothing a later boot reads,
// so everything after the header page is unused - unless the signature says a hibernation image is stored
// there (the resume code reads it back), then all of it is used.
#include <array>
#include <cstring>
#include <string_view>

#include <fmt/format.h>

#include "core/bytes.h"
#include "fs/volume_scan.h"

namespace vhdkit::fs::detail {
namespace {

constexpr std::array<uint64_t, 5> kPageSizes = {4096, 8192, 16384, 32768, 65536};

enum class Signature { None, Swap2, Swap1, Hibernation };

struct Found {
  Signature sig = Signature::None;
  uint64_t page = 0;
  std::string_view text;
};

Found find_signature(std::span<const std::byte> head) {
  // The hibernation signatures of swsusp (S1SUSPEND), the older S2SUSPEND, uswsusp (ULSUSPEND),
  // suspend2/TuxOnIce (LINHIB0001 and an 8-byte binary one).
  static constexpr std::string_view kHibernation[] = {"S1SUSPEND", "S2SUSPEND", "ULSUSPEND", "LINHIB0001",
                                                      "\xed\xc3\x02\xe9\x98\x56\xe5\x0c"};
  for (uint64_t page : kPageSizes) {
    if (head.size() < page) break;
    std::string_view s(reinterpret_cast<const char*>(head.data()) + page - 10, 10);
    if (s == "SWAPSPACE2") return {Signature::Swap2, page, s};
    if (s == "SWAP-SPACE") return {Signature::Swap1, page, s};
    for (std::string_view h : kHibernation) {
      if (s.starts_with(h)) return {Signature::Hibernation, page, h};
    }
  }
  return {};
}

}  // namespace

bool looks_like_swap(std::span<const std::byte> head) { return find_signature(head).sig != Signature::None; }

VolumeScan read_swap(std::span<const std::byte> head, uint64_t offset, uint64_t size) {
  Found f = find_signature(head);
  switch (f.sig) {
    case Signature::None: return kept_whole(offset, size, "", "no file system recognised");
    case Signature::Swap1: return kept_whole(offset, size, "swap", "swap version 0 (SWAP-SPACE): not read, kept whole");
    case Signature::Hibernation: return kept_whole(offset, size, "swap", "swap holds a hibernation image");
    case Signature::Swap2: break;
  }
  // Both byte orders: a swap area written by a big-endian kernel stores its fields big-endian.
  uint32_t version = load_le<uint32_t>(head.data() + 1024), last_page = load_le<uint32_t>(head.data() + 1028);
  if (version != 1) {
    version = load_be<uint32_t>(head.data() + 1024);
    last_page = load_be<uint32_t>(head.data() + 1028);
  }
  if (version != 1) return kept_whole(offset, size, "swap", fmt::format("swap header version is not 1"));
  if (last_page == 0 || (uint64_t{last_page} + 1) * f.page > size) {
    return kept_whole(offset, size, "swap",
                      fmt::format("swap header's last page {} does not fit the partition", last_page));
  }
  VolumeScan s;
  s.filesystem = "swap";
  s.state = Volume::State::Read;
  s.used.push_back({offset, f.page});  // the boot area and the header page
  return s;
}

}  // namespace vhdkit::fs::detail
