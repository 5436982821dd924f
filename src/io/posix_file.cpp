// SPDX-License-Identifier: Apache-2.0
// The production File and Env: POSIX calls, nothing else in the tree makes them.
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <filesystem>
#include <vector>

#include "io/file.h"
#include "io/posix_locks.h"

namespace vhdkit::io {
namespace {

ReturnCode code_for_errno(int err) {
  switch (err) {
    case ENOENT: return ReturnCode::FileNotFound;
    case EACCES:
    case EPERM:
    case EROFS: return ReturnCode::AccessDenied;
    case ENOMEM: return ReturnCode::OutOfMemory;
    case EBUSY:
    case ETXTBSY: return ReturnCode::InUse;
    case EOPNOTSUPP: return ReturnCode::NotSupported;
    case EINVAL: return ReturnCode::InvalidParameter;
    default: return ReturnCode::Failed;
  }
}

class PosixFile final : public File {
 public:
  PosixFile(std::string path, int fd, Access access) : File(std::move(path)), fd_(fd), access_(access) {}
  ~PosixFile() override { ::close(fd_); }

 protected:
  Error errno_error(const char* what, int err) const {
    return error(code_for_errno(err), fmt::format("{} failed: {}", what, std::strerror(err)));
  }
  // A transfer the kernel refuses names its range; EINVAL there means an offset or length the image's own
  // structures produced (a damaged file), not a bad argument of the caller's.
  Error transfer_error(const char* what, uint64_t offset, size_t length, int err) const {
    ReturnCode code = err == EINVAL || err == EFBIG || err == EOVERFLOW ? ReturnCode::Failed : code_for_errno(err);
    return error(code,
                 fmt::format("{} of {} bytes at offset {:#x} failed: {}", what, length, offset, std::strerror(err)));
  }

  Result<size_t> do_read(uint64_t offset, std::span<std::byte> buf) override {
    for (;;) {
      ssize_t n = ::pread(fd_, buf.data(), buf.size(), static_cast<off_t>(offset));
      if (n >= 0) return static_cast<size_t>(n);
      if (errno != EINTR) return std::unexpected(transfer_error("read", offset, buf.size(), errno));
    }
  }

  // The kernel would say EBADF; say what it means.
  Status check_writable_open() const {
    if (access_ != Access::ReadWrite) return fail(error(ReturnCode::AccessDenied, "the file is open read-only"));
    return ok();
  }

  Result<size_t> do_write(uint64_t offset, std::span<const std::byte> buf) override {
    VHDKIT_TRY(check_writable_open());
    for (;;) {
      ssize_t n = ::pwrite(fd_, buf.data(), buf.size(), static_cast<off_t>(offset));
      if (n >= 0) return static_cast<size_t>(n);
      if (errno != EINTR) return std::unexpected(transfer_error("write", offset, buf.size(), errno));
    }
  }

  Status do_flush() override {
    if (::fdatasync(fd_) != 0) return std::unexpected(errno_error("fdatasync", errno));
    return ok();
  }

  Status do_truncate(uint64_t size) override {
    VHDKIT_TRY(check_writable_open());
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) return std::unexpected(errno_error("truncate", errno));
    return ok();
  }

  Result<uint64_t> do_size() override {
    struct stat st;
    if (::fstat(fd_, &st) != 0) return std::unexpected(errno_error("stat", errno));
    return static_cast<uint64_t>(st.st_size);
  }

  Status do_punch_hole(uint64_t offset, uint64_t length) override {
    VHDKIT_TRY(check_writable_open());
    if (::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                    static_cast<off_t>(length)) != 0) {
      int err = errno;
      if (err == EOPNOTSUPP || err == ENOSYS)
        return fail(ReturnCode::NotSupported, path(), "the host file system cannot punch holes");
      return std::unexpected(errno_error("punch hole", err));
    }
    return ok();
  }

