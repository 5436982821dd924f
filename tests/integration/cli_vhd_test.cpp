// SPDX-License-Identifier: Apache-2.0
// vhdkit info/map/check/compare/create/write on VHD images made by qemu-img and by vhdkit itself, with
// qemu-img, qemu-io and vhdiinfo as referees.
#include <gtest/gtest.h>

#include <chrono>

#include "cli_util.h"

namespace vhdkit::testing {
namespace {

std::string vk(const std::string& args) { return q(vhdkit_bin()) + " " + args; }

// One image made by qemu-img, and the raw image with the same virtual content.
struct QemuImage {
  std::string name;
  std::string vhd;
  std::string raw;
  std::string type;  // "fixed" or "dynamic"
};

class CliVhd : public ::testing::Test {
 protected:
  // A raw image with data in a few places (and zeros between), turned into a VHD by qemu-img convert.
  QemuImage converted(const std::string& name, const std::string& vpc_options, const std::string& type) {
    QemuImage img{name, dir.file(name + ".vhd"), dir.file(name + ".raw"), type};
    run_ok("qemu-img create -q -f raw " + q(img.raw) + " 24M");
    run_ok("qemu-io -f raw -c 'write -P 0x5a 0 64k' -c 'write -P 0xc3 3M 2M' -c 'write -P 0x01 17M 512' " + q(img.raw));
    run_ok("qemu-img convert -f raw -O vpc -o " + vpc_options + " " + q(img.raw) + " " + q(img.vhd));
    return img;
  }
  // An empty image from qemu-img create, with its raw twin sized to the VHD's own (CHS-rounded) size.
  QemuImage created(const std::string& name, const std::string& vpc_options, const std::string& size) {
    QemuImage img{name, dir.file(name + ".vhd"), dir.file(name + ".raw"), "dynamic"};
    run_ok("qemu-img create -q -f vpc -o " + vpc_options + " " + q(img.vhd) + " " + size);
    auto info = parse_json(run_ok("qemu-img info --output=json -f vpc " + q(img.vhd)), "qemu-img info");
    run_ok("truncate -s " + std::to_string(info["virtual-size"].get<uint64_t>()) + " " + q(img.raw));
    return img;
  }
  std::vector<QemuImage> qemu_images() {
    return {
        created("chs-rounded", "subformat=dynamic", "10M"),  // 10 MiB rounds up to 10514432 through CHS
        created("odd-size", "subformat=dynamic", "100000k"),
        created("force-size", "subformat=dynamic,force_size=on", "64M"),
        converted("converted", "subformat=dynamic,force_size=on", "dynamic"),
        converted("fixed", "subformat=fixed,force_size=on", "fixed"),
    };
  }
  TempDir dir;
};

TEST_F(CliVhd, InfoAgreesWithQemuImgAndVhdiinfo) {
  for (const auto& img : qemu_images()) {
    SCOPED_TRACE(img.name);
    auto ours = vhdkit_json("info --json " + q(img.vhd));
    auto qemu = parse_json(run_ok("qemu-img info --output=json -f vpc " + q(img.vhd)), "qemu-img info");
    EXPECT_EQ(ours["format"], "vhd");
    EXPECT_EQ(qemu["format"], "vpc");
    EXPECT_EQ(ours["virtual-size"], qemu["virtual-size"]);
    EXPECT_EQ(ours["type"], img.type);
    if (img.type == "dynamic") {
      EXPECT_EQ(ours["block-size"], qemu["cluster-size"]);
    }
    VhdiInfo v = vhdiinfo(img.vhd);
    EXPECT_EQ(ours["virtual-size"], v.media_size);
    EXPECT_EQ(v.disk_type, img.type == "fixed" ? "Fixed" : "Dynamic");
  }
}

TEST_F(CliVhd, MapJsonEqualsQemuImgMapFieldByField) {
  for (const auto& img : qemu_images()) {
    if (img.type == "fixed") continue;  // qemu maps a fixed VHD through the host file's holes: see below
    SCOPED_TRACE(img.name);
    auto ours = vhdkit_json("map --json " + q(img.vhd));
    auto qemu = parse_json(run_ok("qemu-img map --output=json -f vpc " + q(img.vhd)), "qemu-img map");
    ASSERT_TRUE(ours.is_array());
    ASSERT_EQ(ours.size(), qemu.size()) << "ours:\n" << ours.dump() << "\nqemu:\n" << qemu.dump();
    for (size_t n = 0; n < ours.size(); ++n) {
      for (const char* field : {"start", "length", "depth", "present", "zero", "data", "offset"})
        EXPECT_EQ(ours[n].value(field, nlohmann::json()), qemu[n].value(field, nlohmann::json()))
            << "extent " << n << " field " << field;
    }
  }
}

TEST_F(CliVhd, MapOfAFullyAllocatedFixedVhdEqualsQemuImgMap) {
  // With no holes in the host file, qemu-img sees one data extent, as we do.
  std::string raw = dir.file("random.raw"), vhd = dir.file("random-fixed.vhd");
  make_random_file(raw, 6 << 20);
  run_ok("qemu-img convert -S 0 -f raw -O vpc -o subformat=fixed,force_size=on " + q(raw) + " " + q(vhd));
  auto ours = vhdkit_json("map --json " + q(vhd));
  auto qemu = parse_json(run_ok("qemu-img map --output=json -f vpc " + q(vhd)), "qemu-img map");
  EXPECT_EQ(ours, qemu);
}

TEST_F(CliVhd, CheckIsCleanOnQemuImages) {
  for (const auto& img : qemu_images()) {
    SCOPED_TRACE(img.name);
    RunResult r = vhdkit("check " + q(img.vhd));
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("no problems found"), std::string::npos) << r.out;
  }
}

TEST_F(CliVhd, CompareAgreesWithQemuImg) {
  for (const auto& img : qemu_images()) {
    SCOPED_TRACE(img.name);
    expect_compare_agrees(img.vhd, "vpc", img.raw, "raw", 0);
    expect_compare_agrees(img.raw, "raw", img.vhd, "vpc", 0);
    // A difference inside data, and one where the VHD has no block at all.
    const uint64_t size = std::filesystem::file_size(img.raw);
    for (uint64_t at : {uint64_t{3145728 + 1000}, size - 4096 + 7}) {
      std::string other = dir.file(img.name + "-other.raw");
      run_ok("cp " + q(img.raw) + " " + q(other));
      run_ok("qemu-io -f raw -c 'write -P 0x77 " + std::to_string(at) + " 1' " + q(other));
      expect_compare_agrees(img.vhd, "vpc", other, "raw", 1);
    }
  }
}

TEST_F(CliVhd, CompareVhdAgainstVhd) {
  auto images = qemu_images();
  const auto& a = images[3];  // converted dynamic
  const auto& b = images[4];  // converted fixed, same content
  expect_compare_agrees(a.vhd, "vpc", b.vhd, "vpc", 0);
  expect_compare_agrees(a.vhd, "vpc", images[2].vhd, "vpc", 1);  // data against an empty 64 MiB disk
}

TEST_F(CliVhd, ComparingEmpty127GiBImagesTakesMilliseconds) {
  VHDKIT_NEEDS_FIXTURES();
  std::string ours = dir.file("ours.vhd");
  std::string theirs = expand_fixture("qemu-iotests/hyperv2012r2-dynamic.vhd.bz2", dir);
  run_ok(vk("create --size 127G " + q(ours)));
  auto start = std::chrono::steady_clock::now();
  RunResult r = vhdkit("compare " + q(ours) + " " + q(theirs));
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "Images are identical.\n");
  EXPECT_LT(took, std::chrono::seconds(2)) << "comparing unallocated ranges must not read them";
}

