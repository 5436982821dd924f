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

#include "daemon/connection_limits.h"
#include "daemon/http_request.h"
#include "daemon/work_pool.h"
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
  Session(Socket socket, Api& api, WorkPool& image_work, const ServerOptions& options, Identity identity,
          ConnectionLimits::Ticket ticket)
      : socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        api_(api),
        image_work_(image_work),
        options_(options),
        identity_(std::move(identity)),
        ticket_(std::move(ticket)) {}

  void start() { read(); }
  // A connection over a limit: its request (read for a short while only) gets the refusal, and the
  // connection is closed. (Closing at once would lose the reply to a client still sending.)
  void refuse(const std::string& why) {
    refusal_ = why;
    read();
  }

 private:
  void read() {
    parser_.emplace();
    apply_limits(*parser_, options_.max_body);
    timer_.expires_after(refusal_ ? std::chrono::seconds(2) : options_.idle_timeout);
    timer_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
      if (!ec) self->close();  // idle or too slow: drop it
    });
    http::async_read(socket_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    timer_.cancel();
    if (ec) {
      std::optional<ApiReply> reply = read_failure_reply(ec, options_.max_body);
      return reply ? reply_and_close(std::move(*reply)) : close();
    }
    if (refusal_) return reply_and_close(Api::refuse(503, ReturnCode::NotAvailable, *refusal_));
    auto& req = parser_->get();
    if (!identity_.caller) {
      auto auth = req[http::field::authorization];
      if (!bearer_token_matches(std::string_view(auth.data(), auth.size()), identity_.token)) {
        return reply_and_close(
            Api::refuse(401, ReturnCode::AccessDenied, "this port needs \"Authorization: Bearer <token>\""));
      }
      identity_.caller = own_caller();
    }
    const bool keep_alive = req.keep_alive();
    ApiRequest request = api_request(*parser_, *identity_.caller);
    if (!Api::is_image_work(request)) return write(answer(api_, request), keep_alive);
    // Image work leaves the HTTP threads; its reply comes back to this connection's strand.
    auto self = this->shared_from_this();
    bool queued = image_work_.try_post([self, request, keep_alive] {
      ApiReply reply = answer(self->api_, request);
      asio::post(self->socket_.get_executor(),
                 [self, reply = std::move(reply), keep_alive]() mutable { self->write(std::move(reply), keep_alive); });
    });
    if (!queued) {
      write(Api::refuse(503, ReturnCode::NotAvailable,
                        fmt::format("{} requests that read images are waiting already (image-queue); try again later",
                                    image_work_.queue_limit())),
            keep_alive);
    }
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
  std::optional<RequestParser> parser_;
  Api& api_;
  WorkPool& image_work_;
  const ServerOptions& options_;
  Identity identity_;
  ConnectionLimits::Ticket ticket_;
  std::optional<std::string> refusal_;  // set on a connection over a limit
};

}  // namespace

struct HttpServer::Impl {
  Impl(Api& a, ServerOptions o)
      : api(a),
        options(std::move(o)),
        limits(std::make_shared<ConnectionLimits>(options.max_connections, options.max_connections_per_user)),
        unix_acceptor(io),
        tcp_acceptor(io),
        unix_backoff(io),
        tcp_backoff(io),
        signals(io),
        image_work(options.image_threads, options.image_queue) {}

  // Out of descriptors (EMFILE, ENFILE) or kernel memory: the pending connection stays in the backlog;
  // accepting again at once would fail again at once, so wait a little, and say so once per episode.
  bool back_off(const beast::error_code& ec, asio::steady_timer& timer, bool& logged, void (Impl::*again)()) {
    if (ec != asio::error::no_descriptors && ec.value() != ENFILE && ec != asio::error::no_buffer_space &&
        ec != asio::error::no_memory)
      return false;
    if (!logged) {
      fmt::print(stderr, "vhdkitd: cannot accept connections ({}); {} open; retrying every 100 ms\n", ec.message(),
                 limits->open_connections());
      logged = true;
    }
    timer.expires_after(std::chrono::milliseconds(100));
    timer.async_wait([this, again](beast::error_code wait_ec) {
      if (!wait_ec) (this->*again)();
    });
    return true;
  }

