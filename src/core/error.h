// SPDX-License-Identifier: Apache-2.0
// One error type for the whole library (LevelDB's Status, with the reference return code inside).
// No exception crosses the library boundary: every fallible call returns Status or Result<T>.
#pragma once

#include <expected>
#include <string>
#include <utility>

#include "core/return_code.h"

namespace vhdkit {

class Error {
 public:
  Error(ReturnCode code, std::string path, std::string message)
      : code_(code), path_(std::move(path)), message_(std::move(message)) {}

  ReturnCode code() const { return code_; }
  const std::string& path() const { return path_; }
  const std::string& message() const { return message_; }

  // "disk.vhdx: BAT entry 17 points past the end of the file" (the CLI puts "vhdkit: " before it)
  std::string what() const;

  // The same error, said of another file (e.g. a parent's error reported while opening the child).
  Error with_path(std::string path) const { return Error(code_, std::move(path), message_); }
  // Prefixes context: "while reading block 3: <message>".
  Error with_context(const std::string& context) const;

 private:
  ReturnCode code_;
  std::string path_;
  std::string message_;
};

template <class T>
using Result = std::expected<T, Error>;
using Status = std::expected<void, Error>;

inline std::unexpected<Error> fail(ReturnCode code, std::string path, std::string message) {
  return std::unexpected(Error(code, std::move(path), std::move(message)));
}
inline std::unexpected<Error> fail(Error e) { return std::unexpected(std::move(e)); }

inline Status ok() { return {}; }

}  // namespace vhdkit

// Propagation helpers in the style of absl's RETURN_IF_ERROR / ASSIGN_OR_RETURN.
#define VHDKIT_CONCAT_INNER(a, b) a##b
#define VHDKIT_CONCAT(a, b) VHDKIT_CONCAT_INNER(a, b)

#define VHDKIT_TRY(expr)                                               \
  do {                                                                 \
    auto&& vhdkit_try_result_ = (expr);                                \
    if (!vhdkit_try_result_) {                                         \
      return ::std::unexpected(std::move(vhdkit_try_result_).error()); \
    }                                                                  \
  } while (0)

#define VHDKIT_ASSIGN_IMPL(tmp, lhs, expr)                    \
  auto tmp = (expr);                                          \
  if (!tmp) return ::std::unexpected(std::move(tmp).error()); \
  lhs = std::move(*tmp)

// VHDKIT_ASSIGN(auto size, file.size());
#define VHDKIT_ASSIGN(lhs, expr) VHDKIT_ASSIGN_IMPL(VHDKIT_CONCAT(vhdkit_assign_, __LINE__), lhs, expr)
