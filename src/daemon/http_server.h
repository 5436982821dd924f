// SPDX-License-Identifier: Apache-2.0
// vhdkitd's HTTP/1.1 server: Boost.Beast over Asio, on a Unix socket (callers identified by their peer
// credentials) and optionally on a loopback TCP port (callers must present the bearer token and act with
// the service's own identity). Requests are read with limits (header 8 KiB, body `max_body`) and a timeout;
// a bad request is answered and the connection closed, and the server carries on.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "core/error.h"
#include "daemon/http_api.h"

namespace vhdkit::service {

struct ServerOptions {
  std::string socket_path = "/run/vhdkit/vhdkitd.sock";
  uint32_t socket_mode = 0666;       // who may connect; each request is then judged by the caller's identity
  std::optional<uint16_t> tcp_port;  // on 127.0.0.1 only
  std::string token;                 // required on TCP: "Authorization: Bearer <token>"
  size_t max_body = 64 * 1024;
  std::chrono::seconds idle_timeout{30};
  unsigned threads = 2;  // HTTP threads: parse, route, answer job listings and state changes
  // Image work (the prepare step of a compaction, dry runs, state, validation) runs on its own threads;
  // requests beyond `image_queue` waiting ones get 503 with 32777.
  unsigned image_threads = 2;
  size_t image_queue = 64;
  // Open connections, in all and per user (uid; TCP callers count as one); one more is answered 503 with
  // 32777 and closed.
  size_t max_connections = 512;
  size_t max_connections_per_user = 64;
};

class HttpServer {
 public:
  HttpServer(Api& api, ServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds the socket (replacing a stale socket file; refusing when another server answers on it) and
  // the TCP port when asked.
  Status listen();
  // Serves until stop(), SIGTERM or SIGINT; runs the I/O threads and returns when they have ended.
  void run();
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vhdkit::service
