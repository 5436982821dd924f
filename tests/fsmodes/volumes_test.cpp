// SPDX-License-Identifier: Apache-2.0
// Full mode beside what it cannot read, and where it must not reclaim: swap, LVM and unknown partitions beside
// ext4; file systems kept whole (dirty journal, error state, damaged group descriptor); the parent rule (32775)
// and a differencing child judged by its own file system; the VHDX DataWriteGuid.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "compact/compact.h"
#include "compact_checks.h"
#include "guest_disk.h"
#include "image/open_image.h"
#include "service/engine.h"
#include "service/image_state.h"
#include "service/job_json.h"
#include "vhdx/vhdx_disk.h"

namespace vhdkit::testing {
namespace {

using compact::Mode;
using compact::Options;
using compact::Report;

constexpr uint64_t kSector = 512;

const compact::VolumeReport* volume_at(const Report& r, uint64_t offset) {
  for (const auto& v : r.volumes)
    if (v.offset == offset) return &v;
  ADD_FAILURE() << "no volume at " << offset;
  return nullptr;
}

bool all_zero(const std::vector<std::byte>& b) {
  return std::all_of(b.begin(), b.end(), [](std::byte x) { return x == std::byte{0}; });
}

class FsModesVolumes : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* tool : {"mke2fs", "debugfs", "e2fsck", "sfdisk", "mkswap", "qemu-img", "vhdiinfo"})
      if (run("command -v " + std::string(tool) + " >/dev/null").status != 0) GTEST_FAIL() << tool << " is missing";
    files_ = make_guest_files(dir_, 11);
  }
  TempDir dir_;
  GuestFiles files_;
};

// GPT: ext4 (1 MiB, 24 MiB), swap (25 MiB, 8 MiB), LVM (33 MiB, 4 MiB), an unknown type (37 MiB, 4 MiB), all
// full of data. Full releases the swap area's blocks; the LVM and unknown partitions keep every byte.
TEST_F(FsModesVolumes, SwapIsReclaimedLvmAndUnknownKeepEveryByte) {
  std::string raw = make_partitioned(dir_, "disk.raw", 42,
                                     "label: gpt\n"
                                     "start=2048, size=49152, type=L\n"
                                     "start=51200, size=16384, type=S\n"
                                     "start=67584, size=8192, type=V\n"
                                     "start=75776, size=8192, type=0FC63DAF-8483-4772-8E79-3D69D8477DE5\n");
  // The fourth is made unknown after sfdisk (it knows every shortcut): a GUID nobody uses.
  run_ok("sfdisk -q --part-type " + q(raw) + " 4 4F2B3C1D-0A9E-4B7C-8D6E-5F4A3B2C1D0E 2>&1");
  place(make_ext(dir_, "ext4", "-t ext4", files_, 24), raw, kMiB);
  std::string swap = dir_.file("swap.img");
  run_ok("truncate -s 8M " + q(swap));
  fill_random(swap, 0, 8 * kMiB, 3);
  run_ok("mkswap -q " + q(swap) + " >/dev/null 2>&1");
  place(swap, raw, 25 * kMiB);
  fill_random(raw, 33 * kMiB, 8 * kMiB, 5);  // LVM and unknown

  std::string img = convert(raw, dir_.file("disk.vhd"), "vhd");
  Report r = compact_ok(img, {});
  ASSERT_EQ(r.volumes.size(), 4u);
  if (auto* v = volume_at(r, 25 * kMiB)) {
    EXPECT_EQ(v->filesystem, "swap");
    EXPECT_EQ(v->state, "read") << v->reason;
  }
  for (uint64_t at : {33 * kMiB, 37 * kMiB})
    if (auto* v = volume_at(r, at)) {
      EXPECT_EQ(v->state, "kept whole");
      EXPECT_FALSE(v->reason.empty());
    }
  vhdkit::fs::UsageMap used = map_raw(raw);
  expect_guest_intact(dir_, img, raw, used.used, {{kMiB, 24 * kMiB, &files_}});
  std::string after = qemu_raw(img, dir_, "swap-after.raw");
  // The swap area's whole blocks (26-32 MiB) were released and read zeros; its header page is kept.
  EXPECT_TRUE(all_zero(file_bytes(after, 26 * kMiB, 6 * kMiB)));
  EXPECT_EQ(file_bytes(after, 25 * kMiB, 4096), file_bytes(raw, 25 * kMiB, 4096));
  EXPECT_EQ(file_bytes(after, 33 * kMiB, 8 * kMiB), file_bytes(raw, 33 * kMiB, 8 * kMiB));
  EXPECT_GE(r.bytes_released, 6 * kMiB);
}

