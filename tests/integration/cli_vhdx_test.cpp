// SPDX-License-Identifier: Apache-2.0
// vhdkit on VHDX images made by qemu-img, by Windows (fixtures) and by vhdkit itself, with qemu-img,
// qemu-io and vhdiinfo as referees. (qemu-img map cannot referee VHDX: qemu's VHDX driver reports no
// allocation, so every image maps as one data extent; map is checked against what qemu-io reads instead.)
#include <gtest/gtest.h>

#include "cli_util.h"

namespace vhdkit::testing {
namespace {

std::string vk(const std::string& args) { return q(vhdkit_bin()) + " " + args; }

struct Image {
  std::string name, path, type;
};

class CliVhdx : public ::testing::Test {
 protected:
  Image qemu_created(const std::string& name, const std::string& options, const std::string& size,
                     const std::string& type) {
    Image img{name, dir.file(name + ".vhdx"), type};
    run_ok("qemu-img create -q -f vhdx -o " + options + " " + q(img.path) + " " + size);
    return img;
  }
  Image qemu_converted(const std::string& name, const std::string& options) {
    std::string raw = dir.file(name + ".src.raw");
    Image img{name, dir.file(name + ".vhdx"), "dynamic"};
    run_ok("qemu-img create -q -f raw " + q(raw) + " 40M");
    run_ok("qemu-io -f raw -c 'write -P 0x5a 0 64k' -c 'write -P 0xc3 9M 3M' -c 'write -P 0x01 33M 512' " + q(raw));
    run_ok("qemu-img convert -f raw -O vhdx -o " + options + " " + q(raw) + " " + q(img.path));
    return img;
  }
  Image fixture(const std::string& name, const std::string& type) {
    std::string path = expand_fixture(name, dir);
    return {name, path, type};
  }
  // The images qemu-img makes, then (when the fixtures are there) those Windows made: a test going through
  // them all ends with VHDKIT_NEEDS_FIXTURES(), so that it says when it could not try the fixtures.
  std::vector<Image> images() {
    std::vector<Image> all = {
        qemu_created("qemu-dynamic", "subformat=dynamic", "100M", "dynamic"),
        qemu_created("qemu-1M-blocks", "subformat=dynamic,block_size=1M", "20M", "dynamic"),
        qemu_created("qemu-fixed", "subformat=fixed", "16M", "fixed"),
        qemu_converted("qemu-converted", "subformat=dynamic,block_size=2M"),
    };
    if (!fixtures_missing().empty()) return all;
    all.push_back(fixture("qemu-iotests/iotest-dynamic-1G.vhdx.bz2", "dynamic"));
    all.push_back(fixture("dissect.hypervisor/dynamic.vhdx.gz", "dynamic"));
    all.push_back(fixture("dissect.hypervisor/fixed.vhdx.gz", "fixed"));
    return all;
  }
  TempDir dir;
};

TEST_F(CliVhdx, InfoAgreesWithQemuImgAndVhdiinfo) {
  for (const auto& img : images()) {
    SCOPED_TRACE(img.name);
    auto ours = vhdkit_json("info --json " + q(img.path));
    auto qemu = parse_json(run_ok("qemu-img info --output=json -f vhdx " + q(img.path)), "qemu-img info");
    EXPECT_EQ(ours["format"], "vhdx");
    EXPECT_EQ(ours["format"], qemu["format"]);
    EXPECT_EQ(ours["virtual-size"], qemu["virtual-size"]);
    EXPECT_EQ(ours["block-size"], qemu["cluster-size"]);
    EXPECT_EQ(ours["actual-size"], qemu["actual-size"]);
    EXPECT_EQ(ours["type"], img.type);
    EXPECT_EQ(ours["virtual-size"], vhdiinfo(img.path).media_size);
  }
  VHDKIT_NEEDS_FIXTURES();
}

TEST_F(CliVhdx, CheckIsClean) {
  for (const auto& img : images()) {
    SCOPED_TRACE(img.name);
    RunResult r = vhdkit("check " + q(img.path));
    EXPECT_EQ(r.status, 0) << r.out << r.err;
  }
  VHDKIT_NEEDS_FIXTURES();
}

// The map covers the disk without gaps, and what it calls zero, qemu-io reads as zeros.
TEST_F(CliVhdx, MapCoversTheDiskAndItsZeroExtentsReadAsZero) {
  for (const auto& img : images()) {
    SCOPED_TRACE(img.name);
    auto info = vhdkit_json("info --json " + q(img.path));
    auto map = vhdkit_json("map --json " + q(img.path));
    ASSERT_TRUE(map.is_array());
    uint64_t at = 0;
    std::string reads;
    for (const auto& e : map) {
      EXPECT_EQ(e["start"].get<uint64_t>(), at);
      at += e["length"].get<uint64_t>();
      if (e["zero"] == true && e["data"] == false)
        reads += " -c 'read -P 0 " + std::to_string(e["start"].get<uint64_t>()) + " " +
                 std::to_string(e["length"].get<uint64_t>()) + "'";
    }
    EXPECT_EQ(at, info["virtual-size"].get<uint64_t>());
    if (!reads.empty()) run_ok("qemu-io -r -f vhdx" + reads + " " + q(img.path));
  }
  VHDKIT_NEEDS_FIXTURES();
}

TEST_F(CliVhdx, CompareAgreesWithQemuImg) {
  auto all = images();
  for (const auto& img : all) {
    SCOPED_TRACE(img.name);
    std::string raw = dir.file("as.raw"), other = dir.file("other.raw");
    run_ok("qemu-img convert -f vhdx -O raw " + q(img.path) + " " + q(raw));
    expect_compare_agrees(img.path, "vhdx", raw, "raw", 0);
    const uint64_t size = std::filesystem::file_size(raw);
    for (uint64_t at : {uint64_t{9 << 20} + 100, size - 1}) {
      run_ok("cp --sparse=always " + q(raw) + " " + q(other));
      run_ok("qemu-io -f raw -c 'write -P 0x77 " + std::to_string(at) + " 1' " + q(other));
      expect_compare_agrees(img.path, "vhdx", other, "raw", 1);
    }
  }
  // VHDX against VHD, both ways.
  std::string vhd = dir.file("as.vhd");
  run_ok("qemu-img convert -f vhdx -O vpc -o force_size=on " + q(all[3].path) + " " + q(vhd));
  expect_compare_agrees(all[3].path, "vhdx", vhd, "vpc", 0);
  expect_compare_agrees(vhd, "vpc", all[3].path, "vhdx", 0);
  expect_compare_agrees(vhd, "vpc", all[0].path, "vhdx", 1);
  VHDKIT_NEEDS_FIXTURES();
}

TEST_F(CliVhdx, CreatedImagesPassQemuImgCheckAndReadBack) {
  struct Case {
    std::string args, type;
  };
  for (const Case& c : {Case{"--size 64M", "dynamic"}, Case{"--type fixed --size 8M", "fixed"},
                        Case{"--size 30M --block-size 1M", "dynamic"}}) {
    SCOPED_TRACE(c.args);
    std::string img = dir.file("created.vhdx");
    std::filesystem::remove(img);
    run_ok(vk("create --format vhdx " + c.args + " " + q(img)));
    run_ok("qemu-img check -f vhdx " + q(img));
    auto ours = vhdkit_json("info --json " + q(img));
    EXPECT_EQ(ours["type"], c.type);
    auto qemu = parse_json(run_ok("qemu-img info --output=json -f vhdx " + q(img)), "qemu-img info");
    EXPECT_EQ(ours["virtual-size"], qemu["virtual-size"]);
    EXPECT_EQ(vhdiinfo(img).media_size, ours["virtual-size"]);
    run_ok(vk("write " + q(img) + " 1M --pattern 0xab --length 2M"));
    run_ok("qemu-img check -f vhdx " + q(img));
    run_ok("qemu-io -r -f vhdx -c 'read -P 0xab 1M 2M' -c 'read -P 0 0 1M' -c 'read -P 0 3M 1M' " + q(img));
    EXPECT_EQ(vhdkit("check " + q(img)).status, 0);
  }
}

TEST_F(CliVhdx, CreateDifferencingOverAVhdxParent) {
  std::string parent = dir.file("parent.vhdx"), child = dir.file("child.vhdx"), expected = dir.file("expected.raw");
  make_cli_differencing_pair("vhdx", parent, child, expected);
  auto info = vhdkit_json("info --json " + q(child));
  EXPECT_EQ(info["type"], "differencing");
  EXPECT_EQ(info["parent-missing"], false);
  EXPECT_EQ(vhdkit("compare " + q(child) + " " + q(expected)).status, 0);
  EXPECT_EQ(vhdiinfo(child).disk_type, "Differential");  // (qemu-img does not open differencing VHDX)
  std::filesystem::remove(parent);
  auto orphan = vhdkit_json("info --json " + q(child));
  EXPECT_EQ(orphan["parent-missing"], true);
  EXPECT_EQ(vhdkit("check " + q(child)).status, 1);
}

TEST_F(CliVhdx, DirtyLogIsReplayedInMemoryOnlyAndCheckSaysSo) {
  VHDKIT_NEEDS_FIXTURES();
  std::string img = expand_fixture("discutils/vhdx-log-replay.zip", dir);
  std::string before = sha256(img);
  RunResult info = vhdkit("info " + q(img));
  EXPECT_EQ(info.status, 0) << info.err;
  RunResult check = vhdkit("check " + q(img));
  EXPECT_EQ(check.status, 1) << check.out << check.err;
  EXPECT_NE(check.out.find("log"), std::string::npos) << check.out;
  EXPECT_EQ(vhdkit("map " + q(img)).status, 0);
  EXPECT_EQ(sha256(img), before) << "a read-only command wrote to the image";
  // What we read is what qemu reads once it has replayed the log itself (on a copy).
  std::string copy = dir.file("replayed.vhdx");
  run_ok("cp " + q(img) + " " + q(copy));
  run("qemu-img check -r all -f vhdx " + q(copy));
  run_ok("qemu-img info -f vhdx " + q(copy));  // replayed: qemu opens it now
  RunResult same = vhdkit("compare " + q(img) + " " + q(copy));
  EXPECT_EQ(same.status, 0) << same.out << same.err;
  EXPECT_EQ(sha256(img), before);
}

TEST_F(CliVhdx, MalformedImagesAreNamedAndLeftUnchanged) {
  Image good = images()[3];
  struct Case {
    std::string name;
    std::vector<std::pair<uint64_t, std::vector<uint8_t>>> patches;
    uint64_t truncate_to = 0;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"both headers' checksums", {{65536 + 4, {0xde, 0xad}}, {131072 + 4, {0xde, 0xad}}}, 0, "header"},
      {"both region tables' checksums", {{196608 + 4, {0xde, 0xad}}, {262144 + 4, {0xde, 0xad}}}, 0, "region table"},
      {"file identifier", {{0, {'n', 'o', 'p', 'e'}}}, 0, "vhdxfile"},
      {"truncated inside the log", {}, 1 << 20, "past the end"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    std::string bad = dir.file("bad.vhdx");
    run_ok("cp " + q(good.path) + " " + q(bad));
    for (const auto& [offset, bytes] : c.patches) patch_file(bad, offset, bytes);
    if (c.truncate_to) std::filesystem::resize_file(bad, c.truncate_to);
    std::string before = sha256(bad);
    for (const char* sub : {"info", "check", "map"}) {
      RunResult r = vhdkit(std::string(sub) + " --format vhdx " + q(bad));
      EXPECT_EQ(r.status, 1) << sub << ": " << r.err;
      EXPECT_NE(r.err.find("vhdkit: " + bad + ": "), std::string::npos) << sub << ": " << r.err;
      EXPECT_NE(r.err.find(c.says), std::string::npos) << sub << ": " << r.err;
    }
    RunResult compare = vhdkit("compare --format vhdx " + q(bad) + " " + q(bad));
    EXPECT_EQ(compare.status, 9) << "compare's generic failure, never 1 (different)\n" << compare.err;
    RunResult write = vhdkit("write --format vhdx " + q(bad) + " 0 --pattern 1 --length 4K");
    EXPECT_EQ(write.status, 1) << write.err;
    EXPECT_EQ(sha256(bad), before) << "vhdkit changed a malformed file";
  }
}

}  // namespace
}  // namespace vhdkit::testing
