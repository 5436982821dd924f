// SPDX-License-Identifier: Apache-2.0
// src/io is the only place that touches the host. Everything above it reads and writes through File and
// opens files through Env, so that tests can swap in memory, injected errors and simulated power cuts
// (LevelDB's Env split).
//
// Every implementation keeps ARCHITECTURE.md's durability rules; those of this interface:
//   D1. A write is durable only after a later flush() returned success.
//   D7. After a failed write, truncate, punch_hole or flush the File is poisoned (a sticky error): every
//      later mutating call and flush fails with that first error until the image is reopened. A half-done
//      write may or may not have reached the disk, so nothing built on top of it may proceed.
//       Reads keep working after a sticky error (a caller may still report what it sees).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/error.h"

namespace vhdkit::io {

// Shared: we read, and no one may write meanwhile. Exclusive: we write. NoWriter: we read but hold nothing,
// refused only while someone writes: for readers who may not write the file themselves (a service's
// unprivileged caller), so that they cannot keep its owner, or qemu, from writing it; what they read is
// checked again afterwards (a writer that came in between makes the answer InUse).
enum class LockMode { Shared, Exclusive, NoWriter };

// Which file an open File is, and who may write it: what a service checks on the file it opened (never
// on a path that could be swapped after the check).
struct FileIdentity {
  uint64_t device = 0;
  uint64_t inode = 0;
  uint32_t owner = 0;  // uid
  uint32_t group = 0;  // gid
  uint32_t mode = 0;   // permission bits and file type, as st_mode
  bool operator==(const FileIdentity&) const = default;
  bool same_file(const FileIdentity& o) const { return device == o.device && inode == o.inode; }
};

// A byte range of a host file.
struct ByteRun {
  uint64_t offset = 0;
  uint64_t length = 0;
  uint64_t end() const { return offset + length; }
  bool operator==(const ByteRun&) const = default;
};

class File {
 public:
  virtual ~File() = default;
  File() = default;
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  const std::string& path() const { return path_; }

  // Reads exactly buf.size() bytes at offset; reading past the end of the file is an error that says so.
  Status read_at(uint64_t offset, std::span<std::byte> buf);
  // Reads up to buf.size() bytes; returns how many (fewer only at end of file).
  Result<size_t> read_up_to(uint64_t offset, std::span<std::byte> buf);
  // Writes exactly buf.size() bytes at offset, extending the file if needed.
  Status write_at(uint64_t offset, std::span<const std::byte> buf);
  Status flush();
  Status truncate(uint64_t size);
  Result<uint64_t> size();
  // Deallocates [offset, offset+length) so that it reads as zeros; NotSupported where the host cannot.
  Status punch_hole(uint64_t offset, uint64_t length);
  // Copies length bytes within this file (ranges must not overlap). Uses the host's copy offload where
  // there is one (copy_file_range shares extents on reflink file systems).
  Status copy_range(uint64_t from, uint64_t to, uint64_t length);
  // Bytes the host really stores for this file (st_blocks * 512): what "disk size" means in qemu-img info.
  Result<uint64_t> allocated_bytes();
  // The parts of [offset, offset + length) (clipped to the file) that the host stores data for, sorted and
  // disjoint. Holes (SEEK_HOLE; where the host file system reports them so, unwritten extents without data)
  // read as zeros without being stored and are left out. A host that cannot tell reports the whole range as
  // data: the answer may miss a hole, never invent one.
  Result<std::vector<ByteRun>> data_ranges(uint64_t offset, uint64_t length);
  // The host file system's block size (statfs f_bsize): the unit punch_hole gives back.
  Result<uint64_t> host_block_size();
  // Gives [offset, offset + length) (inside the file) storage of its own without changing what it reads
  // (fallocate without PUNCH_HOLE, KEEP_SIZE): fills holes back. NotSupported where the host cannot.
  Status allocate(uint64_t offset, uint64_t length);
  // A hint that [offset, offset + length) will be read soon (posix_fadvise WILLNEED: the kernel starts the
  // reads and returns, so several are in flight while the caller works). Never fails; may do nothing.
  void prefetch(uint64_t offset, uint64_t length) { do_prefetch(offset, length); }
  // The opened file's identity (fstat); NotSupported for files that have none (in memory).
  Result<FileIdentity> identity();

