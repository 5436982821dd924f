// SPDX-License-Identifier: Apache-2.0
// In-memory files for tests: a MemEnv is a little file system held in RAM. Every open of one path shares
// the same bytes (and the same lock table), as two programs opening one host file would, so a test can
// open an image twice, check locking, or look at the bytes behind a File while it is open.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "io/file.h"

namespace vhdkit::io {

// The bytes of one in-memory file and who holds locks on it. Shared by every open File of its path.
struct MemNode;

enum class Permission { ReadWrite, ReadOnly };

// One open of an in-memory file. Behaves like a POSIX file on a file system with 4 KiB blocks:
// writes past the end extend it with zeros, punch_hole zeroes the range (whole 4 KiB blocks stop counting
// in allocated_bytes and become holes in data_ranges; growing by truncate leaves holes too), locks follow OFD rules
// (they belong to this open and go away with it).
class MemFile final : public File {
 public:
  MemFile(std::string path, std::shared_ptr<MemNode> node, Access access);
  ~MemFile() override;

  // The whole file as it is now.
  std::vector<std::byte> bytes() const;

 protected:
  Result<size_t> do_read(uint64_t offset, std::span<std::byte> buf) override;
  Result<size_t> do_write(uint64_t offset, std::span<const std::byte> buf) override;
  Status do_flush() override;
  Status do_truncate(uint64_t size) override;
  Result<uint64_t> do_size() override;
  Status do_punch_hole(uint64_t offset, uint64_t length) override;
  Status do_copy_range(uint64_t from, uint64_t to, uint64_t length) override;
  Result<uint64_t> do_allocated_bytes() override;
  // The allocated 4 KiB blocks: a punched or never written block is a hole.
  Result<std::vector<ByteRun>> do_data_ranges(uint64_t offset, uint64_t length) override;
  Status do_allocate(uint64_t offset, uint64_t length) override;
  Status do_try_lock(LockMode mode) override;
  Status do_unlock() override;

 private:
  Status check_writable_open() const;

  std::shared_ptr<MemNode> node_;
  Access access_;
};

// A lone in-memory file outside any MemEnv (for code that takes a File directly).
std::unique_ptr<File> make_mem_file(std::string path, std::vector<std::byte> bytes = {},
                                    Access access = Access::ReadWrite);

// Files by path, in memory. Paths are plain strings (no directories exist; sync_dir always succeeds and is
// counted). Safe to use from several threads.
class MemEnv final : public Env {
 public:
  MemEnv();
  ~MemEnv() override;

  Result<std::unique_ptr<File>> open(const std::string& path, Access access,
                                     Creation creation = Creation::OpenExisting) override;
  bool exists(const std::string& path) override;
  Status rename(const std::string& from, const std::string& to) override;
  Status remove(const std::string& path) override;
  Status sync_dir(const std::string& dir) override;
  Status check_writable(const std::string& path) override;
  // The files whose directory_of() is `dir` ("." and "/" as given); an empty list for a folder nobody named.
  Result<std::vector<std::string>> list_files(const std::string& dir) override;

  // Test hooks: a file's bytes (nullopt when there is no such file), replacing or creating a file, making
  // a file read-only (open for writing and check_writable then fail with AccessDenied) or a directory
  // read-only (creating, renaming or removing in it and check_writable of its files fail), what exists.
  std::optional<std::vector<std::byte>> bytes(const std::string& path) const;
  void set_bytes(const std::string& path, std::vector<std::byte> bytes);
  void set_permission(const std::string& path, Permission permission);
  void set_directory_permission(const std::string& dir, Permission permission);
  std::vector<std::string> paths() const;
  uint64_t sync_dir_calls() const;

 private:
  std::shared_ptr<MemNode> find(const std::string& path) const;
  Status check_directory_writable(const std::string& path, std::string_view doing) const;

  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<MemNode>> files_;
  std::map<std::string, Permission> directories_;  // only those made read-only
  uint64_t sync_dir_calls_ = 0;
};

}  // namespace vhdkit::io
