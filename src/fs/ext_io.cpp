// SPDX-License-Identifier: Apache-2.0
#include "fs/ext_io.h"

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <span>

namespace vhdkit::fs::detail {
namespace {

constexpr std::string_view kPrefix = "vhdkit-window:";  // never contains '?' (libext2fs splits options there)

std::mutex g_mu;
std::map<uint64_t, ExtWindow*>& registry() {
  static std::map<uint64_t, ExtWindow*> windows;
  return windows;
}
std::atomic<uint64_t> g_next_token{1};

ExtWindow* lookup(const char* name) {
  std::string_view n(name ? name : "");
  if (!n.starts_with(kPrefix)) return nullptr;
  n.remove_prefix(kPrefix.size());
  uint64_t token = 0;
  auto [p, ec] = std::from_chars(n.data(), n.data() + n.size(), token);
  if (ec != std::errc() || p != n.data() + n.size()) return nullptr;
  std::lock_guard lock(g_mu);
  auto it = registry().find(token);
  return it == registry().end() ? nullptr : it->second;
}

ExtWindow* window_of(io_channel ch) { return static_cast<ExtWindow*>(ch->private_data); }

errcode_t vk_open(const char* name, int flags, io_channel* out) {
  if (flags & IO_FLAG_RW) return EXT2_ET_RO_FILSYS;  // we never write the guest
  ExtWindow* w = lookup(name);
  if (!w) return EXT2_ET_BAD_DEVICE_NAME;
  auto* ch = static_cast<io_channel>(std::calloc(1, sizeof(struct struct_io_channel)));
  if (!ch) return EXT2_ET_NO_MEMORY;
  ch->name = strdup(name);
  if (!ch->name) {
    std::free(ch);
    return EXT2_ET_NO_MEMORY;
  }
  ch->magic = EXT2_ET_MAGIC_IO_CHANNEL;
  ch->manager = ExtWindow::manager();
  ch->block_size = 1024;  // libext2fs's starting block size, until set_blksize
  ch->refcount = 1;
  ch->flags = flags;
  ch->private_data = w;
  *out = ch;
  return 0;
}

errcode_t vk_close(io_channel ch) {
  if (--ch->refcount > 0) return 0;
  std::free(ch->name);
  std::free(ch);
  return 0;
}

errcode_t vk_set_blksize(io_channel ch, int blksize) {
  if (blksize <= 0) return EXT2_ET_INVALID_ARGUMENT;
  ch->block_size = blksize;
  return 0;
}

errcode_t vk_read_blk64(io_channel ch, unsigned long long block, int count, void* data) {
  ExtWindow* w = window_of(ch);
  // A negative count is a byte count (libext2fs's convention).
  uint64_t bytes = 0, offset = 0, end = 0;
  if (count < 0) {
    bytes = static_cast<uint64_t>(-static_cast<int64_t>(count));
  } else if (__builtin_mul_overflow(static_cast<uint64_t>(count), static_cast<uint64_t>(ch->block_size), &bytes)) {
    return EXT2_ET_SHORT_READ;
  }
  if (__builtin_mul_overflow(static_cast<uint64_t>(block), static_cast<uint64_t>(ch->block_size), &offset) ||
      __builtin_add_overflow(offset, bytes, &end) || end > w->size()) {
    // Outside the partition: the file system claims more than it has.
    return EXT2_ET_SHORT_READ;
  }
  try {
    auto st = w->disk().read(w->offset() + offset, std::span(static_cast<std::byte*>(data), bytes));
    if (!st) {
      w->set_disk_error(st.error());
      return EIO;
    }
  } catch (...) {  // no exception may unwind through C code
    return EXT2_ET_NO_MEMORY;
  }
  return 0;
}

errcode_t vk_read_blk(io_channel ch, unsigned long block, int count, void* data) {
  return vk_read_blk64(ch, block, count, data);
}

errcode_t vk_write_blk(io_channel, unsigned long, int, const void*) { return EXT2_ET_RO_FILSYS; }
errcode_t vk_write_blk64(io_channel, unsigned long long, int, const void*) { return EXT2_ET_RO_FILSYS; }
errcode_t vk_write_byte(io_channel, unsigned long, int, const void*) { return EXT2_ET_RO_FILSYS; }
errcode_t vk_flush(io_channel) { return 0; }  // nothing is ever written
errcode_t vk_set_option(io_channel, const char*, const char*) { return EXT2_ET_INVALID_ARGUMENT; }

struct struct_io_manager make_manager() {
  struct struct_io_manager m;
  std::memset(&m, 0, sizeof m);
  m.magic = EXT2_ET_MAGIC_IO_MANAGER;
  m.name = "vhdkit VirtualDisk I/O manager (read-only)";
  m.open = vk_open;
  m.close = vk_close;
  m.set_blksize = vk_set_blksize;
  m.read_blk = vk_read_blk;
  m.write_blk = vk_write_blk;
  m.flush = vk_flush;
  m.write_byte = vk_write_byte;
  m.set_option = vk_set_option;
  m.read_blk64 = vk_read_blk64;
  m.write_blk64 = vk_write_blk64;
  // discard, cache_readahead, zeroout, get_stats: NULL, which libext2fs treats as unsupported.
  return m;
}

}  // namespace

io_manager ExtWindow::manager() {
  static struct struct_io_manager m = make_manager();
  return &m;
}

ExtWindow::ExtWindow(disk::VirtualDisk& disk, uint64_t offset, uint64_t size)
    : disk_(disk),
      offset_(offset),
      size_(size),
      token_(g_next_token.fetch_add(1)),
      name_(std::string(kPrefix) + std::to_string(token_)) {
  std::lock_guard lock(g_mu);
  registry()[token_] = this;
}

ExtWindow::~ExtWindow() {
  std::lock_guard lock(g_mu);
  registry().erase(token_);
}

}  // namespace vhdkit::fs::detail