  Result<uint64_t> do_allocated_bytes() override {
    struct stat st;
    if (::fstat(fd_, &st) != 0) return std::unexpected(errno_error("stat", errno));
    return static_cast<uint64_t>(st.st_blocks) * 512;
  }

  // SEEK_DATA/SEEK_HOLE find the holes, and on ext4 and XFS also the unwritten extents that hold no data in
  // the page cache. FIEMAP's UNWRITTEN flag is not used: with delayed allocation, a buffered write into a
  // hole becomes an unwritten extent at writeback and stays flagged so until the write completes, while its
  // data is already in the page cache; calling that range zeros would lose it (seen: a block moved by an
  // interrupted run was then released by the rerun). A file system without SEEK_DATA (EINVAL) gives the
  // conservative answer: all data.
  Result<std::vector<ByteRun>> do_data_ranges(uint64_t offset, uint64_t length) override {
    const uint64_t end = offset + length;  // clipped to the file by the caller
    std::vector<ByteRun> data;
    for (uint64_t at = offset; at < end;) {
      off_t d = ::lseek(fd_, static_cast<off_t>(at), SEEK_DATA);
      if (d < 0) {
        if (errno == ENXIO) break;  // no data from here to the end of the file
        return std::vector<ByteRun>{{offset, length}};
      }
      if (static_cast<uint64_t>(d) >= end) break;
      off_t h = ::lseek(fd_, d, SEEK_HOLE);
      if (h < 0) return std::vector<ByteRun>{{offset, length}};
      uint64_t e = std::min<uint64_t>(static_cast<uint64_t>(h), end);
      data.push_back({static_cast<uint64_t>(d), e - static_cast<uint64_t>(d)});
      at = e;
    }
    return data;
  }

  void do_prefetch(uint64_t offset, uint64_t length) override {
    (void)::posix_fadvise(fd_, static_cast<off_t>(offset), static_cast<off_t>(length), POSIX_FADV_WILLNEED);
  }

  Result<uint64_t> do_host_block_size() override {
    struct statfs sfs;
    if (::fstatfs(fd_, &sfs) != 0) return std::unexpected(errno_error("statfs", errno));
    return sfs.f_bsize > 0 ? static_cast<uint64_t>(sfs.f_bsize) : uint64_t{4096};
  }

  Status do_allocate(uint64_t offset, uint64_t length) override {
    VHDKIT_TRY(check_writable_open());
    if (::fallocate(fd_, FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset), static_cast<off_t>(length)) != 0) {
      int err = errno;
      if (err == EOPNOTSUPP || err == ENOSYS)
        return fail(ReturnCode::NotSupported, path(), "the host file system cannot preallocate space");
      return std::unexpected(errno_error("fallocate", err));
    }
    return ok();
  }

  Result<FileIdentity> do_identity() override {
    struct stat st;
    if (::fstat(fd_, &st) != 0) return std::unexpected(errno_error("stat", errno));
    return FileIdentity{st.st_dev, st.st_ino, st.st_uid, st.st_gid, st.st_mode};
  }

  Status do_try_lock(LockMode mode) override {
    if (mode == LockMode::Exclusive && access_ != Access::ReadWrite)
      return fail(error(ReturnCode::InvalidState, "an exclusive lock needs the file open for writing"));
    return posix::try_lock(fd_, path(), mode);
  }

  Status do_unlock() override { return posix::unlock(fd_, path()); }

  // The kernel copies (and shares extents on reflink file systems); where it cannot, the base class reads
  // and writes.
  Status do_copy_range(uint64_t from, uint64_t to, uint64_t length) override {
    VHDKIT_TRY(check_writable_open());
    uint64_t done = 0;
    while (done < length) {
      loff_t in = static_cast<loff_t>(from + done), out = static_cast<loff_t>(to + done);
      size_t chunk = static_cast<size_t>(std::min<uint64_t>(length - done, uint64_t{1} << 30));
      ssize_t n = ::copy_file_range(fd_, &in, fd_, &out, chunk, 0);
      if (n > 0) {
        done += static_cast<uint64_t>(n);
        continue;
      }
      if (n == 0) {
        return fail(error(ReturnCode::Failed,
                          fmt::format("copy_range: the source {}+{} lies past the end of the file", from, length)));
      }
      int err = errno;
      if (err == EINTR) continue;
      if (err == EXDEV || err == ENOSYS || err == EOPNOTSUPP || err == EINVAL)
        return File::do_copy_range(from + done, to + done, length - done);
      return std::unexpected(errno_error("copy_file_range", err));
    }
    return ok();
  }

 private:
  int fd_;
  Access access_;
};

