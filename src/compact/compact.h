// SPDX-License-Identifier: Apache-2.0
// The compaction entry point: what the job model (src/service) and the CLI call. The prepare step, the
// planner, the executor and the format hooks live beside this file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "disk/virtual_disk.h"
#include "io/file.h"

namespace vhdkit::compact {

// Msvm_ImageManagementService v2 modes (values are the reference's).
enum class Mode : uint16_t { Full = 0, Quick = 1, Retrim = 2, Pretrimmed = 3, Prezeroed = 4 };
std::string_view to_string(Mode m);                        // "full", "quick", ...
std::optional<Mode> mode_from_string(std::string_view s);  // accepts the names above
// The one place a number (the reference's uint16 Mode, from HTTP or a caller) becomes a Mode:
// InvalidParameter naming the valid values otherwise.
Result<Mode> mode_from_number(uint64_t value, const std::string& path);

enum class Action { Compact, DryRun };

// Is the image the parent of differencing disks? Detect: when a child beside it names it (compact/parent_rule.h);
// Declared: the caller says so (children elsewhere). A parent gets no Full or Quick (32775).
enum class ParentOfChildren { Detect, Declared };

enum class ReaderLock { Shared, NoWriter };

struct Options {
  Mode mode = Mode::Full;
  Action action = Action::Compact;
  // Write a compacted copy here (temp file, fsync, rename, fsync the folder) and leave the source alone.
  std::optional<std::string> output_path;
  ParentOfChildren parent_of_children = ParentOfChildren::Detect;
  // How a dry run holds the image. NoWriter for a reader who may not write it (the service's caller
  // without write access): no lock that could keep its owner out; a writer that came during the run makes
  // the answer InUse.
  ReaderLock reader_lock = ReaderLock::Shared;
};

// Told about progress; asked at every safe point whether to stop. Called from the compacting thread.
class Observer {
 public:
  virtual ~Observer() = default;
  virtual void progress(uint64_t done, uint64_t total) { (void)done, (void)total; }
  virtual bool stop_requested() { return false; }
};

enum class Outcome { Completed, Cancelled };

// One partition or volume the file-system pass found (fs::Volume, as reports show it).
struct VolumeReport {
  std::string table;    // "gpt", "mbr", "none" (a file system on the bare disk)
  std::string type;     // partition type ("Linux filesystem", "Linux swap", "LVM", "unknown 0x8f", "whole disk")
  uint64_t offset = 0;  // bytes of the virtual disk
  uint64_t size = 0;
  std::string filesystem;  // "ext4", "swap", ... ("" when none was recognised)
  std::string state;       // "read" or "kept whole"
  std::string reason;      // why it was kept whole
  uint64_t used_bytes = 0;
  uint64_t free_bytes = 0;
  bool operator==(const VolumeReport&) const = default;
};

// How many blocks each mode releases on this image. The run's own mode is always counted; Quick whenever the
// file systems were mapped (it reads no data); the others only in a dry run, which reads what they would.
struct ModeReleases {
  std::optional<uint64_t> full, quick, prezeroed;
  bool operator==(const ModeReleases&) const = default;
};

struct Report {
  std::string path;
  disk::Format format = disk::Format::Raw;
  Mode mode = Mode::Full;  // what was asked
  std::string mode_note;   // how the mode was carried out, e.g. "Full ran as Prezeroed: ..."
  Outcome outcome = Outcome::Completed;
  bool dry_run = false;
  uint64_t file_size_before = 0;
  uint64_t file_size_after = 0;  // predicted, for a dry run
  uint64_t block_size = 0;
  uint64_t blocks_total = 0;
  uint64_t blocks_allocated_before = 0;
  uint64_t blocks_released = 0;
  uint64_t blocks_moved = 0;
  uint64_t bytes_released = 0;  // file_size_before - file_size_after
  // Retrim: bytes of the file made holes (the file's size stays), and what the host stores (st_blocks * 512)
  // before and after (predicted for a dry run).
  uint64_t bytes_punched = 0;
  uint64_t allocated_bytes_before = 0;
  uint64_t allocated_bytes_after = 0;
  // The file-system pass (Full and Quick runs, and every dry run): the volumes found, what each mode would
  // release, the free bytes that stay because their blocks also hold used data (`stranded_free_bytes`, in
  // blocks of `block_size`), and, when nothing is gained or free space is stranded, why and what would help.
  std::vector<VolumeReport> volumes;
  ModeReleases releases;
  uint64_t stranded_free_bytes = 0;
  std::string gain_note;
};

// Compacts the image at path: prepare() (prepare.h) then run. Errors carry the reference return code (FileNotFound,
// AccessDenied, NotSupported, InUse, InvalidParameter, ...). Cancellation is not an error: outcome says so, and the
// image is valid (running again finishes the work).
Result<Report> compact_image(io::Env& env, const std::string& path, const Options& options,
                             Observer* observer = nullptr);

}  // namespace vhdkit::compact
