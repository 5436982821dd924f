// SPDX-License-Identifier: Apache-2.0
// One request's life apart from its socket: the parser's limits, the reply to a read that failed, the bearer
// check, and the answer (an exception becomes 500). The server and the HTTP fuzz target (fuzz/fuzz_http.cpp)
// both go through these, so what is fuzzed is what a client reaches.
#pragma once

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/http_api.h"

namespace vhdkit::service {

using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

constexpr size_t kHeaderLimit = 8 * 1024;

// A fresh parser with the server's limits: the header at most kHeaderLimit bytes, the body `max_body`.
void apply_limits(RequestParser& parser, size_t max_body);

// The reply to a read that failed with `ec` (too large, malformed), or nothing when the connection simply
// ended and nothing is to be answered.
std::optional<ApiReply> read_failure_reply(boost::beast::error_code ec, size_t max_body);

// "Authorization: Bearer <token>", the scheme in any case (RFC 9110 makes it case-insensitive), the token
// compared in time that does not depend on where it differs.
bool bearer_token_matches(std::string_view header, const std::string& token);

// The request as the API sees it, from a parsed one (the body moved out of it).
ApiRequest api_request(RequestParser& parser, const Caller& caller);

// The API's answer; nothing below should throw (the library returns Status), and should something still
// (bad_alloc, a json type error), the reply is 500 and the server carries on.
ApiReply answer(Api& api, const ApiRequest& request);

}  // namespace vhdkit::service
