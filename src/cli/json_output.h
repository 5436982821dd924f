// SPDX-License-Identifier: Apache-2.0
// JSON output shared by the subcommands' --json modes (nlohmann's ordered_json keeps fields in the order
// we put them, so output reads like qemu-img's).
#pragma once

#include <nlohmann/json.hpp>

namespace vhdkit::cli {

using Json = nlohmann::ordered_json;

// Pretty-printed text that cannot throw: a file name that is not UTF-8 prints with U+FFFD in its place.
std::string json_text(const Json& value);
// Pretty-printed, 4-space indent like `qemu-img info --output=json`, with a final newline.
void print_json(const Json& value);

}  // namespace vhdkit::cli
