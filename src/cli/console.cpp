// SPDX-License-Identifier: Apache-2.0
#include "cli/console.h"

#include <unistd.h>

#include <fmt/format.h>

#include <cstdio>

namespace vhdkit::cli {

Result<Console> Console::open(const std::optional<std::string>& log_path) {
  Console c;
  c.terminal_ = ::isatty(STDOUT_FILENO) == 1;
  if (log_path) {
    auto& env = io::Env::posix();
    auto file = env.open(*log_path, io::Access::ReadWrite, io::Creation::OpenExisting);
    if (!file && file.error().code() == ReturnCode::FileNotFound)
      file = env.open(*log_path, io::Access::ReadWrite, io::Creation::CreateNew);
    if (!file) return fail(file.error().with_context("cannot open the log file"));
    c.log_ = std::move(*file);
  }
  return c;
}

void Console::log_only(const std::string& text) {
  if (!log_) return;
  std::string with_newline = text + "\n";
  auto end = log_->size();
  if (!end || !log_->write_at(*end, std::as_bytes(std::span(with_newline)))) {
    fmt::print(stderr, "vhdkit: {}: cannot append to the log file; logging stops\n", log_->path());
    log_.reset();
  }
}

void Console::line(const std::string& text) {
  if (bar_shown_) {
    fmt::print("\r\033[K");
    bar_shown_ = false;
  }
  fmt::print("{}\n", text);
  std::fflush(stdout);
  log_only(text);
}

void Console::redraw(const std::string& text) {
  fmt::print("\r\033[K{}", text);
  std::fflush(stdout);
  bar_shown_ = true;
}

}  // namespace vhdkit::cli
