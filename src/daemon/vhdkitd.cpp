// SPDX-License-Identifier: Apache-2.0
// vhdkitd: Msvm_ImageManagementService as a local service. HTTP/1.1 + JSON on a Unix socket (optionally a
// loopback TCP port with a bearer token); jobs on a bounded worker pool; job records in SQLite.
#include <sys/resource.h>
#include <sys/stat.h>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <condition_variable>
#include <thread>

#include "core/version.h"
#include "daemon/http_api.h"
#include "daemon/http_server.h"
#include "daemon/job_store.h"
#include "daemon/own_paths.h"
#include "io/file.h"
#include "service/engine.h"
#include "service/image_management_service.h"

namespace {

using namespace vhdkit;
using namespace vhdkit::service;

// The command line: the server's and the service's own option structures (their defaults are the
// documented ones), and what only this program needs.
struct DaemonArgs {
  std::string state_dir = "/var/lib/vhdkit";
  unsigned time_before_removal = 300;
  uint16_t tcp_port = 0;
  std::string token_file;
  ServerOptions server;
  ServiceOptions service;
  DaemonArgs() { service.jobs_per_owner = 256; }  // the library has no quota; the daemon has one
};

// Says in the log when job records start failing to be written, and when they are written again: once
// each, not at every progress tick of every job.
class StoreLog {
 public:
  explicit StoreLog(JobStore& store) : store_(store) {}
  void after(const Status& s) {
    std::lock_guard lock(mu_);
    if (!s && !failing_) fmt::print(stderr, "vhdkitd: warning: {}\n", store_.problem().value_or(s.error().what()));
    if (s && failing_) fmt::print(stderr, "vhdkitd: the job records kept in memory are written to {}\n", store_.path());
    failing_ = !s;
  }

 private:
  JobStore& store_;
  std::mutex mu_;
  bool failing_ = false;
};

// Drops finished jobs once their TimeBeforeRemoval has passed (the service's on_job_removed deletes their
// records), also when no request comes to notice them, and writes job records kept in memory once the
// store works again.
class Sweeper {
 public:
  Sweeper(ImageManagementService& service, JobStore& store, StoreLog& log)
      : thread_([this, &service, &store, &log] {
          std::unique_lock lock(mu_);
          while (!cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_; })) {
            service.remove_expired();
            if (store.problem()) log.after(store.retry());
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

// Each connection takes a descriptor, and so do images, parents, the database and the listeners: raise
// the soft limit to the hard one, and keep max-connections under it with room for the rest.
size_t fit_connections_to_descriptors(size_t wanted) {
  constexpr rlim_t kReserve = 256;  // images and parents being read, the store, the listeners
  struct rlimit lim {};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return wanted;
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &lim);
    (void)::getrlimit(RLIMIT_NOFILE, &lim);
  }
  if (lim.rlim_cur == RLIM_INFINITY || lim.rlim_cur >= wanted + kReserve) return wanted;
  size_t fits = lim.rlim_cur > 2 * kReserve ? static_cast<size_t>(lim.rlim_cur - kReserve)
                                            : static_cast<size_t>(lim.rlim_cur / 2);
  fmt::print(stderr, "vhdkitd: max-connections {} does not fit the descriptor limit {} (LimitNOFILE); using {}\n",
             wanted, static_cast<uint64_t>(lim.rlim_cur), fits);
  return fits;
}

int fail_with(const Error& e) {
  fmt::print(stderr, "vhdkitd: {}\n", e.what());
  return 1;
}

int serve(const DaemonArgs& args) {
  if (auto s = prepare_state_dir(args.state_dir); !s) return fail_with(s.error());
  auto store = JobStore::open(io::Env::posix(), args.state_dir);
  if (!store) return fail_with(store.error());
  auto recovered = (*store)->recover();
  if (!recovered) return fail_with(recovered.error());
  if (auto problem = (*store)->problem()) fmt::print(stderr, "vhdkitd: warning: {}\n", *problem);

  ServerOptions server_options = args.server;
  server_options.max_connections = fit_connections_to_descriptors(args.server.max_connections);
  if (args.tcp_port) {
    server_options.tcp_port = args.tcp_port;
    auto token = read_token_file(io::Env::posix(), args.token_file);
    if (!token) return fail_with(token.error());
    server_options.token = *token;
  }

  ServiceOptions options = args.service;
  options.time_before_removal = std::chrono::seconds(args.time_before_removal);
  JobStore& jobs = **store;
  StoreLog store_log(jobs);
  options.on_job_change = [&store_log, &jobs](const JobStatus& s) { store_log.after(jobs.save(s)); };
  options.on_job_removed = [&store_log, &jobs](const std::string& id) { store_log.after(jobs.remove(id)); };
  auto engine = make_engine(io::Env::posix());
  Engine& engine_ref = *engine;
  ImageManagementService service(io::Env::posix(), std::move(engine), options);
  for (auto& s : *recovered) service.adopt(std::make_shared<Job>(std::move(s)));

  Api api(service, io::Env::posix(), engine_ref, &jobs);
  HttpServer server(api, server_options);
  if (auto s = server.listen(); !s) return fail_with(s.error());
  Sweeper sweeper(service, jobs, store_log);
  fmt::print(stderr, "vhdkitd: listening on {}{}; {} workers, queue limit {}, state in {} ({} jobs recovered)\n",
             args.server.socket_path, args.tcp_port ? fmt::format(" and 127.0.0.1:{}", args.tcp_port) : "",
             service.worker_count(), args.service.queue_limit, args.state_dir, recovered->size());
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
  app.add_option("--socket", args.server.socket_path, "Unix socket to listen on")->capture_default_str();
  app.add_option("--state-dir", args.state_dir, "Where job records are kept (jobs.sqlite3)")->capture_default_str();
  app.add_option("--workers", args.service.workers, "Jobs that run at once (0: one per core)")->capture_default_str();
  app.add_option("--queue-limit", args.service.queue_limit, "Jobs that may wait; more are refused with 32777")
      ->capture_default_str();
  app.add_option("--time-before-removal", args.time_before_removal, "Seconds a finished job stays visible")
      ->capture_default_str();
  app.add_option("--max-body", args.server.max_body, "Largest request body in bytes")->capture_default_str();
  app.add_option("--image-threads", args.server.image_threads,
                 "Threads that read images for requests (prepare, dry runs, state, validation)")
      ->capture_default_str();
  app.add_option("--image-queue", args.server.image_queue, "Such requests that may wait; more get 503 with 32777")
      ->capture_default_str();
  app.add_option("--max-connections", args.server.max_connections, "Open connections in all; more get 503 with 32777")
      ->capture_default_str();
  app.add_option("--max-connections-per-user", args.server.max_connections_per_user,
                 "Open connections per user (uid); more get 503 with 32777")
      ->capture_default_str();
  app.add_option("--jobs-per-user", args.service.jobs_per_owner,
                 "Jobs a user other than root may hold, finished ones included until removed (0: no limit); more are "
                 "refused with 32777")
      ->capture_default_str();
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
