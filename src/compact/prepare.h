// SPDX-License-Identifier: Apache-2.0
// One prepare step for every compaction (CLI, service, library): everything that can be refused is refused
// here, before a job exists and before a byte is written, and the image is opened once and locked.
//
// Order: the mode itself -> the output path -> existence and write access -> one open of the image file
// (read-write and Exclusive for an in-place run; read-only and Shared for a dry run or a copy) -> the
// format's driver judges the image read-only over that same open file, parents not opened (so a refused
// VHDX keeps even a dirty log unreplayed) -> the compaction hook says whether it can compact it -> Full and
// Quick are refused on a parent of differencing disks (compact/parent_rule.h, 32775) -> for a run that
// writes, the driver opens it read-write from the same file, parents read-only once.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "compact/compact.h"
#include "compact/compactable.h"
#include "core/error.h"
#include "disk/virtual_disk.h"
#include "io/file.h"

namespace vhdkit::compact {

class Prepared {
 public:
  ~Prepared();
  Prepared(const Prepared&) = delete;
  Prepared& operator=(const Prepared&) = delete;

  const std::string& path() const { return path_; }
  const Options& options() const { return options_; }
  // The identity of the image file opened (none for files in memory): what "one job per image" compares.
  const std::optional<io::FileIdentity>& identity() const { return identity_; }
  // The opened image, for reports (sector sizes, map).
  disk::VirtualDisk& disk();

  // Runs the compaction once. env is where an --output copy is made (the image itself is already open).
  Result<Report> run(io::Env& env, Observer* observer);

 private:
  friend Result<std::unique_ptr<Prepared>> prepare(io::Env& env, const std::string& path, const Options& options);
  Prepared(std::string path, Options options) : path_(std::move(path)), options_(std::move(options)) {}

  std::string path_;
  Options options_;
  std::optional<io::FileIdentity> identity_;
  std::unique_ptr<CompactableImage> image_;
  bool ran_ = false;
};

Result<std::unique_ptr<Prepared>> prepare(io::Env& env, const std::string& path, const Options& options);

}  // namespace vhdkit::compact