// Three file systems Full must not trust, beside a good one: every byte of theirs stays, the report says why.
TEST_F(FsModesVolumes, FileSystemsItCannotTrustKeepEveryByte) {
  struct Damage {
    const char* name;
    std::string debugfs;  // a debugfs -w command, or "" to break group 0's descriptor checksum
    const char* reason;
  } damages[] = {
      {"recover", "feature needs_recovery", "journal needs recovery"},
      {"errors", "ssv state 3", "recorded errors"},
      {"gd_csum", "", "group descriptor"},
  };
  std::string raw = make_partitioned(dir_, "disk.raw", 62,
                                     "label: gpt\n"
                                     "start=2048, size=24576, type=L\n"
                                     "start=26624, size=24576, type=L\n"
                                     "start=51200, size=24576, type=L\n"
                                     "start=75776, size=49152, type=L\n");
  for (size_t i = 0; i < 3; ++i) {
    std::string fs = make_ext(dir_, damages[i].name, "-t ext4 -b 4096", files_, 12);
    if (damages[i].debugfs.empty()) {
      patch_file(fs, 4096 + 2, {0x7f});
    } else {
      run_ok("debugfs -w -R " + q(damages[i].debugfs) + " " + q(fs) + " >/dev/null 2>&1");
    }
    place(fs, raw, kMiB + i * 12 * kMiB);
  }
  place(make_ext(dir_, "good", "-t ext4", files_, 24), raw, 37 * kMiB);

  for (const char* format : {"vhd", "vhdx"}) {
    SCOPED_TRACE(format);
    std::string img = convert(raw, dir_.file(std::string("disk.") + format), format);
    Report r = compact_ok(img, {});
    ASSERT_EQ(r.volumes.size(), 4u);
    for (size_t i = 0; i < 3; ++i) {
      if (auto* v = volume_at(r, kMiB + i * 12 * kMiB)) {
        EXPECT_EQ(v->state, "kept whole");
        EXPECT_NE(v->reason.find(damages[i].reason), std::string::npos) << v->reason;
        EXPECT_NE(r.mode_note.find(damages[i].reason), std::string::npos) << r.mode_note;
      }
    }
    EXPECT_GT(r.bytes_released, 0u) << "the good file system's deleted data";
    std::string after = qemu_raw(img, dir_, "after.raw");
    EXPECT_EQ(file_bytes(after, kMiB, 36 * kMiB), file_bytes(raw, kMiB, 36 * kMiB)) << "a kept partition changed";
    vhdkit::fs::UsageMap used = map_raw(raw);
    expect_guest_intact(dir_, img, raw, used.used, {{37 * kMiB, 24 * kMiB, &files_}});
  }
}

// A disk with an ext4 partition (1 MiB, 24 MiB) as `format`, and a differencing child made beside it by vhdkit.
struct Family {
  std::string raw, parent, child;
};

