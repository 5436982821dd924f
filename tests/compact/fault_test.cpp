// SPDX-License-Identifier: Apache-2.0
// Error injection: EIO or ENOSPC at each I/O call of a compaction (in place and --output), of a VHD and of
// a VHDX, ends with a clear error, a valid image with identical virtual content, and a rerun that finishes
// the work.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "compact/compact.h"
#include "compact/format_hooks.h"
#include "images.h"
#include "io/testing/fault_env.h"
#include "io/testing/mem_env.h"

namespace vhdkit::testing {
namespace {

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

// What a later writer finds: the image opens for compaction (a VHDX log replayed first) and reads what
// the original read (qemu-img compare).
void expect_valid_and_equal(io::MemEnv& mem, const std::string& path, const std::string& original, const TempDir& dir) {
  recover(mem, path);
  auto image = compact::open_compactable(mem, path, io::Access::ReadOnly);
  ASSERT_TRUE(image.has_value()) << image.error().what();
  std::string file = dump(dir, *mem.bytes(path), "state" + std::filesystem::path(path).extension().string());
  expect_same_content(original, file);
}

class CompactFaults : public ::testing::TestWithParam<disk::Format> {
 protected:
  void run_fault_matrix(bool to_output);
};

void CompactFaults::run_fault_matrix(bool to_output) {
  TempDir dir;
  const std::string extension = GetParam() == disk::Format::Vhdx ? ".vhdx" : ".vhd";
  const std::string source = "/mem/disk" + extension;
  std::string img = make_dynamic(dir, "a" + extension, "ZDZDDZPZD", GetParam(), 2 * kMiB);
  const auto bytes = read_file(img);
  compact::Options options;
  if (to_output) options.output_path = "/mem/out" + extension;
  const std::optional<std::string>& output = options.output_path;

  // Count the calls of an undisturbed run, and learn the result it reaches.
  io::MemEnv counting_mem;
  counting_mem.set_bytes(source, bytes);
  io::FaultEnv counting(counting_mem);
  auto clean = compact::compact_image(counting, source, options);
  ASSERT_TRUE(clean.has_value()) << clean.error().what();
  const auto log = counting.state().log();
  const uint64_t expected_size = clean->file_size_after;
  ASSERT_LT(expected_size, bytes.size());
  const std::string result_path = output ? *output : source;

  uint64_t runs = 0;
  for (const Variant& v : kVariants) {
    for (uint64_t n = 1; n <= log.size(); ++n) {
      SCOPED_TRACE(fmt::format("{} at call {} of {} ({} of {})", v.name, n, log.size(), io::to_string(log[n - 1].op),
                               log[n - 1].path));
      io::MemEnv mem;
      mem.set_bytes(source, bytes);
      {
        io::FaultEnv env(
            mem, {.fail_at = n, .fault = v.fault, .persistence = v.persistence, .failed_write = v.failed_write});
        auto r = compact::compact_image(env, source, options);
        ++runs;
        ASSERT_FALSE(r.has_value()) << "the injected failure went unnoticed";
        EXPECT_NE(r.error().code(), ReturnCode::Completed);
        EXPECT_NE(r.error().message().find("failed"), std::string::npos) << r.error().what();
      }
      if (output) {
        EXPECT_EQ(*mem.bytes(source), bytes) << "the source of --output was written to";
        for (const auto& p : mem.paths()) {
          EXPECT_TRUE(p == source || p == *output) << "left behind: " << p;
        }
        if (mem.bytes(*output)) expect_valid_and_equal(mem, *output, img, dir);
      } else {
        expect_valid_and_equal(mem, source, img, dir);
      }
      // Running again (the fault gone) finishes the work.
      auto again = compact::compact_image(mem, source, options);
      ASSERT_TRUE(again.has_value()) << again.error().what();
      EXPECT_EQ(mem.bytes(result_path)->size(), expected_size);
      expect_valid_and_equal(mem, result_path, img, dir);
    }
  }
  std::cout << fmt::format("fault injection ({}{}): {} I/O calls, {} failing runs checked\n",
                           disk::to_string(GetParam()), output ? ", --output" : "", log.size(), runs);
  EXPECT_GE(runs, 2 * 20u);
}

TEST_P(CompactFaults, EveryCallFailsInTurnInPlace) { run_fault_matrix(false); }
TEST_P(CompactFaults, EveryCallFailsInTurnWithOutput) { run_fault_matrix(true); }

INSTANTIATE_TEST_SUITE_P(Formats, CompactFaults, ::testing::Values(disk::Format::Vhd, disk::Format::Vhdx),
                         [](const auto& test) { return std::string(disk::to_string(test.param)); });

}  // namespace
}  // namespace vhdkit::testing
