// SPDX-License-Identifier: Apache-2.0
// What the job service needs from the layers below it, as one small interface: production wires it to
// compact::prepare() and Prepared::run(); tests of the job model substitute their own.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "compact/compact.h"
#include "core/error.h"
#include "disk/virtual_disk.h"
#include "io/file.h"

namespace vhdkit::service {

// An image the engine has checked, opened and locked for one compaction; the job runs it later, on a
// worker thread.
class PreparedCompaction {
 public:
  virtual ~PreparedCompaction() = default;
  // The identity of the opened image file (none for files in memory): "one job per image" compares it.
  virtual std::optional<io::FileIdentity> identity() const = 0;
  // The opened image (for GetVirtualHardDiskState); nullptr where there is none (tests' fakes).
  virtual disk::VirtualDisk* disk() = 0;
  virtual Result<compact::Report> run(compact::Observer* observer) = 0;
};

class Engine {
 public:
  virtual ~Engine() = default;
  // compact::prepare(): every refusal (mode, access, lock, format, what the format can do) comes back here,
  // synchronously. The image and its parents are opened through `access` (the daemon's CallerEnv: with
  // the caller's rights) and stay open until the prepared compaction is run or dropped.
  virtual Result<std::unique_ptr<PreparedCompaction>> prepare(io::Env& access, const std::string& path,
                                                              const compact::Options& options) = 0;
};

// compact::prepare() + compact::Prepared::run(); an --output copy is made through `env` (the service's).
std::unique_ptr<Engine> make_engine(io::Env& env);

}  // namespace vhdkit::service
