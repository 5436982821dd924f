// SPDX-License-Identifier: Apache-2.0
#include "vhd/vhd_metadata.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/checked.h"
#include "vhd/parent_locator.h"

namespace vhdkit::vhd {
namespace {

std::string hex(uint64_t v) { return fmt::format("0x{:x}", v); }

constexpr size_t kMaxBlockErrors = 20;

class Reader {
 public:
  Reader(io::File& file, Problems& problems) : file_(file), p_(problems) {}

  Result<Metadata> run() {
    VHDKIT_ASSIGN(m_.file_size, file_.size());
    VHDKIT_ASSIGN(bool have_footer, read_footer());
    if (!have_footer || !check_footer()) return finish();
    if (m_.type == DiskTypeCode::Fixed) {
      check_fixed();
      return finish();
    }
    VHDKIT_ASSIGN(bool have_header, read_header());
    if (!have_header) return finish();
    VHDKIT_ASSIGN(bool have_bat, read_bat());
    if (!have_bat) return finish();
    VHDKIT_TRY(read_locators());
    check_region_overlaps();
    check_blocks();
    return finish();
  }

 private:
  void error(std::string s) { p_.errors.push_back(std::move(s)); }
  // A read the host refuses names the structure and where it was read.
  Status read(const std::string& what, uint64_t offset, std::span<std::byte> out) {
    if (Status r = file_.read_at(offset, out); !r)
      return fail(r.error().with_context(fmt::format("reading {} ({} bytes at offset {})", what, out.size(), offset)));
    return ok();
  }
  void warn(std::string s) { p_.warnings.push_back(std::move(s)); }

  Result<Metadata> finish() {
    if (!p_.errors.empty() && m_.footer_from_copy)
      p_.errors.insert(
          p_.errors.begin(),
          fmt::format("the footer at the end of the file is missing (its last 512 bytes at offset {} do "
                      "not start with the cookie \"conectix\"; the copy at offset 0 was read instead): the file is "
                      "truncated or its end was overwritten",
                      m_.file_size - kFooterSize));
    if (!p_.errors.empty()) return fail(kCorrupt, file_.path(), summarize(p_.errors));
    return std::move(m_);
  }

  // A dynamic or differencing end footer: compare the copy at offset 0 with it (a fixed disk has no copy; its
  // first sector is the guest's).
  Result<bool> copy_checked(const Bytes& end_footer) {
    uint32_t type = load_be<uint32_t>(end_footer.data() + 60);
    if (type == static_cast<uint32_t>(DiskTypeCode::Dynamic) ||
        type == static_cast<uint32_t>(DiskTypeCode::Differencing))
      VHDKIT_TRY(follow_footer_copy());
    return true;
  }

  Result<bool> read_footer() {
    uint64_t size = m_.file_size;
    if (size < kFooterSize) {
      error(fmt::format("the file is {} bytes, too small to hold a VHD footer (512 bytes)", size));
      return false;
    }
    m_.footer_raw.assign(kFooterSize, std::byte{0});
    VHDKIT_TRY(read("the end footer", size - kFooterSize, m_.footer_raw));
    if (is_footer_cookie(m_.footer_raw)) {
      m_.footer_offset = size - kFooterSize;
      return copy_checked(m_.footer_raw);
    }
    // Virtual PC before 2004 wrote a 511-byte footer (the Saved State byte's reserved tail one shorter).
    std::fill(m_.footer_raw.begin(), m_.footer_raw.end(), std::byte{0});
    VHDKIT_TRY(read("the end footer", size - (kFooterSize - 1), std::span(m_.footer_raw).first(kFooterSize - 1)));
    if (is_footer_cookie(m_.footer_raw)) {
      m_.footer_offset = size - (kFooterSize - 1);
      return copy_checked(m_.footer_raw);
    }
    Bytes head(kFooterSize);
    VHDKIT_TRY(read("the footer copy", 0, head));
    if (is_footer_cookie(head) &&
        vhd_checksum(head, kFooterChecksumOffset) == load_be<uint32_t>(head.data() + kFooterChecksumOffset)) {
      // qemu reads the copy at offset 0 first and opens such files: so do we, for reading. Where the real footer
      // is (trailing bytes after it, or none) is unknown, so nothing is written to such a file.
      uint32_t type = load_be<uint32_t>(head.data() + 60);
      if (type == static_cast<uint32_t>(DiskTypeCode::Dynamic) ||
          type == static_cast<uint32_t>(DiskTypeCode::Differencing)) {
        m_.footer_raw = head;
        m_.footer_offset = size;
        m_.footer_from_copy = true;
        warn(
            fmt::format("the last 512 bytes (at offset {}) are not a footer: the footer is missing or followed by "
                        "other bytes; the footer copy at offset 0 is used instead (as qemu does)",
                        size - kFooterSize));
        m_.write_refusal =
            "the footer at the end of the file is missing or followed by other bytes (only the copy "
            "at offset 0 is readable), so where the file's data ends is not known: repair it with "
            "qemu-img convert before compacting";
        return true;
      }
    }
    if (is_footer_cookie(head))
      error(
          fmt::format("the footer at the end of the file is missing (its last 512 bytes at offset {} do not start "
                      "with the cookie \"conectix\"; only the copy at offset 0 is there): the file is truncated or "
                      "its end was overwritten",
                      size - kFooterSize));
    else
      error("no VHD footer: neither the last 512 bytes nor the first start with the cookie \"conectix\"");
    return false;
  }

