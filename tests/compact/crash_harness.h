// SPDX-License-Identifier: Apache-2.0
// The crash harness shared by the VHD and VHDX compaction tests: power cut after every write and every
// flush of a compaction, in every state the crash file can produce (unflushed writes dropped, kept,
// prefixes, subsets, torn sectors). Each state must open as it is (a VHDX log replayed in memory) and read
// the same virtual content as the original; recovered (opened read-write, as its next writer would), it
// must check clean, read the same again and satisfy the real tools; running the compaction again must
// finish the work and reach the size an undisturbed run reaches.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "compact/compact.h"
#include "images.h"

namespace vhdkit::testing {

// The files a crash test starts from (a differencing disk brings its parent), and the one compacted.
struct CrashSetup {
  std::vector<std::pair<std::string, std::vector<std::byte>>> files;
  std::string target;
  QemuReads qemu = QemuReads::Yes;  // qemu reads VHD children (ignoring the parent) but no VHDX children
  // Full mode on a file system changes what unused ranges read: then only these ranges of the virtual disk
  // (offset, length; what the file systems use) must read as before. Empty: the whole disk.
  std::vector<std::pair<uint64_t, uint64_t>> used = {};
  // Full by default; Retrim keeps the file's size (it punches holes), so the undisturbed run must free
  // allocated bytes instead of shrinking the file.
  compact::Mode mode = compact::Mode::Full;
};

CrashSetup crash_setup_of(const std::string& image_file);

// Runs the matrix and prints how many operations, cut points and states it tried.
void crash_matrix(const std::string& name, const CrashSetup& setup);

}  // namespace vhdkit::testing