Family make_family(const TempDir& dir, const GuestFiles& files, const std::string& format) {
  Family f;
  f.raw = make_partitioned(dir, "family.raw", 28, "label: dos\nstart=2048, size=49152, type=83\n");
  place(make_ext(dir, "family", "-t ext4", files, 24), f.raw, kMiB);
  f.parent = convert(f.raw, dir.file("parent." + format), format);
  f.child = dir.file("child." + format);
  run_ok(q(vhdkit_bin()) + " create --format " + format + " --block-size " + (format == "vhd" ? "2M" : "1M") +
         " --parent " + q(f.parent) + " " + q(f.child));
  return f;
}

TEST_F(FsModesVolumes, AParentWithAChildBesideItIsRefusedFullAndQuick) {
  for (const char* format : {"vhd", "vhdx"}) {
    SCOPED_TRACE(format);
    TempDir dir;
    Family f = make_family(dir, files_, format);
    expect_refused(f.parent, ReturnCode::InvalidState, {"parent of the differencing disk", "--mode prezeroed"});
    Options quick;
    quick.mode = Mode::Quick;
    auto r = compact::compact_image(io::Env::posix(), f.parent, quick);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), ReturnCode::InvalidState);
    // The CLI says the same, with the reference's value, and exits with its status.
    RunResult cli = run(q(vhdkit_bin()) + " compact " + q(f.parent));
    EXPECT_NE(cli.status, 0);
    EXPECT_NE((cli.out + cli.err).find("32775"), std::string::npos) << cli.out << cli.err;
    // Prezeroed keeps the content: allowed, and the child still opens on it.
    Options prezeroed;
    prezeroed.mode = Mode::Prezeroed;
    compact_ok(f.parent, prezeroed);
    EXPECT_TRUE(image::open_image(io::Env::posix(), f.child).has_value());
  }
}

TEST_F(FsModesVolumes, ACallerCanDeclareAParent) {
  std::string raw = make_partitioned(dir_, "lone.raw", 28, "label: dos\nstart=2048, size=49152, type=83\n");
  place(make_ext(dir_, "lone", "-t ext4", files_, 24), raw, kMiB);
  std::string img = convert(raw, dir_.file("lone.vhd"), "vhd");
  std::string before = sha256(img);
  Options o;
  o.parent_of_children = compact::ParentOfChildren::Declared;
  auto r = compact::compact_image(io::Env::posix(), img, o);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ReturnCode::InvalidState);
  EXPECT_NE(r.error().message().find("you said"), std::string::npos) << r.error().message();
  RunResult cli = run(q(vhdkit_bin()) + " compact --is-parent " + q(img));
  EXPECT_NE(cli.status, 0) << cli.out;
  EXPECT_EQ(sha256(img), before);
}

