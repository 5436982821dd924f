// SPDX-License-Identifier: Apache-2.0
#include "io/testing/crash_env.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <random>
#include <set>
#include <tuple>

namespace vhdkit::io {

uint64_t PendingOp::sectors() const {
  if (kind != Kind::Write || data.empty()) return 0;
  return (offset + data.size() - 1) / kSectorSize - offset / kSectorSize + 1;
}

struct CrashEnv::Journal {
  std::mutex mu;
  std::vector<std::byte> durable;
  std::vector<PendingOp> pending;
};

struct CrashEnv::Power {
  mutable std::mutex mu;
  uint64_t ops = 0;
  uint64_t cut_after = 0;

  bool off() const {
    std::lock_guard g(mu);
    return cut_after != 0 && ops >= cut_after;
  }
  Status check(const std::string& path) const {
    if (!off()) return ok();
    return fail(ReturnCode::Failed, path,
                fmt::format("the power is off (simulated power cut after operation {})", cut_after));
  }
  void count() {
    std::lock_guard g(mu);
    ++ops;
  }
};

struct CrashEnv::DirectoryOp {
  enum class Kind { Create, Rename, Remove };
  Kind kind = Kind::Create;
  std::string path;
  std::string to;                  // Rename only
  std::shared_ptr<Journal> inode;  // Create only

  void apply(Names& names) const {
    switch (kind) {
      case Kind::Create: names[path] = inode; return;
      case Kind::Remove: names.erase(path); return;
      case Kind::Rename: {
        auto node = names.extract(path);
        names.erase(to);
        if (!node.empty()) {
          node.key() = to;
          names.insert(std::move(node));
        }
        return;
      }
    }
  }
  std::string describe() const {
    switch (kind) {
      case Kind::Create: return "create " + path;
      case Kind::Remove: return "remove " + path;
      case Kind::Rename: return "rename " + path + " -> " + to;
    }
    return "?";
  }
};

namespace {

// Applies one pending operation to a file image; a torn write only where new_sectors says so.
void apply(std::vector<std::byte>& image, const PendingOp& op, const std::vector<bool>* new_sectors = nullptr) {
  switch (op.kind) {
    case PendingOp::Kind::Truncate: image.resize(static_cast<size_t>(op.offset)); return;
    case PendingOp::Kind::Punch: {
      if (op.offset >= image.size()) return;
      uint64_t end = std::min<uint64_t>(image.size(), op.offset + op.length);
      std::fill(image.begin() + static_cast<ptrdiff_t>(op.offset), image.begin() + static_cast<ptrdiff_t>(end),
                std::byte{0});
      return;
    }
    case PendingOp::Kind::Write: {
      const uint64_t first_sector = op.offset / kSectorSize;
      const uint64_t end = op.offset + op.data.size();
      for (uint64_t i = 0; i < op.sectors(); ++i) {
        if (new_sectors && !(*new_sectors)[i]) continue;
        uint64_t from = std::max(op.offset, (first_sector + i) * kSectorSize);
        uint64_t to = std::min(end, (first_sector + i + 1) * kSectorSize);
        if (image.size() < to) image.resize(static_cast<size_t>(to));
        std::memcpy(image.data() + from, op.data.data() + (from - op.offset), static_cast<size_t>(to - from));
      }
      return;
    }
  }
}

std::string sector_list(const std::vector<bool>& sectors) {
  std::string out;
  for (size_t i = 0; i < sectors.size(); ++i) {
    if (!sectors[i]) continue;
    if (!out.empty()) out += ",";
    out += std::to_string(i);
  }
  return out.empty() ? "none" : out;
}

Error bad_state(const std::string& path, std::string message) {
  return Error(ReturnCode::InvalidParameter, path, "crash state: " + message);
}

// A File over the program's view (a MemFile) that records every mutation in the file's journal and stops
// working when the power goes off.
class CrashFile final : public File {
 public:
  CrashFile(std::unique_ptr<File> view, std::shared_ptr<CrashEnv::Journal> journal,
            std::shared_ptr<CrashEnv::Power> power)
      : File(view->path()), view_(std::move(view)), journal_(std::move(journal)), power_(std::move(power)) {}

 protected:
  Result<size_t> do_read(uint64_t offset, std::span<std::byte> buf) override {
    VHDKIT_TRY(power_->check(path()));
    return view_->read_up_to(offset, buf);
  }

