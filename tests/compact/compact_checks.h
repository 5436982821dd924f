// SPDX-License-Identifier: Apache-2.0
// What the compaction tests ask of every run, for VHD and VHDX alike: runs that must succeed, the dry run's
// prediction held against the real run, the referees, and the helpers that provoke refusals (qemu holding
// the image, an unwritable file) and cancellations.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "child_process.h"
#include "compact/compact.h"
#include "images.h"

namespace vhdkit::testing {

compact::Report compact_ok(const std::string& path, compact::Options options = {});
compact::Report dry_run(const std::string& path, compact::Mode mode = compact::Mode::Full);

// A dry run finds nothing more to do (and the image opens for compaction: every structure validates).
void expect_fully_compacted(const std::string& path, compact::Mode mode = compact::Mode::Full);

// Compaction and its dry run both refuse the image with `code` and a message holding every phrase, and the
// file stays byte for byte as it was.
void expect_refused(const std::string& image, ReturnCode code, const std::vector<std::string>& phrases);

// Our reader reads the same from both (image::compare_contents: streaming, and skipping what both maps call
// zero, so that a 10 GiB disk costs what it holds).
void expect_same_reading(const std::string& a, const std::string& b);

// Compacts in place and holds the result to everything the issues ask: the dry run wrote nothing and
// predicted the run exactly, the file shrank by what it said, the content is the same (qemu-img compare
// where qemu reads the image, and our reader), the real tools and our check accept the result, and nothing
// is left to do.
// `mode`: Full (the default; on a disk without a file system it runs as Prezeroed) or Prezeroed (a parent).
compact::Report compact_and_referee(const std::string& image, QemuReads qemu = QemuReads::Yes,
                                    compact::Mode mode = compact::Mode::Full);

// qemu-io with the image open, reading commands from a pipe: it holds qemu's locks until its input closes.
// Whether it holds them yet is read from /proc/locks: probing with another qemu would take a shared lock
// that makes qemu-io's own open fail when the two race.
class QemuIoHolder {
 public:
  explicit QemuIoHolder(const std::string& image);
  void release() { process_.reset(); }  // end of input: qemu-io quits, and the process is waited for

 private:
  std::unique_ptr<ChildProcess> process_;
};

// Makes a file or folder unwritable even for root (tests run as root in CI): the immutable attribute.
class Unwritable {
 public:
  explicit Unwritable(std::string path);
  ~Unwritable();

 private:
  std::string path_;
};

// Records progress (which must never go backwards) and asks to stop after `stop_after` questions.
class Recorder final : public compact::Observer {
 public:
  explicit Recorder(int stop_after = -1) : stop_after_(stop_after) {}
  void progress(uint64_t done, uint64_t total) override;
  bool stop_requested() override { return stop_after_ >= 0 && asked_++ >= stop_after_; }
  std::vector<std::pair<uint64_t, uint64_t>> seen;

 private:
  int stop_after_;
  int asked_ = 0;
};

}  // namespace vhdkit::testing
