// SPDX-License-Identifier: Apache-2.0
// What `vhdkit compact` and `vhdkit jobs` print: every line goes to standard output and, with --log FILE,
// is appended to the log as well (as the reference's sample clients do with CompactVHD.log).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "core/error.h"
#include "io/file.h"

namespace vhdkit::cli {

class Console {
 public:
  // Opens (creating if needed) the log file for appending; AccessDenied etc. when it cannot.
  static Result<Console> open(const std::optional<std::string>& log_path);

  // A whole line, to standard output and the log.
  void line(const std::string& text);
  // A line for the log only (what a terminal sees as a redrawn progress bar).
  void log_only(const std::string& text);
  // Redraws the current terminal line (progress bars); not logged.
  void redraw(const std::string& text);
  bool is_terminal() const { return terminal_; }

 private:
  std::unique_ptr<io::File> log_;
  bool terminal_ = false;
  bool bar_shown_ = false;
};

}  // namespace vhdkit::cli