  Result<size_t> do_write(uint64_t offset, std::span<const std::byte> buf) override {
    VHDKIT_TRY(power_->check(path()));
    VHDKIT_TRY(view_->write_at(offset, buf));
    record({PendingOp::Kind::Write, offset, buf.size(), std::vector<std::byte>(buf.begin(), buf.end())});
    return buf.size();
  }

  Status do_flush() override {
    VHDKIT_TRY(power_->check(path()));
    VHDKIT_TRY(view_->flush());
    {
      std::lock_guard g(journal_->mu);
      for (const auto& op : journal_->pending) apply(journal_->durable, op);
      journal_->pending.clear();
    }
    power_->count();
    return ok();
  }

  Status do_truncate(uint64_t size) override {
    VHDKIT_TRY(power_->check(path()));
    VHDKIT_TRY(view_->truncate(size));
    record({PendingOp::Kind::Truncate, size, 0, {}});
    return ok();
  }

  Status do_punch_hole(uint64_t offset, uint64_t length) override {
    VHDKIT_TRY(power_->check(path()));
    VHDKIT_TRY(view_->punch_hole(offset, length));
    record({PendingOp::Kind::Punch, offset, length, {}});
    return ok();
  }

  Result<uint64_t> do_size() override {
    VHDKIT_TRY(power_->check(path()));
    return view_->size();
  }
  Result<uint64_t> do_allocated_bytes() override {
    VHDKIT_TRY(power_->check(path()));
    return view_->allocated_bytes();
  }
  Result<std::vector<ByteRun>> do_data_ranges(uint64_t offset, uint64_t length) override {
    VHDKIT_TRY(power_->check(path()));
    return view_->data_ranges(offset, length);
  }
  Result<uint64_t> do_host_block_size() override { return view_->host_block_size(); }
  // Preallocation changes no byte a reader sees, so a power cut cannot tell whether it happened: nothing is
  // journalled.
  Status do_allocate(uint64_t offset, uint64_t length) override {
    VHDKIT_TRY(power_->check(path()));
    return view_->allocate(offset, length);
  }
  Status do_try_lock(LockMode mode) override {
    VHDKIT_TRY(power_->check(path()));
    return view_->try_lock(mode);
  }
  Status do_unlock() override { return view_->unlock(); }

 private:
  void record(PendingOp op) {
    {
      std::lock_guard g(journal_->mu);
      journal_->pending.push_back(std::move(op));
    }
    power_->count();
  }