TEST_F(CliVhd, CreatedImagesOpenInQemuImgAndVhdiinfo) {
  struct Case {
    std::string args, type, vhdi_type;
  };
  for (const Case& c : {Case{"--size 64M", "dynamic", "Dynamic"}, Case{"--type fixed --size 10M", "fixed", "Fixed"},
                        Case{"--size 100M --block-size 512K", "dynamic", "Dynamic"}}) {
    SCOPED_TRACE(c.args);
    std::string vhd = dir.file("created.vhd");
    std::filesystem::remove(vhd);
    RunResult r = vhdkit("create " + c.args + " " + q(vhd));
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("created "), std::string::npos);
    auto ours = vhdkit_json("info --json " + q(vhd));
    auto qemu = parse_json(run_ok("qemu-img info --output=json -f vpc " + q(vhd)), "qemu-img info");
    EXPECT_EQ(ours["type"], c.type);
    EXPECT_EQ(ours["virtual-size"], qemu["virtual-size"]);
    VhdiInfo v = vhdiinfo(vhd);
    EXPECT_EQ(v.media_size, ours["virtual-size"]);
    EXPECT_EQ(v.disk_type, c.vhdi_type);
    EXPECT_EQ(vhdkit("check " + q(vhd)).status, 0);
    // What we write, qemu reads back.
    run_ok(vk("write " + q(vhd) + " 1M --pattern 0xab --length 3M"));
    run_ok("qemu-io -f vpc -c 'read -P 0xab 1M 3M' -c 'read -P 0 0 1M' -c 'read -P 0 4M 1M' " + q(vhd));
    std::string raw = dir.file("created.raw");
    run_ok("qemu-img convert -f vpc -O raw " + q(vhd) + " " + q(raw));
    expect_compare_agrees(vhd, "vpc", raw, "raw", 0);
  }
}

