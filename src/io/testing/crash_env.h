// SPDX-License-Identifier: Apache-2.0
// Power cuts for tests. A CrashEnv keeps, for every file, a durable image (what the disk holds for sure)
// and the mutations made since the last successful flush (pending: in the page cache, maybe on the disk,
// maybe not). Programs run against it as against any Env and see every mutation at once; a test then asks
// which states a power cut at this point could leave on the disk, and reopens the image from each.
//
// What a power cut may leave, per file (the model every state below is drawn from):
//   - every durable byte, plus any subset of the pending operations, applied in their original order;
//   - a pending write is not atomic: each 512-byte sector it touches is either all old or all new (a torn
//     write). A sector itself is never torn: one aligned 512-byte write is atomic.
//   - a pending truncate either happened or did not. If it did not, bytes past its new size keep what the
//     applied operations before it left there; a shrink that happened followed by an applied write past the
//     new end leaves zeros in the gap.
//   - a pending punch_hole either happened (the range reads zeros) or did not (old bytes); it never changes
//     the size.
//   - a write past the end that was torn extends the file only as far as its last new sector (its end, not
//     past it); sectors of it that did not land and lie past the old end read as zeros.
//   - a successful flush makes everything before it durable (fdatasync of the whole file).
// And for the directory tree, one for the whole CrashEnv:
//   - directory operations (creating a file, rename, remove) are durable only after a later sync_dir (of
//     any directory: one file-system journal commits them in order). Until then a power cut keeps any
//     prefix of them. A file's content is independent of its names: flushing a file does not make its
//     name durable, and a rename does not make the file's content durable.
// File states are chosen for one path: the file that path names now. In a restarted world every other file
// holds its durable bytes, under the names the chosen prefix of directory operations gives.
//
// The compaction crash harness, in short (see run_crash_matrix below, which does exactly this):
//   count: CrashEnv env; setup(env); workload(env); total = env.mutating_ops();
//   for cut in 1..total: fresh env; setup; env.cut_power_after(cut); workload(env) (it fails after cut);
//     for each state in env.representative_states(path): auto after = env.restart(path, state); check(*after).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "io/file.h"
#include "io/testing/mem_env.h"

namespace vhdkit::io {

constexpr uint64_t kSectorSize = 512;  // the unit a power cut cannot tear

// One mutation not yet flushed.
struct PendingOp {
  enum class Kind { Write, Truncate, Punch };
  Kind kind = Kind::Write;
  uint64_t offset = 0;          // Write/Punch: where; Truncate: the new size
  uint64_t length = 0;          // Punch: how many bytes; Write: data.size()
  std::vector<std::byte> data;  // Write only

  // Write only: the 512-byte sectors it touches (a partial sector at either end counts).
  uint64_t sectors() const;
};

// One state of a file after a power cut: which pending operations reached the disk.
struct CrashState {
  enum class Kind { DurableOnly, AllPending, Prefix, Subset, Torn };
  Kind kind = Kind::DurableOnly;
  std::vector<bool> applied;       // one flag per pending operation, in order
  std::optional<size_t> torn;      // a pending write that reached the disk only in part
  std::vector<bool> torn_sectors;  // per sector of that write (PendingOp::sectors()): true = new bytes
  // Directory operations not yet synced, and how many of them (a prefix) reached the disk. DurableOnly
  // has none applied; every other kind starts with all applied (see CrashEnv::with_directory_ops).
  size_t directory_ops_pending = 0;
  size_t directory_ops_applied = 0;
  std::string describe() const;       // "prefix 3 of 7", "write 5 of 7 torn: sectors 1,2 of 4 new", ...
  std::string describe_file() const;  // the same without the directory operations
  bool operator==(const CrashState&) const = default;
};

struct EnumerationOptions {
  size_t exhaustive_subsets_up_to = 6;  // with at most this many pending ops, try every subset
  size_t random_subsets = 8;            // otherwise this many random subsets
  size_t max_torn_prefixes = 16;        // torn variants of the last write: its first k sectors new
  uint64_t seed = 1;
  // run_crash_matrix: cut the power after every op (1), or only after every Nth op of a long workload, plus
  // its first and last few ops (where the shrink and the header switch happen). The environment variable
  // VHDKIT_CRASH_STRIDE overrides it: sanitizer builds run the matrices sampled, the normal build in full.
  uint64_t cut_stride = 1;
};

class CrashEnv final : public Env {
 public:
  CrashEnv();
  ~CrashEnv() override;

  // Setup: a file whose whole content is durable (creates or replaces it).
  void set_bytes(const std::string& path, std::vector<std::byte> bytes);
  // Setup done through the Env (e.g. creating an image): make every file, name and pending operation
  // durable and start counting mutating operations from 0 again. run_crash_matrix calls it after setup.
  void make_durable();
  // What the running program sees now / what is surely on the disk / what is in between.
  std::optional<std::vector<std::byte>> bytes(const std::string& path) const;
  std::optional<std::vector<std::byte>> durable_bytes(const std::string& path) const;
  std::vector<PendingOp> pending(const std::string& path) const;