  bool check_footer() {
    std::span<const std::byte, kFooterSize> raw(m_.footer_raw.data(), kFooterSize);
    m_.footer = decode_footer(raw);
    const Footer& f = m_.footer;
    uint32_t want = vhd_checksum(raw, kFooterChecksumOffset);
    if (want != f.checksum) {
      error(
          fmt::format("footer checksum is wrong: the footer stores {} but its bytes sum to {} (the "
                      "footer is damaged)",
                      hex(f.checksum), hex(want)));
      return false;
    }
    if (f.format_version >> 16 != 1)
      warn(fmt::format("footer File Format Version is {}, not 1.0", hex(f.format_version)));
    switch (static_cast<DiskTypeCode>(f.disk_type)) {
      case DiskTypeCode::Fixed:
      case DiskTypeCode::Dynamic:
      case DiskTypeCode::Differencing: m_.type = static_cast<DiskTypeCode>(f.disk_type); break;
      default:
        error(fmt::format("footer Disk Type is {}, not fixed (2), dynamic (3) or differencing (4)", f.disk_type));
        return false;
    }
    m_.virtual_size = virtual_size_of(f);
    if (m_.virtual_size > kMaxVirtualSize) {
      error(
          fmt::format("the virtual size {} bytes ({} from the footer) is larger than the 2040 GiB a VHD "
                      "can hold",
                      m_.virtual_size, size_source(f) == SizeSource::CurrentSize ? "Current Size" : "CHS geometry"));
      return false;
    }
    if (f.current_size % kSectorSize != 0)
      warn(fmt::format("footer Current Size {} is not a multiple of 512 bytes", f.current_size));
    return true;
  }

  void check_fixed() {
    if (m_.footer.data_offset != kNoOffset)
      warn(fmt::format("fixed disk footer Data Offset is {}, not all ones", hex(m_.footer.data_offset)));
    if (m_.footer_offset < m_.virtual_size)
      error(
          fmt::format("the fixed disk holds {} bytes, but only {} bytes precede the footer: the file is "
                      "truncated",
                      m_.virtual_size, m_.footer_offset));
    else if (m_.footer_offset > m_.virtual_size)
      warn(fmt::format("{} bytes lie between the end of the fixed disk's data and its footer",
                       m_.footer_offset - m_.virtual_size));
  }

