// SPDX-License-Identifier: Apache-2.0
// The one way into an image, seen from outside (strace and qemu-io as referees): a compaction opens its
// image at most twice, every read-write open is locked whatever the format, and a mode the image cannot do
// is refused before a job exists.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "child_process.h"
#include "cli_util.h"
#include "test_support.h"

namespace vhdkit::testing {
namespace {

// How many times the traced command opened `path` (open/openat calls naming it, in any process).
int opens_of(const std::string& trace, const std::string& path) {
  std::ifstream in(trace);
  std::string line;
  int n = 0;
  while (std::getline(in, line))
    // openat2: how the io layer opens an existing file (an O_PATH look-up refusing /proc magic links, then
    // the file itself through that descriptor, which names /proc/self/fd/N, not the path).
    if ((line.find("openat(") != std::string::npos || line.find("open(") != std::string::npos ||
         line.find("openat2(") != std::string::npos) &&
        line.find("\"" + path + "\"") != std::string::npos)
      ++n;
  return n;
}

std::string make_image(const TempDir& dir, const std::string& format, const std::string& name) {
  std::string raw = dir.file(name + ".raw");
  run_ok("truncate -s 64M " + q(raw));
  run_ok("qemu-io -f raw -c 'write -P 0x5a 0 4M' -c 'write -P 0 8M 8M' -c 'write -P 0x11 40M 2M' " + q(raw));
  std::string img = dir.file(name + "." + (format == "vpc" ? "vhd" : format));
  if (format == "raw") return raw;
  run_ok("qemu-img convert -f raw -S 0 -O " + format + " " + q(raw) + " " + q(img));
  return img;
}

TEST(CliSpine, CompactOpensTheImageAtMostTwice) {
  if (run("command -v strace").status != 0)
    GTEST_SKIP() << "strace is not installed (scripts/install-deps.sh installs it)";
  TempDir dir;
  for (const char* format : {"vpc", "vhdx"}) {
    std::string img = make_image(dir, format, std::string("spine-") + format);
    std::string trace = dir.file(std::string("trace-") + format);
    RunResult r =
        run("strace -f -e trace=open,openat,openat2 -o " + q(trace) + " " + q(VHDKIT_BINARY) + " compact " + q(img));
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    int n = opens_of(trace, img);
    std::cout << format << ": vhdkit compact opened the image " << n << " time(s)\n";
    EXPECT_GE(n, 1);
    EXPECT_LE(n, 2) << "vhdkit compact opened " << img << " " << n << " times";
  }
}

TEST(CliSpine, WriteIsRefusedWhileQemuHoldsTheImageInEveryFormat) {
  TempDir dir;
  for (const char* format : {"vpc", "vhdx", "raw"}) {
    std::string img = make_image(dir, format, std::string("held-") + format);
    std::string before = sha256(img);
    {
      ChildProcess qemu({"qemu-io", "-f", format, img}, "", Stdin::OpenPipe, Stdout::Log, StopBy::ClosingStdin);
      ASSERT_TRUE(wait_until([&] { return file_is_locked(img); })) << "qemu-io never took its lock on " << img;
      RunResult r = vhdkit("write " + q(img) + " 0 --pattern 0x77 --length 4096");
      EXPECT_EQ(r.status, 5) << format << ": " << r.out << r.err;  // 5: in use (README's exit statuses)
      EXPECT_NE(r.err.find("in use"), std::string::npos) << r.err;
    }
    EXPECT_EQ(sha256(img), before) << format;
  }
}

TEST(CliSpine, AModeTheImageCannotDoIsRefusedBeforeAJob) {
  TempDir dir;
  std::string raw = dir.file("fixed.raw");
  run_ok("truncate -s 16M " + q(raw));
  std::string fixed = dir.file("fixed.vhd");
  run_ok("qemu-img convert -f raw -O vpc -o subformat=fixed " + q(raw) + " " + q(fixed));
  struct Case {
    std::string image, mode;
  };
  // A fixed disk keeps its size: every mode but Retrim is refused, and the refusal names Retrim.
  for (const Case& c : {Case{fixed, "prezeroed"}, Case{fixed, "full"}, Case{fixed, "quick"}, Case{fixed, "pretrimmed"},
                        Case{raw, "full"}}) {
    std::string before = sha256(c.image);
    RunResult r = vhdkit("compact --mode " + c.mode + " " + q(c.image));
    EXPECT_EQ(r.status, 6) << c.mode << ": " << r.out << r.err;  // 6: not supported
    EXPECT_EQ(r.out.find("In progress"), std::string::npos) << c.mode << ": a job was started:\n" << r.out;
    EXPECT_NE(r.out.find("returned error 32770"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Retrim"), std::string::npos) << r.out;
    EXPECT_EQ(sha256(c.image), before);
  }
}

TEST(CliSpine, AFifoOrADeviceIsRefusedAtOnceNotWaitedOn) {
  TempDir dir;
  std::string fifo = dir.file("image.vhdx");
  run_ok("mkfifo " + q(fifo));
  for (const char* sub : {"info", "check", "map", "compact", "compact --dry-run"}) {
    // `timeout` turns a hang into status 124: the open must not wait for a writer on the FIFO.
    RunResult r = run("timeout 10 " + q(VHDKIT_BINARY) + " " + std::string(sub) + " " + q(fifo));
    EXPECT_NE(r.status, 124) << sub << " hung on a FIFO";
    EXPECT_NE(r.status, 0) << sub;
    EXPECT_NE((r.out + r.err).find("is a FIFO, not an image file"), std::string::npos) << sub << ": " << r.out << r.err;
  }
  RunResult dev = run("timeout 10 " + q(VHDKIT_BINARY) + " info /dev/zero");
  EXPECT_EQ(dev.status, 2) << dev.err;
  EXPECT_NE(dev.err.find("is a character device"), std::string::npos) << dev.err;
}

}  // namespace
}  // namespace vhdkit::testing
