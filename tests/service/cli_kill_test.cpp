// SPDX-License-Identifier: Apache-2.0
// SIGKILL the real `vhdkit compact` at several points of an in-place compaction, each time on a fresh copy
// of the same image, and prove what Hyper-V promises ("can be safely interrupted and re-run"): after each
// kill the image passes qemu-img check, reads the same as before, passes `vhdkit check`, and compacting it
// again finishes at the size an undisturbed run reaches, still reading the same.
//
// Where the kills land: the zero scan fills the first two thirds of the progress bar and writes nothing;
// at 66% the scan is done and the writes begin (release, then the moves, block by block, flushed and
// remapped every 256 MiB, then the shrink). A whole run here takes a fraction of a second, so the kills
// inside the move phase wait for 66% and then a fraction of the time the undisturbed run spent after 66%.
// Each kill is then placed by what it left in the file: nothing written, part-way through the writes, or
// shrunk. VHD and VHDX, dynamic and differencing; a VHDX is recovered (its log replayed) first. In Full mode,
// a bare ext4 with a deleted file (as WSL2 leaves one) and an XFS inside LVM2 (as RHEL guests have): there
// what the file systems use must read the same.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <regex>
#include <thread>

#include "child_process.h"
#include "guest_disk.h"
#include "images.h"
#include "xfs_lvm_guest.h"

