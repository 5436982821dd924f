// SPDX-License-Identifier: Apache-2.0
#include "io/testing/fault_env.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

namespace vhdkit::io {

std::string_view to_string(Op op) {
  switch (op) {
    case Op::Read: return "read";
    case Op::Write: return "write";
    case Op::Flush: return "flush";
    case Op::Truncate: return "truncate";
    case Op::Punch: return "punch hole";
    case Op::Copy: return "copy range";
    case Op::Rename: return "rename";
    case Op::SyncDir: return "sync directory";
  }
  return "?";
}

FaultPlan FaultState::plan() const {
  std::lock_guard g(mu_);
  return plan_;
}

void FaultState::set_plan(FaultPlan plan) {
  std::lock_guard g(mu_);
  plan_ = plan;
  failing_ = false;
}

uint64_t FaultState::calls() const {
  std::lock_guard g(mu_);
  return log_.size();
}

uint64_t FaultState::calls(Op op) const {
  std::lock_guard g(mu_);
  return static_cast<uint64_t>(std::count_if(log_.begin(), log_.end(), [op](const Call& c) { return c.op == op; }));
}

uint64_t FaultState::failures() const {
  std::lock_guard g(mu_);
  return failures_;
}

std::vector<FaultState::Call> FaultState::log() const {
  std::lock_guard g(mu_);
  return log_;
}

std::optional<Error> FaultState::on_call(Op op, const std::string& path) {
  std::lock_guard g(mu_);
  if (!plan_.counted.contains(op)) return std::nullopt;
  log_.push_back({op, path});
  uint64_t n = log_.size();
  bool fails = n == plan_.fail_at || (failing_ && plan_.persistence == Persistence::Persistent);
  if (!fails) return std::nullopt;
  failing_ = true;
  ++failures_;
  const char* what = plan_.fault == Fault::Eio ? "Input/output error" : "No space left on device";
  return Error(ReturnCode::Failed, path, fmt::format("{} failed: {} (injected at call {})", to_string(op), what, n));
}

FaultFile::FaultFile(std::unique_ptr<File> inner, std::shared_ptr<FaultState> state)
    : File(inner->path()), inner_(std::move(inner)), state_(std::move(state)) {}

Status FaultFile::check(Op op) {
  if (auto e = state_->on_call(op, path())) return fail(std::move(*e));
  return ok();
}

Result<size_t> FaultFile::do_read(uint64_t offset, std::span<std::byte> buf) {
  VHDKIT_TRY(check(Op::Read));
  size_t limit = state_->plan().max_read;
  return inner_->read_up_to(offset, limit ? buf.first(std::min(limit, buf.size())) : buf);
}

Result<size_t> FaultFile::do_write(uint64_t offset, std::span<const std::byte> buf) {
  FaultPlan plan = state_->plan();
  if (auto e = state_->on_call(Op::Write, path())) {
    // A write the host reported as failed may still have put part of its data on the disk.
    if (plan.failed_write == FailedWrite::WritesPrefix && buf.size() > 1)
      (void)inner_->write_at(offset, buf.first(buf.size() / 2));
    return fail(std::move(*e));
  }
  if (plan.max_write) buf = buf.first(std::min(plan.max_write, buf.size()));
  VHDKIT_TRY(inner_->write_at(offset, buf));
  return buf.size();
}

Status FaultFile::do_flush() {
  VHDKIT_TRY(check(Op::Flush));
  return inner_->flush();
}

Status FaultFile::do_truncate(uint64_t size) {
  VHDKIT_TRY(check(Op::Truncate));
  return inner_->truncate(size);
}

Status FaultFile::do_punch_hole(uint64_t offset, uint64_t length) {
  VHDKIT_TRY(check(Op::Punch));
  return inner_->punch_hole(offset, length);
}

Status FaultFile::do_copy_range(uint64_t from, uint64_t to, uint64_t length) {
  VHDKIT_TRY(check(Op::Copy));
  return inner_->copy_range(from, to, length);
}

Result<uint64_t> FaultFile::do_size() { return inner_->size(); }
Result<uint64_t> FaultFile::do_allocated_bytes() { return inner_->allocated_bytes(); }
Result<std::vector<ByteRun>> FaultFile::do_data_ranges(uint64_t offset, uint64_t length) {
  return inner_->data_ranges(offset, length);
}
Result<uint64_t> FaultFile::do_host_block_size() { return inner_->host_block_size(); }
// Preallocation changes no content; it fails like a punch (the host refusing space).
Status FaultFile::do_allocate(uint64_t offset, uint64_t length) {
  VHDKIT_TRY(check(Op::Punch));
  return inner_->allocate(offset, length);
}
Status FaultFile::do_try_lock(LockMode mode) { return inner_->try_lock(mode); }
Status FaultFile::do_unlock() { return inner_->unlock(); }

FaultEnv::FaultEnv(Env& base, FaultPlan plan, std::optional<std::string> only_path)
    : base_(base), state_(std::make_shared<FaultState>(plan)), only_path_(std::move(only_path)) {}

Result<std::unique_ptr<File>> FaultEnv::open(const std::string& path, Access access, Creation creation) {
  VHDKIT_ASSIGN(auto file, base_.open(path, access, creation));
  if (!applies_to(path)) return file;
  return std::make_unique<FaultFile>(std::move(file), state_);
}

bool FaultEnv::exists(const std::string& path) { return base_.exists(path); }

Status FaultEnv::rename(const std::string& from, const std::string& to) {
  if (applies_to(from) || applies_to(to)) {
    if (auto e = state_->on_call(Op::Rename, from)) return fail(std::move(*e));
  }
  return base_.rename(from, to);
}

Status FaultEnv::remove(const std::string& path) { return base_.remove(path); }

Status FaultEnv::sync_dir(const std::string& dir) {
  bool counts = !only_path_ || std::filesystem::path(*only_path_).parent_path() == std::filesystem::path(dir);
  if (!counts) return base_.sync_dir(dir);
  if (auto e = state_->on_call(Op::SyncDir, dir)) return fail(std::move(*e));
  return base_.sync_dir(dir);
}

Status FaultEnv::check_writable(const std::string& path) { return base_.check_writable(path); }

}  // namespace vhdkit::io
