#include "cli/report.h"

#include <fmt/format.h>

#include <cstdio>

namespace vhdkit::cli {

int report(const Error& error) {
  fmt::print(stderr, "{}\n", error.what());
  return exit_status(error.code());
}

}  // namespace vhdkit::cli
