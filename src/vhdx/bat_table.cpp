// SPDX-License-Identifier: Apache-2.0
#include "vhdx/bat_table.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/bytes.h"

namespace vhdkit::vhdx {

Status BatTable::make_distinct(Page& page, const std::string& path) {
  if ((distinct_pages_ + 1) * kPageEntries * 8 > kMaxDistinctBytes)
    return fail(ReturnCode::OutOfMemory, path,
                fmt::format("the BAT ({} entries) holds more distinct entries than the {} MiB vhdkit keeps in "
                            "memory for it; convert the image to larger blocks (qemu-img convert -O vhdx -o "
                            "block_size=32M) to work on it",
                            size_, kMaxDistinctBytes / MiB));
  page.distinct = std::make_unique<uint64_t[]>(kPageEntries);
  ++distinct_pages_;
  std::fill_n(page.distinct.get(), kPageEntries, page.value);
  return ok();
}

Status BatTable::add_payload(uint64_t block, uint64_t entry, const std::string& path) {
  // Entries arrive in order: the first of a page sets its value, the first that differs makes it distinct.
  Page& page = pages_[block / kPageEntries];
  if (block % kPageEntries == 0) page.value = entry;
  if (!page.distinct && entry != page.value) VHDKIT_TRY(make_distinct(page, path));
  if (page.distinct) page.distinct[block % kPageEntries] = entry;
  return ok();
}

Status BatTable::set(uint64_t i, uint64_t entry, const std::string& path) {
  uint64_t chunk = i / (chunk_ratio_ + 1), within = i % (chunk_ratio_ + 1);
  if (within == chunk_ratio_) {
    bitmaps_[chunk] = entry;
    return ok();
  }
  uint64_t block = chunk * chunk_ratio_ + within;
  Page& page = pages_[block / kPageEntries];
  if (!page.distinct && entry == page.value) return ok();
  if (!page.distinct) VHDKIT_TRY(make_distinct(page, path));
  page.distinct[block % kPageEntries] = entry;
  return ok();
}

Result<BatTable> BatTable::read(uint64_t entries, uint64_t chunk_ratio, uint64_t offset, const ReadFn& read_at,
                                const std::string& path) {
  BatTable t;
  t.size_ = entries;
  t.chunk_ratio_ = chunk_ratio;
  uint64_t chunks = div_round_up(entries, chunk_ratio + 1);
  t.bitmaps_.assign(chunks, 0);
  t.pages_.resize(div_round_up(chunks * chunk_ratio, kPageEntries));
  // One read buffer of 1 MiB, so that no entry is held twice.
  Bytes raw(std::min<uint64_t>(entries * 8, MiB));
  for (uint64_t first = 0; first < entries;) {
    uint64_t n = std::min<uint64_t>(raw.size() / 8, entries - first);
    if (Status r = read_at(offset + first * 8, std::span(raw).first(n * 8)); !r)
      return fail(r.error().with_context(fmt::format("reading BAT entries {}-{} ({} bytes at offset {})", first,
                                                     first + n - 1, n * 8, offset + first * 8)));
    for (uint64_t k = 0; k < n; ++k) {
      uint64_t i = first + k, entry = load_le<uint64_t>(raw.data() + k * 8);
      uint64_t chunk = i / (chunk_ratio + 1), within = i % (chunk_ratio + 1);
      if (within == chunk_ratio)
        t.bitmaps_[chunk] = entry;
      else
        VHDKIT_TRY(t.add_payload(chunk * chunk_ratio + within, entry, path));
    }
    first += n;
  }
  return t;
}

}  // namespace vhdkit::vhdx
