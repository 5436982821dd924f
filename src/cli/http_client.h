// SPDX-License-Identifier: Apache-2.0
// The client side of vhdkitd's API: one HTTP/1.1 request over the daemon's Unix socket (Boost.Beast over
// Asio's local stream sockets), used by `vhdkit compact --service` and `vhdkit jobs`.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "service/api_paths.h"

namespace vhdkit::service {

struct HttpReply {
  unsigned status = 0;
  nlohmann::json body;  // null when the body was empty
};

// Sends one request (body: JSON text, or empty) and reads the reply. NotAvailable when the socket cannot
// be reached, Failed when the reply is not JSON.
Result<HttpReply> http_call(const std::string& socket_path, std::string_view method, std::string_view target,
                            const std::string& body = "");

}  // namespace vhdkit::service
