// SPDX-License-Identifier: Apache-2.0
// Finding and replaying the active log sequence ([MS-VHDX] 2.3.2, 2.3.3).
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "core/checked.h"
#include "vhdx/log.h"

namespace vhdkit::vhdx {
namespace {

// A validated entry: where it is, its header, and the changes it makes.
struct Entry {
  uint32_t offset = 0;  // log-relative
  LogEntryHeader header;
  std::vector<LogOp> ops;
};

// The log region as a circular buffer of 4 KiB sectors.
class CircularLog {
 public:
  explicit CircularLog(Bytes bytes) : bytes_(std::move(bytes)) {}
  uint64_t length() const { return bytes_.size(); }
  // Does the 4 KiB sector at log offset `at` start with an entry header's "loge" signature?
  bool starts_entry(uint64_t at) const { return std::memcmp(bytes_.data() + at % length(), "loge", 4) == 0; }
  // Copies n bytes starting at log offset `at`, wrapping at the end.
  Bytes read(uint64_t at, uint64_t n) const {
    Bytes out(n);
    for (uint64_t done = 0; done < n;) {
      uint64_t pos = (at + done) % length();
      uint64_t chunk = std::min(n - done, length() - pos);
      std::memcpy(out.data() + done, bytes_.data() + pos, chunk);
      done += chunk;
    }
    return out;
  }