TEST_F(CliVhd, CreateDifferencingReadsThroughItsParent) {
  std::string parent = dir.file("parent.vhd"), child = dir.file("child.vhd"), expected = dir.file("expected.raw");
  make_cli_differencing_pair("vhd", parent, child, expected);
  auto info = vhdkit_json("info --json " + q(child));
  EXPECT_EQ(info["type"], "differencing");
  EXPECT_EQ(info["parent-missing"], false);
  ASSERT_EQ(info["parent-chain"].size(), 1u);
  EXPECT_EQ(info["parent-chain"][0]["type"], "dynamic");
  EXPECT_EQ(vhdiinfo(child).disk_type, "Differential");
  RunResult same = vhdkit("compare " + q(child) + " " + q(expected));
  EXPECT_EQ(same.status, 0) << same.out << same.err;
  // The parent alone does not hold the child's write.
  RunResult differs = vhdkit("compare " + q(parent) + " " + q(expected));
  EXPECT_EQ(differs.status, 1);
  EXPECT_EQ(differs.out, "Content mismatch at offset 1048576!\n");
  EXPECT_EQ(vhdkit("check " + q(child)).status, 0);
}

TEST_F(CliVhd, MissingParentInfoSaysSoAndCheckFails) {
  std::string parent = dir.file("parent.vhd"), child = dir.file("child.vhd");
  run_ok(vk("create --size 8M " + q(parent)));
  run_ok(vk("create --parent " + q(parent) + " " + q(child)));
  std::filesystem::remove(parent);
  std::string before = sha256(child);
  RunResult info = vhdkit("info " + q(child));
  EXPECT_EQ(info.status, 0) << info.err;
  EXPECT_NE(info.out.find("missing"), std::string::npos) << info.out;
  auto j = vhdkit_json("info --json " + q(child));
  EXPECT_EQ(j["parent-missing"], true);
  RunResult check = vhdkit("check " + q(child));
  EXPECT_EQ(check.status, 1) << check.out << check.err;
  EXPECT_NE(check.out.find("parent"), std::string::npos) << check.out;
  auto cj = parse_json(vhdkit("check --json " + q(child)).out, "check --json");
  EXPECT_EQ(cj["clean"], false);
  EXPECT_EQ(cj["problems"].size(), 1u) << cj.dump();
  // Reading the contents needs the parent.
  RunResult compare = vhdkit("compare " + q(child) + " " + q(child));
  EXPECT_EQ(compare.status, 3) << "the parent is not found, and an error is not a difference\n" << compare.err;
  EXPECT_EQ(sha256(child), before);
}

TEST_F(CliVhd, WindowsDifferencingFixtureWithoutItsParent) {
  VHDKIT_NEEDS_FIXTURES();
  std::string child = expand_fixture("dfvfs/fat-differential.vhd.gz", dir);
  auto j = vhdkit_json("info --json " + q(child));
  EXPECT_EQ(j["type"], "differencing");
  EXPECT_EQ(j["virtual-size"], 4194304);
  EXPECT_EQ(j["parent-missing"], true);
  RunResult check = vhdkit("check " + q(child));
  EXPECT_EQ(check.status, 1) << "problems found\n" << check.out << check.err;
}

TEST_F(CliVhd, ForcedFormat) {
  auto images = qemu_images();
  const auto& fixed = images[4];
  auto as_raw = vhdkit_json("info --json --format raw " + q(fixed.vhd));
  EXPECT_EQ(as_raw["format"], "raw");
  EXPECT_EQ(as_raw["virtual-size"], std::filesystem::file_size(fixed.vhd));
  auto as_vhd = vhdkit_json("info --json --format vhd " + q(fixed.vhd));
  EXPECT_EQ(as_vhd["format"], "vhd");
  RunResult not_vhd = vhdkit("info --format vhd " + q(fixed.raw));
  EXPECT_EQ(not_vhd.status, 1) << not_vhd.err;
  EXPECT_NE(not_vhd.err.find("vhdkit: " + fixed.raw + ": "), std::string::npos) << not_vhd.err;
}

