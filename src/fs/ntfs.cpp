// SPDX-License-Identifier: Apache-2.0
// NTFS through libntfs-3g (the library of ntfs-3g, ntfsfix and ntfsinfo): it parses and validates the boot
// sector, $MFT against $MFTMirr, $Volume and $Bitmap; we decide whether to trust the volume and turn $Bitmap
// into byte ranges. Used = every cluster $Bitmap marks used, plus what lies past the volume's last cluster
// (the backup boot sector sits in the partition's last sector, outside the cluster count).
//
// What libntfs-3g does with a read-only mount (NTFS_MNT_RDONLY), read in its volume.c: it skips the checks
// a read-write mount makes - hiberfil.sys and $LogFile - and it neither writes nor "fixes" anything. So
// those checks are made here: ntfs_volume_check_hiberfile (which knows only "hibr"/"HIBR"; we add "wake"
// and "RSTR", the signatures of a resume in progress), ntfs_check_logfile + ntfs_is_logfile_clean, and a
// restart page of version 2.0 (Windows Fast Startup keeps metadata cached: ntfs-3g refuses that even for
// recovery). The dirty flag is in vol->flags. Any of them keeps the partition whole with the reason.
#include "fs/ntfs.h"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/bytes.h"
#include "fs/ntfs_io.h"
#include "fs/partition_table.h"
#include "fs/ranges.h"

