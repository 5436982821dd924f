// SPDX-License-Identifier: Apache-2.0
// The VHDX header section ([MS-VHDX] 2.2): file identifier, the two headers, the two region tables.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "io/file.h"
#include "vhdx/format.h"

namespace vhdkit::vhdx {

struct HeaderCopy {
  bool valid = false;
  std::string problem;  // why it is not valid ("bad checksum", ...)
  Header header;
};

struct RegionTableCopy {
  bool valid = false;
  std::string problem;
  RegionTable table;
};

struct HeaderSection {
  FileIdentifier identifier;
  std::array<HeaderCopy, 2> headers;
  int current = 0;  // index of the current header: the valid one with the higher SequenceNumber
  std::array<RegionTableCopy, 2> region_tables;
  int region_table_used = 0;  // the first valid copy
  RegionEntry bat_region;
  RegionEntry metadata_region;

  const Header& current_header() const { return headers[current].header; }
};

// Reads and validates the header section. One bad header or region table copy is tolerated (the other one
// is used); both bad is an error naming both problems. Also checks the header's log placement and the
// region table's regions (alignment, overlaps, unknown required regions, BAT and metadata present).
Result<HeaderSection> read_header_section(io::File& file, uint64_t file_size);

// The header update of 2.2.2.1: writes `h` with SequenceNumber = current + 1 into the non-current slot,
// flushes, and makes that slot current.
Status write_header_update(io::File& file, HeaderSection& section, Header h);

}  // namespace vhdkit::vhdx