// open(2) that refuses /proc magic links (/proc/PID/fd/N, /proc/PID/cwd...) anywhere on the way: they
// reach files by an open descriptor, not by the path's permissions, and a service opening a caller's path
// must not reach its own open files through /proc/self/fd. Kernels before 5.6 have no openat2; there the
// plain open is all there is.
int open_no_magic_links(const char* path, int flags, mode_t mode) {
  struct open_how how {};
  how.flags = static_cast<uint64_t>(flags);
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = RESOLVE_NO_MAGICLINKS;
  long fd = ::syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
  if (fd < 0 && errno == ENOSYS) return ::open(path, flags, mode);
  return static_cast<int>(fd);
}

Error open_error(const std::string& path, int err) {
  if (err == EISDIR) return Error(ReturnCode::InvalidParameter, path, "is a directory, not an image file");
  if (err == ELOOP) {
    return Error(ReturnCode::InvalidParameter, path,
                 "leads through a /proc magic link (/proc/PID/fd/N) or a loop of symbolic links; give the "
                 "image's real path");
  }
  return Error(code_for_errno(err), path,
               err == ENOENT ? "no such file" : fmt::format("cannot open: {}", std::strerror(err)));
}

Error not_a_file(const std::string& path, mode_t mode) {
  const char* what = S_ISDIR(mode)    ? "a directory"
                     : S_ISFIFO(mode) ? "a FIFO"
                     : S_ISSOCK(mode) ? "a socket"
                     : S_ISBLK(mode)  ? "a block device"
                     : S_ISCHR(mode)  ? "a character device"
                                      : "not a regular file";
  return Error(ReturnCode::InvalidParameter, path, fmt::format("is {}, not an image file", what));
}

