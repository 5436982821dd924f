// SPDX-License-Identifier: Apache-2.0
#include "vhdx/headers.h"

#include <fmt/format.h>

#include <algorithm>

#include <vector>
#include "core/checked.h"

namespace vhdkit::vhdx {
namespace {

HeaderCopy read_header_copy(std::span<const std::byte> b) {
  HeaderCopy c;
  switch (check_header_bytes(b)) {
    case HeaderProblem::BadSignature: c.problem = "no \"head\" signature"; return c;
    case HeaderProblem::BadChecksum: c.problem = "checksum mismatch"; return c;
    case HeaderProblem::None: break;
  }
  c.header = parse_header(b);
  if (c.header.version != 1) {
    c.problem = fmt::format("Version is {}, not 1", c.header.version);
    return c;
  }
  c.valid = true;
  return c;
}

RegionTableCopy read_region_table_copy(std::span<const std::byte> b) {
  RegionTableCopy c;
  switch (check_region_table_bytes(b)) {
    case RegionTableProblem::BadSignature: c.problem = "no \"regi\" signature"; return c;
    case RegionTableProblem::BadChecksum: c.problem = "checksum mismatch"; return c;
    case RegionTableProblem::TooManyEntries: c.problem = "more than 2047 entries"; return c;
    case RegionTableProblem::None: break;
  }
  c.table = parse_region_table(b);
  c.valid = true;
  return c;
}

struct Span {
  uint64_t offset, length;
  std::string name;
};

}  // namespace

Result<HeaderSection> read_header_section(io::File& file, uint64_t file_size) {
  const std::string& path = file.path();
  auto bad = [&](std::string why) { return fail(ReturnCode::Failed, path, why); };
  if (file_size < kHeaderSectionSize)
    return bad(fmt::format("the file is {} bytes, smaller than the 1 MiB VHDX header section", file_size));
  Bytes section(kRegionTableOffsets[1] + kRegionTableSize);
  if (Status r = file.read_at(0, section); !r)
    return fail(
        r.error().with_context(fmt::format("reading the header section ({} bytes at offset 0)", section.size())));
  std::span<const std::byte> s(section);

  HeaderSection hs;
  auto id = parse_file_identifier(s.first(kFileIdentifierSize));
  if (!id) return bad("file type identifier: no \"vhdxfile\" signature at offset 0; this is not a VHDX file");
  hs.identifier = *id;

  for (int i = 0; i < 2; ++i) hs.headers[i] = read_header_copy(s.subspan(kHeaderOffsets[i], kHeaderSize));
  if (!hs.headers[0].valid && !hs.headers[1].valid)
    return bad(fmt::format("neither VHDX header is valid (header 1 at 64 KiB: {}; header 2 at 128 KiB: {})",
                           hs.headers[0].problem, hs.headers[1].problem));
  if (hs.headers[0].valid && hs.headers[1].valid) {
    const Header& a = hs.headers[0].header;
    const Header& b = hs.headers[1].header;
    // Equal sequence numbers with different content: no header is current, and taking either could discard
    // a log the other names. Refused, as qemu does.
    if (a.sequence_number == b.sequence_number && serialize_header(a) != serialize_header(b))
      return bad(
          fmt::format("both headers have SequenceNumber {} but say different things (FileWriteGuid, "
                      "DataWriteGuid, LogGuid or the log's place): which one is current is ambiguous",
                      a.sequence_number));
    hs.current = b.sequence_number > a.sequence_number ? 1 : 0;
  } else
    hs.current = hs.headers[0].valid ? 0 : 1;
  const Header& h = hs.current_header();
  std::string which = fmt::format("header {} (the current one)", hs.current + 1);
  if (h.log_version != 0) return bad(fmt::format("{}: LogVersion is {}, not 0", which, h.log_version));
  if (h.log_length % kAlignment != 0 || h.log_offset % kAlignment != 0 || h.log_offset < kHeaderSectionSize)
    return bad(fmt::format("{}: the log ({} bytes at offset {}) is not 1 MiB aligned after the header section", which,
                           h.log_length, h.log_offset));
  if (h.log_length == 0) return bad(fmt::format("{}: LogLength is 0", which));
  if (!fits_within(h.log_offset, h.log_length, file_size))
    return bad(fmt::format("{}: the log ({} bytes at offset {}) lies past the end of the {}-byte file", which,
                           h.log_length, h.log_offset, file_size));

  for (int i = 0; i < 2; ++i)
    hs.region_tables[i] = read_region_table_copy(s.subspan(kRegionTableOffsets[i], kRegionTableSize));
  if (!hs.region_tables[0].valid && !hs.region_tables[1].valid)
    return bad(
        fmt::format("neither region table is valid (region table 1 at 192 KiB: {}; region table 2 at 256 KiB: "
                    "{})",
                    hs.region_tables[0].problem, hs.region_tables[1].problem));
  hs.region_table_used = hs.region_tables[0].valid ? 0 : 1;
  const RegionTable& rt = hs.region_tables[hs.region_table_used].table;

  std::vector<Span> spans{{0, kHeaderSectionSize, "the header section"}, {h.log_offset, h.log_length, "the log"}};
  bool have_bat = false, have_metadata = false;
  for (size_t i = 0; i < rt.entries.size(); ++i) {
    const RegionEntry& r = rt.entries[i];
    std::string name;
    if (r.guid == bat_region_guid()) {
      name = "the BAT region";
      if (have_bat) return bad("region table: the BAT region appears twice");
      have_bat = true;
      hs.bat_region = r;
    } else if (r.guid == metadata_region_guid()) {
      name = "the metadata region";
      if (have_metadata) return bad("region table: the metadata region appears twice");
      have_metadata = true;
      hs.metadata_region = r;
    } else {
      name = fmt::format("region {{{}}}", r.guid.to_string_ms());
      if (r.required)
        return bad(fmt::format("region table: {} is marked required but is not one this program knows", name));
    }
    if (r.file_offset % kAlignment != 0 || r.length % kAlignment != 0 || r.length == 0)
      return bad(fmt::format("region table entry {} ({}): {} bytes at offset {} is not 1 MiB aligned", i, name,
                             r.length, r.file_offset));
    if (!fits_within(r.file_offset, r.length, file_size))
      return bad(fmt::format("region table entry {} ({}): {} bytes at offset {} lies past the end of the {}-byte file",
                             i, name, r.length, r.file_offset, file_size));
    spans.push_back({r.file_offset, r.length, name});
  }
  if (!have_bat) return bad("region table: the required BAT region is missing");
  if (!have_metadata) return bad("region table: the required metadata region is missing");
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.offset < b.offset; });
  for (size_t i = 1; i < spans.size(); ++i) {
    if (spans[i].offset < saturating_end(spans[i - 1].offset, spans[i - 1].length))
      return bad(fmt::format("{} (offset {}) overlaps {} (offset {})", spans[i].name, spans[i].offset,
                             spans[i - 1].name, spans[i - 1].offset));
  }
  return hs;
}

Status write_header_update(io::File& file, HeaderSection& section, Header h) {
  int target = 1 - section.current;
  h.sequence_number = section.current_header().sequence_number + 1;
  Bytes bytes = serialize_header(h);
  VHDKIT_TRY(file.write_at(kHeaderOffsets[target], bytes));
  VHDKIT_TRY(file.flush());
  section.headers[target] = HeaderCopy{true, {}, h};
  section.current = target;
  return ok();
}

}  // namespace vhdkit::vhdx