  template <class Socket>
  void start_session(Socket socket, Identity identity, std::optional<uint32_t> uid) {
    std::string why;
    auto ticket = limits->admit(uid, why);
    auto session =
        std::make_shared<Session<Socket>>(std::move(socket), api, image_work, options, std::move(identity), ticket);
    if (ticket) {
      session->start();
    } else {
      session->refuse(why);
    }
  }

  void accept_unix() {
    unix_acceptor.async_accept(asio::make_strand(io), [this](beast::error_code ec, local::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (back_off(ec, unix_backoff, unix_logged, &Impl::accept_unix)) return;
      unix_logged = false;
      if (!ec) {
        auto caller = peer_caller(socket.native_handle());
        if (caller) {
          uint32_t uid = caller->uid;
          start_session(std::move(socket), Identity{*caller, ""}, uid);
        }
      }
      accept_unix();
    });
  }

  void accept_tcp() {
    tcp_acceptor.async_accept(asio::make_strand(io), [this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (back_off(ec, tcp_backoff, tcp_logged, &Impl::accept_tcp)) return;
      tcp_logged = false;
      if (!ec) start_session(std::move(socket), Identity{std::nullopt, options.token}, std::nullopt);
      accept_tcp();
    });
  }

  Api& api;
  ServerOptions options;
  std::shared_ptr<ConnectionLimits> limits;
  asio::io_context io;
  local::acceptor unix_acceptor;
  tcp::acceptor tcp_acceptor;
  asio::steady_timer unix_backoff, tcp_backoff;
  bool unix_logged = false, tcp_logged = false;
  ino_t socket_inode = 0;  // of the socket file listen() made
  asio::signal_set signals;
  // Last, so that it is destroyed first: its threads end before the sessions' io_context goes.
  WorkPool image_work;
};

HttpServer::HttpServer(Api& api, ServerOptions options) : impl_(std::make_unique<Impl>(api, std::move(options))) {}
HttpServer::~HttpServer() = default;

Status HttpServer::listen() {
  auto& o = impl_->options;
  beast::error_code ec;
  std::filesystem::path dir = std::filesystem::path(o.socket_path).parent_path();
  std::error_code fs_ec;
  if (!dir.empty()) std::filesystem::create_directories(dir, fs_ec);
  // A socket file left by a service that died is replaced; one that answers belongs to a running service;
  // anything else at the path (a regular file, a link) is not ours to remove.
  struct stat st {};
  if (::lstat(o.socket_path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return fail(ReturnCode::InvalidParameter, o.socket_path,
                  "is not a socket; vhdkitd replaces only a socket a stopped vhdkitd left (remove the file or "
                  "choose another --socket)");
    }
    local::socket probe(impl_->io);
    probe.connect(local::endpoint(o.socket_path), ec);
    if (!ec) {
      return fail(ReturnCode::InUse, o.socket_path, "another vhdkitd is already listening on this socket");
    }
    ec = {};
    std::filesystem::remove(o.socket_path, fs_ec);
  }
  auto& a = impl_->unix_acceptor;
  a.open(local(), ec);
  // The socket file gets its mode as bind creates it (the umask), never by a chmod of its name afterwards.
  const mode_t saved_umask = ::umask(static_cast<mode_t>(~o.socket_mode & 0777));
  if (!ec) a.bind(local::endpoint(o.socket_path), ec);
  ::umask(saved_umask);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return fail(ReturnCode::NotAvailable, o.socket_path, fmt::format("cannot listen: {}", ec.message()));
  if (::lstat(o.socket_path.c_str(), &st) == 0) impl_->socket_inode = st.st_ino;
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
  // Only the socket this server made: whatever replaced it meanwhile stays.
  struct stat st {};
  if (::lstat(im.options.socket_path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && st.st_ino == im.socket_inode) {
    std::error_code ec;
    std::filesystem::remove(im.options.socket_path, ec);
  }
}

void HttpServer::stop() { impl_->io.stop(); }

}  // namespace vhdkit::service