// The child's own file system (read through the chain) decides: a file written and deleted in the child leaves
// blocks only the child holds; Full releases them; every used range reads as before; the parent is not written.
TEST_F(FsModesVolumes, AChildIsJudgedByItsOwnFileSystemAndTheParentStays) {
  for (const char* format : {"vhd", "vhdx"}) {
    SCOPED_TRACE(format);
    TempDir dir;
    Family f = make_family(dir, files_, format);
    // What the guest did in the child: a new kept file, a large file written and deleted.
    std::string fs2 = dir.file("child.fs");
    run_ok("dd if=" + q(f.raw) + " of=" + q(fs2) + " bs=1M skip=1 count=24 status=none");
    std::string big = dir.file("big"), small = dir.file("small");
    run_ok("head -c 4194304 /dev/urandom > " + q(big) + " && head -c 300000 /dev/urandom > " + q(small));
    run_ok("debugfs -w -R " + q("write " + big + " /child_deleted") + " " + q(fs2) + " >/dev/null 2>&1");
    run_ok("debugfs -w -R " + q("write " + small + " /child_kept") + " " + q(fs2) + " >/dev/null 2>&1");
    run_ok("debugfs -w -R " + q("rm /child_deleted") + " " + q(fs2) + " >/dev/null 2>&1");
    std::string raw2 = dir.file("family2.raw");
    std::filesystem::copy_file(f.raw, raw2);
    place(fs2, raw2, kMiB);
    {
      // Every sector that differs goes into the child.
      disk::OpenOptions rw;
      rw.access = io::Access::ReadWrite;
      auto child = image::open_image(io::Env::posix(), f.child, rw);
      ASSERT_TRUE(child.has_value()) << child.error().what();
      auto a = read_file(f.raw), b = read_file(raw2);
      for (uint64_t s = 0; s + kSector <= a.size(); s += kSector) {
        if (std::equal(a.begin() + s, a.begin() + s + kSector, b.begin() + s)) continue;
        ASSERT_TRUE((*child)->write(s, std::span(b).subspan(s, kSector)).has_value());
      }
      ASSERT_TRUE((*child)->flush().has_value());
    }
    const std::string parent_before = sha256(f.parent);
    GuestFiles files2 = files_;
    files2.kept["/child_kept"] = run_ok("sha256sum " + q(small)).substr(0, 64);

    Report r = compact_ok(f.child, {});
    EXPECT_GT(r.blocks_released, 0u) << r.mode_note << " / " << r.gain_note;
    EXPECT_EQ(sha256(f.parent), parent_before) << "the parent was written";
    std::string after = dir.file("child-after.raw");
    auto content = virtual_content(io::Env::posix(), f.child);
    content.resize(std::filesystem::file_size(raw2));
    write_file(after, content);
    vhdkit::fs::UsageMap used = map_raw(raw2);
    expect_raw_intact(dir, after, raw2, used.used, {{kMiB, 24 * kMiB, &files2}});
    EXPECT_TRUE(our_check(io::Env::posix(), f.child).empty());
  }
}

Guid data_write_guid(const std::string& vhdx) {
  auto d = open_ok(vhdx);
  return vhdx::image_of(*d)->header().data_write_guid;
}

// A Full run that releases blocks holding data changes what the disk reads: a new DataWriteGuid. Prezeroed (and
// Full without a file system, which runs as Prezeroed) releases only zeros and moves blocks: the same one.
TEST_F(FsModesVolumes, VhdxDataWriteGuidChangesOnlyWhenContentMay) {
  std::string raw = make_partitioned(dir_, "disk.raw", 28, "label: dos\nstart=2048, size=49152, type=83\n");
  place(make_ext(dir_, "guid", "-t ext4", files_, 24), raw, kMiB);
  std::string img = convert(raw, dir_.file("guid.vhdx"), "vhdx");
  Guid before = data_write_guid(img);
  Report r = compact_ok(img, {});
  ASSERT_GT(r.blocks_released, 0u);
  EXPECT_NE(data_write_guid(img), before);

  for (Mode m : {Mode::Prezeroed, Mode::Full}) {
    std::string plain = make_dynamic_vhdx(dir_, std::string("plain-") + std::string(to_string(m)) + ".vhdx", "DZDZD");
    Guid kept = data_write_guid(plain);
    Options o;
    o.mode = m;
    Report p = compact_ok(plain, o);
    EXPECT_GT(p.blocks_released, 0u);
    EXPECT_EQ(data_write_guid(plain), kept) << to_string(m);
  }
}

