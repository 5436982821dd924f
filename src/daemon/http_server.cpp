// SPDX-License-Identifier: Apache-2.0
#include "daemon/http_server.h"

#include <sys/stat.h>

#include <fmt/format.h>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <filesystem>
#include <thread>
#include <vector>

#include "service/job_json.h"

namespace vhdkit::service {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using local = asio::local::stream_protocol;
using tcp = asio::ip::tcp;

namespace {

// How the caller is known: from the Unix socket's peer credentials, or (TCP) by the bearer token.
struct Identity {
  std::optional<Caller> caller;  // unset on TCP until the token is checked
  std::string token;             // the token TCP callers must present
};

// One connection: read a request, answer it, repeat while the client keeps the connection alive.
template <class Socket>
class Session : public std::enable_shared_from_this<Session<Socket>> {
 public:
  Session(Socket socket, Api& api, const ServerOptions& options, Identity identity)
      : socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        api_(api),
        options_(options),
        identity_(std::move(identity)) {}

  void start() { read(); }

 private:
  void read() {
    parser_.emplace();
    parser_->header_limit(8 * 1024);
    parser_->body_limit(options_.max_body);
    timer_.expires_after(options_.idle_timeout);
    timer_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
      if (!ec) self->close();  // idle or too slow: drop it
    });
    http::async_read(socket_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    timer_.cancel();
    if (ec == http::error::end_of_stream || ec == asio::error::operation_aborted || ec == asio::error::eof ||
        ec == asio::error::connection_reset) {
      return close();
    }
    if (ec == http::error::body_limit) {
      return reply_and_close(Api::refuse(413, ReturnCode::InvalidParameter,
                                         fmt::format("the body is larger than {} bytes", options_.max_body)));
    }
    if (ec == http::error::header_limit) {
      return reply_and_close(Api::refuse(431, ReturnCode::InvalidParameter, "the request's header is too large"));
    }
    if (ec) {
      return reply_and_close(
          Api::refuse(400, ReturnCode::InvalidParameter, fmt::format("malformed HTTP request: {}", ec.message())));
    }
    auto& req = parser_->get();
    ApiReply reply;
    if (!identity_.caller) {
      std::string auth(req[http::field::authorization]);
      if (identity_.token.empty() || auth != "Bearer " + identity_.token) {
        return reply_and_close(
            Api::refuse(401, ReturnCode::AccessDenied, "this port needs \"Authorization: Bearer <token>\""));
      }
      identity_.caller = own_caller();
    }
    ApiRequest request{std::string(req.method_string()), std::string(req.target()), std::move(req.body()),
                       *identity_.caller};
    // Nothing below should throw (the library returns Status); should something still (bad_alloc, a json
    // type error), this connection gets 500 and the server carries on.
    try {
      reply = api_.handle(request);
    } catch (const std::exception& e) {
      reply = Api::refuse(500, ReturnCode::Failed, fmt::format("vhdkitd could not answer: {}", e.what()));
    }
    write(std::move(reply), req.keep_alive());
  }

  void write(ApiReply reply, bool keep_alive) {
    auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(reply.status), 11);
    res->set(http::field::server, "vhdkitd");
    res->set(http::field::content_type, "application/json");
    res->keep_alive(keep_alive);
    res->body() = json_text(reply.body) + "\n";
    res->prepare_payload();
    http::async_write(socket_, *res, [self = this->shared_from_this(), res](beast::error_code ec, size_t) {
      if (ec || !res->keep_alive()) return self->close();
      self->read();
    });
  }

  void reply_and_close(ApiReply reply) { write(std::move(reply), false); }

  void close() {
    beast::error_code ignored;
    timer_.cancel();
    socket_.shutdown(Socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  Socket socket_;
  asio::steady_timer timer_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Api& api_;
  const ServerOptions& options_;
  Identity identity_;
};

}  // namespace

struct HttpServer::Impl {
  Impl(Api& a, ServerOptions o) : api(a), options(std::move(o)), unix_acceptor(io), tcp_acceptor(io), signals(io) {}

  void accept_unix() {
    unix_acceptor.async_accept(asio::make_strand(io), [this](beast::error_code ec, local::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) {
        auto caller = peer_caller(socket.native_handle());
        if (caller) {
          std::make_shared<Session<local::socket>>(std::move(socket), api, options, Identity{*caller, ""})->start();
        }
      }
      accept_unix();
    });
  }

  void accept_tcp() {
    tcp_acceptor.async_accept(asio::make_strand(io), [this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) {
        std::make_shared<Session<tcp::socket>>(std::move(socket), api, options, Identity{std::nullopt, options.token})
            ->start();
      }
      accept_tcp();
    });
  }

  Api& api;
  ServerOptions options;
  asio::io_context io;
  local::acceptor unix_acceptor;
  tcp::acceptor tcp_acceptor;
  asio::signal_set signals;
};

HttpServer::HttpServer(Api& api, ServerOptions options) : impl_(std::make_unique<Impl>(api, std::move(options))) {}
HttpServer::~HttpServer() = default;

Status HttpServer::listen() {
  auto& o = impl_->options;
  beast::error_code ec;
  std::filesystem::path dir = std::filesystem::path(o.socket_path).parent_path();
  std::error_code fs_ec;
  if (!dir.empty()) std::filesystem::create_directories(dir, fs_ec);
  // A socket file left by a service that died is replaced; one that answers belongs to a running service.
  {
    local::socket probe(impl_->io);
    probe.connect(local::endpoint(o.socket_path), ec);
    if (!ec) {
      return fail(ReturnCode::InUse, o.socket_path, "another vhdkitd is already listening on this socket");
    }
    std::filesystem::remove(o.socket_path, fs_ec);
    ec = {};
  }
  auto& a = impl_->unix_acceptor;
  a.open(local(), ec);
  if (!ec) a.bind(local::endpoint(o.socket_path), ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return fail(ReturnCode::NotAvailable, o.socket_path, fmt::format("cannot listen: {}", ec.message()));
  ::chmod(o.socket_path.c_str(), o.socket_mode);
  if (o.tcp_port) {
    if (o.token.empty()) {
      return fail(ReturnCode::InvalidParameter, "", "a TCP port needs a bearer token (--token-file)");
    }
    auto& t = impl_->tcp_acceptor;
    tcp::endpoint ep(asio::ip::address_v4::loopback(), *o.tcp_port);
    t.open(ep.protocol(), ec);
    if (!ec) t.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) t.bind(ep, ec);
    if (!ec) t.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
      return fail(ReturnCode::NotAvailable, "",
                  fmt::format("cannot listen on 127.0.0.1:{}: {}", *o.tcp_port, ec.message()));
  }
  return ok();
}

void HttpServer::run() {
  auto& im = *impl_;
  im.accept_unix();
  if (im.tcp_acceptor.is_open()) im.accept_tcp();
  im.signals.add(SIGTERM);
  im.signals.add(SIGINT);
  im.signals.async_wait([this](beast::error_code ec, int) {
    if (!ec) stop();
  });
  std::vector<std::thread> threads;
  for (unsigned i = 1; i < std::max(1u, im.options.threads); ++i) threads.emplace_back([&] { im.io.run(); });
  im.io.run();
  for (auto& t : threads) t.join();
  std::error_code ec;
  std::filesystem::remove(im.options.socket_path, ec);
}

void HttpServer::stop() { impl_->io.stop(); }

}  // namespace vhdkit::service
