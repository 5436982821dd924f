// SPDX-License-Identifier: Apache-2.0
// Writing log entries ([MS-VHDX] 2.3.1): the only way BAT, region and metadata changes reach the file.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "vhdx/log.h"

namespace vhdkit::vhdx {

void LogTransaction::write_sector(uint64_t file_offset, std::span<const std::byte> sector) {
  sectors_[file_offset] = Bytes(sector.begin(), sector.begin() + kLogSectorSize);
}

void LogTransaction::write(uint64_t file_offset, std::span<const std::byte> data) {
  for (size_t at = 0; at + kLogSectorSize <= data.size(); at += kLogSectorSize)
    write_sector(file_offset + at, data.subspan(at, kLogSectorSize));
}

void LogTransaction::zero(uint64_t file_offset, uint64_t length) {
  if (length > 0) zeros_.emplace_back(file_offset, length);
}

uint64_t max_data_sectors_per_entry(uint32_t log_length) {
  // The whole log, less the descriptor sectors the data sectors need (each descriptor is 32 bytes, so one
  // 4 KiB descriptor sector serves up to 126 descriptors after the 64-byte header).
  uint64_t sectors = log_length / kLogSectorSize;
  uint64_t n = sectors;
  while (n > 0 && n + log_descriptor_sectors(n) > sectors) --n;
  return n;
}

namespace {

struct PlannedEntry {
  std::vector<std::pair<uint64_t, uint64_t>> zeros;
  std::vector<std::pair<uint64_t, const Bytes*>> sectors;
};

// Splits a transaction into entries that each fit the log. Zero descriptors go in the first entry.
std::vector<PlannedEntry> plan_entries(const LogTransaction& tx, uint32_t log_length) {
  uint64_t per_entry = max_data_sectors_per_entry(log_length);
  std::vector<PlannedEntry> entries(1);
  entries[0].zeros = tx.zeros();
  for (const auto& [offset, data] : tx.sectors()) {
    PlannedEntry& e = entries.back();
    uint64_t descriptors = e.zeros.size() + e.sectors.size() + 1;
    if (e.sectors.size() + 1 + log_descriptor_sectors(descriptors) > log_length / kLogSectorSize ||
        e.sectors.size() >= per_entry)
      entries.emplace_back();
    entries.back().sectors.emplace_back(offset, &data);
  }
  return entries;
}

Bytes build_entry(const PlannedEntry& pe, const LogCursor& cursor, uint64_t flushed_size, uint64_t last_size) {
  uint64_t descriptors = pe.zeros.size() + pe.sectors.size();
  uint64_t desc_sectors = log_descriptor_sectors(descriptors);
  Bytes entry((desc_sectors + pe.sectors.size()) * kLogSectorSize);
  LogEntryHeader h;
  h.entry_length = static_cast<uint32_t>(entry.size());
  h.tail = cursor.head;  // everything before this entry is applied and durable
  h.sequence_number = cursor.sequence;
  h.descriptor_count = static_cast<uint32_t>(descriptors);
  h.log_guid = cursor.log_guid;
  h.flushed_file_offset = flushed_size;
  h.last_file_offset = last_size;
  serialize_log_entry_header(h, entry);
  size_t d = 0;
  for (const auto& [offset, length] : pe.zeros) {
    LogDescriptor desc{DescriptorKind::Zero, 0, 0, length, offset, cursor.sequence};
    serialize_log_descriptor(desc, std::span(entry).subspan(kLogEntryHeaderSize + d++ * kLogDescriptorSize));
  }
  size_t s = 0;
  for (const auto& [offset, data] : pe.sectors) {
    LogDescriptor desc{
        DescriptorKind::Data, load_le<uint32_t>(data->data() + 4092), load_le<uint64_t>(data->data()), 0, offset,
        cursor.sequence};
    serialize_log_descriptor(desc, std::span(entry).subspan(kLogEntryHeaderSize + d++ * kLogDescriptorSize));
    std::byte* sector = entry.data() + (desc_sectors + s++) * kLogSectorSize;
    std::memcpy(sector, "data", 4);
    store_le<uint32_t>(sector + 4, static_cast<uint32_t>(cursor.sequence >> 32));
    std::memcpy(sector + 8, data->data() + 8, 4084);
    store_le<uint32_t>(sector + 4092, static_cast<uint32_t>(cursor.sequence));
  }
  store_le<uint32_t>(entry.data() + 4, crc32c(entry));
  return entry;
}

// Writes an entry at the cursor's head, wrapping around the end of the log.
Status write_entry(io::File& file, LogCursor& cursor, const Bytes& entry) {
  if (entry.size() > cursor.log_length)
    return fail(ReturnCode::Failed, file.path(),
                fmt::format("a log entry of {} bytes does not fit the {}-byte log", entry.size(), cursor.log_length));
  uint64_t first = std::min<uint64_t>(entry.size(), cursor.log_length - cursor.head);
  VHDKIT_TRY(file.write_at(cursor.log_offset + cursor.head, std::span(entry).first(first)));
  if (first < entry.size()) VHDKIT_TRY(file.write_at(cursor.log_offset, std::span(entry).subspan(first)));
  cursor.head = static_cast<uint32_t>((cursor.head + entry.size()) % cursor.log_length);
  cursor.sequence += 1;
  return ok();
}

}  // namespace

Status commit_transaction(io::File& file, LogCursor& cursor, const LogTransaction& tx, uint64_t current_file_size) {
  if (tx.empty()) return ok();
  if (cursor.log_guid.is_zero())
    return fail(ReturnCode::Failed, file.path(), "internal: log write without a LogGuid in the header");
  uint64_t needed = current_file_size;
  for (const auto& [offset, data] : tx.sectors()) needed = std::max(needed, offset + kLogSectorSize);
  for (const auto& [offset, length] : tx.zeros()) needed = std::max(needed, offset + length);
  uint64_t last_size = tx.file_size().value_or(needed);
  if (tx.file_size() && *tx.file_size() > needed) last_size = *tx.file_size();

  for (const PlannedEntry& pe : plan_entries(tx, cursor.log_length)) {
    VHDKIT_ASSIGN(uint64_t flushed_size, file.size());
    // A shrinking transaction promises only the target size: the caller truncates after the commit, and a
    // replay after that must not take the shorter file for a truncated one.
    Bytes entry = build_entry(pe, cursor, std::min(flushed_size, last_size), last_size);
    VHDKIT_TRY(write_entry(file, cursor, entry));
    VHDKIT_TRY(file.flush());
    ReplayPlan apply;
    for (const auto& [offset, length] : pe.zeros) apply.ops.push_back({offset, length, {}});
    for (const auto& [offset, data] : pe.sectors) apply.ops.push_back({offset, kLogSectorSize, *data});
    apply.last_file_offset = last_size;
    VHDKIT_TRY(apply_replay(file, apply));
  }
  return ok();
}

}  // namespace vhdkit::vhdx
