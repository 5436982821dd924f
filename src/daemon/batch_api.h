// SPDX-License-Identifier: Apache-2.0
// The batch call of vhdkitd's API: CompactVirtualHardDisk for several paths, or every file of a folder, in
// one request. Each path is the single call exactly (the caller's rights, the quotas, the one-job-per-image
// rule); the reply lists one entry per path with its ReturnValue and Job (docs/openapi.json).
#pragma once

#include <cstddef>
#include <string_view>

namespace vhdkit::service {

inline constexpr std::string_view kCompactManyPathV2 = "/v2/ImageManagementService/CompactVirtualHardDisks";
// Paths one request may name (a folder's files count too): a larger batch is several requests.
inline constexpr size_t kMaxBatchPaths = 256;

}  // namespace vhdkit::service