  std::unique_ptr<File> view_;
  std::shared_ptr<CrashEnv::Journal> journal_;
  std::shared_ptr<CrashEnv::Power> power_;
};

}  // namespace

std::string CrashState::describe() const {
  std::string dirs = directory_ops_pending == 0 ? ""
                                                : fmt::format("; {} of {} unsynced directory operations on disk",
                                                              directory_ops_applied, directory_ops_pending);
  return describe_file() + dirs;
}

std::string CrashState::describe_file() const {
  size_t n = applied.size();
  size_t count = static_cast<size_t>(std::count(applied.begin(), applied.end(), true));
  switch (kind) {
    case Kind::DurableOnly: return fmt::format("durable only (none of {} pending)", n);
    case Kind::AllPending: return fmt::format("all {} pending", n);
    case Kind::Prefix: return fmt::format("prefix {} of {} pending", count, n);
    case Kind::Subset: {
      std::string ops;
      for (size_t i = 0; i < n; ++i) ops += applied[i] ? '1' : '0';
      return fmt::format("subset {} of {} pending (applied: {})", count, n, ops);
    }
    case Kind::Torn:
      return fmt::format("{} of {} pending applied, write {} torn (new sectors: {} of {})", count, n, torn.value_or(0),
                         sector_list(torn_sectors), torn_sectors.size());
  }
  return "?";
}

std::string CrashPoint::describe() const {
  return fmt::format("power cut after operation {} of {}: {}", cut_after, total_ops, state.describe());
}

CrashEnv::CrashEnv() : power_(std::make_shared<Power>()) {}
CrashEnv::~CrashEnv() = default;

std::shared_ptr<CrashEnv::Journal> CrashEnv::journal(const std::string& path) const {
  std::lock_guard g(mu_);
  auto it = journals_.find(path);
  return it == journals_.end() ? nullptr : it->second;
}

void CrashEnv::set_bytes(const std::string& path, std::vector<std::byte> bytes) {
  auto j = std::make_shared<Journal>();
  j->durable = bytes;
  current_.set_bytes(path, std::move(bytes));
  std::lock_guard g(mu_);
  durable_names_[path] = j;
  journals_[path] = std::move(j);
}

void CrashEnv::make_durable() {
  {
    std::lock_guard g(mu_);
    for (const auto& [path, j] : journals_) {
      std::lock_guard jg(j->mu);
      for (const auto& op : j->pending) apply(j->durable, op);
      j->pending.clear();
    }
    durable_names_ = journals_;
    pending_names_.clear();
  }
  std::lock_guard g(power_->mu);
  power_->ops = 0;
}

std::optional<std::vector<std::byte>> CrashEnv::bytes(const std::string& path) const { return current_.bytes(path); }

std::optional<std::vector<std::byte>> CrashEnv::durable_bytes(const std::string& path) const {
  auto j = journal(path);
  if (!j) return std::nullopt;
  std::lock_guard g(j->mu);
  return j->durable;
}

std::vector<PendingOp> CrashEnv::pending(const std::string& path) const {
  auto j = journal(path);
  if (!j) return {};
  std::lock_guard g(j->mu);
  return j->pending;
}

void CrashEnv::cut_power_after(uint64_t n) {
  std::lock_guard g(power_->mu);
  power_->cut_after = n;
}

uint64_t CrashEnv::mutating_ops() const {
  std::lock_guard g(power_->mu);
  return power_->ops;
}

bool CrashEnv::power_is_off() const { return power_->off(); }

CrashState CrashEnv::make_state(CrashState::Kind kind, std::vector<bool> applied, std::optional<size_t> torn,
                                std::vector<bool> torn_sectors) const {
  size_t dirs;
  {
    std::lock_guard g(mu_);
    dirs = pending_names_.size();
  }
  return {
      kind, std::move(applied), torn, std::move(torn_sectors), dirs, kind == CrashState::Kind::DurableOnly ? 0 : dirs};
}

CrashState CrashEnv::durable_only(const std::string& path) const {
  return make_state(CrashState::Kind::DurableOnly, std::vector<bool>(pending(path).size(), false));
}

CrashState CrashEnv::all_pending(const std::string& path) const {
  return make_state(CrashState::Kind::AllPending, std::vector<bool>(pending(path).size(), true));
}

Result<CrashState> CrashEnv::with_directory_ops(CrashState state, size_t count) const {
  std::lock_guard g(mu_);
  if (state.directory_ops_pending != pending_names_.size() || count > pending_names_.size()) {
    return fail(ReturnCode::InvalidParameter, "(crash env)",
                fmt::format("crash state: {} of {} directory operations, but {} are pending", count,
                            state.directory_ops_pending, pending_names_.size()));
  }
  state.directory_ops_applied = count;
  return state;
}

std::vector<std::string> CrashEnv::pending_directory_ops() const {
  std::lock_guard g(mu_);
  std::vector<std::string> out;
  for (const auto& op : pending_names_) out.push_back(op.describe());
  return out;
}

Result<CrashState> CrashEnv::prefix(const std::string& path, size_t count) const {
  size_t n = pending(path).size();
  if (count > n) return fail(bad_state(path, fmt::format("prefix {} of only {} pending operations", count, n)));
  std::vector<bool> applied(n, false);
  std::fill(applied.begin(), applied.begin() + static_cast<ptrdiff_t>(count), true);
  return make_state(CrashState::Kind::Prefix, std::move(applied));
}

Result<CrashState> CrashEnv::subset(const std::string& path, std::vector<bool> applied) const {
  size_t n = pending(path).size();
  if (applied.size() != n)
    return fail(bad_state(path, fmt::format("a mask of {} for {} pending operations", applied.size(), n)));
  return make_state(CrashState::Kind::Subset, std::move(applied));
}

CrashState CrashEnv::random_subset(const std::string& path, uint64_t seed) const {
  std::mt19937_64 rng(seed);
  std::vector<bool> applied(pending(path).size());
  for (size_t i = 0; i < applied.size(); ++i) applied[i] = (rng() & 1) != 0;
  return make_state(CrashState::Kind::Subset, std::move(applied));
}

Result<CrashState> CrashEnv::torn(const std::string& path, size_t write, std::vector<bool> new_sectors) const {
  auto ops = pending(path);
  if (write >= ops.size() || ops[write].kind != PendingOp::Kind::Write)
    return fail(bad_state(path, fmt::format("pending operation {} is not a write", write)));
  if (new_sectors.size() != ops[write].sectors()) {
    return fail(bad_state(
        path, fmt::format("a mask of {} sectors for a write of {}", new_sectors.size(), ops[write].sectors())));
  }
  std::vector<bool> applied(ops.size(), false);
  std::fill(applied.begin(), applied.begin() + static_cast<ptrdiff_t>(write), true);
  return make_state(CrashState::Kind::Torn, std::move(applied), write, std::move(new_sectors));
}

std::vector<CrashState> CrashEnv::representative_states(const std::string& path,
                                                        const EnumerationOptions& options) const {
  if (!journal(path)) return {};
  const auto ops = pending(path);
  const size_t n = ops.size();
  std::vector<CrashState> out;
  std::set<std::tuple<std::vector<bool>, std::optional<size_t>, std::vector<bool>, size_t>> seen;
  auto add = [&](Result<CrashState> s) {
    if (s && seen.insert({s->applied, s->torn, s->torn_sectors, s->directory_ops_applied}).second)
      out.push_back(std::move(*s));
  };

  add(durable_only(path));
  add(all_pending(path));
  for (size_t k = 1; k < n; ++k) add(prefix(path, k));
  if (n <= options.exhaustive_subsets_up_to) {
    for (uint64_t mask = 0; mask < (uint64_t{1} << n); ++mask) {
      std::vector<bool> applied(n);
      for (size_t i = 0; i < n; ++i) applied[i] = (mask >> i) & 1;
      add(subset(path, std::move(applied)));
    }
  } else {
    for (size_t i = 0; i < options.random_subsets; ++i) add(random_subset(path, options.seed + i));
  }

  size_t last_write = n;
  for (size_t w = 0; w < n; ++w) {
    if (ops[w].kind == PendingOp::Kind::Write) last_write = w;
  }
  for (size_t w = 0; w < n; ++w) {
    const size_t m = static_cast<size_t>(ops[w].sectors());
    if (m < 2) continue;
    auto only = [&](size_t s) {
      std::vector<bool> v(m, false);
      v[s] = true;
      return v;
    };
    auto all_but = [&](size_t s) {
      std::vector<bool> v(m, true);
      v[s] = false;
      return v;
    };
    add(torn(path, w, only(0)));
    add(torn(path, w, only(m - 1)));
    add(torn(path, w, all_but(0)));
    add(torn(path, w, all_but(m - 1)));
    if (w != last_write) continue;
    // The first k sectors landed: spread over the write when it has more sectors than we try.
    size_t tries = std::min(m - 1, options.max_torn_prefixes);
    for (size_t t = 1; t <= tries; ++t) {
      size_t k = tries == m - 1 ? t : t * (m - 1) / tries;
      std::vector<bool> v(m, false);
      std::fill(v.begin(), v.begin() + static_cast<ptrdiff_t>(k), true);
      add(torn(path, w, std::move(v)));
    }
  }
  const CrashState all = all_pending(path);
  for (size_t k = 0; k < all.directory_ops_pending; ++k) add(with_directory_ops(all, k));
  return out;
}

Result<std::vector<std::byte>> CrashEnv::image(const std::string& path, const CrashState& state) const {
  auto j = journal(path);
  if (!j) return fail(ReturnCode::FileNotFound, path, "crash state: no such file");
  std::lock_guard g(j->mu);
  const auto& ops = j->pending;
  if (state.applied.size() != ops.size()) {
    return fail(bad_state(
        path, fmt::format("made for {} pending operations, the file has {}", state.applied.size(), ops.size())));
  }
  if (state.torn && (*state.torn >= ops.size() || ops[*state.torn].kind != PendingOp::Kind::Write ||
                     state.torn_sectors.size() != ops[*state.torn].sectors() || state.applied[*state.torn])) {
    return fail(bad_state(path, fmt::format("operation {} cannot be torn that way", *state.torn)));
  }
  std::vector<std::byte> out = j->durable;
  for (size_t i = 0; i < ops.size(); ++i) {
    if (state.applied[i])
      apply(out, ops[i]);
    else if (state.torn == i)
      apply(out, ops[i], &state.torn_sectors);
  }
  return out;
}

Result<std::unique_ptr<MemEnv>> CrashEnv::restart(const std::string& path, const CrashState& state) const {
  VHDKIT_ASSIGN(auto bytes, image(path, state));
  std::lock_guard g(mu_);
  if (state.directory_ops_pending != pending_names_.size() || state.directory_ops_applied > pending_names_.size()) {
    return fail(bad_state(path, fmt::format("made for {} directory operations, {} are pending",
                                            state.directory_ops_pending, pending_names_.size())));
  }
  Names names = durable_names_;
  for (size_t i = 0; i < state.directory_ops_applied; ++i) pending_names_[i].apply(names);
  const auto chosen = journals_.at(path);  // image() found it
  auto env = std::make_unique<MemEnv>();
  for (const auto& [name, j] : names) {
    if (j == chosen) {
      env->set_bytes(name, bytes);
      continue;
    }
    std::lock_guard jg(j->mu);
    env->set_bytes(name, j->durable);
  }
  return env;
}

Result<std::unique_ptr<File>> CrashEnv::open(const std::string& path, Access access, Creation creation) {
  VHDKIT_TRY(power_->check(path));
  bool existed = current_.exists(path);
  VHDKIT_ASSIGN(auto view, current_.open(path, access, creation));
  std::shared_ptr<Journal> j;
  {
    std::lock_guard g(mu_);
    auto& slot = journals_[path];
    if (!slot || !existed) {
      slot = std::make_shared<Journal>();
      record_directory_op({DirectoryOp::Kind::Create, path, {}, slot});
    }
    j = slot;
  }
  if (existed && creation == Creation::CreateOrTruncate) {
    {
      std::lock_guard g(j->mu);
      j->pending.push_back({PendingOp::Kind::Truncate, 0, 0, {}});
    }
    power_->count();
  }
  return std::make_unique<CrashFile>(std::move(view), std::move(j), power_);
}

bool CrashEnv::exists(const std::string& path) { return current_.exists(path); }

Status CrashEnv::rename(const std::string& from, const std::string& to) {
  VHDKIT_TRY(power_->check(from));
  VHDKIT_TRY(current_.rename(from, to));
  std::lock_guard g(mu_);
  DirectoryOp op{DirectoryOp::Kind::Rename, from, to, nullptr};
  op.apply(journals_);
  record_directory_op(std::move(op));
  return ok();
}

Status CrashEnv::remove(const std::string& path) {
  VHDKIT_TRY(power_->check(path));
  VHDKIT_TRY(current_.remove(path));
  std::lock_guard g(mu_);
  journals_.erase(path);
  record_directory_op({DirectoryOp::Kind::Remove, path, {}, nullptr});
  return ok();
}

Status CrashEnv::sync_dir(const std::string& dir) {
  VHDKIT_TRY(power_->check(dir));
  VHDKIT_TRY(current_.sync_dir(dir));
  {
    std::lock_guard g(mu_);
    for (const auto& op : pending_names_) op.apply(durable_names_);
    pending_names_.clear();
  }
  power_->count();
  return ok();
}

Status CrashEnv::check_writable(const std::string& path) {
  VHDKIT_TRY(power_->check(path));
  return current_.check_writable(path);
}

void CrashEnv::record_directory_op(DirectoryOp op) {
  pending_names_.push_back(std::move(op));
  power_->count();
}

namespace {

// Workloads this short always run in full: the sampling is for the long compactions.
constexpr uint64_t kAlwaysCheckedOps = 16;
constexpr uint64_t kCheckedTail = 6;

uint64_t cut_stride(const EnumerationOptions& options) {
  if (const char* v = std::getenv("VHDKIT_CRASH_STRIDE")) {
    char* end = nullptr;
    unsigned long long n = std::strtoull(v, &end, 10);
    if (end != v && *end == 0 && n >= 1) return n;
  }
  return std::max<uint64_t>(options.cut_stride, 1);
}

bool sampled(uint64_t cut, uint64_t total, uint64_t stride) {
  return stride == 1 || total <= kAlwaysCheckedOps || cut == 1 || cut % stride == 0 || cut + kCheckedTail > total;
}

}  // namespace

CrashCoverage run_crash_matrix(const std::function<void(CrashEnv&)>& setup, const std::function<void(Env&)>& workload,
                               const std::string& path,
                               const std::function<void(MemEnv& after, const CrashPoint&)>& check,
                               const EnumerationOptions& options) {
  CrashCoverage coverage;
  {
    CrashEnv env;
    setup(env);
    env.make_durable();
    workload(env);
    coverage.total_ops = env.mutating_ops();
  }
  const uint64_t stride = cut_stride(options);
  for (uint64_t cut = 1; cut <= coverage.total_ops; ++cut) {
    if (!sampled(cut, coverage.total_ops, stride)) continue;
    CrashEnv env;
    setup(env);
    env.make_durable();
    env.cut_power_after(cut);
    workload(env);
    ++coverage.cut_points;
    for (auto& state : env.representative_states(path, options)) {
      auto after = env.restart(path, state);
      if (!after) continue;  // cannot happen for states made by representative_states
      check(**after, CrashPoint{cut, coverage.total_ops, std::move(state)});
      ++coverage.states;
    }
  }
  return coverage;
}

}  // namespace vhdkit::io
