// SPDX-License-Identifier: Apache-2.0
#include "fs/ntfs_io.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>

#include <atomic>
#include <cstring>
#include <span>

namespace vhdkit::fs::detail {
namespace {

std::atomic<uint64_t> g_write_attempts{0};

NtfsWindow* window_of(struct ntfs_device* dev) { return static_cast<NtfsWindow*>(dev->d_private); }

int nd_open(struct ntfs_device* dev, int flags) {
  // A read-write open is refused, so the library cannot even think it may write.
  if ((flags & O_ACCMODE) != O_RDONLY) {
    errno = EROFS;
    return -1;
  }
  if (NDevOpen(dev)) {
    errno = EBUSY;
    return -1;
  }
  NDevSetOpen(dev);
  NDevSetReadOnly(dev);
  window_of(dev)->position = 0;
  return 0;
}

int nd_close(struct ntfs_device* dev) {
  if (!NDevOpen(dev)) {
    errno = EBADF;
    return -1;
  }
  NDevClearOpen(dev);
  return 0;
}

s64 nd_seek(struct ntfs_device* dev, s64 offset, int whence) {
  NtfsWindow* w = window_of(dev);
  int64_t base = 0;
  switch (whence) {
    case SEEK_SET: base = 0; break;
    case SEEK_CUR: base = w->position; break;
    case SEEK_END: base = static_cast<int64_t>(w->size()); break;
    default: errno = EINVAL; return -1;
  }
  int64_t pos = 0;
  if (__builtin_add_overflow(base, offset, &pos) || pos < 0) {
    errno = EINVAL;
    return -1;
  }
  w->position = pos;
  return pos;
}

s64 nd_pread(struct ntfs_device* dev, void* buf, s64 count, s64 offset) {
  NtfsWindow* w = window_of(dev);
  if (count < 0 || offset < 0) {
    errno = EINVAL;
    return -1;
  }
  // Past the window is the end of the device: a short read, as a block device gives.
  const uint64_t off = static_cast<uint64_t>(offset);
  if (off >= w->size() || count == 0) return 0;
  const uint64_t n = std::min(static_cast<uint64_t>(count), w->size() - off);
  try {
    auto st = w->disk().read(w->offset() + off, std::span(static_cast<std::byte*>(buf), n));
    if (!st) {
      w->set_disk_error(st.error());
      errno = EIO;
      return -1;
    }
  } catch (...) {  // no exception may unwind through C code
    errno = ENOMEM;
    return -1;
  }
  return static_cast<s64>(n);
}

s64 nd_read(struct ntfs_device* dev, void* buf, s64 count) {
  NtfsWindow* w = window_of(dev);
  s64 n = nd_pread(dev, buf, count, w->position);
  if (n > 0) w->position += n;
  return n;
}

s64 refuse_write(struct ntfs_device* dev) {
  window_of(dev)->count_write();
  g_write_attempts.fetch_add(1);
  errno = EROFS;
  return -1;
}
s64 nd_write(struct ntfs_device* dev, const void*, s64) { return refuse_write(dev); }
s64 nd_pwrite(struct ntfs_device* dev, const void*, s64, s64) { return refuse_write(dev); }

int nd_sync(struct ntfs_device*) { return 0; }  // nothing is ever written

int nd_stat(struct ntfs_device* dev, struct stat* st) {
  std::memset(st, 0, sizeof *st);
  st->st_mode = S_IFBLK | 0444;
  st->st_size = static_cast<off_t>(window_of(dev)->size());
  return 0;
}

int nd_ioctl(struct ntfs_device* dev, unsigned long request, void* argp) {
  if (request == BLKGETSIZE64) {
    uint64_t size = window_of(dev)->size();
    std::memcpy(argp, &size, sizeof size);
    return 0;
  }
  errno = ENOTTY;
  return -1;
}

struct ntfs_device_operations g_ops = {
    nd_open, nd_close, nd_seek, nd_read, nd_write, nd_pread, nd_pwrite, nd_sync, nd_stat, nd_ioctl,
};

}  // namespace

NtfsWindow::NtfsWindow(disk::VirtualDisk& disk, uint64_t offset, uint64_t size)
    : disk_(disk), offset_(offset), size_(size) {
  dev_ = ntfs_device_alloc("vhdkit-ntfs-window", 0, &g_ops, this);
}

NtfsWindow::~NtfsWindow() {
  if (dev_) {
    if (NDevOpen(dev_)) NDevClearOpen(dev_);
    ntfs_device_free(dev_);
  }
}

uint64_t ntfs_write_attempts_total() { return g_write_attempts.load(); }

}  // namespace vhdkit::fs::detail
