// SPDX-License-Identifier: Apache-2.0
// Images for the service and CLI tests, beyond tests/compact/images.h: one big enough that its
// compaction is still running when the test acts on it, without using much disk, and a differencing disk
// whose parent locator names its parent with bytes that are not UTF-8.
#pragma once

#include <string>

#include <algorithm>
#include <cstring>

#include "core/bytes.h"
#include "hostile.h"
#include "images.h"
#include "vhd/vhd_format.h"

namespace vhdkit::testing {

// A dynamic VHD of `blocks` 2 MiB blocks, the first random data and the rest zeros, every block allocated:
// compaction scans all of it (taking a second or more for 256 blocks). The zeros are stored: the zero scan
// skips holes in the host file (issue 12), so an image with holes would not be slow.
inline std::string make_slow_vhd(const TempDir& dir, const std::string& name, size_t blocks) {
  return make_dynamic_vhd(dir, name, "D" + std::string(blocks - 1, 'Z'));
}

// The same kind of image made without writing its data: a dynamic VHD of `blocks` 2 MiB blocks, every one
// allocated (its BAT entry set, its sector bitmap all present) over zeros written with dd (not holes: the zero
// scan skips those); compaction and state scans read every byte of it.
inline std::string make_sparse_allocated_vhd(const TempDir& dir, const std::string& name, size_t blocks) {
  std::string vhd = dir.file(name);
  run_ok("qemu-img create -q -f vpc -o subformat=dynamic " + q(vhd) + " " + std::to_string(blocks * 2 * kMiB));
  auto footer = read_range(vhd, file_size(vhd) - vhd::kFooterSize, vhd::kFooterSize);
  uint64_t header = load_be<uint64_t>(footer.data() + 16);
  auto raw = read_range(vhd, header, vhd::kDynamicHeaderSize);
  uint64_t bat = load_be<uint64_t>(raw.data() + 16);
  uint32_t entries = load_be<uint32_t>(raw.data() + 28);
  uint64_t next = file_size(vhd) - vhd::kFooterSize;  // data goes where the footer was
  std::vector<std::byte> table(size_t{entries} * 4);
  const std::vector<std::byte> bitmap(512, std::byte{0xff});
  const uint64_t first = next;
  for (uint32_t i = 0; i < entries; ++i) {
    store_be<uint32_t>(table.data() + 4 * i, i < blocks ? static_cast<uint32_t>(next / 512) : 0xffffffffu);
    if (i < blocks) next += 512 + 2 * kMiB;
  }
  run_ok("dd if=/dev/zero of=" + q(vhd) + " bs=1M iflag=count_bytes oflag=seek_bytes conv=notrunc status=none seek=" +
         std::to_string(first + 512) + " count=" + std::to_string(next - first - 512));
  for (uint64_t at = first; at < next; at += 512 + 2 * kMiB) write_range(vhd, at, bitmap);
  write_range(vhd, bat, table);
  write_range(vhd, next, footer);
  return vhd;
}

// A file name that is not UTF-8 (0xFF never occurs in UTF-8), as a Linux host allows.
inline const std::string kNotUtf8Name = "parent-\xff\xfe.vhd";

struct ChildAndParent {
  std::string child, parent;
};

// A differencing VHD (its first block written, so compaction compares it with the parent) whose only
// usable parent locator is a MacX file URL naming the parent as `dir/parent-%FF%FE.vhd`, where the parent
// is: the text that reaches messages and job records holds the raw bytes 0xFF 0xFE.
inline ChildAndParent make_child_with_non_utf8_parent(const TempDir& dir, const std::string& child_name) {
  std::string parent = make_dynamic_vhd(dir, child_name + ".parent.vhd", "DD");
  std::string child = dir.file(child_name);
  run_ok(q(vhdkit_bin()) + " create --parent " + q(parent) + " " + q(child));
  run_ok(q(vhdkit_bin()) + " write " + q(child) + " 0 --pattern 0xab --length 2M");
  std::string moved = dir.file(child_name + "." + kNotUtf8Name);
  run_ok("mv " + q(parent) + " " + q(moved));
  // Dynamic header: at the footer copy's Data Offset; its locator entries from byte 576, 24 bytes each.
  auto footer = read_range(child, 0, vhd::kFooterSize);
  uint64_t header = load_be<uint64_t>(footer.data() + 16);
  auto raw = read_range(child, header, vhd::kDynamicHeaderSize);
  std::string url = "file://" + moved.substr(0, moved.size() - kNotUtf8Name.size()) + "parent-%FF%FE.vhd";
  bool placed = false;
  for (size_t i = 0; i < vhd::kParentLocatorCount; ++i) {
    std::byte* entry = raw.data() + 576 + 24 * i;
    uint32_t code = load_be<uint32_t>(entry);
    if (code == 0) continue;
    if (placed) {  // every other locator names nothing
      std::fill(entry, entry + 24, std::byte{0});
      continue;
    }
    placed = true;
    uint64_t data = load_be<uint64_t>(entry + 16);
    store_be<uint32_t>(entry, vhd::kPlatformMacX);
    store_be<uint32_t>(entry + 8, static_cast<uint32_t>(url.size()));
    std::vector<std::byte> text(512, std::byte{0});
    std::memcpy(text.data(), url.data(), url.size());
    write_range(child, data, text);
  }
  vhd::seal(raw, vhd::kHeaderChecksumOffset);
  write_range(child, header, raw);
  return {child, moved};
}

}  // namespace vhdkit::testing
