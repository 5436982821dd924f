// SPDX-License-Identifier: Apache-2.0
// Image locks on the host, compatible with qemu's. qemu (qemu-img, qemu-io, qemu-nbd, QEMU itself) takes
// OFD byte-range locks on the files it has open (block/file-posix.c): a shared read lock on byte 100+p for
// each permission p it holds and on byte 200+p for each permission it refuses to share, with
// p = 0 consistent read, 1 write, 2 write unchanged, 3 resize; before opening it tests the opposite
// bytes. We speak the same language:
//   Exclusive (we write): a write lock on the whole file. It conflicts with every qemu user and every other
//     vhdkit lock, and qemu in turn refuses to open the image while we hold it.
//   Shared (we only read): refused while someone holds write or resize (bytes 101, 103); then read locks on
//     100 (we read) and 201, 203 (we do not share write or resize), so qemu readers coexist, qemu writers
//     are refused, and a vhdkit writer is refused.
//   NoWriter (we read, but may not write the file): refused while someone holds write or resize, as Shared;
//     then no lock at all, so that writers that come later are not refused.
// Locks belong to the open file description: closing the file releases them.
#pragma once

#include <string>

#include "core/error.h"
#include "io/file.h"

namespace vhdkit::io::posix {

Status try_lock(int fd, const std::string& path, LockMode mode);
Status unlock(int fd, const std::string& path);

// Who holds locks on (or, failing that, has open) the file behind fd, as "qemu-io (pid 1234)", comma
// separated; empty when nobody can be found (e.g. another user's process). Scans /proc.
std::string lock_holders(int fd);

}  // namespace vhdkit::io::posix
