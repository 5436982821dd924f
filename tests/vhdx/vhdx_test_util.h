// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the VHDX tests: opening through open_image(), dumping a disk's virtual content to a
// sparse raw file (so that qemu-img compare can referee it), and BAT state counts.
#pragma once

#include <map>
#include <memory>
#include <stdexcept>
#include <string>

#include "disk/virtual_disk.h"
#include "image/open_image.h"
#include "io/file.h"
#include "test_support.h"
#include "vhdx/image.h"
#include "vhdx/vhdx_disk.h"

namespace vhdkit::vhdx::testing {

using namespace vhdkit::testing;

// open_ok(path) and open_ok(path, options) are test_support's; this one says access and parents.
using vhdkit::testing::open_ok;
inline std::unique_ptr<disk::VirtualDisk> open_ok(const std::string& path, io::Access access,
                                                  disk::ParentPolicy parents = disk::ParentPolicy::Require) {
  disk::OpenOptions o;
  o.access = access;
  o.parents = parents;
  return open_ok(path, o);
}

// The vhdx::Image behind a disk open_image() opened. A disk that is no VHDX (a damaged file opened as raw)
// throws: the test fails saying so, instead of crashing on a null pointer.
inline Image& vhdx_of(disk::VirtualDisk& d) {
  Image* image = image_of(d);
  if (!image) throw std::runtime_error("the image did not open as a VHDX");
  return *image;
}

inline Result<std::unique_ptr<disk::VirtualDisk>> open_result(const std::string& path,
                                                              io::Access access = io::Access::ReadOnly) {
  disk::OpenOptions o;
  o.access = access;
  return image::open_image(io::Env::posix(), path, o);
}

// Writes the disk's virtual content to a raw file, reading every range the map does not call zero.
inline void dump_raw(disk::VirtualDisk& d, const std::string& out) {
  std::string create = "truncate -s " + std::to_string(d.virtual_size()) + " " + q(out);
  ASSERT_EQ(run(create).status, 0);
  auto m = d.map();
  ASSERT_TRUE(m.has_value()) << m.error().what();
  auto f = io::Env::posix().open(out, io::Access::ReadWrite);
  ASSERT_TRUE(f.has_value());
  std::vector<std::byte> buf(4 << 20);
  for (const disk::MapExtent& e : *m) {
    if (e.zero && !e.data) continue;
    for (uint64_t done = 0; done < e.length;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), e.length - done));
      auto r = d.read(e.start + done, std::span(buf).first(n));
      ASSERT_TRUE(r.has_value()) << r.error().what();
      ASSERT_TRUE((*f)->write_at(e.start + done, std::span(buf).first(n)).has_value());
      done += n;
    }
  }
}

// Our read of the whole disk equals the raw file (compared by qemu-img compare, which also checks size).
inline void expect_same_as_raw(disk::VirtualDisk& d, const std::string& raw, const TempDir& dir) {
  std::string ours = dir.file("ours.raw");
  std::filesystem::remove(ours);
  dump_raw(d, ours);
  RunResult r = run("qemu-img compare -f raw -F raw " + q(ours) + " " + q(raw));
  EXPECT_EQ(r.status, 0) << r.out << r.err;
}

inline std::map<std::string, uint64_t> state_counts(const Image& image) {
  std::map<std::string, uint64_t> counts;
  for (uint64_t b = 0; b < image.geometry().payload_blocks; ++b) counts[payload_state_name(image.block(b).state)]++;
  return counts;
}

}  // namespace vhdkit::vhdx::testing