namespace vhdkit::fs::detail {
namespace {

// libntfs-3g logs through one process-wide handler. Ours keeps the messages of the calling thread's current
// read (for the reason) and prints nothing.
thread_local std::vector<std::string>* t_log = nullptr;

__attribute__((format(printf, 6, 0))) int log_handler(const char*, const char*, int, u32, void*, const char* format,
                                                      va_list args) {
  if (!t_log || t_log->size() >= 8) return 0;
  char buf[512];
  int n = std::vsnprintf(buf, sizeof buf, format, args);
  if (n <= 0) return 0;
  try {  // no exception may unwind through C code
    std::string m(buf, std::min<size_t>(static_cast<size_t>(n), sizeof buf - 1));
    while (!m.empty() && (m.back() == '\n' || m.back() == '\r')) m.pop_back();
    if (!m.empty()) t_log->push_back(std::move(m));
  } catch (...) {
  }
  return n;
}

// The library keeps some process-wide state (its log settings, the upcase and locale helpers); one NTFS
// read at a time keeps it simple and is a small part of a compaction.
std::mutex g_ntfs_mu;

void install_logging() {
  static std::once_flag once;
  std::call_once(once, [] {
    ntfs_log_set_handler(log_handler);
    ntfs_log_clear_levels(~0u);
    ntfs_log_set_levels(NTFS_LOG_LEVEL_WARNING | NTFS_LOG_LEVEL_ERROR | NTFS_LOG_LEVEL_PERROR |
                        NTFS_LOG_LEVEL_CRITICAL);
  });
}

struct LogScope {
  std::vector<std::string> messages;
  LogScope() { t_log = &messages; }
  ~LogScope() { t_log = nullptr; }
  std::string tail() const {
    std::string out;
    for (const std::string& m : messages) out += (out.empty() ? "" : "; ") + m;
    return out;
  }
};

// Unmounts on every path out (before the window whose device it reads goes away).
struct VolumeCloser {
  NtfsWindow& window;
  ntfs_volume* vol = nullptr;
  ~VolumeCloser() {
    if (vol) {
      ntfs_umount(vol, FALSE);
      window.released();  // ntfs_umount freed the device
    }
  }
};

struct InodeCloser {
  ntfs_inode* ni = nullptr;
  ~InodeCloser() {
    if (ni) ntfs_inode_close(ni);
  }
};
struct AttrCloser {
  ntfs_attr* na = nullptr;
  ~AttrCloser() {
    if (na) ntfs_attr_close(na);
  }
};

// The boot sector fields we check before the library sizes anything from them: bytes per sector (u16 @11),
// sectors per cluster (u8 @13; above 0x80 it is a negative power of two, for clusters above 64 KiB),
// total sectors (u64 @40).
struct BootPeek {
  uint64_t sector = 0, cluster = 0, sectors = 0;
};
std::optional<BootPeek> peek_boot(std::span<const std::byte> head) {
  if (head.size() < 512) return std::nullopt;
  const std::byte* b = head.data();
  if (std::memcmp(b + 3, "NTFS    ", 8) != 0) return std::nullopt;
  if (load_le<uint16_t>(b + 510) != 0xAA55) return std::nullopt;
  BootPeek p;
  p.sector = load_le<uint16_t>(b + 11);
  if (p.sector < 256 || p.sector > 4096 || (p.sector & (p.sector - 1))) return std::nullopt;
  uint8_t spc = static_cast<uint8_t>(b[13]);
  uint64_t sectors_per_cluster = 0;
  if (spc <= 0x80) {
    sectors_per_cluster = spc;
  } else {
    unsigned shift = 256u - spc;
    if (shift > 31) return std::nullopt;
    sectors_per_cluster = uint64_t{1} << shift;
  }
  if (sectors_per_cluster == 0 || (sectors_per_cluster & (sectors_per_cluster - 1))) return std::nullopt;
  p.cluster = p.sector * sectors_per_cluster;
  if (p.cluster > (uint64_t{2} << 20)) return std::nullopt;  // NTFS clusters end at 2 MiB
  p.sectors = load_le<uint64_t>(b + 40);
  return p;
}

std::string errno_text(int e) { return e ? std::string(std::strerror(e)) : std::string("unknown error"); }

// hiberfil.sys's first four bytes while Windows is hibernated or resuming (ntfs-3g checks the first two).
std::optional<std::string> hibernation_problem(ntfs_volume* vol) {
  errno = 0;
  if (ntfs_volume_check_hiberfile(vol, 0) < 0) {
    if (errno == EPERM) return "Windows is hibernated or was shut down with Fast Startup (hiberfil.sys is active)";
    return "hiberfil.sys cannot be read: " + errno_text(errno);
  }
  InodeCloser ni{ntfs_pathname_to_inode(vol, nullptr, "hiberfil.sys")};
  if (!ni.ni) return std::nullopt;  // checked above: absent
  AttrCloser na{ntfs_attr_open(ni.ni, AT_DATA, AT_UNNAMED, 0)};
  if (!na.na) return "hiberfil.sys cannot be read: " + errno_text(errno);
  char sig[4] = {};
  s64 n = ntfs_attr_pread(na.na, 0, sizeof sig, sig);
  if (n < 0) return "hiberfil.sys cannot be read: " + errno_text(errno);
  if (n == 4) {
    for (const char* s : {"wake", "WAKE", "rstr", "RSTR"}) {
      if (std::memcmp(sig, s, 4) == 0)
        return fmt::format("Windows is resuming from hibernation (hiberfil.sys starts with \"{}\")", s);
    }
  }
  return std::nullopt;
}

std::optional<std::string> logfile_problem(ntfs_volume* vol) {
  InodeCloser ni{ntfs_inode_open(vol, FILE_LogFile)};
  if (!ni.ni) return "$LogFile cannot be opened: " + errno_text(errno);
  AttrCloser na{ntfs_attr_open(ni.ni, AT_DATA, AT_UNNAMED, 0)};
  if (!na.na) return "$LogFile cannot be opened: " + errno_text(errno);
  RESTART_PAGE_HEADER* rp = nullptr;
  bool ok = ntfs_check_logfile(na.na, &rp);
  bool clean = ok && ntfs_is_logfile_clean(na.na, rp);
  bool cached = rp && le16_to_cpu(rp->major_ver) == 2 && le16_to_cpu(rp->minor_ver) == 0;
  std::free(rp);
  if (cached)
    return "Windows kept the volume's metadata cached (Fast Startup or an abrupt stop): $LogFile is version 2.0";
  if (!ok) return "$LogFile is damaged";
  if (!clean) return "$LogFile holds changes not yet applied (the volume was not shut down cleanly)";
  return std::nullopt;
}

}  // namespace

bool looks_like_ntfs(std::span<const std::byte> head) {
  if (head.size() < 512) return false;
  return std::memcmp(head.data() + 3, "NTFS    ", 8) == 0 && load_le<uint16_t>(head.data() + 510) == 0xAA55;
}

Result<VolumeScan> read_ntfs(disk::VirtualDisk& disk, uint64_t offset, uint64_t size) {
  {
    std::vector<std::byte> head(std::min<uint64_t>(size, 512));
    VHDKIT_TRY(read_exact(disk, offset, head));
    auto peek = peek_boot(head);
    if (!peek) return kept_whole(offset, size, "ntfs", "the NTFS boot sector is malformed");
    auto bytes = checked_mul(peek->sectors, peek->sector);
    if (!bytes || *bytes > size) {
      return kept_whole(offset, size, "ntfs",
                        fmt::format("the volume ({} sectors of {} bytes) is larger than its partition ({} bytes)",
                                    peek->sectors, peek->sector, size));
    }
  }
  install_logging();
  std::lock_guard lock(g_ntfs_mu);
  LogScope log;
  NtfsWindow window(disk, offset, size);
  if (!window.device()) return fail(ReturnCode::OutOfMemory, disk.path(), "out of memory while reading NTFS");
  auto whole = [&](std::string why) -> Result<VolumeScan> {
    if (window.disk_error()) return fail(*window.disk_error());
    return kept_whole(offset, size, "ntfs", std::move(why));
  };

  VolumeCloser closer{window};
  {
    // FORENSIC as well as RDONLY: the library must not even try to repair what it reads.
    errno = 0;
    closer.vol = ntfs_device_mount(window.device(), static_cast<ntfs_mount_flags>(NTFS_MNT_RDONLY | NTFS_MNT_FORENSIC));
    if (!closer.vol) {
      int e = errno;
      std::string why = "libntfs-3g refuses to mount it: " + errno_text(e);
      if (!log.messages.empty()) why += " (" + log.tail() + ")";
      return whole(std::move(why));
    }
  }
  ntfs_volume* vol = closer.vol;
  if (le16_to_cpu(vol->flags) & le16_to_cpu(VOLUME_IS_DIRTY))
    return whole("the volume is marked dirty (run chkdsk on Windows, or ntfsfix)");
  if (auto why = hibernation_problem(vol)) return whole(*why);
  if (auto why = logfile_problem(vol)) return whole(*why);

  const uint64_t cluster = vol->cluster_size;
  if (cluster < 256 || cluster > (uint64_t{2} << 20) || (cluster & (cluster - 1)) ||
      (uint64_t{1} << vol->cluster_size_bits) != cluster)
    return whole(fmt::format("the cluster size {} is out of range", cluster));
  if (vol->nr_clusters <= 0) return whole("the volume has no clusters");
  const uint64_t clusters = static_cast<uint64_t>(vol->nr_clusters);
  auto vol_bytes = checked_mul(clusters, cluster);
  if (!vol_bytes || *vol_bytes > size) {
    return whole(fmt::format("the volume ({} clusters of {} bytes) is larger than its partition ({} bytes)", clusters,
                             cluster, size));
  }
  ntfs_attr* bm = vol->lcnbmp_na;
  if (!bm) return whole("$Bitmap is not loaded");
  const uint64_t need = (clusters + 7) / 8;
  const uint64_t bm_bytes = bm->data_size < 0 ? 0 : static_cast<uint64_t>(bm->data_size);
  // $Bitmap is sized to the cluster count, rounded up to 8 bytes; allow up to a cluster of slack.
  if (bm_bytes < need || bm_bytes > need + std::max<uint64_t>(cluster, 8)) {
    return whole(fmt::format("$Bitmap ({} bytes) does not match the volume's {} clusters", bm_bytes, clusters));
  }

  VolumeScan s;
  s.filesystem = "ntfs";
  s.state = Volume::State::Read;
  // As for ext: a hostile or fragmented bitmap is bounded at kMaxRuns runs, short free gaps become used.
  constexpr size_t kMaxRuns = size_t{1} << 21;
  uint64_t min_gap = 0;
  auto add_run = [&](uint64_t first, uint64_t count) {
    ByteRange r{offset + first * cluster, count * cluster};
    if (!s.used.empty() && r.offset - s.used.back().end() < min_gap) {
      s.used.back().length = r.end() - s.used.back().offset;
    } else if (!s.used.empty() && r.offset == s.used.back().end()) {
      s.used.back().length += r.length;
    } else {
      s.used.push_back(r);
    }
    if (s.used.size() > kMaxRuns) {
      min_gap = min_gap ? min_gap * 2 : 2 * cluster;
      coalesce_gaps(s.used, min_gap);
    }
  };
  constexpr uint64_t kChunk = 1u << 20;
  std::vector<uint8_t> buf(std::min(kChunk, need));
  uint64_t run_start = 0;
  bool in_run = false;
  for (uint64_t pos = 0; pos < need; pos += buf.size()) {
    const uint64_t n = std::min<uint64_t>(buf.size(), need - pos);
    s64 got = ntfs_attr_pread(bm, static_cast<s64>(pos), static_cast<s64>(n), buf.data());
    if (got != static_cast<s64>(n)) {
      return whole(got < 0 ? "$Bitmap cannot be read: " + errno_text(errno) : std::string("$Bitmap is short"));
    }
    for (uint64_t i = 0; i < n; ++i) {
      const uint8_t byte = buf[i];
      const uint64_t first = (pos + i) * 8;
      if ((byte == 0 && !in_run) || (byte == 0xFF && in_run)) continue;
      for (unsigned bit = 0; bit < 8; ++bit) {
        const uint64_t c = first + bit;
        if (c >= clusters) break;
        const bool set = (byte >> bit) & 1u;
        if (set && !in_run) {
          run_start = c;
          in_run = true;
        } else if (!set && in_run) {
          add_run(run_start, c - run_start);
          in_run = false;
        }
      }
    }
  }
  if (in_run) add_run(run_start, clusters - run_start);
  if (window.disk_error()) return fail(*window.disk_error());
  if (window.write_attempts() != 0) return whole("libntfs-3g tried to write (refused)");
  if (min_gap) {
    s.notes.push_back(
        fmt::format("$Bitmap of the partition at {} is fragmented: free gaps shorter than {} bytes are counted as used",
                    offset, min_gap));
  }
  // Past the last cluster: the backup boot sector, and whatever else the partition's tail holds.
  if (*vol_bytes < size) s.used.push_back({offset + *vol_bytes, size - *vol_bytes});
  return s;
}

}  // namespace vhdkit::fs::detail