  // Mutating operations are write (each host-level write call), flush, truncate and punch_hole, and the
  // directory operations (creating or truncating open, rename, remove, sync_dir), counted over all files.
  // After the Nth, the power is off: every later call on any file or on the Env fails (unlock excepted),
  // so the workload stops there. 0: never.
  void cut_power_after(uint64_t n);
  uint64_t mutating_ops() const;
  bool power_is_off() const;

  // The states of one file, at this point. Each fails loudly (InvalidParameter) on a bad index or mask.
  CrashState durable_only(const std::string& path) const;
  CrashState all_pending(const std::string& path) const;
  Result<CrashState> prefix(const std::string& path, size_t count) const;
  Result<CrashState> subset(const std::string& path, std::vector<bool> applied) const;
  CrashState random_subset(const std::string& path, uint64_t seed) const;
  // Operations before `write` applied, `write` torn: new_sectors[i] says whether its ith sector landed.
  Result<CrashState> torn(const std::string& path, size_t write, std::vector<bool> new_sectors) const;
  // The same file state with only the first `count` unsynced directory operations on the disk.
  Result<CrashState> with_directory_ops(CrashState state, size_t count) const;
  // The unsynced directory operations, described ("rename /a/x.tmp -> /a/x").
  std::vector<std::string> pending_directory_ops() const;

  // A bounded, representative set, without repeats: durable only, all pending, every prefix, every subset
  // (few pending) or some random ones, and torn variants: for each pending write of two or more sectors
  // (with the operations before it applied) only its first / only its last / all but its first / all but
  // its last sector new; for the last pending write also its first k sectors new, k = 1..max_torn_prefixes.
  // With unsynced directory operations, also every prefix of them with all of the file's writes applied.
  std::vector<CrashState> representative_states(const std::string& path, const EnumerationOptions& options = {}) const;

  // The file's bytes in a state.
  Result<std::vector<std::byte>> image(const std::string& path, const CrashState& state) const;
  // The world after the power comes back: the names the state's directory operations give, every file
  // durable only but the one `path` names now, which is in `state`.
  Result<std::unique_ptr<MemEnv>> restart(const std::string& path, const CrashState& state) const;

  // Env
  Result<std::unique_ptr<File>> open(const std::string& path, Access access,
                                     Creation creation = Creation::OpenExisting) override;
  bool exists(const std::string& path) override;
  Status rename(const std::string& from, const std::string& to) override;
  Status remove(const std::string& path) override;
  Status sync_dir(const std::string& dir) override;
  Status check_writable(const std::string& path) override;
  Result<std::vector<std::string>> list_files(const std::string& dir) override { return current_.list_files(dir); }

  struct Journal;  // durable image + pending operations of one file (its inode)
  struct Power;    // the operation counter and the switch
  struct DirectoryOp;

 private:
  using Names = std::map<std::string, std::shared_ptr<Journal>>;
  std::shared_ptr<Journal> journal(const std::string& path) const;
  void record_directory_op(DirectoryOp op);  // with mu_ held
  CrashState make_state(CrashState::Kind kind, std::vector<bool> applied, std::optional<size_t> torn = std::nullopt,
                        std::vector<bool> torn_sectors = {}) const;

  MemEnv current_;  // what the program sees
  mutable std::mutex mu_;
  Names journals_;                          // names now
  Names durable_names_;                     // names surely on the disk
  std::vector<DirectoryOp> pending_names_;  // since the last sync_dir
  std::shared_ptr<Power> power_;
};

// The crash harness loop. setup puts the initial (durable) files into a fresh CrashEnv; workload runs the
// program (its result is ignored: after the cut it fails); check looks at the world after a power cut and
// reports problems with gtest assertions or however it likes. Returns what it covered.
struct CrashPoint {
  uint64_t cut_after = 0;  // the workload's mutating operations that ran
  uint64_t total_ops = 0;  // in an uninterrupted run
  CrashState state;
  std::string describe() const;  // "after op 12 of 40: torn write 3 of 5 (...)"
};
struct CrashCoverage {
  uint64_t total_ops = 0;  // mutating operations of an uninterrupted run
  uint64_t cut_points = 0;
  uint64_t states = 0;  // states checked, over all cut points
};
CrashCoverage run_crash_matrix(const std::function<void(CrashEnv&)>& setup, const std::function<void(Env&)>& workload,
                               const std::string& path,
                               const std::function<void(MemEnv& after, const CrashPoint&)>& check,
                               const EnumerationOptions& options = {});

}  // namespace vhdkit::io
