// SPDX-License-Identifier: Apache-2.0
#include "cli/json_output.h"

#include <fmt/format.h>

namespace vhdkit::cli {

std::string json_text(const Json& value) { return value.dump(4, ' ', false, Json::error_handler_t::replace); }

void print_json(const Json& value) { fmt::print("{}\n", json_text(value)); }

}  // namespace vhdkit::cli
