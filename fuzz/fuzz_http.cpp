// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the input is the bytes a client sends to vhdkitd's socket. They go through the server's
// own path (fuzz/../src/daemon/http_request.h): the HTTP parser with the server's limits, the reply to a bad
// read, the bearer check, the API's routing and handlers (compact, dry run, state, validate, jobs, state
// changes) over a small set of images in memory, and the reply's JSON text. Nothing may crash, throw past
// the handlers, or answer with anything but a JSON object carrying a ReturnValue.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include <boost/asio/buffer.hpp>

#include "daemon/http_request.h"
#include "image/open_image.h"
#include "io/testing/mem_env.h"
#include "service/engine.h"
#include "service/image_management_service.h"
#include "service/job_json.h"

namespace {

using namespace vhdkit;

constexpr size_t kMaxBody = 64 * 1024;  // the server's default

struct World {
  io::MemEnv env;
  service::Engine* engine = nullptr;
  std::unique_ptr<service::ImageManagementService> service;
  std::unique_ptr<service::Api> api;

  World() {
    // The images the seeds name: a dynamic VHD and VHDX with a few blocks written, and a file that is neither.
    for (auto [path, format] : {std::pair{"/fuzz/a.vhd", disk::Format::Vhd}, {"/fuzz/b.vhdx", disk::Format::Vhdx}}) {
      disk::CreateOptions o;
      o.format = format;
      o.virtual_size = 8u << 20;
      o.block_size = 2u << 20;
      auto d = image::create_image(env, path, o);
      if (!d) die(d.error().what());
      std::vector<std::byte> data(4096, std::byte{0x5a});
      for (uint64_t off : {uint64_t{0}, uint64_t{4} << 20})
        if (!(*d)->write(off, data)) die("cannot write the seed image");
    }
    env.set_bytes("/fuzz/plain.txt", std::vector<std::byte>(1000, std::byte{'x'}));
    auto e = service::make_engine(env);
    engine = e.get();
    service::ServiceOptions options;
    options.workers = 1;
    options.queue_limit = 4;
    options.time_before_removal = std::chrono::seconds(0);
    options.jobs_per_owner = 8;
    service = std::make_unique<service::ImageManagementService>(env, std::move(e), options);
    api = std::make_unique<service::Api>(*service, env, *engine);
  }

  [[noreturn]] static void die(const std::string& why) {
    std::fprintf(stderr, "fuzz_http: %s\n", why.c_str());
    std::abort();
  }
};

void expect_reply(const service::ApiReply& reply) {
  const std::string text = service::json_text(reply.body);
  if (!reply.body.is_object() || !reply.body.contains("ReturnValue") || text.empty()) {
    World::die("a reply without ReturnValue: " + text);
  }
  if (reply.status < 100 || reply.status > 599) World::die("an HTTP status out of range");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World world;
  service::RequestParser parser;
  service::apply_limits(parser, kMaxBody);
  parser.eager(true);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(data, size), ec);
  if (!ec && !parser.is_done()) parser.put_eof(ec);
  if (ec || !parser.is_done()) {
    if (ec) {
      if (auto reply = service::read_failure_reply(ec, kMaxBody)) expect_reply(*reply);
    }
    return 0;
  }
  // The TCP port's check on every input (the answer is not used: Unix-socket callers need no token).
  auto auth = parser.get()[boost::beast::http::field::authorization];
  (void)service::bearer_token_matches(std::string_view(auth.data(), auth.size()), "s3cret-token");
  // An odd-sized input comes from an unprivileged user, whose quota and access rules then apply.
  service::Caller caller;
  caller.uid = caller.gid = size % 2 ? 1000 : 0;
  service::ApiRequest request = service::api_request(parser, caller);
  (void)service::Api::is_image_work(request);
  expect_reply(service::answer(*world.api, request));
  return 0;
}