namespace vhdkit::testing {
namespace {

using Clock = std::chrono::steady_clock;

// Who compares virtual contents: qemu-img where qemu reads the image and all it depends on; `vhdkit
// compare` for a VHD child, whose parent qemu's vpc driver ignores, and for a VHDX child, which qemu 7.2
// does not open.
enum class Referee { Qemu, Vhdkit };

// How a killed image is recovered before it is checked. A VHDX may hold log entries to replay, and until a
// writer replays them qemu refuses to open it read-only and `vhdkit check` names the log as a problem.
enum class Recovery {
  None,        // VHD: nothing to replay
  QemuReplay,  // VHDX: qemu-img check -r all replays the log, its own way (an independent replayer)
  Rerun,       // a VHDX child qemu cannot open: our read-only compare replays in memory; the rerun on disk
};

// What a case made: the image, and for the file-system modes the judge of what it must still read (Full may
// change what unused ranges read, so the whole-content compare does not apply; null: the virtual content
// must be identical).
struct Made {
  std::string image;
  std::function<void(const TempDir&, const std::string& image)> expect_intact;
};

struct ImageCase {
  std::string name;
  std::function<Made(const TempDir&)> make;  // makes the image in the folder
  std::string qemu_format;                   // qemu-img -f; empty when qemu cannot open the image
  Referee compare = Referee::Qemu;
  Recovery recovery = Recovery::None;
  std::vector<std::string> mode;  // extra `vhdkit compact` arguments ("--mode full")
  // The random kill lands within this many ms of the start. Full mode reads only the bytes the file system
  // uses and begins writing about 15 ms after the start here: a shorter window keeps one kill before it.
  int start_window_ms = 20;
};

// 80 blocks of 2 MiB. In the lower 48, zero blocks interleave with blocks that hold one sector of data
// (they stay where they are); above them, 32 blocks of random data, which the compaction moves into the
// holes of the zero blocks it releases (64 MiB of copying). Made by qemu-img.
std::string dynamic_image(const TempDir& dir, disk::Format format) {
  std::string pattern;
  for (int i = 0; i < 12; ++i) pattern += "ZPZZ";
  const std::string name = format == disk::Format::Vhdx ? "dynamic.vhdx" : "dynamic.vhd";
  return make_dynamic(dir, name, pattern + std::string(32, 'D'), format, 2 * kMiB);
}

// A differencing disk of 96 blocks of 2 MiB made by `vhdkit create` and `vhdkit write` over a dynamic parent
// (made by qemu-img) with one sector of data in each of blocks 0-31 and zeros above. The child holds the
// parent's content again in blocks 0-31 except every fourth, zeros over the parent's zeros in 32-63, and in
// every other block its own data (each block a byte of its own, so that a block mapped to another one's
// place shows). Compaction releases the 56 blocks that read the same without the child and moves the 32
// blocks from the top into their holes (64 MiB of copying).
std::string differencing_image(const TempDir& dir, disk::Format format) {
  const bool vhdx = format == disk::Format::Vhdx;
  const std::string ext = vhdx ? ".vhdx" : ".vhd";
  const std::string parent =
      make_dynamic(dir, "parent" + ext, std::string(32, 'P') + std::string(64, 'Z'), format, 2 * kMiB);
  const std::string child = dir.file("child" + ext), parent_raw = dir.file("parent.raw");
  const std::string vhdkit = q(vhdkit_bin());
  run_ok("qemu-img convert -q -f " + qemu_format(parent) + " -O raw " + q(parent) + " " + q(parent_raw));
  run_ok(vhdkit + " create " + (vhdx ? "--format vhdx --block-size 2M " : "") + "--parent " + q(parent) + " " +
         q(child));
  run_ok(vhdkit + " write " + q(child) + " 0 --from " + q(parent_raw));
  std::filesystem::remove(parent_raw);
  for (uint64_t b = 0; b < 96; ++b) {
    if (b < 32 ? b % 4 != 0 : b < 64) continue;
    run_ok(vhdkit + " write " + q(child) + " " + std::to_string(b * 2 * kMiB) + " --pattern " +
           std::to_string(0x20 + b) + " --length 2M");
  }
  return child;
}

void PrintTo(const ImageCase& c, std::ostream* os) { *os << c.name; }

std::function<Made(const TempDir&)> maker(std::string (*make)(const TempDir&, disk::Format), disk::Format format) {
  return [=](const TempDir& dir) { return Made{make(dir, format), nullptr}; };
}

// A bare ext4 of 96 MiB, as WSL2 lays out its ext4.vhdx: debugfs writes a 24 MiB file that is then deleted
// (its bytes stay), then a 24 MiB file that is kept, above it; Full releases the deleted file's blocks and
// moves the kept file's into them (24 MiB of copying). Judged as tests/fsmodes judges Full: qemu-img check,
// e2fsck -fn, every kept file's sha256, and every range the file system used reads as before.
std::function<Made(const TempDir&)> ext4_guest(const std::string& format) {
  return [=](const TempDir& dir) {
    auto files = std::make_shared<GuestFiles>();
    files->folder = dir.file("files");
    std::filesystem::create_directories(files->folder);
    const std::string deleted = files->folder + "/deleted", kept = files->folder + "/kept";
    run_ok("head -c 24M /dev/urandom > " + q(deleted) + " && head -c 24M /dev/urandom > " + q(kept));
    files->kept["/kept"] = run_ok("sha256sum " + q(kept)).substr(0, 64);
    const std::string raw = dir.file("guest.raw");
    run_ok("mke2fs -q -F -t ext4 " + q(raw) + " 96M 2>&1");
    run_ok("debugfs -w -R " + q("write " + deleted + " deleted") + " " + q(raw) + " >/dev/null 2>&1");
    run_ok("debugfs -w -R " + q("write " + kept + " kept") + " " + q(raw) + " >/dev/null 2>&1");
    run_ok("debugfs -w -R " + q("rm deleted") + " " + q(raw) + " >/dev/null 2>&1");
    std::filesystem::remove_all(files->folder);
    std::vector<vhdkit::fs::ByteRange> used = map_raw(raw).used;
    const uint64_t size = file_size(raw);
    const std::string image = convert(raw, dir.file("guest." + format), format);
    auto intact = [=](const TempDir& d, const std::string& img) {
      expect_guest_intact(d, img, raw, used, {GuestFs{0, size, files.get()}});
    };
    return Made{image, intact};
  };
}

// XFS inside LVM2 on a bare PV of 24 MiB (tests/fsmodes/xfs_lvm_guest.h: a 16 MiB XFS LV with files, the
// extents of a removed LV holding older data). Judged as tests/fsmodes judges it: every used range reads as
// before, xfs_repair -n clean and every file identical (read through a loop device at the LV's place).
std::function<Made(const TempDir&)> xfs_in_lvm_guest(const std::string& format) {
  return [=](const TempDir& dir) {
    auto files = std::make_shared<GuestFiles>(make_guest_files(dir, 37));
    const std::string raw = dir.file("guest.raw");
    const LvPlace root = make_xfs_in_lvm(dir, raw, *files);
    std::vector<vhdkit::fs::ByteRange> used = map_raw(raw).used;
    const std::string image = convert(raw, dir.file("guest." + format), format);
    auto intact = [=](const TempDir& d, const std::string& img) {
      const std::string after = qemu_raw(img, d, "after.raw");
      expect_raw_intact(d, after, raw, used, {});
      expect_fs_intact(d, after, {{root.offset, root.size, GuestFsType::Xfs, files.get()}});
    };
    return Made{image, intact};
  };
}

const std::vector<ImageCase> kImageCases = {
    {"DynamicVhd", maker(dynamic_image, disk::Format::Vhd), "vpc", Referee::Qemu, Recovery::None, {}},
    {"DifferencingVhd", maker(differencing_image, disk::Format::Vhd), "vpc", Referee::Vhdkit, Recovery::None, {}},
    {"DynamicVhdx", maker(dynamic_image, disk::Format::Vhdx), "vhdx", Referee::Qemu, Recovery::QemuReplay, {}},
    {"DifferencingVhdx", maker(differencing_image, disk::Format::Vhdx), "", Referee::Vhdkit, Recovery::Rerun, {}},
    {"FullExt4Vhd", ext4_guest("vhd"), "vpc", Referee::Qemu, Recovery::None, {"--mode", "full"}, 8},
    {"FullExt4Vhdx", ext4_guest("vhdx"), "vhdx", Referee::Qemu, Recovery::QemuReplay, {"--mode", "full"}, 8},
    {"FullXfsInLvmVhd", xfs_in_lvm_guest("vhd"), "vpc", Referee::Qemu, Recovery::None, {"--mode", "full"}, 8},
    {"FullXfsInLvmVhdx", xfs_in_lvm_guest("vhdx"), "vhdx", Referee::Qemu, Recovery::QemuReplay, {"--mode", "full"}, 8},
};

constexpr int kAfterRandomDelay = -1;
constexpr int kAfterDelay = -2;
constexpr int kScanDone = 66;
constexpr int kMovesDone = 99;

struct KillPoint {
  std::string name;
  int percent;              // kill once the bar shows at least this (kAfterRandomDelay: soon after the start)
  double move_fraction;     // and then only after this fraction of the undisturbed run's time after 66%
  Clock::duration delay{};  // kAfterDelay: this long after the start
};

// Timing on a loaded machine may miss one side of the first write: then further kills at random times of
// the undisturbed run (early while none landed before the first write, then later while none landed
// part-way), until both were seen, at most this many.
constexpr size_t kExtraKills = 10;

const std::vector<KillPoint> kKillPoints = {
    {"a random delay after the start", kAfterRandomDelay, 0},
    {"the first progress", 0, 0},
    {">= 40%", 40, 0},
    {">= 66% (scan done)", kScanDone, 0},
    {">= 66%, then 1/3 of the move phase", kScanDone, 1.0 / 3},
    {">= 66%, then 2/3 of the move phase", kScanDone, 2.0 / 3},
    {">= 90% (99% is shown once the moves are done)", 90, 0},
};

// What a run of `vhdkit compact` showed before it ended.
struct Observed {
  int status = -1;
  bool killed = false;
  int last_percent = -1;                         // the last progress shown before the kill (or the end)
  Clock::duration killed_at{};                   // since the start
  std::optional<Clock::duration> scan_done_at;   // when the bar first showed 66% or more
  std::optional<Clock::duration> moves_done_at;  // and 99%
  Clock::duration ended_at{};
};

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// The percentage a redraw of the progress bar shows ("name [####......]  40%"), -1 for other lines.
int percent_of(const std::string& line) {
  static const std::regex bar(R"(\[[#.]*\] +(\d+)%$)");
  std::smatch m;
  return std::regex_search(line, m, bar) ? std::stoi(m[1]) : -1;
}

// Runs `vhdkit compact IMAGE` on a terminal and SIGKILLs it at `point` (never, when null). On a terminal
// the bar is redrawn every 100 ms; without one a progress line comes once a second, too seldom for a run
// of half a second.
Observed compact(const ImageCase& c, const std::string& image, const KillPoint* point, Clock::duration move_phase,
                 std::mt19937_64& rng) {
  Observed r;
  const auto start = Clock::now();
  std::vector<std::string> argv = {vhdkit_bin(), "compact"};
  argv.insert(argv.end(), c.mode.begin(), c.mode.end());
  argv.push_back(image);
  ChildProcess p(argv, "", Stdin::Null, Stdout::Terminal);
  auto kill = [&] {
    r.killed_at = Clock::now() - start;
    p.signal(SIGKILL);
    r.killed = true;
  };
  if (point && point->percent == kAfterDelay) {
    std::this_thread::sleep_for(point->delay);
    kill();
  }
  if (point && point->percent == kAfterRandomDelay) {
    std::this_thread::sleep_for(
        std::chrono::microseconds(std::uniform_int_distribution<int>(0, c.start_window_ms * 1000)(rng)));
    kill();
  }
  while (!r.killed) {
    auto line = p.read_line();
    if (!line) break;
    int percent = percent_of(*line);
    if (percent < 0) continue;
    r.last_percent = percent;
    if (percent >= kScanDone && !r.scan_done_at) r.scan_done_at = Clock::now() - start;
    if (percent >= kMovesDone && !r.moves_done_at) r.moves_done_at = Clock::now() - start;
    if (point && percent >= point->percent) {
      std::this_thread::sleep_for(std::chrono::duration_cast<Clock::duration>(move_phase * point->move_fraction));
      kill();
    }
  }
  r.status = p.wait();
  r.ended_at = Clock::now() - start;
  return r;
}

// A copy beside the image, named `stem` with the image's extension.
std::string copy_of(const std::string& image, const std::string& stem) {
  std::filesystem::path path(image);
  std::string copy = (path.parent_path() / (stem + path.extension().string())).string();
  run_ok("cp --sparse=always " + q(image) + " " + q(copy));
  return copy;
}

// qemu-img check passes: clean (0), or for vpc, which qemu has no check for, exactly that statement.
void expect_qemu_check_passes(const ImageCase& c, const std::string& image) {
  RunResult r = run("qemu-img check -f " + c.qemu_format + " " + q(image));
  if (c.qemu_format == "vpc") {
    EXPECT_EQ(r.status, 63) << r.out << r.err;
    EXPECT_EQ(r.err, "qemu-img: This image format does not support checks\n");
    EXPECT_EQ(r.out, "");
  } else {
    EXPECT_EQ(r.status, 0) << r.out << r.err;
  }
}

void expect_same_virtual_content(const ImageCase& c, const std::string& a, const std::string& b) {
  SCOPED_TRACE(b);
  std::string compare = c.compare == Referee::Qemu ? "qemu-img compare -f " + c.qemu_format + " -F " + c.qemu_format
                                                   : q(vhdkit_bin()) + " compare";
  RunResult r = run(compare + " " + q(a) + " " + q(b));
  EXPECT_EQ(r.status, 0) << compare << " " << a << " " << b << ":\n" << r.out << r.err;
}

enum class Landing { Finished, NothingWritten, PartWay, Shrunk };

const char* describe(Landing l) {
  switch (l) {
    case Landing::Finished: return "not killed: the run ended first";
    case Landing::NothingWritten: return "nothing written yet";
    case Landing::PartWay: return "part-way through the writes";
    case Landing::Shrunk: return "after the shrink";
  }
  return "?";
}

class CliKill : public ::testing::TestWithParam<ImageCase> {};

TEST_P(CliKill, SigkillAnywhereLeavesAValidImageAndARerunFinishes) {
  const ImageCase& c = GetParam();
  std::mt19937_64 rng(random_test_seed());
  TempDir dir;
  const Made made = c.make(dir);
  const std::string& original = made.image;
  ASSERT_FALSE(HasFailure()) << "could not make the image";
  // What else the folder holds (a parent) is never written: kept copies say so at the end.
  std::vector<std::string> beside;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path()))
    if (entry.is_regular_file() && entry.path() != original) beside.push_back(entry.path().string());
  for (const auto& path : beside) keep_copy(path);