 private:
  Bytes bytes_;
};

enum class Verdict { Valid, Invalid };

// Validates the entry at log offset `at`. Invalid entries get a reason; structurally impossible but
// otherwise valid entries are an error (returned as unexpected).
Result<std::pair<Verdict, std::string>> validate_entry(const CircularLog& log, uint32_t at, const Guid& log_guid,
                                                       const std::string& path, Entry& out) {
  auto invalid = [&](std::string why) -> Result<std::pair<Verdict, std::string>> {
    return std::pair{Verdict::Invalid, fmt::format("log entry at log offset {}: {}", at, why)};
  };
  Bytes first = log.read(at, kLogSectorSize);
  if (!has_log_entry_signature(first)) return invalid("no \"loge\" signature");
  LogEntryHeader h = parse_log_entry_header(first);
  // The header must be sane before anything it spans is looked at (the checksum covers the whole entry).
  if (h.log_guid != log_guid) return invalid("its LogGuid is not the header's LogGuid");
  if (h.entry_length == 0 || h.entry_length % kLogSectorSize != 0 || h.entry_length > log.length())
    return invalid(fmt::format("EntryLength {} is not a 4 KiB multiple within the log", h.entry_length));
  if (h.tail % kLogSectorSize != 0 || h.tail >= log.length())
    return invalid(fmt::format("Tail {} is not a 4 KiB-aligned log offset", h.tail));
  uint64_t desc_sectors = log_descriptor_sectors(h.descriptor_count);
  if (desc_sectors * kLogSectorSize > h.entry_length)
    return invalid(fmt::format("{} descriptors do not fit its {} bytes", h.descriptor_count, h.entry_length));
  if (h.last_file_offset < h.flushed_file_offset)
    return invalid(
        fmt::format("LastFileOffset {} is below FlushedFileOffset {}", h.last_file_offset, h.flushed_file_offset));
  // Every sector of an entry after its header is a descriptor sector (starting with a descriptor) or a data
  // sector (starting with "data"): one that starts with "loge" is another entry, so this one is not. This
  // keeps entries from overlapping, and the scan linear: no sector is checksummed as part of two entries.
  for (uint64_t s = 1; s < h.entry_length / kLogSectorSize; ++s)
    if (log.starts_entry(at + s * kLogSectorSize))
      return invalid(fmt::format("EntryLength {} spans another entry header at log offset {}", h.entry_length,
                                 (at + s * kLogSectorSize) % log.length()));
  Bytes entry = log.read(at, h.entry_length);
  if (crc32c_with_zero_field(entry, 4) != h.checksum) return invalid("checksum mismatch");

  out = Entry{at, h, {}};
  uint64_t data_sector = desc_sectors;
  for (uint32_t i = 0; i < h.descriptor_count; ++i) {
    LogDescriptor d = parse_log_descriptor(
        std::span(entry).subspan(kLogEntryHeaderSize + i * kLogDescriptorSize, kLogDescriptorSize));
    if (d.kind == DescriptorKind::Unknown) return invalid(fmt::format("descriptor {} has no known signature", i));
    if (d.sequence_number != h.sequence_number)
      return invalid(
          fmt::format("descriptor {} has sequence number {}, the entry {}", i, d.sequence_number, h.sequence_number));
    auto impossible = [&](std::string why) -> Result<std::pair<Verdict, std::string>> {
      return fail(ReturnCode::Failed, path,
                  fmt::format("log entry {} (log offset {}), descriptor {}: {}", h.sequence_number, at, i, why));
    };
    if (d.file_offset % kLogSectorSize != 0)
      return impossible(fmt::format("FileOffset {} is not a multiple of 4 KiB", d.file_offset));
    if (!range_end(d.file_offset, kLogSectorSize))
      return impossible(fmt::format("FileOffset 0x{:x} overflows 64 bits", d.file_offset));
    if (d.file_offset < kHeaderSectionSize)
      return impossible(fmt::format("it writes at file offset {}, inside the header section", d.file_offset));
    if (d.kind == DescriptorKind::Zero) {
      if (d.zero_length % kLogSectorSize != 0)
        return impossible(fmt::format("ZeroLength {} is not a multiple of 4 KiB", d.zero_length));
      if (!range_end(d.file_offset, d.zero_length))
        return impossible(fmt::format("its zero range ({} bytes at file offset 0x{:x}) overflows 64 bits",
                                      d.zero_length, d.file_offset));
      out.ops.push_back({d.file_offset, d.zero_length, {}});
      continue;
    }
    if ((data_sector + 1) * kLogSectorSize > h.entry_length)
      return invalid(fmt::format("descriptor {} has no data sector inside the entry", i));
    std::span<const std::byte> sector = std::span(entry).subspan(data_sector * kLogSectorSize, kLogSectorSize);
    ++data_sector;
    if (std::memcmp(sector.data(), "data", 4) != 0)
      return invalid(fmt::format("the data sector of descriptor {} has no \"data\" signature", i));
    uint64_t seq = uint64_t{load_le<uint32_t>(sector.data() + 4)} << 32 | load_le<uint32_t>(sector.data() + 4092);
    if (seq != h.sequence_number)
      return invalid(fmt::format("the data sector of descriptor {} has sequence number {}", i, seq));
    LogOp op{d.file_offset, kLogSectorSize, Bytes(kLogSectorSize)};
    store_le<uint64_t>(op.data.data(), d.leading_bytes);
    std::memcpy(op.data.data() + 8, sector.data() + 8, 4084);
    store_le<uint32_t>(op.data.data() + 4092, d.trailing_bytes);
    out.ops.push_back(std::move(op));
  }
  return std::pair{Verdict::Valid, std::string()};
}

}  // namespace

void ReplayPlan::overlay(uint64_t file_offset, std::span<std::byte> buf) const {
  uint64_t end = file_offset + buf.size();
  for (const LogOp& op : ops) {
    uint64_t lo = std::max(file_offset, op.offset), hi = std::min(end, op.offset + op.length);
    if (lo >= hi) continue;
    std::byte* dst = buf.data() + (lo - file_offset);
    if (op.data.empty())
      std::memset(dst, 0, hi - lo);
    else
      std::memcpy(dst, op.data.data() + (lo - op.offset), hi - lo);
  }
}

namespace {

// Every change the active sequence makes must be possible before anything is written: inside the file as the
// entry describes it (LastFileOffset), outside the header section and the log itself, and no file larger than a
// VHDX can need.
Status validate_plan(const std::vector<const Entry*>& entries, const Header& header, const std::string& path) {
  for (const Entry* e : entries) {
    const LogEntryHeader& h = e->header;
    auto bad = [&](std::string why) {
      return fail(ReturnCode::Failed, path,
                  fmt::format("log entry {} (log offset {}): {}; the log cannot be replayed", h.sequence_number,
                              e->offset, why));
    };
    if (h.last_file_offset > kMaxFileSize)
      return bad(fmt::format("LastFileOffset 0x{:x} is larger than any VHDX file can be", h.last_file_offset));
    for (size_t i = 0; i < e->ops.size(); ++i) {
      const LogOp& op = e->ops[i];
      const char* kind = op.data.empty() ? "zero" : "data";
      auto end = range_end(op.offset, op.length);
      if (!end)
        return bad(
            fmt::format("{} descriptor {} ({} bytes at 0x{:x}) overflows 64 bits", kind, i, op.length, op.offset));
      if (*end > h.last_file_offset)
        return bad(fmt::format("{} descriptor {} ({} bytes at 0x{:x}) reaches past the entry's LastFileOffset 0x{:x}",
                               kind, i, op.length, op.offset, h.last_file_offset));
      if (ranges_overlap(op.offset, op.length, 0, kHeaderSectionSize))
        return bad(fmt::format("{} descriptor {} writes into the header section", kind, i));
      if (ranges_overlap(op.offset, op.length, header.log_offset, header.log_length))
        return bad(fmt::format("{} descriptor {} ({} bytes at 0x{:x}) writes into the log itself", kind, i, op.length,
                               op.offset));
    }
  }
  return ok();
}

}  // namespace

Result<ReplayPlan> read_log(io::File& file, const Header& header, uint64_t file_size) {
  ReplayPlan plan;
  if (header.log_guid.is_zero()) return plan;
  const std::string& path = file.path();
  if (!fits_within(header.log_offset, header.log_length, file_size))
    return fail(ReturnCode::Failed, path,
                fmt::format("the log ({} bytes at offset 0x{:x}) lies past the end of the {}-byte file",
                            header.log_length, header.log_offset, file_size));
  if (header.log_length > kMaxReplayedLogLength)
    return fail(ReturnCode::NotSupported, path,
                fmt::format("the log is {} bytes and needs replaying; vhdkit replays logs of at most {} MiB",
                            header.log_length, kMaxReplayedLogLength / MiB));
  Bytes bytes(header.log_length);
  if (Status r = file.read_at(header.log_offset, bytes); !r)
    return fail(r.error().with_context(
        fmt::format("reading the log ({} bytes at offset {})", bytes.size(), header.log_offset)));
  CircularLog log(std::move(bytes));

  // Every valid entry, by log offset. Valid entries never overlap (validate_entry), so each sector is
  // checksummed at most once as part of a valid entry, and the first sector of an invalid one is skipped.
  std::map<uint32_t, Entry> valid;
  for (uint64_t at = 0; at < log.length(); at += kLogSectorSize) {
    if (!log.starts_entry(at)) continue;
    Entry e;
    VHDKIT_ASSIGN(auto verdict, validate_entry(log, static_cast<uint32_t>(at), header.log_guid, path, e));
    if (verdict.first == Verdict::Valid)
      valid.emplace(static_cast<uint32_t>(at), std::move(e));
    else
      plan.ignored.push_back(verdict.second);
  }

  // Candidate sequences: from each valid entry, follow entries that come right after one another with
  // sequence numbers one apart. A chain is a candidate when its head's Tail is one of its entries. Chains
  // start only at entries that follow no other (an entry has at most one predecessor, since entries do not
  // overlap), so each entry is visited once.
  auto successor = [&](const Entry& e) -> const Entry* {
    uint32_t next = static_cast<uint32_t>((uint64_t{e.offset} + e.header.entry_length) % log.length());
    auto it = valid.find(next);
    if (it == valid.end() || it->second.header.sequence_number != e.header.sequence_number + 1) return nullptr;
    return &it->second;
  };
  std::set<const Entry*> followers;
  for (const auto& [start, entry] : valid)
    if (const Entry* n = successor(entry)) followers.insert(n);
  std::vector<const Entry*> best;
  for (const auto& [start, entry] : valid) {
    if (followers.count(&entry)) continue;
    std::vector<const Entry*> chain{&entry};
    while (chain.size() < valid.size()) {
      const Entry* n = successor(*chain.back());
      if (!n) break;
      chain.push_back(n);
    }
    const Entry* head = chain.back();
    auto tail_at =
        std::find_if(chain.begin(), chain.end(), [&](const Entry* e) { return e->offset == head->header.tail; });
    if (tail_at == chain.end()) continue;
    if (best.empty() || head->header.sequence_number > best.back()->header.sequence_number)
      best.assign(tail_at, chain.end());
  }
  if (best.empty()) {
    if (!valid.empty())
      plan.ignored.push_back("no sequence of valid log entries contains its own tail; nothing is replayed");
    return plan;
  }
  const LogEntryHeader& head = best.back()->header;
  if (file_size < head.flushed_file_offset)
    return fail(ReturnCode::Failed, path,
                fmt::format("the log's head entry (sequence {}) says the file was {} bytes when it was written, "
                            "but it is {} bytes: the file has been truncated",
                            head.sequence_number, head.flushed_file_offset, file_size));
  VHDKIT_TRY(validate_plan(best, header, path));
  for (const Entry* e : best)
    for (const LogOp& op : e->ops) plan.ops.push_back(op);
  plan.last_file_offset = head.last_file_offset;
  plan.head_sequence = head.sequence_number;
  plan.entry_count = best.size();
  std::set<const Entry*> active(best.begin(), best.end());
  for (const auto& [at, e] : valid) {
    if (!active.count(&e))
      plan.ignored.push_back(
          fmt::format("log entry at log offset {} (sequence {}) is valid but not in the active "
                      "sequence",
                      at, e.header.sequence_number));
  }
  return plan;
}

Status apply_replay(io::File& file, const ReplayPlan& plan) {
  // Zeros at or past the file's end need no writing: growing the file (as it is written, or to
  // LastFileOffset at the end) makes them zero.
  VHDKIT_ASSIGN(uint64_t size, file.size());
  const Bytes zeros(kAlignment);
  for (const LogOp& op : plan.ops) {
    if (!op.data.empty()) {
      VHDKIT_TRY(file.write_at(op.offset, op.data));
      size = std::max(size, op.offset + op.data.size());
      continue;
    }
    uint64_t end = std::min(size, saturating_end(op.offset, op.length));
    for (uint64_t at = op.offset; at < end;) {
      uint64_t n = std::min<uint64_t>(zeros.size(), end - at);
      VHDKIT_TRY(file.write_at(at, std::span(zeros).first(n)));
      at += n;
    }
  }
  if (size < plan.last_file_offset) VHDKIT_TRY(file.truncate(plan.last_file_offset));
  return file.flush();
}

}  // namespace vhdkit::vhdx
