// SPDX-License-Identifier: Apache-2.0
#include "daemon_fixture.h"

#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace vhdkit::testing {

using namespace std::chrono_literals;
using nlohmann::json;

std::string vhdkitd_bin() { return VHDKITD_BINARY; }

void open_to_everyone(const TempDir& dir) { ::chmod(dir.path().c_str(), 0755); }

Daemon::Daemon(const TempDir& dir, std::vector<std::string> options)
    : socket_(dir.file("vhdkitd.sock")),
      state_dir_(dir.file("state")),
      log_(dir.file("vhdkitd.log")),
      options_(std::move(options)),
      openapi_(std::string(VHDKIT_SOURCE_DIR) + "/docs/openapi.json") {
  start();
}

Daemon::~Daemon() {
  if (process_ && alive()) terminate();
}

void Daemon::start() {
  std::vector<std::string> argv{vhdkitd_bin(), "--config", "/dev/null", "--socket", socket_, "--state-dir", state_dir_};
  argv.insert(argv.end(), options_.begin(), options_.end());
  process_ = std::make_unique<ChildProcess>(argv, log_);
  for (int i = 0; i < 300; ++i) {
    auto r = service::http_call(socket_, "GET", "/v2/jobs");
    if (r && r->status == 200) return;
    std::this_thread::sleep_for(20ms);
  }
  ADD_FAILURE() << "vhdkitd did not answer on " << socket_ << "; its log:\n" << log();
}

void Daemon::kill() {
  process_->signal(SIGKILL);
  process_->wait();
}

int Daemon::terminate() {
  process_->signal(SIGTERM);
  return process_->wait();
}

bool Daemon::alive() { return process_->running(); }

std::string Daemon::log() const {
  std::ifstream in(log_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

service::HttpReply Daemon::call_raw(const std::string& method, const std::string& target, const std::string& body) {
  auto r = service::http_call(socket_, method, target, body);
  EXPECT_TRUE(r) << (r ? "" : r.error().what()) << "\nvhdkitd log:\n" << log();
  if (!r) return {};
  auto problems = openapi_.check_reply(method, target, r->status, r->body);
  EXPECT_TRUE(problems.empty()) << method << " " << target << " -> " << r->status << " " << r->body.dump()
                                << "\ndiffers from docs/openapi.json:\n"
                                << ::testing::PrintToString(problems);
  return *r;
}

service::HttpReply Daemon::call(const std::string& method, const std::string& target, const json& body) {
  return call_raw(method, target, body.is_null() ? "" : body.dump());
}

service::HttpReply Daemon::call_as(const std::string& user, const std::string& method, const std::string& target,
                                   const json& body) {
  std::string data = body.is_null() ? "" : " -H 'Content-Type: application/json' --data-binary " + q(body.dump());
  RunResult r = run("setpriv --reuid " + q(user) + " --regid nogroup --clear-groups curl -sS -X " + method +
                    " --unix-socket " + q(socket_) + data + " -w '\\n%{http_code}' " + q("http://localhost" + target));
  service::HttpReply reply;
  size_t cut = r.out.rfind('\n');
  EXPECT_EQ(r.status, 0) << r.err;
  if (cut == std::string::npos) return reply;
  reply.status = static_cast<unsigned>(std::atoi(r.out.c_str() + cut + 1));
  reply.body = json::parse(r.out.substr(0, cut), nullptr, false);
  EXPECT_FALSE(reply.body.is_discarded()) << r.out;
  return reply;
}

json Daemon::compact(const std::string& path, int mode) {
  return call("POST", "/v2/ImageManagementService/CompactVirtualHardDisk", json{{"Path", path}, {"Mode", mode}}).body;
}

json Daemon::wait_job(const std::string& job_path, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  json job;
  while (std::chrono::steady_clock::now() < deadline) {
    job = call("GET", job_path).body;
    int state = job.value("JobState", 0);
    if (state >= 7) return job;
    std::this_thread::sleep_for(50ms);
  }
  ADD_FAILURE() << "job " << job_path << " did not finish: " << job.dump();
  return job;
}

json Daemon::wait_running(const std::string& job_path) {
  json job;
  for (int i = 0; i < 600; ++i) {
    job = call("GET", job_path).body;
    if (job.value("JobState", 0) >= 4 && job.value("PercentComplete", 0) > 0) return job;
    std::this_thread::sleep_for(10ms);
  }
  ADD_FAILURE() << "job " << job_path << " never ran: " << job.dump();
  return job;
}

}  // namespace vhdkit::testing
