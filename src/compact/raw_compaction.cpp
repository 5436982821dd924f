// SPDX-License-Identifier: Apache-2.0
#include "compact/raw_compaction.h"

#include <fmt/format.h>

namespace vhdkit::raw {
namespace {

using compact::Slot;
using compact::Verdict;

class RawCompaction final : public compact::CompactableImage {
 public:
  explicit RawCompaction(std::unique_ptr<disk::VirtualDisk> disk) : disk_(std::move(disk)) {}

  const std::string& path() const override { return disk_->path(); }
  disk::Format format() const override { return disk::Format::Raw; }
  disk::DiskType type() const override { return disk::DiskType::Fixed; }
  uint64_t block_size() const override { return 0; }
  uint64_t block_count() const override { return 0; }
  uint64_t blocks_allocated() const override { return 0; }
  io::File& file() override { return disk_->file(); }
  disk::VirtualDisk& disk() override { return *disk_; }

  Result<compact::PlanInput> layout() override {
    compact::PlanInput in;
    VHDKIT_ASSIGN(in.file_size, disk_->file().size());
    in.fixed.push_back({0, in.file_size});
    return in;
  }
  Result<Verdict> classify(const Slot&) override { return Verdict::Keep; }
  std::optional<fs::ByteRange> virtual_extent(const Slot&) const override { return std::nullopt; }
  Result<Verdict> classify_used(const Slot&, std::span<const fs::ByteRange>) override { return Verdict::Keep; }
  Result<std::optional<Verdict>> classify_holes(const Slot&) override { return std::nullopt; }
  Result<std::vector<compact::StoredRun>> stored_runs() override {
    std::vector<compact::StoredRun> runs;
    if (uint64_t size = disk_->virtual_size(); size != 0) runs.push_back({0, 0, size});
    return runs;
  }
  Status release(std::span<const Slot> slots) override { return refuse(!slots.empty()); }
  Status remap(std::span<const compact::Move> moves) override { return refuse(!moves.empty()); }
  Status shrink(uint64_t) override { return refuse(true); }

 private:
  Status refuse(bool any) {
    if (!any) return ok();
    return fail(ReturnCode::Failed, path(), "a raw image has no blocks to release, move or cut off");
  }

  std::unique_ptr<disk::VirtualDisk> disk_;
};

}  // namespace

Status check_compactable(disk::VirtualDisk& disk, compact::Mode mode) {
  if (mode == compact::Mode::Retrim) return ok();
  return fail(ReturnCode::NotSupported, disk.path(),
              fmt::format("not a VHD or VHDX image: a raw image has no block table, so {} has no blocks to release; "
                          "Retrim (--mode retrim, Mode 2) gives its unused space back to the host file system by "
                          "punching holes in the file",
                          compact::to_string(mode)));
}

Result<std::unique_ptr<compact::CompactableImage>> make_compactable(std::unique_ptr<disk::VirtualDisk> disk,
                                                                    compact::Mode mode) {
  VHDKIT_TRY(check_compactable(*disk, mode));
  return std::unique_ptr<compact::CompactableImage>(std::make_unique<RawCompaction>(std::move(disk)));
}

}  // namespace vhdkit::raw