  // Advisory locks, compatible with qemu's OFD byte-range locks. try_lock never waits: a conflict is
  // InUse with a message naming the holder when it can be found.
  Status try_lock(LockMode mode);
  Status unlock();

  // The first error of a failed mutation, if any (rule D7).
  const std::optional<Error>& sticky_error() const { return sticky_; }

 protected:
  explicit File(std::string path) : path_(std::move(path)) {}

  // Implementations provide these; short transfers are allowed (the base loops), 0 from do_read means EOF.
  virtual Result<size_t> do_read(uint64_t offset, std::span<std::byte> buf) = 0;
  virtual Result<size_t> do_write(uint64_t offset, std::span<const std::byte> buf) = 0;
  virtual Status do_flush() = 0;
  virtual Status do_truncate(uint64_t size) = 0;
  virtual Result<uint64_t> do_size() = 0;
  virtual Status do_punch_hole(uint64_t offset, uint64_t length) = 0;
  virtual Status do_copy_range(uint64_t from, uint64_t to, uint64_t length);  // default: read + write
  virtual Result<uint64_t> do_allocated_bytes() = 0;
  virtual Result<std::vector<ByteRun>> do_data_ranges(uint64_t offset, uint64_t length);  // default: all data
  virtual Result<uint64_t> do_host_block_size();                                          // default: 4096
  virtual Status do_allocate(uint64_t offset, uint64_t length);                           // default: NotSupported
  virtual void do_prefetch(uint64_t, uint64_t) {}                                         // default: nothing
  virtual Result<FileIdentity> do_identity();
  virtual Status do_try_lock(LockMode mode) = 0;
  virtual Status do_unlock() = 0;

  Error error(ReturnCode code, std::string message) const { return Error(code, path_, std::move(message)); }

 private:
  Status poisoned_check() const;
  Status remember(Status s);

  std::string path_;
  std::optional<Error> sticky_;
};

enum class Access { ReadOnly, ReadWrite };
enum class Creation { OpenExisting, CreateNew, CreateOrTruncate };

// Opens files and changes directories. Production: Env::posix(). Tests: MemEnv, or wrappers over either.
class Env {
 public:
  virtual ~Env() = default;
  virtual Result<std::unique_ptr<File>> open(const std::string& path, Access access,
                                             Creation creation = Creation::OpenExisting) = 0;
  virtual bool exists(const std::string& path) = 0;
  virtual Status rename(const std::string& from, const std::string& to) = 0;
  virtual Status remove(const std::string& path) = 0;
  // Makes a rename or creation in the directory durable.
  virtual Status sync_dir(const std::string& dir) = 0;
  // Can the caller write this file and its directory? (AccessDenied with the reason otherwise.)
  virtual Status check_writable(const std::string& path) = 0;
  // The names (not paths) of the files in a directory, sorted; sub-directories are left out. Used to find the
  // differencing children beside an image (a parent must not be compacted in Full or Quick mode).
  virtual Result<std::vector<std::string>> list_files(const std::string& dir) = 0;
  // The path made absolute, symlinks of its existing part resolved, "." and ".." folded: two spellings of
  // one file give one answer. The file itself need not exist. Default (files in memory): lexical only.
  virtual Result<std::string> canonical(const std::string& path);
  // The path made absolute against the current folder and "." and ".." folded, symlinks kept: the spelling
  // the user gave, as a parent locator records it. Default (files in memory): relative to "/".
  virtual Result<std::string> absolute(const std::string& path);

  static Env& posix();
};

// The directory a path lives in, as sync_dir wants it ("." for a bare name).
std::string directory_of(const std::string& path);

}  // namespace vhdkit::io