  Result<bool> read_header() {
    uint64_t off = m_.footer.data_offset;
    if (off < kFooterSize || !fits_within(off, kDynamicHeaderSize, m_.footer_offset)) {
      error(
          fmt::format("footer Data Offset {} does not point at a dynamic header inside the file (the "
                      "footer is at {})",
                      hex(off), hex(m_.footer_offset)));
      return false;
    }
    Bytes raw(kDynamicHeaderSize);
    VHDKIT_TRY(read("the dynamic header", off, raw));
    if (!is_header_cookie(raw)) {
      error(fmt::format("the dynamic header at offset {} does not start with the cookie \"cxsparse\"", off));
      return false;
    }
    std::span<const std::byte, kDynamicHeaderSize> s(raw.data(), kDynamicHeaderSize);
    DynamicHeader h = decode_dynamic_header(s);
    uint32_t want = vhd_checksum(s, kHeaderChecksumOffset);
    if (want != h.checksum) {
      error(
          fmt::format("dynamic header checksum is wrong: the header stores {} but its bytes sum to {} "
                      "(the header is damaged)",
                      hex(h.checksum), hex(want)));
      return false;
    }
    if (h.header_version != kFormatVersion)
      warn(fmt::format("dynamic header Header Version is {}, not 0x10000", hex(h.header_version)));
    if (h.data_offset != kNoOffset)
      warn(fmt::format("dynamic header Data Offset is {}, not all ones", hex(h.data_offset)));
    bool ok = true;
    if (!is_power_of_two(h.block_size) || h.block_size < kSectorSize) {
      error(fmt::format("dynamic header Block Size {} is not a power of two of at least 512 bytes", h.block_size));
      ok = false;
    } else if (h.block_size > kMaxBlockSize) {
      error(fmt::format("dynamic header Block Size {} is larger than the 256 MiB we accept", h.block_size));
      ok = false;
    }
    if (ok) {
      m_.bitmap_size = bitmap_bytes(h.block_size);
      m_.block_count = div_round_up(m_.virtual_size, h.block_size);
      uint64_t most = div_round_up(kMaxVirtualSize, h.block_size);
      if (h.max_table_entries < m_.block_count) {
        error(
            fmt::format("dynamic header Max Table Entries is {}, too few for a {}-byte disk of {}-byte "
                        "blocks (it needs {})",
                        h.max_table_entries, m_.virtual_size, h.block_size, m_.block_count));
        ok = false;
      } else if (h.max_table_entries > most) {
        error(
            fmt::format("dynamic header Max Table Entries {} is absurd: {}-byte blocks need at most {} "
                        "entries for the largest VHD",
                        h.max_table_entries, h.block_size, most));
        ok = false;
      } else if (h.max_table_entries > kQemuMaxTableEntries) {
        error(fmt::format("dynamic header Max Table Entries {} is larger than the {} qemu accepts", h.max_table_entries,
                          kQemuMaxTableEntries));
        ok = false;
      } else if (h.max_table_entries > kMaxReadTableEntries) {
        error(
            fmt::format("dynamic header Max Table Entries {} ({}-byte blocks) is more than the {} entries vhdkit "
                        "holds in memory; convert the image to larger blocks with qemu-img",
                        h.max_table_entries, h.block_size, kMaxReadTableEntries));
        ok = false;
      }
    }
    m_.regions.push_back({0, kFooterSize, "the footer copy"});
    m_.regions.push_back({off, kDynamicHeaderSize, "the dynamic header"});
    m_.header = std::move(h);
    return ok;
  }

  // qemu (block/vpc.c, vpc_open) takes the copy at offset 0 for the footer whenever it starts with the cookie,
  // whatever the end footer says; a copy whose checksum is wrong makes qemu 7 refuse the file ("Incorrect header
  // checksum"; older releases only warned and read it). So for reading we follow a sound copy that differs; a
  // damaged copy leaves us with the end footer. Either way the file is ambiguous, and it is not written.
  Status follow_footer_copy() {
    Bytes copy(kFooterSize);
    VHDKIT_TRY(read("the footer copy", 0, copy));
    if (!is_footer_cookie(copy)) {
      warn("the footer copy at offset 0 is missing (no \"conectix\" cookie)");
      return ok();
    }
    auto without_checksum = [](Bytes b) {
      std::fill_n(b.begin() + kFooterChecksumOffset, 4, std::byte{0});
      return b;
    };
    bool sound = vhd_checksum(copy, kFooterChecksumOffset) == load_be<uint32_t>(copy.data() + kFooterChecksumOffset);
    if (without_checksum(copy) == without_checksum(m_.footer_raw)) {
      if (!sound)
        warn("the footer copy at offset 0 has a wrong checksum (it says what the end footer says; qemu refuses it)");
      return ok();
    }
    uint32_t type = load_be<uint32_t>(copy.data() + 60);
    bool dynamic = type == static_cast<uint32_t>(DiskTypeCode::Dynamic) ||
                   type == static_cast<uint32_t>(DiskTypeCode::Differencing);
    if (sound && dynamic) {
      m_.footer_raw = copy;
      warn(
          "the footer copy at offset 0 differs from the footer at the end of the file; vhdkit reads the copy, as "
          "qemu does");
      m_.write_refusal =
          "the footer copy at offset 0 differs from the footer at the end of the file (qemu and vhdkit read the "
          "copy, the VHD specification names the end footer): which one describes the disk is ambiguous, so the "
          "file is not changed; make them agree first (qemu-img convert)";
    } else {
      std::string what = sound ? "the disk type " + std::to_string(type) : std::string("a wrong checksum");
      std::string qemu = sound ? "qemu reads the copy" : "qemu refuses the file";
      warn(
          fmt::format("the footer copy at offset 0 differs from the end footer and has {}; vhdkit reads the end "
                      "footer, {}",
                      what, qemu));
      m_.write_refusal = fmt::format(
          "the footer copy at offset 0 differs from the footer at the end of the file and has {} ({}, vhdkit "
          "reads the end footer): which one describes the disk is ambiguous, so the file is not changed; make "
          "them agree first (qemu-img convert)",
          what, qemu);
    }
    return ok();
  }

