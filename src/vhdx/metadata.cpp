// SPDX-License-Identifier: Apache-2.0
#include "vhdx/metadata.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <tuple>

#include "core/checked.h"

namespace vhdkit::vhdx {

std::optional<std::string> ParentLocator::get(const std::string& key) const {
  for (const auto& [k, v] : entries)
    if (k == key) return v;
  return std::nullopt;
}

namespace {

struct KnownItem {
  const Guid& (*guid)();
  const char* name;
  uint32_t size;  // exact size, or 0 for variable (parent locator)
};

const KnownItem kKnownItems[] = {
    {file_parameters_guid, "File Parameters", 8},
    {virtual_disk_size_guid, "Virtual Disk Size", 8},
    {page83_data_guid, "Page 83 Data", 16},
    {logical_sector_size_guid, "Logical Sector Size", 4},
    {physical_sector_size_guid, "Physical Sector Size", 4},
    {parent_locator_guid, "Parent Locator", 0},
};

const KnownItem* find_known(const Guid& g) {
  for (const KnownItem& k : kKnownItems)
    if (k.guid() == g) return &k;
  return nullptr;
}

Result<ParentLocator> parse_parent_locator(std::span<const std::byte> item, const std::string& path) {
  auto bad = [&](std::string why) { return fail(ReturnCode::Failed, path, "metadata item Parent Locator: " + why); };
  if (item.size() < kParentLocatorHeaderSize) return bad("shorter than its 20-byte header");
  ParentLocator pl;
  std::memcpy(pl.locator_type.bytes.data(), item.data(), 16);
  uint16_t count = load_le<uint16_t>(item.data() + 18);
  if (kParentLocatorHeaderSize + size_t{count} * kParentLocatorEntrySize > item.size())
    return bad(fmt::format("{} key/value entries do not fit its {} bytes", count, item.size()));
  // Every key and value lies after the entry table, inside the item, and apart from every other (one string
  // read as two is a damaged or hostile locator); a key named twice makes the parent ambiguous.
  struct Span {
    uint64_t offset, length;
    uint16_t entry;
    const char* what;
  };
  const uint64_t strings_start = kParentLocatorHeaderSize + uint64_t{count} * kParentLocatorEntrySize;
  std::vector<Span> spans;
  for (uint16_t i = 0; i < count; ++i) {
    const std::byte* e = item.data() + kParentLocatorHeaderSize + i * kParentLocatorEntrySize;
    uint32_t key_off = load_le<uint32_t>(e), value_off = load_le<uint32_t>(e + 4);
    uint16_t key_len = load_le<uint16_t>(e + 8), value_len = load_le<uint16_t>(e + 10);
    if (!fits_within(key_off, key_len, item.size()) || !fits_within(value_off, value_len, item.size()))
      return bad(fmt::format("key/value entry {} points outside the item", i));
    if (key_len == 0) return bad(fmt::format("key/value entry {} has an empty key", i));
    for (auto [off, len, what] : {std::tuple{key_off, key_len, "key"}, std::tuple{value_off, value_len, "value"}}) {
      if (len == 0) continue;
      if (off < strings_start)
        return bad(
            fmt::format("the {} of key/value entry {} (offset {}) lies in the locator's header or entry table "
                        "(which end at {})",
                        what, i, off, strings_start));
      spans.push_back({off, len, i, what});
    }
    pl.entries.emplace_back(utf16le_to_utf8(item.subspan(key_off, key_len)),
                            utf16le_to_utf8(item.subspan(value_off, value_len)));
  }
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.offset < b.offset; });
  for (size_t i = 1; i < spans.size(); ++i)
    if (ranges_overlap(spans[i - 1].offset, spans[i - 1].length, spans[i].offset, spans[i].length))
      return bad(fmt::format("the {} of key/value entry {} (offset {}) overlaps the {} of entry {} (offset {})",
                             spans[i].what, spans[i].entry, spans[i].offset, spans[i - 1].what, spans[i - 1].entry,
                             spans[i - 1].offset));
  std::vector<std::string> keys;
  for (const auto& [k, v] : pl.entries) keys.push_back(k);
  std::sort(keys.begin(), keys.end());
  if (auto twice = std::adjacent_find(keys.begin(), keys.end()); twice != keys.end())
    return bad(fmt::format("the key \"{}\" appears twice: which parent it names is ambiguous", *twice));
  return pl;
}

}  // namespace

