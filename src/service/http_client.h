// The client side of vhdkitd's API: one HTTP/1.1 request over the daemon's Unix socket (Boost.Beast over
// Asio's local stream sockets), used by `vhdkit compact --service` and `vhdkit jobs`.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace vhdkit::service {

// The API's paths (docs/openapi.json describes them).
inline constexpr std::string_view kCompactPathV2 = "/v2/ImageManagementService/CompactVirtualHardDisk";
inline constexpr std::string_view kCompactPathV1 = "/v1/ImageManagementService/CompactVirtualHardDisk";
inline constexpr std::string_view kStatePath = "/v2/ImageManagementService/GetVirtualHardDiskState";
inline constexpr std::string_view kValidatePath = "/v2/ImageManagementService/ValidateVirtualHardDisk";
inline constexpr std::string_view kJobsPath = "/v2/jobs";

struct HttpReply {
  unsigned status = 0;
  nlohmann::json body;  // null when the body was empty
};

// Sends one request (body: JSON text, or empty) and reads the reply. NotAvailable when the socket cannot
// be reached, Failed when the reply is not JSON.
Result<HttpReply> http_call(const std::string& socket_path, std::string_view method, std::string_view target,
                            const std::string& body = "");

}  // namespace vhdkit::service
