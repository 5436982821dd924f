// SPDX-License-Identifier: Apache-2.0
// libext2fs's headers, included once here: they are C headers whose inline functions do not build cleanly
// under our warning flags, so the warnings are silenced for them only.
#pragma once

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wcast-qual"
#pragma GCC diagnostic ignored "-Wold-style-cast"
#include <ext2fs/ext2_fs.h>
#include <ext2fs/ext2fs.h>
extern "C" {
#include <et/com_err.h>  // no extern "C" of its own
}
#pragma GCC diagnostic pop
