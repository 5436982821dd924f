// SPDX-License-Identifier: Apache-2.0
// vhdkitd: Msvm_ImageManagementService as a local service. HTTP/1.1 + JSON on a Unix socket (optionally a
// loopback TCP port with a bearer token); jobs on a bounded worker pool; job records in SQLite.
#include <sys/stat.h>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/version.h"
#include "daemon/http_api.h"
#include "daemon/http_server.h"
#include "daemon/job_store.h"
#include "io/file.h"
#include "service/engine.h"
#include "service/image_management_service.h"

namespace {

using namespace vhdkit;
using namespace vhdkit::service;

struct DaemonArgs {
  std::string socket = "/run/vhdkit/vhdkitd.sock";
  std::string state_dir = "/var/lib/vhdkit";
  unsigned workers = 0;
  size_t queue_limit = 64;
  unsigned time_before_removal = 300;
  size_t max_body = 64 * 1024;
  uint16_t tcp_port = 0;
  std::string token_file;
};

// Drops finished jobs once their TimeBeforeRemoval has passed, from memory and from the store.
class Sweeper {
 public:
  Sweeper(ImageManagementService& service, JobStore& store)
      : thread_([this, &service, &store] {
          std::unique_lock lock(mu_);
          while (!cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_; })) {
            for (const auto& id : service.remove_expired()) (void)store.remove(id);
          }
        }) {}
  ~Sweeper() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

int fail_with(const Error& e) {
  fmt::print(stderr, "vhdkitd: {}\n", e.what());
  return 1;
}

int serve(const DaemonArgs& args) {
  std::error_code ec;
  std::filesystem::create_directories(args.state_dir, ec);
  ::chmod(args.state_dir.c_str(), 0700);
  auto store = JobStore::open(args.state_dir);
  if (!store) return fail_with(store.error());
  auto recovered = (*store)->recover();
  if (!recovered) return fail_with(recovered.error());

  ServerOptions server_options;
  server_options.socket_path = args.socket;
  server_options.max_body = args.max_body;
  if (args.tcp_port) {
    server_options.tcp_port = args.tcp_port;
    std::ifstream in(args.token_file);
    std::getline(in, server_options.token);
    if (server_options.token.size() < 16) {
      return fail_with(Error(ReturnCode::InvalidParameter, args.token_file,
                             "--tcp-port needs --token-file with a token of at least 16 characters"));
    }
  }

  ServiceOptions options;
  options.workers = args.workers;
  options.queue_limit = args.queue_limit;
  options.time_before_removal = std::chrono::seconds(args.time_before_removal);
  JobStore& jobs = **store;
  options.on_job_change = [&jobs](const JobStatus& s) {
    if (auto saved = jobs.save(s); !saved) fmt::print(stderr, "vhdkitd: {}\n", saved.error().what());
  };
  auto engine = make_engine(io::Env::posix());
  Engine& engine_ref = *engine;
  ImageManagementService service(io::Env::posix(), std::move(engine), options);
  for (auto& s : *recovered) service.adopt(std::make_shared<Job>(std::move(s)));

  Api api(service, io::Env::posix(), engine_ref);
  HttpServer server(api, server_options);
  if (auto s = server.listen(); !s) return fail_with(s.error());
  Sweeper sweeper(service, jobs);
  fmt::print(stderr, "vhdkitd: listening on {}{}; {} workers, queue limit {}, state in {} ({} jobs recovered)\n",
             args.socket, args.tcp_port ? fmt::format(" and 127.0.0.1:{}", args.tcp_port) : "", service.worker_count(),
             args.queue_limit, args.state_dir, recovered->size());
  server.run();
  fmt::print(stderr, "vhdkitd: stopping; running jobs stop at their next safe point\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vhdkitd: the vhdkit image management service (CompactVirtualHardDisk over HTTP on a Unix socket)"};
  DaemonArgs args;
  app.set_config("--config", "/etc/vhdkit/vhdkitd.conf",
                 "Read options from this file (key = value, as the long options)");
  app.add_option("--socket", args.socket, "Unix socket to listen on")->capture_default_str();
  app.add_option("--state-dir", args.state_dir, "Where job records are kept (jobs.sqlite3)")->capture_default_str();
  app.add_option("--workers", args.workers, "Jobs that run at once (0: one per core)")->capture_default_str();
  app.add_option("--queue-limit", args.queue_limit, "Jobs that may wait; more are refused with 32777")
      ->capture_default_str();
  app.add_option("--time-before-removal", args.time_before_removal, "Seconds a finished job stays visible")
      ->capture_default_str();
  app.add_option("--max-body", args.max_body, "Largest request body in bytes")->capture_default_str();
  app.add_option("--tcp-port", args.tcp_port, "Also listen on 127.0.0.1:PORT (needs --token-file)");
  app.add_option("--token-file", args.token_file, "File holding the bearer token for --tcp-port");
  app.set_version_flag("--version", std::string("vhdkitd ") + vhdkit::kVersion);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return serve(args);
}
