// Finding and replaying the active log sequence ([MS-VHDX] 2.3.2, 2.3.3).
#include <fmt/format.h>

#include <algorithm>
#include <cstring>

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
  if (h.log_guid != log_guid) return invalid("its LogGuid is not the header's LogGuid");
  if (h.entry_length == 0 || h.entry_length % kLogSectorSize != 0 || h.entry_length > log.length())
    return invalid(fmt::format("EntryLength {} is not a 4 KiB multiple within the log", h.entry_length));
  if (h.tail % kLogSectorSize != 0 || h.tail >= log.length())
    return invalid(fmt::format("Tail {} is not a 4 KiB-aligned log offset", h.tail));
  uint64_t desc_sectors = log_descriptor_sectors(h.descriptor_count);
  if (desc_sectors * kLogSectorSize > h.entry_length)
    return invalid(fmt::format("{} descriptors do not fit its {} bytes", h.descriptor_count, h.entry_length));
  Bytes entry = log.read(at, h.entry_length);
  if (crc32c_with_zero_field(entry, 4) != h.checksum) return invalid("checksum mismatch");

  out = Entry{at, h, {}};
  uint64_t data_sector = desc_sectors;
  for (uint32_t i = 0; i < h.descriptor_count; ++i) {
    LogDescriptor d = parse_log_descriptor(std::span(entry).subspan(kLogEntryHeaderSize + i * kLogDescriptorSize,
                                                                    kLogDescriptorSize));
    if (d.kind == DescriptorKind::Unknown) return invalid(fmt::format("descriptor {} has no known signature", i));
    if (d.sequence_number != h.sequence_number)
      return invalid(fmt::format("descriptor {} has sequence number {}, the entry {}", i, d.sequence_number,
                                 h.sequence_number));
    auto impossible = [&](std::string why) -> Result<std::pair<Verdict, std::string>> {
      return fail(ReturnCode::Failed, path,
                  fmt::format("log entry {} (log offset {}), descriptor {}: {}", h.sequence_number, at, i, why));
    };
    if (d.file_offset % kLogSectorSize != 0)
      return impossible(fmt::format("FileOffset {} is not a multiple of 4 KiB", d.file_offset));
    if (d.file_offset < kHeaderSectionSize)
      return impossible(fmt::format("it writes at file offset {}, inside the header section", d.file_offset));
    if (d.kind == DescriptorKind::Zero) {
      if (d.zero_length % kLogSectorSize != 0)
        return impossible(fmt::format("ZeroLength {} is not a multiple of 4 KiB", d.zero_length));
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
    if (op.data.empty()) std::memset(dst, 0, hi - lo);
    else std::memcpy(dst, op.data.data() + (lo - op.offset), hi - lo);
  }
}

Result<ReplayPlan> read_log(io::File& file, const Header& header, uint64_t file_size) {
  ReplayPlan plan;
  if (header.log_guid.is_zero()) return plan;
  const std::string& path = file.path();
  if (header.log_offset + header.log_length > file_size)
    return fail(ReturnCode::Failed, path,
                fmt::format("the log ({} bytes at offset {}) lies past the end of the {}-byte file",
                            header.log_length, header.log_offset, file_size));
  Bytes bytes(header.log_length);
  VHDKIT_TRY(file.read_at(header.log_offset, bytes));
  CircularLog log(std::move(bytes));

  // Every valid entry, by log offset.
  std::map<uint32_t, Entry> valid;
  for (uint64_t at = 0; at < log.length(); at += kLogSectorSize) {
    Entry e;
    VHDKIT_ASSIGN(auto verdict, validate_entry(log, static_cast<uint32_t>(at), header.log_guid, path, e));
    if (verdict.first == Verdict::Valid) valid.emplace(static_cast<uint32_t>(at), std::move(e));
    else if (verdict.second.find("no \"loge\"") == std::string::npos) plan.ignored.push_back(verdict.second);
  }

  // Candidate sequences: from each valid entry, follow entries that come right after one another with
  // sequence numbers one apart. A chain is a candidate when its head's Tail is one of its entries.
  std::vector<const Entry*> best;
  for (const auto& [start, entry] : valid) {
    std::vector<const Entry*> chain{&entry};
    while (chain.size() < valid.size()) {
      const Entry* last = chain.back();
      uint32_t next = static_cast<uint32_t>((uint64_t{last->offset} + last->header.entry_length) % log.length());
      auto it = valid.find(next);
      if (it == valid.end() || it->second.header.sequence_number != last->header.sequence_number + 1) break;
      chain.push_back(&it->second);
    }
    const Entry* head = chain.back();
    auto tail_at = std::find_if(chain.begin(), chain.end(),
                                [&](const Entry* e) { return e->offset == head->header.tail; });
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
  for (const Entry* e : best)
    for (const LogOp& op : e->ops) plan.ops.push_back(op);
  plan.last_file_offset = head.last_file_offset;
  plan.head_sequence = head.sequence_number;
  plan.entry_count = best.size();
  for (const auto& [at, e] : valid) {
    if (std::find(best.begin(), best.end(), &e) == best.end())
      plan.ignored.push_back(fmt::format("log entry at log offset {} (sequence {}) is valid but not in the active "
                                         "sequence", at, e.header.sequence_number));
  }
  return plan;
}

Status apply_replay(io::File& file, const ReplayPlan& plan) {
  const Bytes zeros(kAlignment);
  for (const LogOp& op : plan.ops) {
    if (!op.data.empty()) {
      VHDKIT_TRY(file.write_at(op.offset, op.data));
      continue;
    }
    for (uint64_t done = 0; done < op.length;) {
      uint64_t n = std::min<uint64_t>(zeros.size(), op.length - done);
      VHDKIT_TRY(file.write_at(op.offset + done, std::span(zeros).first(n)));
      done += n;
    }
  }
  VHDKIT_ASSIGN(uint64_t size, file.size());
  if (size < plan.last_file_offset) VHDKIT_TRY(file.truncate(plan.last_file_offset));
  return file.flush();
}

}  // namespace vhdkit::vhdx
