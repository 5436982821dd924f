// SPDX-License-Identifier: Apache-2.0
// The return values of Msvm_ImageManagementService methods (../shared/reference/), kept exact: they are
// what callers of the reference API test for, and our CLI and service report them unchanged.
#pragma once

#include <cstdint>
#include <string_view>

namespace vhdkit {

enum class ReturnCode : uint32_t {
  Completed = 0,      // Completed with No Error
  JobStarted = 4096,  // Method Parameters Checked - Job Started
  Failed = 32768,
  AccessDenied = 32769,
  NotSupported = 32770,
  StatusUnknown = 32771,
  Timeout = 32772,
  InvalidParameter = 32773,
  InUse = 32774,         // System is in use
  InvalidState = 32775,  // Invalid state for this operation
  IncorrectDataType = 32776,
  NotAvailable = 32777,  // System is not available
  OutOfMemory = 32778,
  FileNotFound = 32779,
};

// The reference's wording for each value ("Access Denied", "System is in use", ...).
std::string_view describe(ReturnCode code);

}  // namespace vhdkit
