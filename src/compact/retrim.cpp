// SPDX-License-Identifier: Apache-2.0
#include "compact/retrim.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "compact/block_scan.h"
#include "core/bytes.h"
#include "core/checked.h"

namespace vhdkit::compact {
namespace {

// A host block size we trust to align to; anything odd is taken as 4 KiB (aligning to a multiple of the real
// one would only punch less).
uint64_t sane_block_size(uint64_t bs) {
  if (bs < 512 || bs > (1u << 20) || (bs & (bs - 1)) != 0) return 4096;
  return bs;
}

// Does [offset, offset + length) of the virtual disk touch a used range? `used` is sorted; `at` walks it forward
// as the callers' offsets grow.
bool touches_used(const std::vector<fs::ByteRange>& used, size_t& at, uint64_t offset, uint64_t length) {
  while (at < used.size() && used[at].end() <= offset) ++at;
  return at < used.size() && used[at].offset < offset + length;
}

void add_range(std::vector<io::ByteRun>& out, uint64_t offset, uint64_t length) {
  if (!out.empty() && out.back().end() == offset) {
    out.back().length += length;
  } else {
    out.push_back({offset, length});
  }
}

class Retrimmer {
 public:
  Retrimmer(CompactableImage& image, const ReclaimPolicy& policy, bool dry, uint64_t block)
      : image_(image), policy_(policy), dry_(dry), block_(block) {}

  // One window of a stored run: [from, to) of the file, both multiples of the host block size.
  Status window(const StoredRun& run, uint64_t from, uint64_t to) {
    io::File& file = image_.file();
    VHDKIT_ASSIGN(std::vector<io::ByteRun> stored, file.data_ranges(from, to - from));
    const uint64_t v0 = run.virtual_offset + (from - run.file_offset);
    std::vector<fs::ByteRange> used;
    if (policy_.filesystems_read()) {
      used = policy_.used_in(v0, to - from);
    } else {
      used.push_back({v0, to - from});  // nothing read: every byte counts as used, only zeros go
    }
    // Blocks no file system uses go unread; the others are read (holes skipped) to find the zero ones.
    std::vector<io::ByteRun> unused, zero;
    bool any_read = false;
    size_t u = 0;
    for (uint64_t b = from; b < to; b += block_) {
      if (all_hole(stored, b, block_)) continue;  // nothing stored: nothing to give back
      if (!touches_used(used, u, v0 + (b - from), block_)) {
        add_range(unused, b, block_);
      } else {
        any_read = true;
      }
    }
    if (any_read) {
      buf_.resize(to - from);
      auto read = [&](uint64_t at, std::span<std::byte> part) { return file.read_at(at, part); };
      VHDKIT_TRY(read_skipping_holes(read, stored, from, std::span<std::byte>(buf_)));
      u = 0;
      for (uint64_t b = from; b < to; b += block_) {
        if (all_hole(stored, b, block_) || !touches_used(used, u, v0 + (b - from), block_)) continue;
        if (all_zero(std::span<const std::byte>(buf_).subspan(b - from, block_))) add_range(zero, b, block_);
      }
      bytes_read_ += to - from;
    }
    if (!unused.empty() && !dry_ && !visible_) {
      VHDKIT_TRY(image_.begin_visible_change());
      visible_ = true;
    }
    std::vector<io::ByteRun> all = unused;
    all.insert(all.end(), zero.begin(), zero.end());
    std::sort(all.begin(), all.end(), [](const io::ByteRun& a, const io::ByteRun& b) { return a.offset < b.offset; });
    std::vector<io::ByteRun> merged;
    for (const io::ByteRun& r : all) add_range(merged, r.offset, r.length);
    for (const io::ByteRun& r : merged) {
      if (!dry_) VHDKIT_TRY(file.punch_hole(r.offset, r.length));
      punched_ += r.length;
      ++ranges_;
    }
    for (const io::ByteRun& r : unused) unused_ += r.length;
    for (const io::ByteRun& r : zero) zero_ += r.length;
    return ok();
  }

  uint64_t punched() const { return punched_; }
  uint64_t ranges() const { return ranges_; }
  uint64_t unused_bytes() const { return unused_; }
  uint64_t zero_bytes() const { return zero_; }

