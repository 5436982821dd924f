// SPDX-License-Identifier: Apache-2.0
#include "daemon/http_request.h"

#include <boost/asio/error.hpp>
#include <boost/beast/http/error.hpp>

#include <cctype>
#include <exception>

#include <fmt/format.h>

namespace vhdkit::service {

namespace asio = boost::asio;
namespace http = boost::beast::http;

void apply_limits(RequestParser& parser, size_t max_body) {
  parser.header_limit(kHeaderLimit);
  parser.body_limit(max_body);
}

std::optional<ApiReply> read_failure_reply(boost::beast::error_code ec, size_t max_body) {
  if (ec == http::error::end_of_stream || ec == asio::error::operation_aborted || ec == asio::error::eof ||
      ec == asio::error::connection_reset) {
    return std::nullopt;
  }
  if (ec == http::error::body_limit) {
    return Api::refuse(413, ReturnCode::InvalidParameter, fmt::format("the body is larger than {} bytes", max_body));
  }
  if (ec == http::error::header_limit) {
    return Api::refuse(431, ReturnCode::InvalidParameter, "the request's header is too large");
  }
  return Api::refuse(400, ReturnCode::InvalidParameter, fmt::format("malformed HTTP request: {}", ec.message()));
}

bool bearer_token_matches(std::string_view header, const std::string& token) {
  constexpr std::string_view kScheme = "bearer ";
  if (token.empty() || header.size() < kScheme.size()) return false;
  for (size_t i = 0; i < kScheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(header[i])) != kScheme[i]) return false;
  std::string_view given = header.substr(kScheme.size());
  unsigned char differ = given.size() == token.size() ? 0 : 1;
  for (size_t i = 0; i < token.size(); ++i)
    differ |= static_cast<unsigned char>(token[i] ^ (i < given.size() ? given[i] : ~token[i]));
  return differ == 0;
}

ApiRequest api_request(RequestParser& parser, const Caller& caller) {
  auto& req = parser.get();
  return ApiRequest{std::string(req.method_string()), std::string(req.target()), std::move(req.body()), caller};
}

ApiReply answer(Api& api, const ApiRequest& request) {
  try {
    return api.handle(request);
  } catch (const std::exception& e) {
    return Api::refuse(500, ReturnCode::Failed, fmt::format("vhdkitd could not answer: {}", e.what()));
  }
}

}  // namespace vhdkit::service
