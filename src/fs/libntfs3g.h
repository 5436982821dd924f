// SPDX-License-Identifier: Apache-2.0
// libntfs-3g's headers, included once here: they are C headers without extern "C" that expect the system
// headers for size_t, va_list, time_t and the POSIX types to be included before them, and whose inline
// functions do not build cleanly under our warning flags (silenced for them only).
#pragma once

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wcast-qual"
#pragma GCC diagnostic ignored "-Wold-style-cast"
extern "C" {
#include <ntfs-3g/types.h>
// types.h first: the others use its s64/le16 without including it.
#include <ntfs-3g/attrib.h>
#include <ntfs-3g/device.h>
#include <ntfs-3g/dir.h>
#include <ntfs-3g/inode.h>
#include <ntfs-3g/logfile.h>
#include <ntfs-3g/logging.h>
#include <ntfs-3g/volume.h>
}
#pragma GCC diagnostic pop
// support.h defines min and max as macros, which break std::min and std::max.
#undef min
#undef max