// Malformed images: every subcommand fails (or check names the problem), and no byte of the file changes.
struct Malformed {
  std::string name;
  std::function<void(const std::string&)> damage;
  std::string says;  // part of the message naming the problem
};

TEST_F(CliVhd, MalformedImagesAreNamedAndLeftUnchanged) {
  auto images = qemu_images();
  const std::string good = images[3].vhd;  // dynamic, with data
  const uint64_t size = std::filesystem::file_size(good);
  std::vector<Malformed> cases = {
      {"footer checksum",
       [&](const std::string& p) {
         patch_file(p, size - 512 + 64, {0xde, 0xad});
       },
       "checksum"},
      {"both footers' checksums",
       [&](const std::string& p) {
         patch_file(p, 64, {0xde, 0xad});
         patch_file(p, size - 512 + 64, {0xde, 0xad});
       },
       "checksum"},
      {"dynamic header cookie",
       [](const std::string& p) {
         patch_file(p, 512, {'x', 'x', 'x'});
       },
       "cxsparse"},
      {"BAT entry past the end",
       [](const std::string& p) {
         patch_file(p, 1536, {0x00, 0xff, 0xff, 0x00});
       },
       "BAT entry 0"},
      {"truncated", [](const std::string& p) { std::filesystem::resize_file(p, 1000); }, "truncated"},
      {"not a VHD at all", [](const std::string& p) { std::filesystem::resize_file(p, 0); }, ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    std::string bad = dir.file("bad.vhd");
    run_ok("cp " + q(good) + " " + q(bad));
    c.damage(bad);
    std::string before = sha256(bad);
    // A file too damaged to open: every subcommand refuses it (Failed, 1) and names the problem.
    for (const char* sub : {"info", "map", "check"}) {
      RunResult r = vhdkit(std::string(sub) + " --format vhd " + q(bad));
      EXPECT_EQ(r.status, 1) << sub << ": " << r.out << r.err;
      EXPECT_NE(r.err.find("vhdkit: " + bad + ": "), std::string::npos) << sub << ": " << r.err;
      EXPECT_NE((r.out + r.err).find(c.says), std::string::npos) << sub << ": " << r.out << r.err;
    }
    RunResult compare = vhdkit("compare --format vhd " + q(bad) + " " + q(good));
    EXPECT_EQ(compare.status, 9) << "compare's generic failure, never 1 (different)\n" << compare.err;
    RunResult write = vhdkit("write --format vhd " + q(bad) + " 0 --pattern 1 --length 512");
    EXPECT_EQ(write.status, 1) << write.out << write.err;
    EXPECT_EQ(sha256(bad), before) << "vhdkit changed a malformed file";
  }
}

TEST_F(CliVhd, FixtureWithAWrongChecksumIsRefused) {
  VHDKIT_NEEDS_FIXTURES();
  std::string img = expand_fixture("dfvfs/image.vhd.gz", dir);
  std::string before = sha256(img);
  for (const char* sub : {"info", "check"}) {
    RunResult r = vhdkit(std::string(sub) + " " + q(img));
    EXPECT_EQ(r.status, 1) << sub << ": " << r.out << r.err;
    EXPECT_NE(r.err.find("checksum"), std::string::npos) << sub << ": " << r.out << r.err;
  }
  EXPECT_EQ(sha256(img), before);
}

TEST_F(CliVhd, CreateRefusesBadRequestsAndNeverOverwrites) {
  std::string existing = dir.file("existing.vhd");
  run_ok(vk("create --size 8M " + q(existing)));
  std::string before = sha256(existing);
  RunResult again = vhdkit("create --size 16M " + q(existing));
  EXPECT_EQ(again.status, 1) << again.err;
  EXPECT_NE(again.err.find("vhdkit: " + existing + ": "), std::string::npos) << again.err;
  EXPECT_EQ(sha256(existing), before);
  std::string fresh = dir.file("fresh.vhd");
  for (const char* args : {"--type differencing", "", "--parent nope.vhd --size 8M", "--type dynamic --parent x.vhd"}) {
    RunResult r = vhdkit("create " + std::string(args) + " " + q(fresh));
    EXPECT_EQ(r.status, 2) << args << ": " << r.err;
    EXPECT_NE(r.err.find("vhdkit: "), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(fresh)) << args;
  }
  RunResult missing_parent = vhdkit("create --parent " + q(dir.file("nope.vhd")) + " " + q(fresh));
  EXPECT_EQ(missing_parent.status, 3) << missing_parent.err;  // File not found
  EXPECT_FALSE(std::filesystem::exists(fresh));
}

}  // namespace
}  // namespace vhdkit::testing