Result<Metadata> parse_metadata(std::span<const std::byte> region, const std::string& path) {
  return parse_metadata(
      region.size(),
      [&](uint64_t offset, std::span<std::byte> out) -> Status {
        std::copy_n(region.begin() + static_cast<std::ptrdiff_t>(offset), out.size(), out.begin());
        return ok();
      },
      path);
}

Result<Metadata> parse_metadata(uint64_t region_length, const MetadataReader& read, const std::string& path) {
  auto bad = [&](std::string why) { return fail(ReturnCode::Failed, path, "metadata region: " + why); };
  if (region_length < kMetadataTableSize) return bad("smaller than its 64 KiB table");
  Bytes table(kMetadataTableSize);
  VHDKIT_TRY(read(0, table));
  if (!has_metadata_signature(table)) return bad("the table has no \"metadata\" signature");
  uint16_t count = load_le<uint16_t>(table.data() + 10);
  if (count > kMaxTableEntries) return bad(fmt::format("the table has {} entries (at most 2047)", count));

  Metadata m;
  m.table = parse_metadata_table(table);
  bool seen[std::size(kKnownItems)] = {};
  struct Placed {
    uint64_t offset, length;
    std::string name;
  };
  std::vector<Placed> placed;
  for (size_t i = 0; i < m.table.size(); ++i) {
    const MetadataEntry& e = m.table[i];
    const KnownItem* k = find_known(e.item_id);
    std::string name = k ? k->name : "{" + e.item_id.to_string_ms() + "}";
    // The same item twice is ambiguous (which size is the disk's?): refused, as qemu does.
    for (size_t j = 0; j < i; ++j)
      if (m.table[j].item_id == e.item_id)
        return bad(fmt::format("item {} appears twice in the table (entries {} and {})", name, j, i));
    if (!k && e.is_required)
      return bad(fmt::format("item {} is marked required but is not one this program knows", name));
    if (e.length != 0) {
      if (e.offset < kMetadataTableSize || !fits_within(e.offset, e.length, region_length))
        return bad(fmt::format("item {} ({} bytes at offset {}) lies outside the region's item area", name, e.length,
                               e.offset));
      if (e.length > kMaxMetadataItemSize)
        return bad(fmt::format("item {} is {} bytes; an item is at most 1 MiB", name, e.length));
      for (const Placed& p : placed)
        if (ranges_overlap(e.offset, e.length, p.offset, p.length))
          return bad(fmt::format("item {} ({} bytes at offset {}) overlaps item {} ({} bytes at offset {})", name,
                                 e.length, e.offset, p.name, p.length, p.offset));
      placed.push_back({e.offset, e.length, name});
    }
    if (!k) continue;
    if (e.length == 0) continue;  // a present-but-empty item counts as absent
    if (k->size != 0 && e.length < k->size)
      return bad(fmt::format("item {} is {} bytes, it must be {}", name, e.length, k->size));
    seen[k - kKnownItems] = true;
    Bytes value(e.length);
    VHDKIT_TRY(read(e.offset, value));
    std::span<const std::byte> v(value);
    if (k->guid == file_parameters_guid) {
      m.block_size = load_le<uint32_t>(v.data());
      uint32_t flags = load_le<uint32_t>(v.data() + 4);
      m.leave_block_allocated = flags & 1;
      m.has_parent = flags & 2;
    } else if (k->guid == virtual_disk_size_guid) {
      m.virtual_size = load_le<uint64_t>(v.data());
    } else if (k->guid == page83_data_guid) {
      std::memcpy(m.page83.bytes.data(), v.data(), 16);
    } else if (k->guid == logical_sector_size_guid) {
      m.logical_sector_size = load_le<uint32_t>(v.data());
    } else if (k->guid == physical_sector_size_guid) {
      m.physical_sector_size = load_le<uint32_t>(v.data());
    } else if (k->guid == parent_locator_guid) {
      VHDKIT_ASSIGN(m.parent_locator, parse_parent_locator(v, path));
    }
  }
  for (size_t i = 0; i < std::size(kKnownItems); ++i) {
    bool needed = kKnownItems[i].guid != parent_locator_guid || m.has_parent;
    if (needed && !seen[i]) return bad(fmt::format("the required item {} is missing", kKnownItems[i].name));
  }
  if (!is_power_of_two(m.block_size) || m.block_size < kMinBlockSize || m.block_size > kMaxBlockSize)
    return bad(fmt::format("File Parameters: BlockSize {} is not a power of two from 1 MiB to 256 MiB", m.block_size));
  for (auto [size, name] : {std::pair{m.logical_sector_size, "Logical Sector Size"},
                            std::pair{m.physical_sector_size, "Physical Sector Size"}}) {
    if (size != 512 && size != 4096) return bad(fmt::format("{} is {}; it must be 512 or 4096", name, size));
  }
  if (m.virtual_size == 0 || m.virtual_size > kMaxVirtualSize || m.virtual_size % m.logical_sector_size != 0)
    return bad(
        fmt::format("Virtual Disk Size {} is not a multiple of the {}-byte logical sector from 1 sector to "
                    "64 TiB",
                    m.virtual_size, m.logical_sector_size));
  if (m.has_parent && m.parent_locator->locator_type != vhdx_parent_locator_type())
    return bad(fmt::format("Parent Locator type {{{}}} is not the VHDX parent locator",
                           m.parent_locator->locator_type.to_string_ms()));
  if (m.has_parent && !m.parent_locator->get("parent_linkage")) return bad("Parent Locator has no parent_linkage key");
  return m;
}

