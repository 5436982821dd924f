// SPDX-License-Identifier: Apache-2.0
// Hostile VHDX files (issue 14): damage with valid checksums (CRC-32C), so that it reaches the log replay,
// the metadata items, the BAT and the limits, judged through the real vhdkit binary (tests/support/hostile.h).
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "hostile.h"
#include "image/open_image.h"
#include "vhdx/format.h"
#include "vhdx_test_util.h"

namespace vhdkit::vhdx::testing {
namespace {

using vhdkit::testing::HostileCase;
using vhdkit::testing::Outcome;

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kNearTop = 0xFFFFFFFFFFF00000;  // 1 MiB below 2^64, 1 MiB aligned

// Where things are in the clean image.
struct Layout {
  int current = 0;
  Header header;
  uint64_t metadata_offset = 0, bat_offset = 0, file_size = 0;
  std::vector<MetadataEntry> items;
  uint64_t item_entry_offset(const Guid& id) const {
    for (size_t i = 0; i < items.size(); ++i)
      if (items[i].item_id == id) return metadata_offset + 32 + i * 32;
    ADD_FAILURE() << "no such item";
    return 0;
  }
};

// Where things are in the image at path.
void read_layout(const std::string& path, Layout& l) {
  auto d = open_ok(path);
  if (!d) return;
  Image& image = *image_of(*d);
  l.current = image.header_section().current;
  l.header = image.header();
  l.metadata_offset = image.metadata_region().file_offset;
  l.bat_offset = image.bat_region().file_offset;
  l.file_size = image.file_size();
  l.items = image.metadata().table;
}

// A qemu-made 16 MiB dynamic image with 1 MiB blocks and a log of log_mib MiB; blocks 0, 1 and 5 written.
std::string make_clean(const TempDir& dir, Layout& l, int log_mib = 1) {
  std::string path = dir.file("hostile.vhdx");
  run_ok(fmt::format("qemu-img create -q -f vhdx -o block_size=1M,log_size={}M {} 16M", log_mib, q(path)));
  run_ok("qemu-io -f vhdx -c 'write -P 0x61 0 1536k' -c 'write -P 0x62 5M 4k' " + q(path) + " >/dev/null");
  read_layout(path, l);
  return path;
}

void edit_header(const std::string& path, int index, const std::function<void(Header&)>& change) {
  Header h = parse_header(read_range(path, kHeaderOffsets[index], kHeaderSize));
  change(h);
  write_range(path, kHeaderOffsets[index], serialize_header(h));
}

void edit_region_tables(const std::string& path, const std::function<void(RegionTable&)>& change) {
  for (uint64_t at : kRegionTableOffsets) {
    RegionTable t = parse_region_table(read_range(path, at, kRegionTableSize));
    change(t);
    write_range(path, at, serialize_region_table(t));
  }
}

RegionEntry& region(RegionTable& t, const Guid& g) {
  for (auto& e : t.entries)
    if (e.guid == g) return e;
  ADD_FAILURE() << "no such region";
  return t.entries.front();
}

// A log entry to write: descriptors, in order; data descriptors carry a 4 KiB sector (filled with `fill`).
struct Desc {
  bool zero = false;
  uint64_t file_offset = 0;
  uint64_t length = 0;  // zero descriptors
  uint8_t fill = 0;     // data descriptors
};
struct EntrySpec {
  uint64_t sequence = 1;
  uint32_t tail = 0;     // log-relative
  uint32_t at = 0;       // log-relative place of the entry
  uint64_t flushed = 0;  // FlushedFileOffset (0: the file's size)
  uint64_t last = 0;     // LastFileOffset (0: the file's size)
  std::vector<Desc> descs;
  bool bad_checksum = false;
  uint32_t length_override = 0;  // EntryLength to claim (0: the real one)
};

Bytes build_entry(const EntrySpec& s, const Guid& log_guid, uint64_t file_size) {
  size_t data = 0;
  for (const Desc& d : s.descs) data += d.zero ? 0 : 1;
  uint64_t desc_sectors = log_descriptor_sectors(s.descs.size());
  Bytes entry((desc_sectors + data) * kLogSectorSize);
  LogEntryHeader h;
  h.entry_length = s.length_override ? s.length_override : static_cast<uint32_t>(entry.size());
  h.tail = s.tail;
  h.sequence_number = s.sequence;
  h.descriptor_count = static_cast<uint32_t>(s.descs.size());
  h.log_guid = log_guid;
  h.flushed_file_offset = s.flushed ? s.flushed : file_size;
  h.last_file_offset = s.last ? s.last : file_size;
  serialize_log_entry_header(h, entry);
  size_t di = 0, si = 0;
  for (const Desc& d : s.descs) {
    LogDescriptor desc;
    desc.kind = d.zero ? DescriptorKind::Zero : DescriptorKind::Data;
    desc.file_offset = d.file_offset;
    desc.zero_length = d.length;
    desc.sequence_number = s.sequence;
    if (!d.zero) {
      uint64_t fill8 = 0x0101010101010101ull * d.fill;
      desc.leading_bytes = fill8;
      desc.trailing_bytes = static_cast<uint32_t>(fill8);
      std::byte* sector = entry.data() + (desc_sectors + si++) * kLogSectorSize;
      std::memcpy(sector, "data", 4);
      store_le<uint32_t>(sector + 4, static_cast<uint32_t>(s.sequence >> 32));
      std::memset(sector + 8, d.fill, 4084);
      store_le<uint32_t>(sector + 4092, static_cast<uint32_t>(s.sequence));
    }
    serialize_log_descriptor(desc, std::span(entry).subspan(kLogEntryHeaderSize + di++ * kLogDescriptorSize));
  }
  uint32_t crc = crc32c(entry);
  store_le<uint32_t>(entry.data() + 4, s.bad_checksum ? crc ^ 1 : crc);
  return entry;
}

// Writes the entries into the log and names the log in the current header (a dirty log).
void write_log(const std::string& path, const Layout& l, const std::vector<EntrySpec>& entries) {
  Guid g = Guid::random();
  for (const EntrySpec& s : entries) write_range(path, l.header.log_offset + s.at, build_entry(s, g, l.file_size));
  edit_header(path, l.current, [&](Header& h) { h.log_guid = g; });
}

// A case on the clean image: damage(path, layout).
HostileCase on_clean(std::string name, std::function<void(const std::string&, const Layout&)> damage, Outcome outcome,
                     std::string phrase, int log_mib = 1) {
  return {std::move(name),
          [damage, log_mib](const TempDir& dir) {
            Layout l;
            std::string p = make_clean(dir, l, log_mib);
            damage(p, l);
            return p;
          },
          outcome, std::move(phrase)};
}

// One log entry with one descriptor.
HostileCase log_case(std::string name, Desc d, Outcome outcome, std::string phrase, uint64_t last = 0) {
  return on_clean(
      std::move(name),
      [d, last](const std::string& p, const Layout& l) {
        write_log(p, l, {{1, 0, 0, 0, last, {d}}});
      },
      outcome, std::move(phrase));
}

// parent.vhdx and child.vhdx (our writer; qemu makes no differencing VHDX): returns the child. Layout of the child.
std::string make_child(const TempDir& dir, Layout& l) {
  auto& env = io::Env::posix();
  auto parent = image::create_image(env, dir.file("parent.vhdx"),
                                    {disk::Format::Vhdx, disk::DiskType::Dynamic, 8 * kMiB, kMiB, std::nullopt});
  EXPECT_TRUE(parent);
  if (parent) {
    EXPECT_TRUE((*parent)->write(0, std::vector<std::byte>(4096, std::byte{1})));
  }
  parent = {};
  std::string path = dir.file("child.vhdx");
  auto c =
      image::create_image(env, path, {disk::Format::Vhdx, disk::DiskType::Differencing, 0, 0, dir.file("parent.vhdx")});
  EXPECT_TRUE(c);
  c = {};
  read_layout(path, l);
  return path;
}

// Where key/value entry i of the child's parent locator lies in the file, and the item's own offset.
uint64_t locator_item(const Layout& l) {
  for (const MetadataEntry& e : l.items)
    if (e.item_id == parent_locator_guid()) return l.metadata_offset + e.offset;
  ADD_FAILURE() << "no parent locator";
  return 0;
}
uint64_t locator_entry(const Layout& l, int i) {
  return locator_item(l) + kParentLocatorHeaderSize + i * kParentLocatorEntrySize;
}

HostileCase on_child(std::string name, std::function<void(const std::string&, const Layout&)> damage,
                     std::string phrase) {
  return {std::move(name),
          [damage](const TempDir& dir) {
            Layout l;
            std::string p = make_child(dir, l);
            damage(p, l);
            return p;
          },
          Outcome::Refused, std::move(phrase)};
}

std::vector<HostileCase> cases() {
  std::vector<HostileCase> v;
  // ---- The log: a replay is proven before it writes.
  for (uint64_t len : {2 * kMiB, uint64_t{1} << 40, ~uint64_t{0} & ~uint64_t{4095}})
    v.push_back(log_case(fmt::format("LogZeroOverflows_{}", len), {true, kNearTop, len}, Outcome::Refused,
                         "overflows 64 bits"));
  v.push_back(log_case("LogZeroPastLastFileOffset", {true, 16 * kMiB, 2048 * kMiB}, Outcome::Refused,
                       "past the entry's LastFileOffset"));
  v.push_back(on_clean(
      "LogZeroGrowsFileByTerabytes",
      [](const std::string& p, const Layout& l) {
        write_log(p, l, {{1, 0, 0, 0, l.file_size + (uint64_t{4} << 40), {{true, l.file_size, uint64_t{4} << 40}}}});
      },
      Outcome::Refused, "would grow the file"));
  v.push_back(log_case("LogLastFileOffsetAbsurd", {true, 16 * kMiB, 4096}, Outcome::Refused,
                       "larger than any VHDX file", uint64_t{1} << 62));
  v.push_back(
      log_case("LogDataOverflows", {false, 0xFFFFFFFFFFFFF000, 0, 0x11}, Outcome::Refused, "overflows 64 bits"));
  v.push_back(on_clean(
      "LogDataIntoLog",
      [](const std::string& p, const Layout& l) {
        write_log(p, l, {{1, 0, 0, 0, 0, {{false, l.header.log_offset + 8192, 0, 0x11}}}});
      },
      Outcome::Refused, "writes into the log itself"));
  v.push_back(on_clean(
      "LogZeroIntoLog",
      [](const std::string& p, const Layout& l) {
        write_log(p, l, {{1, 0, 0, 0, 0, {{true, l.header.log_offset, kMiB}}}});
      },
      Outcome::Refused, "writes into the log itself"));
  v.push_back(log_case("LogZeroIntoHeaderSection", {true, 512 * 1024, 8192}, Outcome::Refused, "header section"));
  v.push_back(log_case("LogDataPastLastFileOffset", {false, 64 * kMiB, 0, 0x11}, Outcome::Refused,
                       "past the entry's LastFileOffset"));
  v.push_back(on_clean(
      "LogFlushedPastEnd",
      [](const std::string& p, const Layout& l) {
        write_log(p, l, {{1, 0, 0, l.file_size + kMiB, l.file_size + kMiB, {{false, l.bat_offset, 0, 0}}}});
      },
      Outcome::Refused, "has been truncated"));
  v.push_back(on_clean(
      "LogSecondEntryOverflows",
      [](const std::string& p, const Layout& l) {
        // A sound tail entry, then the head that overflows: the whole sequence is refused before any write.
        write_log(p, l,
                  {{1, 0, 0, 0, 0, {{false, l.bat_offset, 0, 0}}}, {2, 0, 8192, 0, 0, {{true, kNearTop, 4 * kMiB}}}});
      },
      Outcome::Refused, "overflows 64 bits"));
  // A dirty log that is sound: replayed (in memory for reading, on disk for the compaction).
  v.push_back(on_clean(
      "LogSoundEmptyEntry",
      [](const std::string& p, const Layout& l) {
        // Rewrites the BAT sector as it is (a no-op replay) and zeros nothing.
        Bytes bat = read_range(p, l.bat_offset, 4096);
        (void)bat;
        write_log(p, l, {{1, 0, 0, 0, 0, {}}});
      },
      Outcome::ReadsNoQemu, ""));
  v.push_back(on_clean(
      "LogSoundZeroPastEnd",
      [](const std::string& p, const Layout& l) {
        // A zero descriptor past the end with LastFileOffset covering it: sound, and vhdkit writes nothing for it
        // (the file grows sparse). Kept at 64 MiB because qemu, the referee, writes its zeros in full.
        write_log(p, l, {{1, 0, 0, 0, l.file_size + 64 * kMiB, {{true, l.file_size, 64 * kMiB}}}});
      },
      Outcome::ReadsNoQemu, ""));
  // The scan is linear: every 4 KiB sector of an 8 MiB log starts with a sane entry header whose checksum fails.
  for (bool whole_log : {true, false})
    v.push_back(on_clean(
        whole_log ? "LogFakeHeadersEverySectorWholeLog" : "LogFakeHeadersEverySectorHalfLog",
        [whole_log](const std::string& p, const Layout& l) {
          std::vector<EntrySpec> entries;
          for (uint32_t at = 0; at < l.header.log_length; at += 4096) {
            EntrySpec s{at / 4096 + 1, 0, at, 0, 0, {}, true};
            s.length_override = whole_log ? l.header.log_length : l.header.log_length / 2;
            entries.push_back(s);
          }
          run_ok("cp --sparse=always " + q(p) + " " + q(std::filesystem::path(p).parent_path() / "original"));
          write_log(p, l, entries);
        },
        Outcome::Compacts, "", 8));
  for (auto& c : v)
    if (c.name.starts_with("LogFakeHeaders")) c.qemu_reads_original = true;
  // ---- Headers and regions: no wrapping offsets, no ambiguity.
  v.push_back(on_clean(
      "HeadersEqualSequenceDiffer",
      [](const std::string& p, const Layout& l) {
        Header cur = l.header;
        edit_header(p, 1 - l.current, [&](Header& h) {
          h = cur;
          h.log_guid = Guid::random();
        });
      },
      Outcome::Refused, "ambiguous"));
  v.push_back(on_clean(
      "HeadersEqualSequenceSame",
      [](const std::string& p, const Layout& l) {
        Header cur = l.header;
        edit_header(p, 1 - l.current, [&](Header& h) { h = cur; });
      },
      Outcome::Compacts, ""));
  for (uint64_t at : {kNearTop, uint64_t{1} << 63, ~uint64_t{0} - 1024 * kMiB + 1})
    v.push_back(on_clean(
        fmt::format("LogOffsetWraps_{:x}", at),
        [at](const std::string& p, const Layout&) {
          for (int i : {0, 1})
            edit_header(p, i, [&](Header& h) {
              h.log_offset = at / kMiB * kMiB;
              h.log_length = 2 * kMiB;
            });
        },
        Outcome::Refused, "past the end"));
  for (bool bat : {true, false})
    for (uint64_t at : {kNearTop, uint64_t{1} << 63})
      v.push_back(on_clean(
          fmt::format("{}RegionWraps_{:x}", bat ? "Bat" : "Metadata", at),
          [bat, at](const std::string& p, const Layout&) {
            edit_region_tables(p, [&](RegionTable& t) {
              RegionEntry& r = region(t, bat ? bat_region_guid() : metadata_region_guid());
              r.file_offset = at;
              r.length = 2 * kMiB;
            });
          },
          Outcome::Refused, "past the end"));
  // ---- Metadata: duplicates and overlaps refused, items read in pieces.
  for (auto [name, item] : {std::pair{"VirtualDiskSize", &virtual_disk_size_guid},
                            {"FileParameters", &file_parameters_guid},
                            {"LogicalSectorSize", &logical_sector_size_guid}})
    v.push_back(on_clean(
        fmt::format("MetadataDuplicate{}", name),
        [item](const std::string& p, const Layout& l) {
          // A copy of the item's entry, pointing at its own value (a smaller size, another block size...).
          Bytes e = read_range(p, l.item_entry_offset(item()), 32);
          uint64_t at = l.metadata_offset + 32 + l.items.size() * 32;
          store_le<uint32_t>(e.data() + 16, 60 * 4096);
          write_range(p, at, e);
          put_le64(p, l.metadata_offset + 60 * 4096, 4 * kMiB);
          put_le16(p, l.metadata_offset + 10, static_cast<uint16_t>(l.items.size() + 1));
        },
        Outcome::Refused, "appears twice"));
  v.push_back(on_clean(
      "MetadataItemsOverlap",
      [](const std::string& p, const Layout& l) {
        Bytes fp = read_range(p, l.item_entry_offset(file_parameters_guid()), 32);
        uint32_t fp_off = load_le<uint32_t>(fp.data() + 16);
        put_le32(p, l.item_entry_offset(virtual_disk_size_guid()) + 16, fp_off + 4);
      },
      Outcome::Refused, "overlaps item"));
  v.push_back(on_clean(
      "MetadataItemTooLong",
      [](const std::string& p, const Layout& l) {
        put_le32(p, l.item_entry_offset(page83_data_guid()) + 20, 0xFFFFF000);
      },
      Outcome::Refused, "Page 83 Data"));
  v.push_back(on_clean(
      "MetadataItemOffsetWraps32",
      [](const std::string& p, const Layout& l) {
        put_le32(p, l.item_entry_offset(virtual_disk_size_guid()) + 16, 0xFFFFFFF8);
        put_le32(p, l.item_entry_offset(virtual_disk_size_guid()) + 20, 16);
      },
      Outcome::Refused, "lies outside"));
  // ---- BAT: no wrapping offsets, bounded complaints.
  for (uint64_t entry : {(~uint64_t{0} & ~uint64_t{7}) | 6, kNearTop | 6, (uint64_t{1} << 63) | 6})
    v.push_back(on_clean(
        fmt::format("BatEntryHuge_{:x}", entry),
        [entry](const std::string& p, const Layout& l) { put_le64(p, l.bat_offset + 16, entry); }, Outcome::Refused,
        "BAT entry 2"));
  v.push_back(on_clean(
      "BatEveryEntryReserved",
      [](const std::string& p, const Layout& l) {
        for (int i = 0; i < 16; ++i) put_le64(p, l.bat_offset + 8 * i, 4);
      },
      Outcome::Refused, "reserved state value 4"));
  v.push_back(on_clean(
      "BatEntryInLog",
      [](const std::string& p, const Layout& l) {
        put_le64(p, l.bat_offset + 16, make_bat_entry(6, l.header.log_offset));
      },
      Outcome::Refused, "overlaps the VHDX structures"));
  v.push_back(on_clean(
      "BatEntryInBat",
      [](const std::string& p, const Layout& l) { put_le64(p, l.bat_offset + 16, make_bat_entry(6, l.bat_offset)); },
      Outcome::Refused, "overlaps"));
  // ---- Overlaps (every structure against every other it must not share a byte with, [MS-VHDX] 2.1): new in the
  // second round of issue 14.
  v.push_back(on_clean(
      "BatEntriesShareABlock",
      [](const std::string& p, const Layout& l) {
        put_le64(p, l.bat_offset + 5 * 8, load_le<uint64_t>(read_range(p, l.bat_offset, 8).data()));
      },
      Outcome::Refused, "overlaps BAT entry 0"));
  v.push_back(on_clean(
      "BatEntryInMetadata",
      [](const std::string& p, const Layout& l) {
        put_le64(p, l.bat_offset + 16, make_bat_entry(6, l.metadata_offset));
      },
      Outcome::Refused, "overlaps the VHDX structures"));
  v.push_back(on_clean(
      "BatEntryInHeaderSection",
      [](const std::string& p, const Layout& l) { put_le64(p, l.bat_offset + 16, make_bat_entry(6, 0)); },
      Outcome::Refused, "points into the header section"));
  for (bool bat : {true, false})
    v.push_back(on_clean(
        bat ? "LogOverlapsBat" : "LogOverlapsMetadata",
        [bat](const std::string& p, const Layout& l) {
          for (int i : {0, 1})
            edit_header(p, i, [&](Header& h) {
              h.log_offset = bat ? l.bat_offset : l.metadata_offset;
              h.log_length = kMiB;
            });
        },
        Outcome::Refused, "overlaps"));
  v.push_back(on_clean(
      "MetadataRegionOverlapsBat",
      [](const std::string& p, const Layout& l) {
        edit_region_tables(p, [&](RegionTable& t) { region(t, metadata_region_guid()).file_offset = l.bat_offset; });
      },
      Outcome::Refused, "overlaps"));
  v.push_back(on_clean(
      "BatRegionInHeaderSection",
      [](const std::string& p, const Layout&) {
        edit_region_tables(p, [&](RegionTable& t) { region(t, bat_region_guid()).file_offset = 0; });
      },
      Outcome::Refused, "overlaps"));
  v.push_back(on_clean(
      "MetadataItemInTable",
      [](const std::string& p, const Layout& l) {
        put_le32(p, l.item_entry_offset(virtual_disk_size_guid()) + 16, 32);
      },
      Outcome::Refused, "lies outside the region's item area"));
  v.push_back(on_clean(
      "MetadataItemAcrossRegionEnd",
      [](const std::string& p, const Layout& l) {
        put_le32(p, l.item_entry_offset(virtual_disk_size_guid()) + 16, static_cast<uint32_t>(kMiB - 4));
      },
      Outcome::Refused, "lies outside the region's item area"));
  // The parent locator's keys and values (a differencing child of ours).
  v.push_back(on_child(
      "LocatorKeyInEntryTable", [](const std::string& p, const Layout& l) { put_le32(p, locator_entry(l, 0), 20); },
      "lies in the locator's header or entry table"));
  v.push_back(on_child(
      "LocatorValuesOverlap",
      [](const std::string& p, const Layout& l) {
        Bytes e0 = read_range(p, locator_entry(l, 0), kParentLocatorEntrySize);
        put_le32(p, locator_entry(l, 1) + 4, load_le<uint32_t>(e0.data() + 4));
        put_le16(p, locator_entry(l, 1) + 10, load_le<uint16_t>(e0.data() + 10));
      },
      "overlaps the value of entry"));
  v.push_back(on_child(
      "LocatorKeyTwice",
      [](const std::string& p, const Layout& l) {
        // The key of the longest-named entry rewritten (in its own bytes) as entry 0's key.
        Bytes e0 = read_range(p, locator_entry(l, 0), kParentLocatorEntrySize);
        uint16_t len0 = load_le<uint16_t>(e0.data() + 8);
        Bytes key0 = read_range(p, locator_item(l) + load_le<uint32_t>(e0.data()), len0);
        for (int i = 1; i < 3; ++i) {
          Bytes e = read_range(p, locator_entry(l, i), kParentLocatorEntrySize);
          if (load_le<uint16_t>(e.data() + 8) < len0) continue;
          write_range(p, locator_item(l) + load_le<uint32_t>(e.data()), key0);
          put_le16(p, locator_entry(l, i) + 8, len0);
          return;
        }
        ADD_FAILURE() << "no key long enough";
      },
      "appears twice"));
  // ---- Memory: a BAT whose payload entries differ in more pages than vhdkit holds (64 TiB, 1 MiB blocks; one
  // entry in each of 4100 pages of 4096 set to ZERO, about 16 MiB written) is refused with exit 8, unchanged.
  v.push_back({"BatTooManyDistinctPages",
               [](const TempDir& dir) {
                 std::string path = dir.file("distinct.vhdx");
                 run_ok(fmt::format("{} create --format vhdx --size 64T --block-size 1M {} >/dev/null", q(vhdkit_bin()),
                                    q(path)));
                 auto d = open_ok(path);
                 if (!d) return path;
                 const Image& image = *image_of(*d);
                 std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
                 for (uint64_t page = 0; page < 4100; ++page) {
                   Bytes e(8);
                   store_le<uint64_t>(e.data(), make_bat_entry(2, 0));
                   f.seekp(static_cast<std::streamoff>(
                       image.bat_entry_offset(image.geometry().payload_index(page * BatTable::kPageEntries))));
                   f.write(reinterpret_cast<const char*>(e.data()), 8);
                 }
                 EXPECT_TRUE(f.good());
                 return path;
               },
               Outcome::Refused, "more distinct entries than the 128 MiB"});
  return v;
}

class VhdxHostile : public ::testing::TestWithParam<HostileCase> {};

TEST_P(VhdxHostile, EndsInTimeAndNeverCostsData) { run_hostile_case(GetParam(), "vhdx"); }

INSTANTIATE_TEST_SUITE_P(Cases, VhdxHostile, ::testing::ValuesIn(cases()),
                         [](const auto& param_info) { return param_info.param.name; });

// The largest disk with the smallest blocks: 64 TiB of 1 MiB blocks, 64 Mi BAT entries (512 MiB of table, held in
// pages), data in three blocks and zeros in one. Every command within the limits, the compaction releases the
// zero block and keeps the data (qemu-io reads the patterns back), and qemu-img check agrees afterwards.
TEST(VhdxHostileLimits, SixtyFourTiBOfOneMiBBlocks) {
  TempDir dir;
  std::string path = dir.file("big.vhdx");
  const std::string last = std::to_string(64 * TiB - kMiB);
  run_ok(fmt::format("{} create --format vhdx --size 64T --block-size 1M {} >/dev/null", q(vhdkit_bin()), q(path)));
  run_ok("qemu-io -f vhdx -c 'write -P 0x33 0 1M' -c 'write -P 0 2M 1M' -c 'write -P 0x44 40T 1M' -c 'write -P 0x55 " +
         last + " 1M' " + q(path) + " >/dev/null");
  for (std::string command : {"info", "check", "map", "compact --dry-run", "compact"}) {
    // Held to 10 s of CPU time: on the shared 2-core test machine the elapsed time of this one (64 Mi entries
    // walked a few times) varies from 3 to 15 s with the load; 30 s elapsed at most.
    vhdkit::testing::Measured m = measure_vhdkit(command + " " + q(path));
    EXPECT_EQ(m.status, 0) << command << ": " << m.err;
    EXPECT_LT(m.rss_kib, 256u * 1024) << command;
    EXPECT_LT(m.cpu_seconds, 10) << command;
    EXPECT_LT(m.seconds, 30) << command;
    std::cout << fmt::format("[ 64 TiB / 1 MiB blocks: {:<18} {:5.2f} s ({:5.2f} s CPU) {:7} KiB ]\n", command,
                             m.seconds, m.cpu_seconds, m.rss_kib);
  }
  std::string read = run_ok(
      "qemu-io -f vhdx -c 'read -P 0x33 0 1M' -c 'read -P 0 2M 1M' -c 'read -P 0x44 40T 1M' "
      "-c 'read -P 0x55 " +
      last + " 1M' " + q(path));
  EXPECT_EQ(read.find("verification failed"), std::string::npos) << read;
  run_ok("qemu-img check -q -f vhdx " + q(path));
  auto d = open_ok(path);
  ASSERT_TRUE(d);
  EXPECT_EQ(image_of(*d)->block(2).payload_state(), PayloadState::NotPresent) << "the zero block was not released";
}

}  // namespace
}  // namespace vhdkit::vhdx::testing
