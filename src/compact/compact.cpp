// compact_image(): checks what can be refused before anything is written (mode, access, lock, format), then
// hands the opened image to the executor; --output compacts a private copy and renames it into place.
#include "compact/compact.h"

#include <fmt/format.h>

#include <array>
#include <filesystem>
#include <vector>

#include "compact/executor.h"
#include "compact/open_compactable.h"
#include "core/bytes.h"
#include "io/atomic_output.h"

namespace vhdkit::compact {
namespace {

constexpr std::array<std::pair<Mode, std::string_view>, 5> kModeNames{{
    {Mode::Full, "full"},
    {Mode::Quick, "quick"},
    {Mode::Retrim, "retrim"},
    {Mode::Pretrimmed, "pretrimmed"},
    {Mode::Prezeroed, "prezeroed"},
}};

class SilentObserver final : public Observer {};

Status check_mode(const std::string& path, Mode mode) {
  if (mode == Mode::Retrim) {
    return fail(ReturnCode::NotSupported, path,
                "Retrim (passing unused space down to the host file) is not implemented yet; "
                "use Prezeroed or Full to release all-zero blocks");
  }
  if (mode == Mode::Pretrimmed) {
    return fail(ReturnCode::NotSupported, path,
                "Pretrimmed (reclaiming only blocks already trimmed) is not implemented yet; "
                "use Prezeroed or Full to release all-zero blocks");
  }
  return ok();
}

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

Result<Report> compact_in_place(io::Env& env, const std::string& path, const Options& options,
                                Observer& observer) {
  const bool dry = options.action == Action::DryRun;
  if (!env.exists(path)) return fail(ReturnCode::FileNotFound, path, "no such file");
  // Refused before anything is written: a read-only file or folder is Access Denied.
  if (!dry) VHDKIT_TRY(env.check_writable(path));
  VHDKIT_ASSIGN(auto image, open_compactable(env, path, dry ? io::Access::ReadOnly : io::Access::ReadWrite));
  VHDKIT_TRY(image->file().try_lock(dry ? io::LockMode::Shared : io::LockMode::Exclusive));
  auto report = run_compaction(*image, options, observer);
  (void)image->file().unlock();
  return report;
}

// --output: the source is only read; the copy is compacted as a temporary file beside the output, then
// flushed, renamed over the output and the folder synced (io::AtomicOutput), so that the output path holds
// either its old file (or nothing) or the whole compacted image.
Result<Report> compact_to_copy(io::Env& env, const std::string& path, const Options& options,
                               Observer& observer) {
  const std::string& out = *options.output_path;
  if (!env.exists(path)) return fail(ReturnCode::FileNotFound, path, "no such file");
  if (std::filesystem::weakly_canonical(out) == std::filesystem::weakly_canonical(path)) {
    return fail(ReturnCode::InvalidParameter, path,
                "the output path is the source itself; leave out --output to compact in place");
  }
  Options in_place = options;
  in_place.output_path.reset();
  if (options.action == Action::DryRun) return compact_in_place(env, path, in_place, observer);

  // Validate the source (format, type) and hold a shared lock on it while it is copied.
  VHDKIT_ASSIGN(auto source, open_compactable(env, path, io::Access::ReadOnly));
  VHDKIT_TRY(source->file().try_lock(io::LockMode::Shared));
  VHDKIT_ASSIGN(auto output, io::AtomicOutput::begin(env, out));
  VHDKIT_TRY(copy_file(source->file(), output.file()));
  output.close_file();
  auto report = compact_in_place(env, output.temp_path(), in_place, observer);
  if (!report) {
    // The temporary name means nothing to the user: say it of the output.
    const Error& e = report.error();
    return fail(e.path() == output.temp_path() ? e.with_path(out) : e);
  }
  if (report->outcome == Outcome::Cancelled) {
    report->path = path;
    report->file_size_after = report->file_size_before;
    report->bytes_released = 0;
    return report;  // the temporary file goes with `output`
  }
  VHDKIT_TRY(output.commit());
  report->path = out;
  return report;
}

}  // namespace

std::string_view to_string(Mode m) {
  for (auto [mode, name] : kModeNames)
    if (mode == m) return name;
  return "?";
}

std::optional<Mode> mode_from_string(std::string_view s) {
  std::string lower(s);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (auto [mode, name] : kModeNames)
    if (name == lower) return mode;
  return std::nullopt;
}

Result<Report> compact_image(io::Env& env, const std::string& path, const Options& options,
                             Observer* observer) {
  SilentObserver silent;
  Observer& obs = observer ? *observer : silent;
  VHDKIT_TRY(check_mode(path, options.mode));
  if (options.output_path) return compact_to_copy(env, path, options, obs);
  return compact_in_place(env, path, options, obs);
}

}  // namespace vhdkit::compact
