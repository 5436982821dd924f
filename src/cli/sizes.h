// SPDX-License-Identifier: Apache-2.0
// Sizes as people write and read them: "10G" on the command line, "10 GiB (10737418240 bytes)" in output.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vhdkit::cli {

// "1536", "0x600", "4k", "10G", "2MiB", "1.5G" -> bytes (binary units; B/K/M/G/T/P/E, case-insensitive).
// nullopt when the text is not a size or the result does not fit in 64 bits or is not a whole byte count.
std::optional<uint64_t> parse_size(std::string_view text);

// 3 significant digits and a binary unit, as qemu-img prints: "512 B", "4.02 MiB", "127 GiB".
std::string human_size(uint64_t bytes);
// "10 MiB (10485760 bytes)"; below 1 KiB just "34 bytes"
std::string human_size_and_bytes(uint64_t bytes);

// A CLI11 check that accepts what parse_size() accepts, so a bad size is a usage error.
CLI::Validator size_validator();

}  // namespace vhdkit::cli
