// SPDX-License-Identifier: Apache-2.0
// Malformed VHDX files: each variant is refused with an error naming the problem (or, where the spec has a
// second copy, opens from the good copy), read-only and read-write alike, and the file is left byte-for-byte
// unchanged (sha256).
#include <fmt/format.h>

#include <functional>

#include "image/open_image.h"
#include "vhdx/format.h"
#include "vhdx_test_util.h"

namespace vhdkit::vhdx::testing {
namespace {

constexpr uint64_t kMiB = 1 << 20;

// Where things are in the clean image the variants are made from.
struct Layout {
  int current_header = 0;
  uint64_t metadata_offset = 0, bat_offset = 0, log_offset = 0, file_size = 0;
  std::vector<MetadataEntry> items;
  uint64_t item_offset(const Guid& id) const {
    for (const auto& e : items)
      if (e.item_id == id) return metadata_offset + e.offset;
    ADD_FAILURE() << "no such metadata item";
    return 0;
  }
  uint64_t item_entry_offset(const Guid& id) const {
    for (size_t i = 0; i < items.size(); ++i)
      if (items[i].item_id == id) return metadata_offset + 32 + i * 32;
    ADD_FAILURE() << "no such metadata item";
    return 0;
  }
};

Bytes read_at(const std::string& path, uint64_t offset, size_t n) {
  auto f = io::Env::posix().open(path, io::Access::ReadOnly);
  Bytes b(n);
  EXPECT_TRUE(f && (*f)->read_at(offset, b).has_value());
  return b;
}

void write_at(const std::string& path, uint64_t offset, const Bytes& b) {
  auto f = io::Env::posix().open(path, io::Access::ReadWrite);
  ASSERT_TRUE(f && (*f)->write_at(offset, b).has_value());
}

void put_u64(const std::string& path, uint64_t offset, uint64_t v) {
  Bytes b(8);
  store_le<uint64_t>(b.data(), v);
  write_at(path, offset, b);
}
void put_u32(const std::string& path, uint64_t offset, uint32_t v) {
  Bytes b(4);
  store_le<uint32_t>(b.data(), v);
  write_at(path, offset, b);
}

// Rewrites a header with a valid checksum after changing it.
void edit_header(const std::string& path, int index, const std::function<void(Header&)>& change) {
  Header h = parse_header(read_at(path, kHeaderOffsets[index], kHeaderSize));
  change(h);
  write_at(path, kHeaderOffsets[index], serialize_header(h));
}

void edit_region_tables(const std::string& path, const std::function<void(RegionTable&)>& change) {
  for (uint64_t at : kRegionTableOffsets) {
    RegionTable t = parse_region_table(read_at(path, at, kRegionTableSize));
    change(t);
    write_at(path, at, serialize_region_table(t));
  }
}

void flip_byte(const std::string& path, uint64_t offset) {
  Bytes b = read_at(path, offset, 1);
  b[0] ^= std::byte{0x5a};
  write_at(path, offset, b);
}

RegionEntry* find_region(RegionTable& t, const Guid& g) {
  for (auto& e : t.entries)
    if (e.guid == g) return &e;
  return nullptr;
}

struct Variant {
  const char* name;
  std::function<void(const std::string& path, const Layout& l)> damage;
  const char* error;  // a phrase the error must contain; nullptr: must open from the other copy
};

class VhdxMalformed : public ::testing::TestWithParam<Variant> {};

// A qemu-made 16 MiB dynamic image with 1 MiB blocks, blocks 0, 1 and 5 written.
std::string make_clean(const TempDir& dir, Layout& l) {
  std::string path = dir.file("clean.vhdx");
  run_ok("qemu-img create -f vhdx -o block_size=1M,log_size=1M " + q(path) + " 16M");
  run_ok("qemu-io -c 'write -P 0x61 0 1536k' -c 'write -P 0x62 5M 4k' " + q(path));
  auto d = open_ok(path);
  Image& image = *image_of(*d);
  l.current_header = image.header_section().current;
  l.metadata_offset = image.metadata_region().file_offset;
  l.bat_offset = image.bat_region().file_offset;
  l.log_offset = image.header().log_offset;
  l.file_size = image.file_size();
  l.items = image.metadata().table;
  return path;
}

TEST_P(VhdxMalformed, IsRefusedByNameAndLeftUnchanged) {
  const Variant& v = GetParam();
  TempDir dir;
  Layout l;
  std::string path = make_clean(dir, l);
  v.damage(path, l);
  std::string before = sha256(path);
  for (io::Access access : {io::Access::ReadOnly, io::Access::ReadWrite}) {
    disk::OpenOptions o;
    o.access = access;
    o.format = disk::Format::Vhdx;
    auto d = image::open_image(io::Env::posix(), path, o);
    if (v.error) {
      ASSERT_FALSE(d.has_value()) << v.name << " opened";
      EXPECT_NE(d.error().message().find(v.error), std::string::npos)
          << "expected \"" << v.error << "\" in: " << d.error().what();
      EXPECT_EQ(d.error().path(), path);
    } else {
      ASSERT_TRUE(d.has_value()) << d.error().what();
      std::vector<std::byte> buf(4096);
      ASSERT_TRUE((*d)->read(5 * kMiB, buf).has_value());
      EXPECT_EQ(buf[0], std::byte{0x62});
      if (access == io::Access::ReadOnly) {
        EXPECT_FALSE((*d)->check().empty());  // it names the bad copy
      }
      break;  // read-write repairs the bad copy on its first update: only the read-only open must not write
    }
    EXPECT_EQ(sha256(path), before) << "access " << static_cast<int>(access);
  }
  EXPECT_EQ(sha256(path), before);
}

const Variant kVariants[] = {
    {"FileIdentifier", [](auto& p, auto&) { write_at(p, 0, Bytes(8)); }, "not a VHDX file"},
    {"CurrentHeaderChecksum", [](auto& p, auto& l) { flip_byte(p, kHeaderOffsets[l.current_header] + 100); }, nullptr},
    {"OtherHeaderChecksum", [](auto& p, auto& l) { flip_byte(p, kHeaderOffsets[1 - l.current_header] + 100); },
     nullptr},
    {"BothHeaderChecksums",
     [](auto& p, auto&) {
       flip_byte(p, kHeaderOffsets[0] + 100);
       flip_byte(p, kHeaderOffsets[1] + 100);
     },
     "neither VHDX header is valid"},
    {"BothHeaderSignatures",
     [](auto& p, auto&) {
       write_at(p, kHeaderOffsets[0], Bytes(4));
       write_at(p, kHeaderOffsets[1], Bytes(4));
     },
     "no \"head\" signature"},
    {"HeaderVersion",
     [](auto& p, auto&) {
       for (int i : {0, 1}) edit_header(p, i, [](Header& h) { h.version = 2; });
     },
     "Version is 2"},
    {"HeaderLogVersion",
     [](auto& p, auto&) {
       for (int i : {0, 1}) edit_header(p, i, [](Header& h) { h.log_version = 1; });
     },
     "LogVersion is 1"},
    {"HeaderLogUnaligned",
     [](auto& p, auto&) {
       for (int i : {0, 1}) edit_header(p, i, [](Header& h) { h.log_offset += 4096; });
     },
     "not 1 MiB aligned"},
    {"HeaderLogPastEnd",
     [](auto& p, auto&) {
       for (int i : {0, 1}) edit_header(p, i, [](Header& h) { h.log_offset = 1024 * kMiB; });
     },
     "past the end"},
    {"FirstRegionTableChecksum", [](auto& p, auto&) { flip_byte(p, kRegionTableOffsets[0] + 40); }, nullptr},
    {"BothRegionTableChecksums",
     [](auto& p, auto&) {
       flip_byte(p, kRegionTableOffsets[0] + 40);
       flip_byte(p, kRegionTableOffsets[1] + 40);
     },
     "neither region table is valid"},
    {"UnknownRequiredRegion",
     [](auto& p, auto&) {
       edit_region_tables(p, [](RegionTable& t) { t.entries.push_back({Guid::random(), 64 * kMiB, 1 << 20, true}); });
     },
     "marked required"},
    {"BatRegionMissing",
     [](auto& p, auto&) {
       edit_region_tables(
           p, [](RegionTable& t) { std::erase_if(t.entries, [](auto& e) { return e.guid == bat_region_guid(); }); });
     },
     "BAT region is missing"},
    {"RegionsOverlap",
     [](auto& p, auto&) {
       edit_region_tables(p, [](RegionTable& t) {
         find_region(t, bat_region_guid())->file_offset = find_region(t, metadata_region_guid())->file_offset;
       });
     },
     "overlaps"},
    {"RegionPastEnd",
     [](auto& p, auto&) {
       edit_region_tables(p, [](RegionTable& t) { find_region(t, bat_region_guid())->file_offset = 4096 * kMiB; });
     },
     "past the end"},
    {"MetadataSignature", [](auto& p, auto& l) { write_at(p, l.metadata_offset, Bytes(8)); },
     "no \"metadata\" signature"},
    {"BlockSizeNotPowerOfTwo", [](auto& p, auto& l) { put_u32(p, l.item_offset(file_parameters_guid()), 3 << 20); },
     "BlockSize 3145728"},
    {"BlockSizeTooBig", [](auto& p, auto& l) { put_u32(p, l.item_offset(file_parameters_guid()), 512u << 20); },
     "BlockSize 536870912"},
    {"BlockSizeTooSmall", [](auto& p, auto& l) { put_u32(p, l.item_offset(file_parameters_guid()), 512 << 10); },
     "BlockSize 524288"},
    {"LogicalSectorSize", [](auto& p, auto& l) { put_u32(p, l.item_offset(logical_sector_size_guid()), 1024); },
     "Logical Sector Size is 1024"},
    {"PhysicalSectorSize", [](auto& p, auto& l) { put_u32(p, l.item_offset(physical_sector_size_guid()), 0); },
     "Physical Sector Size is 0"},
    {"VirtualSizeAbsurd",
     [](auto& p, auto& l) { put_u64(p, l.item_offset(virtual_disk_size_guid()), uint64_t{1} << 60); },
     "Virtual Disk Size 1152921504606846976"},
    {"VirtualSizeZero", [](auto& p, auto& l) { put_u64(p, l.item_offset(virtual_disk_size_guid()), 0); },
     "Virtual Disk Size 0"},
    {"VirtualSizeOutgrowsBat",
     [](auto& p, auto& l) { put_u64(p, l.item_offset(virtual_disk_size_guid()), uint64_t{1} << 40); },
     "the BAT region is"},
    {"RequiredItemMissing",
     [](auto& p, auto& l) {
       // Renames the Virtual Disk Size item to an unknown, optional one.
       uint64_t at = l.item_entry_offset(virtual_disk_size_guid());
       Guid g = Guid::random();
       write_at(p, at, Bytes(g.bytes.begin(), g.bytes.end()));
       put_u32(p, at + 24, 0);
     },
     "required item Virtual Disk Size is missing"},
    {"UnknownRequiredItem",
     [](auto& p, auto& l) {
       uint64_t at = l.metadata_offset + 32 + l.items.size() * 32;
       Guid g = Guid::random();
       write_at(p, at, Bytes(g.bytes.begin(), g.bytes.end()));
       put_u32(p, at + 16, 64 * 1024);
       put_u32(p, at + 20, 8);
       put_u32(p, at + 24, 4);  // IsRequired
       Bytes count(2);
       store_le<uint16_t>(count.data(), static_cast<uint16_t>(l.items.size() + 1));
       write_at(p, l.metadata_offset + 10, count);
     },
     "marked required but is not one this program knows"},
    {"BatEntryPastEnd", [](auto& p, auto& l) { put_u64(p, l.bat_offset + 8, make_bat_entry(6, 4096 * kMiB)); },
     "BAT entry 1 points past the end of the file"},
    {"BatEntriesOverlap",
     [](auto& p, auto& l) {
       Bytes first = read_at(p, l.bat_offset, 8);
       write_at(p, l.bat_offset + 8, first);
     },
     "overlaps BAT entry"},
    {"BatEntryInMetadata", [](auto& p, auto& l) { put_u64(p, l.bat_offset, make_bat_entry(6, l.metadata_offset)); },
     "overlaps the VHDX structures"},
    {"BatEntryInHeaderSection", [](auto& p, auto& l) { put_u64(p, l.bat_offset, make_bat_entry(6, 0)); },
     "points into the header section"},
    {"BatReservedState", [](auto& p, auto& l) { put_u64(p, l.bat_offset + 16, 4); }, "reserved state value 4"},
    {"PartiallyPresentWithoutParent",
     [](auto& p, auto& l) {
       Bytes e = read_at(p, l.bat_offset, 8);
       put_u64(p, l.bat_offset, (load_le<uint64_t>(e.data()) & ~uint64_t{7}) | 7);
     },
     "PARTIALLY_PRESENT in a disk without a parent"},
};

INSTANTIATE_TEST_SUITE_P(Variants, VhdxMalformed, ::testing::ValuesIn(kVariants),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

}  // namespace
}  // namespace vhdkit::vhdx::testing
