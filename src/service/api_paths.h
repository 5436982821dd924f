// SPDX-License-Identifier: Apache-2.0
// The HTTP paths of vhdkitd's API (docs/openapi.json describes them): the contract the daemon serves and
// the CLI's client calls.
#pragma once

#include <string_view>

namespace vhdkit::service {

inline constexpr std::string_view kCompactPathV2 = "/v2/ImageManagementService/CompactVirtualHardDisk";
inline constexpr std::string_view kCompactPathV1 = "/v1/ImageManagementService/CompactVirtualHardDisk";
inline constexpr std::string_view kStatePath = "/v2/ImageManagementService/GetVirtualHardDiskState";
inline constexpr std::string_view kValidatePath = "/v2/ImageManagementService/ValidateVirtualHardDisk";
inline constexpr std::string_view kJobsPath = "/v2/jobs";

}  // namespace vhdkit::service
