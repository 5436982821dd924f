// SPDX-License-Identifier: Apache-2.0
#include "cli/http_client.h"

#include <fmt/format.h>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

namespace vhdkit::service {

namespace asio = boost::asio;
namespace http = boost::beast::http;

Result<HttpReply> http_call(const std::string& socket_path, std::string_view method, std::string_view target,
                            const std::string& body) {
  asio::io_context io;
  asio::local::stream_protocol::socket socket(io);
  boost::system::error_code ec;
  socket.connect(asio::local::stream_protocol::endpoint(socket_path), ec);
  if (ec) {
    return fail(
        ReturnCode::NotAvailable, socket_path,
        fmt::format("cannot reach vhdkitd: {} (is the service running? `systemctl start vhdkitd`)", ec.message()));
  }
  http::request<http::string_body> req(http::string_to_verb({method.data(), method.size()}),
                                       {target.data(), target.size()}, 11);
  req.set(http::field::host, "localhost");
  req.set(http::field::user_agent, "vhdkit");
  if (!body.empty()) req.set(http::field::content_type, "application/json");
  req.body() = body;
  req.prepare_payload();
  http::write(socket, req, ec);
  if (ec)
    return fail(ReturnCode::NotAvailable, socket_path, fmt::format("sending the request failed: {}", ec.message()));
  boost::beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 << 20);
  http::read(socket, buffer, parser, ec);
  if (ec) return fail(ReturnCode::NotAvailable, socket_path, fmt::format("reading the reply failed: {}", ec.message()));
  HttpReply reply;
  reply.status = parser.get().result_int();
  const std::string& text = parser.get().body();
  if (!text.empty()) {
    reply.body = nlohmann::json::parse(text, nullptr, false);
    if (reply.body.is_discarded())
      return fail(ReturnCode::Failed, socket_path, fmt::format("vhdkitd's reply to {} is not JSON", target));
  }
  return reply;
}

}  // namespace vhdkit::service