 private:
  CompactableImage& image_;
  const ReclaimPolicy& policy_;
  bool dry_;
  uint64_t block_;
  bool visible_ = false;
  Bytes buf_;
  uint64_t punched_ = 0, ranges_ = 0, unused_ = 0, zero_ = 0, bytes_read_ = 0;
};

std::string mib(uint64_t bytes) { return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1 << 20)); }

}  // namespace

Status check_host_punches(io::File& file) {
  VHDKIT_ASSIGN(uint64_t file_size, file.size());
  VHDKIT_ASSIGN(uint64_t host_block, file.host_block_size());
  const uint64_t block = sane_block_size(host_block);
  auto at = checked_add(file_size, block - 1);
  if (!at) return fail(ReturnCode::Failed, file.path(), "the file is too large to retrim");
  auto s = file.punch_hole(*at / block * block, block);
  if (s || s.error().code() != ReturnCode::NotSupported) return s;
  return fail(ReturnCode::NotSupported, file.path(),
              fmt::format("Retrim punches holes in the host file, and the file system holding this file cannot "
                          "(fallocate PUNCH_HOLE: {}); the file is unchanged. Retrim works on ext4, XFS, btrfs "
                          "and tmpfs; a dynamic VHD or VHDX can be compacted with Prezeroed or Full instead",
                          s.error().message()));
}

Result<Report> run_retrim(CompactableImage& image, const ReclaimPolicy& policy, const Options& options,
                          Observer& observer, Report report) {
  io::File& file = image.file();
  const bool dry = options.action == Action::DryRun;
  VHDKIT_ASSIGN(std::vector<StoredRun> runs, image.stored_runs());
  VHDKIT_ASSIGN(uint64_t file_size, file.size());
  VHDKIT_ASSIGN(uint64_t host_block, file.host_block_size());
  const uint64_t block = sane_block_size(host_block);
  VHDKIT_ASSIGN(report.allocated_bytes_before, file.allocated_bytes());

  uint64_t total = 0;
  for (const StoredRun& r : runs) total += r.length;
  uint64_t done = 0;
  Retrimmer retrim(image, policy, dry, block);
  auto stop = [&]() -> Result<Report> {
    report.outcome = Outcome::Cancelled;
    if (!dry) {
      VHDKIT_TRY(file.flush());
      VHDKIT_TRY(image.finish());
    }
    return report;
  };
  for (const StoredRun& run : runs) {
    // Aligned inward: a host block partly outside the run holds bytes (a VHD bitmap, metadata) that stay.
    auto run_end = checked_add(run.file_offset, run.length);
    if (!run_end || *run_end > file_size)
      return fail(ReturnCode::Failed, image.path(), "a block of the image lies past the end of the file");
    const uint64_t first = round_up(run.file_offset, block);
    const uint64_t last = *run_end / block * block;
    for (uint64_t w = first; w < last;) {
      if (observer.stop_requested()) return stop();
      const uint64_t end = std::min(last, w + kRetrimWindow);
      VHDKIT_TRY(retrim.window(run, w, end));
      w = end;
    }
    done += run.length;
    observer.progress(done, std::max<uint64_t>(total, 1));
  }
  if (!dry) {
    // D6: the holes need no order among themselves; one flush makes them all durable.
    VHDKIT_TRY(file.flush());
    VHDKIT_TRY(image.finish());
    VHDKIT_ASSIGN(report.allocated_bytes_after, file.allocated_bytes());
  } else {
    report.allocated_bytes_after =
        report.allocated_bytes_before - std::min(report.allocated_bytes_before, retrim.punched());
  }
  report.bytes_punched = retrim.punched();
  report.mode_note += fmt::format(
      "; {} {} in {} range{} ({} no file system uses, {} of zeros; host blocks of {} bytes); the host stores {} "
      "{} {}. Windows refuses sparse image files (attach, Optimize-VHD, resize: \"must not be sparse\"): run "
      "vhdkit compact --unsparse before moving this image to Windows",
      dry ? "would punch" : "punched", mib(retrim.punched()), retrim.ranges(), retrim.ranges() == 1 ? "" : "s",
      mib(retrim.unused_bytes()), mib(retrim.zero_bytes()), block, dry ? "would go from" : "went from",
      mib(report.allocated_bytes_before), "to " + mib(report.allocated_bytes_after));
  observer.progress(1, 1);
  return report;
}

}  // namespace vhdkit::compact
