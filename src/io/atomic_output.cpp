// SPDX-License-Identifier: Apache-2.0
#include "io/atomic_output.h"

#include <unistd.h>

#include <fmt/format.h>

#include <atomic>
#include <filesystem>

namespace vhdkit::io {

Result<AtomicOutput> AtomicOutput::begin(Env& env, std::string target) {
  static std::atomic<uint64_t> counter{0};
  const std::filesystem::path t(target);
  for (int attempt = 0;; ++attempt) {
    std::string temp =
        (t.parent_path() / fmt::format(".{}.vhdkit-tmp-{}-{}", t.filename().string(), ::getpid(), counter.fetch_add(1)))
            .string();
    auto file = env.open(temp, Access::ReadWrite, Creation::CreateNew);
    if (file) return AtomicOutput(env, std::move(target), std::move(temp), std::move(*file));
    // A leftover of a crashed run may have the name: try another; anything else is the answer.
    if (attempt >= 100 || !env.exists(temp)) {
      return fail(file.error().code(), target,
                  fmt::format("cannot create a temporary file beside it: {}", file.error().message()));
    }
  }
}

AtomicOutput::AtomicOutput(AtomicOutput&& other) noexcept
    : env_(other.env_),
      target_(std::move(other.target_)),
      temp_(std::move(other.temp_)),
      file_(std::move(other.file_)),
      done_(other.done_) {
  other.done_ = true;
}

AtomicOutput::~AtomicOutput() { discard(); }

void AtomicOutput::discard() {
  if (done_) return;
  done_ = true;
  file_.reset();
  (void)env_->remove(temp_);
}

Status AtomicOutput::commit() {
  if (done_) return fail(ReturnCode::InvalidState, target_, "the output was already committed or discarded");
  auto fail_and_discard = [&](const Error& e) {
    discard();
    return fail(e.code(), target_, fmt::format("writing the output failed: {}", e.message()));
  };
  if (!file_) {
    auto reopened = env_->open(temp_, Access::ReadWrite);
    if (!reopened) return fail_and_discard(reopened.error());
    file_ = std::move(*reopened);
  }
  if (auto s = file_->flush(); !s) return fail_and_discard(s.error());
  file_.reset();
  if (auto s = env_->rename(temp_, target_); !s) return fail_and_discard(s.error());
  done_ = true;  // the new file is in place; only its durability is left
  if (auto s = env_->sync_dir(directory_of(target_)); !s) {
    return fail(s.error().code(), target_,
                fmt::format("the output is written but may not survive a power cut: {}", s.error().message()));
  }
  return ok();
}

Status write_atomically(Env& env, const std::string& target, const std::function<Status(File&)>& fill) {
  VHDKIT_ASSIGN(auto out, AtomicOutput::begin(env, target));
  if (auto s = fill(out.file()); !s) {
    // The temporary name means nothing to the user: say it of the output. Errors about other files stay.
    if (s.error().path() != out.temp_path()) return s;
    return fail(s.error().code(), target, fmt::format("writing the output failed: {}", s.error().message()));
  }
  return out.commit();
}

}  // namespace vhdkit::io
