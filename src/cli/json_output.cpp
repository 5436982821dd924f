// SPDX-License-Identifier: Apache-2.0
#include "cli/json_output.h"

#include <fmt/format.h>

namespace vhdkit::cli {

void print_json(const Json& value) { fmt::print("{}\n", value.dump(4)); }

}  // namespace vhdkit::cli
