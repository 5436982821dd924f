// SPDX-License-Identifier: Apache-2.0
// Writing a whole new file so that its path holds either its old content (or nothing) or the complete new
// file, never a part, whatever happens (used for `--output`): the data goes to a temporary file in the
// target's directory (so that rename stays within one file system), is flushed, renamed over the target,
// and the directory is synced so that the rename itself survives a power cut. Any failure before the
// rename removes the temporary file.
//
//   VHDKIT_ASSIGN(auto out, io::AtomicOutput::begin(env, target));
//   VHDKIT_TRY(out.file().write_at(...));           // or out.close_file() and reopen out.temp_path()
//   VHDKIT_TRY(out.commit());
#pragma once
// Rule D8 (ARCHITECTURE.md): the target holds the old file or the whole new one after any power cut.

#include <functional>
#include <memory>
#include <string>

#include "core/error.h"
#include "io/file.h"

namespace vhdkit::io {

class AtomicOutput {
 public:
  // Creates ".<name>.vhdkit-tmp-<pid>-<n>" beside target (a name no other writer picks).
  static Result<AtomicOutput> begin(Env& env, std::string target);

  AtomicOutput(AtomicOutput&& other) noexcept;
  AtomicOutput& operator=(AtomicOutput&&) = delete;
  ~AtomicOutput();  // not committed: removes the temporary file

  const std::string& target() const { return target_; }
  const std::string& temp_path() const { return temp_; }
  // The open temporary file. Valid until close_file() or commit().
  File& file() { return *file_; }
  // Closes the temporary file, e.g. so that code which opens by path can work on temp_path().
  void close_file() { file_.reset(); }

  // Flushes the temporary file (reopening it if it was closed), renames it over the target, syncs the
  // directory. On failure before the rename the temporary file is removed and the target is untouched.
  Status commit();

 private:
  AtomicOutput(Env& env, std::string target, std::string temp, std::unique_ptr<File> file)
      : env_(&env), target_(std::move(target)), temp_(std::move(temp)), file_(std::move(file)) {}
  void discard();

  Env* env_;
  std::string target_;
  std::string temp_;
  std::unique_ptr<File> file_;
  bool done_ = false;
};

// The one-call form: fill writes the new content into the temporary file.
Status write_atomically(Env& env, const std::string& target, const std::function<Status(File&)>& fill);

}  // namespace vhdkit::io