Bytes serialize_metadata(const Metadata& m, uint32_t region_length) {
  Bytes region(region_length);
  std::vector<MetadataEntry> table;
  uint32_t at = static_cast<uint32_t>(kMetadataTableSize);
  auto add = [&](const Guid& id, std::span<const std::byte> value, bool is_virtual_disk) {
    std::memcpy(region.data() + at, value.data(), value.size());
    table.push_back({id, at, static_cast<uint32_t>(value.size()), false, is_virtual_disk, true});
    at += static_cast<uint32_t>(round_up(value.size(), 4 * KiB));
  };
  std::byte buf[16]{};
  store_le<uint32_t>(buf, m.block_size);
  store_le<uint32_t>(buf + 4, (m.leave_block_allocated ? 1u : 0u) | (m.has_parent ? 2u : 0u));
  add(file_parameters_guid(), std::span(buf, 8), false);
  store_le<uint64_t>(buf, m.virtual_size);
  add(virtual_disk_size_guid(), std::span(buf, 8), true);
  add(page83_data_guid(), m.page83.bytes, true);
  store_le<uint32_t>(buf, m.logical_sector_size);
  add(logical_sector_size_guid(), std::span(buf, 4), true);
  store_le<uint32_t>(buf, m.physical_sector_size);
  add(physical_sector_size_guid(), std::span(buf, 4), true);
  if (m.parent_locator) {
    const auto& entries = m.parent_locator->entries;
    Bytes item(kParentLocatorHeaderSize + entries.size() * kParentLocatorEntrySize);
    std::memcpy(item.data(), m.parent_locator->locator_type.bytes.data(), 16);
    store_le<uint16_t>(item.data() + 18, static_cast<uint16_t>(entries.size()));
    for (size_t i = 0; i < entries.size(); ++i) {
      Bytes key = utf8_to_utf16le(entries[i].first), value = utf8_to_utf16le(entries[i].second);
      size_t e = kParentLocatorHeaderSize + i * kParentLocatorEntrySize;
      store_le<uint32_t>(item.data() + e, static_cast<uint32_t>(item.size()));
      store_le<uint16_t>(item.data() + e + 8, static_cast<uint16_t>(key.size()));
      item.insert(item.end(), key.begin(), key.end());
      store_le<uint32_t>(item.data() + e + 4, static_cast<uint32_t>(item.size()));
      store_le<uint16_t>(item.data() + e + 10, static_cast<uint16_t>(value.size()));
      item.insert(item.end(), value.begin(), value.end());
    }
    add(parent_locator_guid(), item, false);
  }
  Bytes header = serialize_metadata_table(table);
  std::memcpy(region.data(), header.data(), header.size());
  return region;
}

}  // namespace vhdkit::vhdx
