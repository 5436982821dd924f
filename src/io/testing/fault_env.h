// SPDX-License-Identifier: Apache-2.0
// Error injection for tests: FaultFile wraps any File, FaultEnv wraps any Env (and the files it opens), and
// both count the calls they see, so a test can first run a workload to count its I/O calls and then run it
// again failing each call in turn:
//
//   MemEnv mem; ...; FaultEnv counting(mem);  workload(counting);
//   for (uint64_t n = 1; n <= counting.state().calls(); ++n) {
//     MemEnv fresh; ...; FaultEnv env(fresh, {.fail_at = n});  workload(env) must fail cleanly;
//   }
//
// Calls are counted where the implementations see them (File's do_* hooks): one write_at that the host
// serves in several short writes counts once per short write, so keep max_read/max_write the same in the
// counting run and the failing runs.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "io/file.h"

namespace vhdkit::io {

// The kinds of call a FaultPlan can count and fail. size, allocated_bytes and locks are never failed.
enum class Op : uint8_t { Read, Write, Flush, Truncate, Punch, Copy, Rename, SyncDir };
std::string_view to_string(Op op);  // "read", "write", ...

class OpSet {
 public:
  constexpr OpSet(std::initializer_list<Op> ops) {
    for (Op op : ops) bits_ |= bit(op);
  }
  static constexpr OpSet any() { return OpSet(0xff); }
  constexpr bool contains(Op op) const { return (bits_ & bit(op)) != 0; }

 private:
  constexpr explicit OpSet(unsigned bits) : bits_(bits) {}
  static constexpr unsigned bit(Op op) { return 1u << static_cast<unsigned>(op); }
  unsigned bits_ = 0;
};

enum class Fault { Eio, NoSpace };                       // what the failed call reports (EIO / ENOSPC)
enum class Persistence { Transient, Persistent };        // that call only / that call and every later one
enum class FailedWrite { WritesNothing, WritesPrefix };  // a failing write may leave its first half behind

struct FaultPlan {
  OpSet counted = OpSet::any();  // which calls count (and can fail)
  uint64_t fail_at = 0;          // the Nth counted call fails (1-based); 0: nothing fails
  Fault fault = Fault::Eio;
  Persistence persistence = Persistence::Transient;
  FailedWrite failed_write = FailedWrite::WritesNothing;
  size_t max_read = 0;   // short reads: no read call returns more than this many bytes (0: no limit)
  size_t max_write = 0;  // short writes: no write call takes more than this many bytes (0: no limit)
};

// The counter and plan shared by a FaultEnv and every file it wraps. Thread-safe.
class FaultState {
 public:
  struct Call {
    Op op;
    std::string path;
  };

  explicit FaultState(FaultPlan plan = {}) : plan_(plan) {}

  FaultPlan plan() const;
  void set_plan(FaultPlan plan);  // also forgets an earlier persistent failure
  uint64_t calls() const;         // counted calls so far
  uint64_t calls(Op op) const;    // counted calls of one kind
  uint64_t failures() const;      // injected failures so far
  std::vector<Call> log() const;  // every counted call, in order (for messages: "call 7 was a flush of x")

  // Called by FaultFile/FaultEnv before each call; the error to report when this one must fail.
  std::optional<Error> on_call(Op op, const std::string& path);

 private:
  mutable std::mutex mu_;
  FaultPlan plan_;
  std::vector<Call> log_;
  uint64_t failures_ = 0;
  bool failing_ = false;  // a persistent failure has started
};

class FaultFile final : public File {
 public:
  FaultFile(std::unique_ptr<File> inner, std::shared_ptr<FaultState> state);
  File& inner() { return *inner_; }
  FaultState& state() { return *state_; }

 protected:
  Result<size_t> do_read(uint64_t offset, std::span<std::byte> buf) override;
  Result<size_t> do_write(uint64_t offset, std::span<const std::byte> buf) override;
  Status do_flush() override;
  Status do_truncate(uint64_t size) override;
  Result<uint64_t> do_size() override;
  Status do_punch_hole(uint64_t offset, uint64_t length) override;
  Status do_copy_range(uint64_t from, uint64_t to, uint64_t length) override;
  Result<uint64_t> do_allocated_bytes() override;
  Result<std::vector<ByteRun>> do_data_ranges(uint64_t offset, uint64_t length) override;
  Result<uint64_t> do_host_block_size() override;
  Status do_allocate(uint64_t offset, uint64_t length) override;
  Status do_try_lock(LockMode mode) override;
  Status do_unlock() override;

 private:
  Status check(Op op);

  std::unique_ptr<File> inner_;
  std::shared_ptr<FaultState> state_;
};

// Wraps every file opened through it (or only those at only_path) in a FaultFile sharing one FaultState;
// rename and sync_dir count too. exists, remove, check_writable and list_files pass straight through.
class FaultEnv final : public Env {
 public:
  explicit FaultEnv(Env& base, FaultPlan plan = {}, std::optional<std::string> only_path = std::nullopt);

  FaultState& state() { return *state_; }

  Result<std::unique_ptr<File>> open(const std::string& path, Access access,
                                     Creation creation = Creation::OpenExisting) override;
  bool exists(const std::string& path) override;
  Status rename(const std::string& from, const std::string& to) override;
  Status remove(const std::string& path) override;
  Status sync_dir(const std::string& dir) override;
  Status check_writable(const std::string& path) override;
  Result<std::vector<std::string>> list_files(const std::string& dir) override { return base_.list_files(dir); }
  Result<std::string> canonical(const std::string& path) override { return base_.canonical(path); }
  Result<std::string> absolute(const std::string& path) override { return base_.absolute(path); }

 private:
  bool applies_to(const std::string& path) const { return !only_path_ || *only_path_ == path; }

  Env& base_;
  std::shared_ptr<FaultState> state_;
  std::optional<std::string> only_path_;
};

}  // namespace vhdkit::io
