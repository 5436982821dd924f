// Error injection: EIO or ENOSPC at each I/O call of a compaction (in place and --output) ends with a clear
// error, a valid image with identical virtual content, and a rerun that finishes the work.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "compact/compact.h"
#include "compact/open_compactable.h"
#include "images.h"
#include "io/fault_env.h"
#include "io/mem_env.h"

namespace vhdkit::testing {
namespace {

const std::string kPath = "/mem/disk.vhd";
const std::string kOut = "/mem/out.vhd";

struct Variant {
  io::Fault fault;
  io::Persistence persistence;
  io::FailedWrite failed_write;
  const char* name;
};
constexpr Variant kVariants[] = {
    {io::Fault::Eio, io::Persistence::Transient, io::FailedWrite::WritesNothing, "EIO"},
    {io::Fault::NoSpace, io::Persistence::Persistent, io::FailedWrite::WritesPrefix, "ENOSPC, half written"},
};

// The bytes as a file, so that the real tools can judge them.
std::string dump(const TempDir& dir, const std::vector<std::byte>& bytes, const std::string& name) {
  std::string path = dir.file(name);
  write_file(path, bytes);
  return path;
}

void expect_valid_and_equal(io::MemEnv& mem, const std::string& path, const std::string& original,
                            const TempDir& dir) {
  auto image = compact::open_compactable(mem, path, io::Access::ReadOnly);
  ASSERT_TRUE(image.has_value()) << image.error().what();
  std::string file = dump(dir, *mem.bytes(path), "state.vhd");
  expect_same_content(original, file);
}

void run_fault_matrix(const std::optional<std::string>& output) {
  TempDir dir;
  std::string img = make_dynamic_vhd(dir, "a.vhd", "ZDZDDZPZD");
  const auto bytes = read_file(img);
  compact::Options options;
  options.output_path = output;

  // Count the calls of an undisturbed run, and learn the result it reaches.
  io::MemEnv counting_mem;
  counting_mem.set_bytes(kPath, bytes);
  io::FaultEnv counting(counting_mem);
  auto clean = compact::compact_image(counting, kPath, options);
  ASSERT_TRUE(clean.has_value()) << clean.error().what();
  const auto log = counting.state().log();
  const uint64_t expected_size = clean->file_size_after;
  ASSERT_LT(expected_size, bytes.size());
  const std::string result_path = output ? *output : kPath;

  uint64_t runs = 0;
  for (const Variant& v : kVariants) {
    for (uint64_t n = 1; n <= log.size(); ++n) {
      SCOPED_TRACE(fmt::format("{} at call {} of {} ({} of {})", v.name, n, log.size(),
                               io::to_string(log[n - 1].op), log[n - 1].path));
      io::MemEnv mem;
      mem.set_bytes(kPath, bytes);
      {
        io::FaultEnv env(mem, {.fail_at = n, .fault = v.fault, .persistence = v.persistence,
                               .failed_write = v.failed_write});
        auto r = compact::compact_image(env, kPath, options);
        ++runs;
        ASSERT_FALSE(r.has_value()) << "the injected failure went unnoticed";
        EXPECT_NE(r.error().code(), ReturnCode::Completed);
        EXPECT_NE(r.error().message().find("failed"), std::string::npos) << r.error().what();
      }
      if (output) {
        EXPECT_EQ(*mem.bytes(kPath), bytes) << "the source of --output was written to";
        for (const auto& p : mem.paths()) {
          EXPECT_TRUE(p == kPath || p == *output) << "left behind: " << p;
        }
        if (mem.bytes(*output)) expect_valid_and_equal(mem, *output, img, dir);
      } else {
        expect_valid_and_equal(mem, kPath, img, dir);
      }
      // Running again (the fault gone) finishes the work.
      auto again = compact::compact_image(mem, kPath, options);
      ASSERT_TRUE(again.has_value()) << again.error().what();
      EXPECT_EQ(mem.bytes(result_path)->size(), expected_size);
      expect_valid_and_equal(mem, result_path, img, dir);
    }
  }
  std::cout << fmt::format("fault injection{}: {} I/O calls, {} failing runs checked\n",
                           output ? " (--output)" : "", log.size(), runs);
  EXPECT_GE(runs, 2 * 20u);
}

TEST(VhdCompactFaults, EveryCallFailsInTurnInPlace) { run_fault_matrix(std::nullopt); }
TEST(VhdCompactFaults, EveryCallFailsInTurnWithOutput) { run_fault_matrix(kOut); }

}  // namespace
}  // namespace vhdkit::testing