// A dry run says, for every mode, what it would release, and a run that gains nothing says why.
TEST_F(FsModesVolumes, ReportsWhatEachModeWouldReleaseAndWhyNothingIsGained) {
  std::string raw = make_partitioned(dir_, "disk.raw", 28, "label: dos\nstart=2048, size=49152, type=83\n");
  place(make_ext(dir_, "report", "-t ext4", files_, 24), raw, kMiB);
  std::string img = convert(raw, dir_.file("report.vhd"), "vhd");
  Report dry = dry_run(img);
  ASSERT_TRUE(dry.releases.full && dry.releases.quick && dry.releases.prezeroed);
  EXPECT_GT(*dry.releases.full, 0u);
  EXPECT_LE(*dry.releases.quick, *dry.releases.full);
  EXPECT_EQ(*dry.releases.prezeroed, 0u);  // deleted data is not zero
  EXPECT_EQ(dry.blocks_released, *dry.releases.full);
  ASSERT_EQ(dry.volumes.size(), 1u);
  EXPECT_EQ(dry.volumes[0].filesystem, "ext4");
  EXPECT_EQ(dry.volumes[0].used_bytes + dry.volumes[0].free_bytes, 24 * kMiB);
  // Prezeroed gains nothing on it, and says why.
  Options o;
  o.mode = Mode::Prezeroed;
  o.action = compact::Action::DryRun;
  Report none = compact_ok(img, o);
  EXPECT_EQ(none.bytes_released, 0u);
  EXPECT_NE(none.gain_note.find("nothing to release"), std::string::npos) << none.gain_note;
  // The CLI shows it, as text and as JSON.
  RunResult text = run(q(vhdkit_bin()) + " compact --dry-run " + q(img));
  EXPECT_EQ(text.status, 0) << text.err;
  EXPECT_NE(text.out.find("ext4"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("releases by mode: Full"), std::string::npos) << text.out;
  RunResult json = run(q(vhdkit_bin()) + " compact --dry-run --json " + q(img));
  EXPECT_NE(json.out.find("\"BlocksReleasedByMode\""), std::string::npos) << json.out;
  EXPECT_NE(json.out.find("\"FileSystem\": \"ext4\""), std::string::npos) << json.out;
  RunResult info = run(q(vhdkit_bin()) + " info " + q(img));
  EXPECT_NE(info.out.find("releases by mode"), std::string::npos) << info.out;
  RunResult info_json = run(q(vhdkit_bin()) + " info --json " + q(img));
  EXPECT_NE(info_json.out.find("\"StrandedFreeBytes\""), std::string::npos) << info_json.out;
  // The job store's round trip keeps all of it.
  auto back = service::report_from_json(service::to_json(dry));
  ASSERT_TRUE(back.has_value()) << back.error().what();
  EXPECT_EQ(back->volumes, dry.volumes);
  EXPECT_EQ(back->releases, dry.releases);
  EXPECT_EQ(back->stranded_free_bytes, dry.stranded_free_bytes);
  EXPECT_EQ(back->gain_note, dry.gain_note);
}

// GetVirtualHardDiskState carries the dry run's report; a parent (no Full for it) still gets its state, as
// Prezeroed would leave it.
TEST_F(FsModesVolumes, GetVirtualHardDiskStateReportsVolumesAndWhatEachModeReleases) {
  auto engine = service::make_engine(io::Env::posix());
  for (const char* format : {"vhd", "vhdx"}) {
    SCOPED_TRACE(format);
    TempDir dir;
    std::string raw = make_partitioned(dir, "s.raw", 28, "label: dos\nstart=2048, size=49152, type=83\n");
    place(make_ext(dir, "s", "-t ext4", files_, 24), raw, kMiB);
    std::string img = convert(raw, dir.file(std::string("s.") + format), format);
    auto state = service::get_virtual_hard_disk_state(io::Env::posix(), *engine, img);
    ASSERT_TRUE(state.has_value()) << state.error().what();
    ASSERT_TRUE(state->report.has_value());
    ASSERT_EQ(state->report->volumes.size(), 1u);
    EXPECT_EQ(state->report->volumes[0].filesystem, "ext4");
    EXPECT_TRUE(state->report->releases.full && state->report->releases.quick && state->report->releases.prezeroed);
    EXPECT_LT(*state->min_internal_size, state->file_size);

    Family f = make_family(dir, files_, format);
    auto parent = service::get_virtual_hard_disk_state(io::Env::posix(), *engine, f.parent);
    ASSERT_TRUE(parent.has_value()) << parent.error().what();
    ASSERT_TRUE(parent->report.has_value());
    EXPECT_EQ(parent->report->mode, Mode::Prezeroed);
  }
}

}  // namespace
}  // namespace vhdkit::testing
