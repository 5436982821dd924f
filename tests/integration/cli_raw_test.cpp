// SPDX-License-Identifier: Apache-2.0
// info, check, map, compare and write on raw images, refereed by qemu-img and qemu-io.
#include <gtest/gtest.h>

#include "cli_util.h"

namespace vhdkit::testing {
namespace {

class CliRaw : public ::testing::Test {
 protected:
  void SetUp() override {
    img = dir.file("disk.raw");
    make_random_file(img, kSize);
  }
  static constexpr uint64_t kSize = 8 << 20;
  TempDir dir;
  std::string img;
};

TEST_F(CliRaw, InfoJsonAgreesWithQemuImg) {
  auto ours = vhdkit_json("info --json " + q(img));
  auto qemu = parse_json(run_ok("qemu-img info --output=json -f raw " + q(img)), "qemu-img info");
  EXPECT_EQ(ours["format"], "raw");
  EXPECT_EQ(ours["format"], qemu["format"]);
  EXPECT_EQ(ours["virtual-size"], qemu["virtual-size"]);
  EXPECT_EQ(ours["filename"], qemu["filename"]);
  EXPECT_EQ(ours["file-size"], kSize);
  EXPECT_EQ(ours["type"], "fixed");
}

TEST_F(CliRaw, InfoHumanNamesFormatAndSize) {
  std::string out = run_ok(q(vhdkit_bin()) + " info " + q(img));
  EXPECT_NE(out.find("format: raw (fixed)"), std::string::npos) << out;
  EXPECT_NE(out.find("virtual size: 8 MiB (8388608 bytes)"), std::string::npos) << out;
}

TEST_F(CliRaw, MapJsonEqualsQemuImgMap) {
  auto ours = vhdkit_json("map --json " + q(img));
  auto qemu = parse_json(run_ok("qemu-img map --output=json -f raw " + q(img)), "qemu-img map");
  ASSERT_TRUE(ours.is_array());
  EXPECT_EQ(ours, qemu);
}

TEST_F(CliRaw, CheckIsCleanWithStatusZero) {
  RunResult r = vhdkit("check " + q(img));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("no problems found"), std::string::npos) << r.out;
  auto j = vhdkit_json("check --json " + q(img));
  EXPECT_EQ(j["clean"], true);
  EXPECT_TRUE(j["problems"].empty());
}

void expect_raw_compare_agrees(const std::string& a, const std::string& b, int expected_status) {
  expect_compare_agrees(a, "raw", b, "raw", expected_status);
}

TEST_F(CliRaw, CompareAgreesWithQemuImgOnEqualAndDifferentPairs) {
  std::string copy = dir.file("copy.raw");
  run_ok("cp " + q(img) + " " + q(copy));
  expect_raw_compare_agrees(img, copy, 0);
  // Differences early, unaligned, and in the last byte.
  for (uint64_t at : {uint64_t{0}, uint64_t{5000}, uint64_t{(3 << 20) + 777}, kSize - 1}) {
    std::string other = dir.file("other.raw");
    run_ok("cp " + q(img) + " " + q(other));
    auto bytes = read_file(img);
    patch_file(other, at, {static_cast<uint8_t>(~std::to_integer<uint8_t>(bytes[at]))});
    expect_raw_compare_agrees(img, other, 1);
  }
}

TEST_F(CliRaw, CompareImagesOfDifferentSizesLikeQemuImg) {
  std::string longer = dir.file("longer.raw");
  run_ok("cp " + q(img) + " " + q(longer) + " && truncate -s 9M " + q(longer));
  expect_raw_compare_agrees(img, longer, 0);
  expect_raw_compare_agrees(longer, img, 0);
  patch_file(longer, kSize + 4096 + 3, {0x55});
  expect_raw_compare_agrees(img, longer, 1);  // in the tail: "Warning: Image size mismatch!" first
  patch_file(longer, 1000, {static_cast<uint8_t>(~std::to_integer<uint8_t>(read_file(img)[1000]))});
  expect_raw_compare_agrees(img, longer, 1);  // in the common part: no warning
  RunResult strict = vhdkit("compare --strict " + q(img) + " " + q(img));
  EXPECT_EQ(strict.status, 0);
  RunResult qemu_strict = run("qemu-img compare -s -f raw -F raw " + q(img) + " " + q(longer));
  RunResult ours_strict = vhdkit("compare -s " + q(img) + " " + q(longer));
  EXPECT_EQ(ours_strict.status, 1);
  EXPECT_EQ(qemu_strict.status, 1);
  EXPECT_EQ(ours_strict.out, qemu_strict.out);
}

TEST_F(CliRaw, CompareAMissingImageIsAnErrorNotADifference) {
  std::string missing = dir.file("missing.raw");
  RunResult r = vhdkit("compare " + q(img) + " " + q(missing));
  EXPECT_EQ(r.status, 3) << r.err;  // exit_status(FileNotFound)
  EXPECT_NE(r.err.find("vhdkit: " + missing + ": "), std::string::npos) << r.err;
}

TEST_F(CliRaw, ErrorsNameTheFileAndTheProblem) {
  std::string missing = dir.file("missing.raw");
  for (const char* sub : {"info", "check", "map"}) {
    RunResult r = vhdkit(std::string(sub) + " " + q(missing));
    EXPECT_EQ(r.status, 3) << sub << ": " << r.err;
    EXPECT_NE(r.err.find("vhdkit: " + missing + ": "), std::string::npos) << sub << ": " << r.err;
  }
}

TEST_F(CliRaw, WritePatternMatchesQemuIo) {
  std::string theirs = dir.file("theirs.raw");
  run_ok("cp " + q(img) + " " + q(theirs));
  run_ok("qemu-io -f raw -c 'write -P 0xab 4096 3M' " + q(theirs));
  RunResult r = vhdkit("write " + q(img) + " 4096 --pattern 0xab --length 3M");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("wrote 3 MiB"), std::string::npos) << r.out;
  run_ok("qemu-img compare -f raw -F raw " + q(img) + " " + q(theirs));
}

TEST_F(CliRaw, WriteFromFileCopiesItsBytes) {
  std::string payload = dir.file("payload.bin");
  make_random_file(payload, 100000, 7);
  std::string theirs = dir.file("theirs.raw");
  run_ok("cp " + q(img) + " " + q(theirs));
  run_ok("dd status=none conv=notrunc bs=1M oflag=seek_bytes seek=12345 if=" + q(payload) + " of=" + q(theirs));
  run_ok(q(vhdkit_bin()) + " write " + q(img) + " 12345 --from " + q(payload));
  run_ok("qemu-img compare -f raw -F raw " + q(img) + " " + q(theirs));
}

TEST_F(CliRaw, WritePastTheEndIsRefusedAndChangesNothing) {
  std::string before = sha256(img);
  RunResult r = vhdkit("write " + q(img) + " 8M --pattern 1 --length 1");
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_NE(r.err.find("do not fit"), std::string::npos) << r.err;
  EXPECT_EQ(sha256(img), before);
  r = vhdkit("write " + q(img) + " 0 --pattern 0x100 --length 1");
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_NE(r.err.find("0x100"), std::string::npos) << r.err;
  EXPECT_EQ(sha256(img), before);
}

}  // namespace
}  // namespace vhdkit::testing
