// SPDX-License-Identifier: Apache-2.0
#include "core/error.h"

#include <fmt/format.h>

namespace vhdkit {

std::string_view describe(ReturnCode code) {
  switch (code) {
    case ReturnCode::Completed: return "Completed with No Error";
    case ReturnCode::JobStarted: return "Method Parameters Checked - Job Started";
    case ReturnCode::Failed: return "Failed";
    case ReturnCode::AccessDenied: return "Access Denied";
    case ReturnCode::NotSupported: return "Not Supported";
    case ReturnCode::StatusUnknown: return "Status is unknown";
    case ReturnCode::Timeout: return "Timeout";
    case ReturnCode::InvalidParameter: return "Invalid parameter";
    case ReturnCode::InUse: return "System is in use";
    case ReturnCode::InvalidState: return "Invalid state for this operation";
    case ReturnCode::IncorrectDataType: return "Incorrect data type";
    case ReturnCode::NotAvailable: return "System is not available";
    case ReturnCode::OutOfMemory: return "Out of memory";
    case ReturnCode::FileNotFound: return "File not found";
  }
  return "Unknown return code";
}

std::string Error::what() const {
  if (path_.empty()) return message_;
  return fmt::format("{}: {}", path_, message_);
}

Error Error::with_context(const std::string& context) const {
  return Error(code_, path_, fmt::format("{}: {}", context, message_));
}

}  // namespace vhdkit