  Result<bool> read_bat() {
    const DynamicHeader& h = *m_.header;
    uint64_t bytes = round_up(uint64_t{h.max_table_entries} * 4, kSectorSize);
    if (!fits_within(h.table_offset, bytes, m_.footer_offset)) {
      error(
          fmt::format("the BAT at offset {} ({} entries, {} bytes) runs past the end of the file's "
                      "metadata (the footer is at {})",
                      hex(h.table_offset), h.max_table_entries, bytes, hex(m_.footer_offset)));
      return false;
    }
    // Read in pieces: the table is held once, as entries.
    m_.bat.resize(h.max_table_entries);
    Bytes raw(std::min<size_t>(m_.bat.size() * size_t{4}, 1 << 20));
    for (size_t first = 0; first < m_.bat.size();) {
      size_t n = std::min(raw.size() / 4, m_.bat.size() - first);
      VHDKIT_TRY(read("the BAT", h.table_offset + first * 4, std::span(raw).first(n * 4)));
      for (size_t i = 0; i < n; ++i) m_.bat[first + i] = load_be<uint32_t>(raw.data() + 4 * i);
      first += n;
    }
    m_.regions.push_back({h.table_offset, bytes, "the BAT"});
    return true;
  }

  Status read_locators() {
    const DynamicHeader& h = *m_.header;
    bool differencing = m_.type == DiskTypeCode::Differencing;
    for (size_t i = 0; i < kParentLocatorCount; ++i) {
      const ParentLocator& l = h.locators[i];
      if (l.platform_code == 0) continue;
      std::string name = fmt::format("parent locator {} ({})", i, fourcc_text(l.platform_code));
      if (!differencing) {
        warn(fmt::format("{} is set on a disk that is not differencing; it is ignored", name));
        continue;
      }
      if (l.platform_data_length == 0) {
        warn(fmt::format("{} is empty", name));
        continue;
      }
      if (l.platform_data_offset < kFooterSize ||
          !fits_within(l.platform_data_offset, l.platform_data_length, m_.footer_offset)) {
        error(fmt::format("{} data at offset {} ({} bytes) lies outside the file's metadata area", name,
                          hex(l.platform_data_offset), l.platform_data_length));
        continue;
      }
      // The spec counts Platform Data Space in sectors; Windows writes bytes. Accept either reading.
      uint64_t space_bytes = std::max<uint64_t>(l.platform_data_space, uint64_t{l.platform_data_space} * kSectorSize);
      if (l.platform_data_length > space_bytes)
        warn(
            fmt::format("{} holds {} bytes but reserves only {}", name, l.platform_data_length, l.platform_data_space));
      m_.regions.push_back({l.platform_data_offset, round_up(l.platform_data_length, kSectorSize), name});
      if (l.platform_data_length > kMaxLocatorDataLength) {
        error(fmt::format("{} claims {} bytes of path; a locator holds at most {} bytes", name, l.platform_data_length,
                          kMaxLocatorDataLength));
        continue;
      }
      Bytes data(l.platform_data_length);
      VHDKIT_TRY(read(name, l.platform_data_offset, data));
      std::string why;
      bool known = l.platform_code == kPlatformW2ku || l.platform_code == kPlatformW2ru ||
                   l.platform_code == kPlatformWi2k || l.platform_code == kPlatformWi2r ||
                   l.platform_code == kPlatformMacX;
      if (!known) {
        warn(fmt::format("{} has a platform code we do not read; it is ignored", name));
        continue;
      }
      auto text = decode_locator_text(l.platform_code, data, &why);
      if (!text) {
        error(fmt::format("{} is unreadable: {}", name, why));
        continue;
      }
      m_.locators.push_back({i, l.platform_code, *text});
    }
    if (differencing && m_.locators.empty())
      warn(
          "the differencing disk has no usable parent locator; its parent is looked for by the name in "
          "the dynamic header");
    return ok();
  }

