// SPDX-License-Identifier: Apache-2.0
#include "compact/prepare.h"

#include <fmt/format.h>

#include <vector>

#include "compact/executor.h"
#include "compact/format_hooks.h"
#include "compact/parent_rule.h"
#include "compact/retrim.h"
#include "core/bytes.h"
#include "image/open_image.h"
#include "io/atomic_output.h"
#include "io/borrowed_file.h"

namespace vhdkit::compact {
namespace {

class SilentObserver final : public Observer {};

// Copies the source file into a new file, leaving all-zero chunks as holes.
Status copy_file(io::File& from, io::File& to) {
  constexpr size_t kChunk = 4 << 20;
  VHDKIT_ASSIGN(uint64_t size, from.size());
  VHDKIT_TRY(to.truncate(size));
  std::vector<std::byte> buf(kChunk);
  for (uint64_t off = 0; off < size;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, size - off));
    auto chunk = std::span(buf).first(n);
    VHDKIT_TRY(from.read_at(off, chunk));
    if (!all_zero(chunk)) VHDKIT_TRY(to.write_at(off, chunk));
    off += n;
  }
  return to.flush();
}

bool writes_in_place(const Options& o) { return o.action == Action::Compact && !o.output_path; }
// A copy (--output) must read a source no one changes meanwhile: only a dry run may read without a lock.
bool dry_run(const Options& o) { return o.action == Action::DryRun; }

// Opens the image once and returns it ready for the executor (see prepare.h for the order).
Result<std::unique_ptr<CompactableImage>> open_checked(io::Env& env, const std::string& path, const Options& request,
                                                       bool write, std::optional<io::FileIdentity>& identity) {
  const io::Access access = write ? io::Access::ReadWrite : io::Access::ReadOnly;
  VHDKIT_ASSIGN(auto file, env.open(path, access));
  const disk::Lock lock = write                                                             ? disk::Lock::Exclusive
                          : request.reader_lock == ReaderLock::NoWriter && dry_run(request) ? disk::Lock::NoWriter
                                                                                            : disk::Lock::Shared;
  VHDKIT_TRY(image::take_lock(*file, access, lock));
  if (auto id = file->identity()) identity = *id;
  VHDKIT_ASSIGN(disk::Format format, image::detect_format(*file));

  disk::OpenOptions options;
  options.format = format;
  options.parents = disk::ParentPolicy::Require;  // a differencing disk is judged against its parent
  if (write) {
    // Judged read-only first, through the same open file: a read-write VHDX open replays a dirty log to
    // disk, and a file refused here must stay byte-for-byte as it was.
    disk::OpenOptions judge = options;
    judge.access = io::Access::ReadOnly;
    judge.parents = disk::ParentPolicy::Skip;
    VHDKIT_ASSIGN(auto probe, image::open_file(env, io::borrow(*file), judge));
    VHDKIT_TRY(check_compactable(*probe, request.mode));
    VHDKIT_TRY(check_parent_rule(env, *probe, request));
  }
  // Retrim needs a host that punches holes: asked of the file itself, before a job exists.
  if (write && request.mode == Mode::Retrim) VHDKIT_TRY(check_host_punches(*file));
  options.access = access;
  VHDKIT_ASSIGN(auto disk, image::open_file(env, std::move(file), options));
  if (!write) VHDKIT_TRY(check_parent_rule(env, *disk, request));
  return make_compactable(std::move(disk), request.mode);
}

}  // namespace

Prepared::~Prepared() {
  if (image_) (void)image_->file().unlock();
}

disk::VirtualDisk& Prepared::disk() { return image_->disk(); }

Result<std::unique_ptr<Prepared>> prepare(io::Env& env, const std::string& path, const Options& options) {
  if (options.output_path) {
    VHDKIT_ASSIGN(std::string out, env.canonical(*options.output_path));
    VHDKIT_ASSIGN(std::string in, env.canonical(path));
    if (out == in)
      return fail(ReturnCode::InvalidParameter, path,
                  "the output path is the source itself; leave out --output to compact in place");
  }
  if (!env.exists(path)) return fail(ReturnCode::FileNotFound, path, "no such file");
  const bool write = writes_in_place(options);
  // A read-only file or folder is Access Denied, before anything is opened for writing.
  if (write) VHDKIT_TRY(env.check_writable(path));
  std::unique_ptr<Prepared> p(new Prepared(path, options));
  VHDKIT_ASSIGN(p->image_, open_checked(env, path, options, write, p->identity_));
  return p;
}

Result<Report> Prepared::run(io::Env& env, Observer* observer) {
  if (ran_) return fail(ReturnCode::InvalidState, path_, "this prepared compaction has already run");
  ran_ = true;
  SilentObserver silent;
  Observer& obs = observer ? *observer : silent;
  if (dry_run(options_)) {
    VHDKIT_ASSIGN(Report report, run_compaction(*image_, options_, obs));
    if (options_.reader_lock == ReaderLock::NoWriter) {
      // Read without a lock: had a writer come meanwhile, what was read may mix two states of the image.
      if (auto s = image_->file().try_lock(io::LockMode::NoWriter); !s)
        return fail(s.error().code(), path_,
                    s.error().message() + " (it was opened for writing while it was read: try again)");
    }
    return report;
  }
  if (!options_.output_path) return run_compaction(*image_, options_, obs);

  // --output: the source is only read; the copy is compacted as a temporary file beside the output, then
  // flushed, renamed over the output and the folder synced (io::AtomicOutput, rule D8), so that the output
  // path holds either its old file (or nothing) or the whole compacted image.
  const std::string& out = *options_.output_path;
  VHDKIT_ASSIGN(auto output, io::AtomicOutput::begin(env, out));
  VHDKIT_TRY(copy_file(image_->file(), output.file()));
  output.close_file();
  Options in_place = options_;
  in_place.output_path.reset();
  auto copy = prepare(env, output.temp_path(), in_place);
  auto report = copy ? (*copy)->run(env, &obs) : Result<Report>(std::unexpected(copy.error()));
  if (!report) {
    // The temporary name means nothing to the user: say it of the output.
    const Error& e = report.error();
    return fail(e.path() == output.temp_path() ? e.with_path(out) : e);
  }
  if (report->outcome == Outcome::Cancelled) {
    report->path = path_;
    report->file_size_after = report->file_size_before;
    report->bytes_released = 0;
    return report;  // the temporary file goes with `output`
  }
  copy->reset();  // unlocks and closes the copy before it is renamed into place
  VHDKIT_TRY(output.commit());
  report->path = out;
  return report;
}

}  // namespace vhdkit::compact