  // The undisturbed run on its own copy: the size every run must end at, and how long it writes.
  const std::string undisturbed = copy_of(original, "undisturbed");
  const Observed calm = compact(c, undisturbed, nullptr, {}, rng);
  ASSERT_EQ(calm.status, 0);
  const uint64_t compacted_size = file_size(undisturbed);
  ASSERT_LT(compacted_size, file_size(original));
  auto expect_intact = [&](const std::string& image) {
    if (made.expect_intact) {
      made.expect_intact(dir, image);
    } else {
      expect_same_virtual_content(c, original, image);
    }
  };
  expect_intact(undisturbed);
  const Clock::duration moves_done = calm.moves_done_at.value_or(calm.ended_at);
  const Clock::duration move_phase = moves_done - calm.scan_done_at.value_or(moves_done);
  std::cout << c.name << ": " << file_size(original) / kMiB << " MiB -> " << compacted_size / kMiB
            << " MiB undisturbed in " << seconds(calm.ended_at) << " s, moving for " << seconds(move_phase)
            << " s after the scan\n";

  std::map<Landing, int> landings;
  std::vector<KillPoint> points = kKillPoints;
  for (size_t i = 0; i < points.size(); ++i) {
    const KillPoint point = points[i];
    SCOPED_TRACE("kill at " + point.name);
    const std::string image = copy_of(original, "killed");
    const Observed r = compact(c, image, &point, move_phase, rng);
    EXPECT_TRUE(r.status == 128 + SIGKILL || r.status == 0) << "exit status " << r.status;

    Landing landing = Landing::Finished;
    if (r.status != 0) {
      landing = run("cmp -s " + q(original) + " " + q(image)).status == 0 ? Landing::NothingWritten
                : file_size(image) == compacted_size                      ? Landing::Shrunk
                                                                          : Landing::PartWay;
    }
    ++landings[landing];
    std::cout << c.name << ": kill " << i + 1 << "/" << points.size() << " at " << point.name << ": ";
    if (r.killed) std::cout << "sent after " << seconds(r.killed_at) << " s, ";
    std::cout << "progress last shown " << (r.last_percent < 0 ? "none" : std::to_string(r.last_percent) + "%") << "; "
              << describe(landing) << "\n";

    if (c.recovery == Recovery::QemuReplay) run_ok("qemu-img check -q -r all -f " + c.qemu_format + " " + q(image));
    if (!c.qemu_format.empty()) expect_qemu_check_passes(c, image);
    expect_intact(image);
    auto expect_vhdkit_check_passes = [&] {
      RunResult check = run(q(vhdkit_bin()) + " check " + q(image));
      EXPECT_EQ(check.status, 0) << check.out << check.err;
    };
    if (c.recovery != Recovery::Rerun) expect_vhdkit_check_passes();

    std::string rerun = q(vhdkit_bin()) + " compact ";
    for (const std::string& a : c.mode) rerun += a + " ";
    RunResult again = run(rerun + q(image));
    EXPECT_EQ(again.status, 0) << again.out << again.err;
    EXPECT_EQ(file_size(image), compacted_size) << again.out;
    expect_intact(image);
    if (c.recovery == Recovery::Rerun) expect_vhdkit_check_passes();
    std::filesystem::remove(image);

    if (i + 1 == points.size() && points.size() < kKillPoints.size() + kExtraKills) {
      const bool early = landings[Landing::NothingWritten] == 0;
      if (early || landings[Landing::PartWay] == 0) {
        using Us = std::chrono::microseconds;
        const auto run_us = std::chrono::duration_cast<Us>(calm.ended_at).count();
        const auto from = early ? 0 : run_us / 10, to = early ? c.start_window_ms * 500 : run_us * 9 / 10;
        const Us delay(std::uniform_int_distribution<int64_t>(from, std::max(from, to))(rng));
        points.push_back({fmt::format("{:.1f} ms (another kill, {})", static_cast<double>(delay.count()) / 1000,
                                      early ? "early" : "late"),
                          kAfterDelay, 0, delay});
      }
    }
  }
  std::cout << c.name << ": " << points.size() << " kill points tried: " << landings[Landing::NothingWritten]
            << " landed before any write, " << landings[Landing::PartWay] << " part-way through the writes, "
            << landings[Landing::Shrunk] << " after the shrink, " << landings[Landing::Finished]
            << " after the run had ended\n";
  for (const auto& path : beside) EXPECT_EQ(run("cmp " + q(path) + " " + q(path + ".orig")).status, 0) << path;
  // The kills must have hit both sides of the first write, or the test proved less than it says.
  EXPECT_GE(landings[Landing::NothingWritten], 1) << "no kill landed before the first write";
  EXPECT_GE(landings[Landing::PartWay], 1) << "no kill landed while the compaction was writing";
}

INSTANTIATE_TEST_SUITE_P(Images, CliKill, ::testing::ValuesIn(kImageCases),
                         [](const ::testing::TestParamInfo<ImageCase>& param) { return param.param.name; });

}  // namespace
}  // namespace vhdkit::testing
