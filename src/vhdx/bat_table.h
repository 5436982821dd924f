// SPDX-License-Identifier: Apache-2.0
// The VHDX BAT held in memory, compactly: the table of a 64 TiB disk of 1 MiB blocks has 64 Mi entries
// (512 MiB), nearly all NOT_PRESENT or ZERO in a sparse file. Payload entries are kept in pages apart from the
// sector bitmap entries that interleave them (one in every chunk ratio + 1); a page whose payload entries are all
// equal (a run of absent blocks) is held as one value, and only pages with distinct entries cost memory, up to a
// limit that bounds what a file can make us allocate (kMaxDistinctBytes).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/error.h"
#include "vhdx/format.h"

namespace vhdkit::vhdx {

class BatTable {
 public:
  static constexpr uint64_t kPageEntries = 4096;  // 32 KiB of payload entries
  // The most memory the pages with distinct entries may take: a fully allocated disk of 16 TiB in 1 MiB
  // blocks (or 64 TiB in 4 MiB blocks). A table that needs more is refused (exit 8), never half read.
  static constexpr uint64_t kMaxDistinctBytes = 128 * MiB;

  using ReadFn = std::function<Status(uint64_t offset, std::span<std::byte> out)>;

  BatTable() = default;
  // Reads `entries` little-endian entries starting at file offset `offset`, 1 MiB at a time; every
  // (chunk_ratio + 1)th entry is a sector bitmap entry.
  static Result<BatTable> read(uint64_t entries, uint64_t chunk_ratio, uint64_t offset, const ReadFn& read_at,
                               const std::string& path);

  uint64_t size() const { return size_; }
  uint64_t operator[](uint64_t i) const {
    uint64_t chunk = i / (chunk_ratio_ + 1), within = i % (chunk_ratio_ + 1);
    if (within == chunk_ratio_) return bitmaps_[chunk];
    return payload(chunk * chunk_ratio_ + within);
  }
  // The entry of payload block `block` and of the sector bitmap of chunk `chunk`, without the index arithmetic.
  uint64_t payload(uint64_t block) const {
    const Page& p = pages_[block / kPageEntries];
    return p.distinct ? p.distinct[block % kPageEntries] : p.value;
  }
  uint64_t bitmap(uint64_t chunk) const { return bitmaps_[chunk]; }
  // The value of every payload entry of the page that holds block `block`, when they are all equal.
  std::optional<uint64_t> uniform_page(uint64_t block) const {
    const Page& p = pages_[block / kPageEntries];
    if (p.distinct) return std::nullopt;
    return p.value;
  }
  // Changes entry i (a page of equal entries becomes distinct, within the same memory limit).
  Status set(uint64_t i, uint64_t entry, const std::string& path);
  // Pages holding distinct payload entries (each kPageEntries * 8 bytes).
  uint64_t distinct_pages() const { return distinct_pages_; }

 private:
  struct Page {
    uint64_t value = 0;                    // every entry, when distinct is null
    std::unique_ptr<uint64_t[]> distinct;  // kPageEntries entries otherwise
  };
  Status make_distinct(Page& page, const std::string& path);
  Status add_payload(uint64_t block, uint64_t entry, const std::string& path);

  uint64_t size_ = 0;
  uint64_t chunk_ratio_ = 1;
  std::vector<Page> pages_;
  std::vector<uint64_t> bitmaps_;  // one entry a chunk
  uint64_t distinct_pages_ = 0;
};

}  // namespace vhdkit::vhdx