class PosixEnv final : public Env {
 public:
  Result<std::unique_ptr<File>> open(const std::string& path, Access access, Creation creation) override {
    // O_NONBLOCK: a FIFO named as an image must not hang the opener (it is refused below); it is cleared
    // again for the regular file that remains.
    int flags = O_CLOEXEC | O_NONBLOCK | (access == Access::ReadWrite ? O_RDWR : O_RDONLY);
    if (creation == Creation::CreateNew) flags |= O_CREAT | O_EXCL;
    if (creation == Creation::CreateOrTruncate) flags |= O_CREAT | O_TRUNC;
    int fd = -1;
    if (creation == Creation::OpenExisting) {
      // The type first, from a descriptor that opens nothing (O_PATH: no device driver is called, no
      // socket or FIFO is opened); then the file itself through that descriptor, so the file whose type
      // was checked is the file opened.
      int where = open_no_magic_links(path.c_str(), O_PATH | O_CLOEXEC, 0);
      if (where < 0) return fail(open_error(path, errno));
      struct stat st {};
      if (::fstat(where, &st) != 0) {
        int err = errno;
        ::close(where);
        return fail(open_error(path, err));
      }
      if (!S_ISREG(st.st_mode)) {
        ::close(where);
        return fail(not_a_file(path, st.st_mode));
      }
      fd = ::open(fmt::format("/proc/self/fd/{}", where).c_str(), flags);
      if (fd < 0 && errno == ENOENT) fd = open_no_magic_links(path.c_str(), flags, 0);  // no /proc mounted
      int err = errno;
      ::close(where);
      if (fd < 0) return fail(open_error(path, err));
    } else {
      fd = open_no_magic_links(path.c_str(), flags, 0644);
      if (fd < 0) return fail(open_error(path, errno));
    }
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      int err = errno;
      ::close(fd);
      return fail(code_for_errno(err), path, fmt::format("cannot stat: {}", std::strerror(err)));
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      return fail(not_a_file(path, st.st_mode));
    }
    if (int fl = ::fcntl(fd, F_GETFL); fl < 0 || ::fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
      int err = errno;
      ::close(fd);
      return fail(code_for_errno(err), path, fmt::format("cannot clear O_NONBLOCK: {}", std::strerror(err)));
    }
    return std::make_unique<PosixFile>(path, fd, access);
  }

  bool exists(const std::string& path) override {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
  }

  Status rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      int err = errno;
      return fail(code_for_errno(err), from, fmt::format("rename to {} failed: {}", to, std::strerror(err)));
    }
    return ok();
  }

  Status remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) {
      int err = errno;
      return fail(code_for_errno(err), path, fmt::format("remove failed: {}", std::strerror(err)));
    }
    return ok();
  }

  Status sync_dir(const std::string& dir) override {
    int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      return fail(code_for_errno(err), dir, fmt::format("cannot open directory: {}", std::strerror(err)));
    }
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0) return fail(code_for_errno(err), dir, fmt::format("fsync failed: {}", std::strerror(err)));
    return ok();
  }

  Result<std::string> absolute(const std::string& path) override {
    if (path.empty()) return fail(ReturnCode::InvalidParameter, path, "empty path");
    std::filesystem::path p(path);
    if (p.is_relative()) {
      char cwd[PATH_MAX];
      if (!::getcwd(cwd, sizeof cwd)) return fail(code_for_errno(errno), path, "cannot read the current folder");
      p = std::filesystem::path(cwd) / p;
    }
    return p.lexically_normal().string();
  }

  // realpath() of the longest prefix that exists, the rest appended and folded.
  Result<std::string> canonical(const std::string& path) override {
    VHDKIT_ASSIGN(std::string absolute_path, absolute(path));
    std::filesystem::path p(absolute_path);
    std::filesystem::path rest;
    for (std::filesystem::path head = p;; head = head.parent_path()) {
      char resolved[PATH_MAX];
      if (::realpath(head.c_str(), resolved))
        return (std::filesystem::path(resolved) / rest).lexically_normal().string();
      if (head == head.root_path() || head.empty()) return p.string();
      rest = rest.empty() ? head.filename() : head.filename() / rest;
    }
  }

  Result<std::vector<std::string>> list_files(const std::string& dir) override {
    std::error_code ec;
    std::vector<std::string> out;
    std::filesystem::directory_iterator it(dir.empty() ? "." : dir, ec);
    for (; !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
      std::error_code type_ec;
      if (it->is_regular_file(type_ec)) out.push_back(it->path().filename().string());
    }
    if (ec) return fail(code_for_errno(ec.value()), dir, fmt::format("cannot list the folder: {}", ec.message()));
    std::sort(out.begin(), out.end());
    return out;
  }

  Status check_writable(const std::string& path) override {
    if (::access(path.c_str(), F_OK) != 0) return fail(ReturnCode::FileNotFound, path, "no such file");
    if (::access(path.c_str(), W_OK) != 0) return fail(ReturnCode::AccessDenied, path, "the file is not writable");
    std::string dir = directory_of(path);
    if (::access(dir.c_str(), W_OK) != 0)
      return fail(ReturnCode::AccessDenied, path, fmt::format("its directory {} is not writable", dir));
    return ok();
  }
};

}  // namespace

Env& Env::posix() {
  static PosixEnv env;
  return env;
}

}  // namespace vhdkit::io