  void check_region_overlaps() {
    std::sort(m_.regions.begin(), m_.regions.end(),
              [](const Region& a, const Region& b) { return a.offset < b.offset; });
    for (size_t i = 0; i < m_.regions.size(); ++i)
      for (size_t j = i + 1; j < m_.regions.size(); ++j)
        if (ranges_overlap(m_.regions[i].offset, m_.regions[i].length, m_.regions[j].offset, m_.regions[j].length))
          error(fmt::format("{} (offset {}, {} bytes) overlaps {} (offset {}, {} bytes)", m_.regions[i].name,
                            hex(m_.regions[i].offset), m_.regions[i].length, m_.regions[j].name,
                            hex(m_.regions[j].offset), m_.regions[j].length));
  }

  void check_blocks() {
    uint64_t block_bytes = m_.bitmap_size + m_.header->block_size;
    std::vector<std::pair<uint32_t, uint32_t>> starts;  // (file sector, BAT index): 8 bytes an entry
    size_t reported = 0, suppressed = 0;
    // A hostile table may have millions of bad entries: the sentences are only made for the first few.
    auto block_error = [&](auto&& make_sentence) {
      if (reported < kMaxBlockErrors) {
        error(make_sentence());
        ++reported;
      } else {
        ++suppressed;
      }
    };
    uint64_t beyond = 0, first_beyond = 0;
    for (size_t i = 0; i < m_.bat.size(); ++i) {
      if (m_.bat[i] == kUnallocated) continue;
      uint64_t start = uint64_t{m_.bat[i]} * kSectorSize;
      if (!fits_within(start, block_bytes, m_.footer_offset)) {
        block_error([&] {
          return fmt::format(
              "BAT entry {} points past the end of the file: its block spans offsets {}-{} "
              "but the footer is at {} (the file may be truncated)",
              i, hex(start), hex(start + block_bytes), hex(m_.footer_offset));
        });
        continue;
      }
      if (i >= m_.block_count && beyond++ == 0) first_beyond = i;
      bool in_region = false;
      for (const Region& r : m_.regions)
        if (ranges_overlap(start, block_bytes, r.offset, r.length)) {
          block_error([&] {
            return fmt::format("BAT entry {} points into {}: its block at offset {} overlaps it", i, r.name,
                               hex(start));
          });
          in_region = true;
          break;
        }
      // Once the complaints are capped, an entry already refused is not compared with the others (a hostile
      // table of millions of them would only make the sort slow).
      if (!in_region || reported < kMaxBlockErrors) starts.emplace_back(m_.bat[i], static_cast<uint32_t>(i));
    }
    std::sort(starts.begin(), starts.end());
    for (size_t k = 1; k < starts.size(); ++k) {
      // Blocks all have the same length, so only neighbours in file order can overlap.
      uint64_t prev = uint64_t{starts[k - 1].first} * kSectorSize, cur = uint64_t{starts[k].first} * kSectorSize;
      size_t pi = starts[k - 1].second, ci = starts[k].second;
      if (cur < prev + block_bytes)
        block_error([&] {
          return fmt::format(
              "BAT entries {} and {} overlap: their blocks start at offsets {} and {}, "
              "less than a block ({} bytes with its bitmap) apart",
              std::min(pi, ci), std::max(pi, ci), hex(prev), hex(cur), block_bytes);
        });
    }
    if (suppressed) error(fmt::format("and {} more BAT problems", suppressed));
    if (beyond == 1)
      warn(fmt::format("BAT entry {} lies beyond the end of the virtual disk but has a block", first_beyond));
    else if (beyond > 1)
      warn(fmt::format("{} BAT entries (the first is {}) lie beyond the end of the virtual disk but have a block",
                       beyond, first_beyond));
  }

  io::File& file_;
  Problems& p_;
  Metadata m_;
};

}  // namespace

Result<Metadata> read_metadata(io::File& file, Problems& problems) { return Reader(file, problems).run(); }

std::string summarize(const std::vector<std::string>& errors) {
  constexpr size_t kShown = 3;
  std::string s;
  for (size_t i = 0; i < errors.size() && i < kShown; ++i) s += (i ? "; " : "") + errors[i];
  if (errors.size() > kShown) s += fmt::format("; and {} more problems", errors.size() - kShown);
  return s;
}

}  // namespace vhdkit::vhd
