// SPDX-License-Identifier: Apache-2.0
// A real vhdkitd on a temporary socket and state directory, and the client calls the tests make to it.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "child_process.h"
#include "cli/http_client.h"
#include "openapi_check.h"
#include "service_images.h"

namespace vhdkit::testing {

std::string vhdkitd_bin();

// A folder that an unprivileged caller can enter (TempDir makes 0700 ones).
void open_to_everyone(const TempDir& dir);

class Daemon {
 public:
  // Starts vhdkitd with these extra options (--socket and --state-dir are given) and waits until it answers.
  Daemon(const TempDir& dir, std::vector<std::string> options = {});
  ~Daemon();
  void start();
  // SIGKILL, as a crash would.
  void kill();
  // SIGTERM, and waits for it to end; returns its exit status.
  int terminate();
  bool alive();
  pid_t pid() const { return process_ ? process_->pid() : -1; }
  long peak_rss_kib() const { return process_ ? process_->peak_rss_kib() : 0; }
  const std::string& socket() const { return socket_; }
  std::string log() const;

  // One call; the reply is checked against docs/openapi.json (a mismatch fails the test).
  service::HttpReply call(const std::string& method, const std::string& target, const nlohmann::json& body = nullptr);
  service::HttpReply call_raw(const std::string& method, const std::string& target, const std::string& body);
  // One call from another local user (curl under setpriv with that user's uid, the nogroup group and no
  // others): the daemon knows him by the socket's peer credentials. A GET when `body` is null.
  service::HttpReply call_as(const std::string& user, const std::string& method, const std::string& target,
                             const nlohmann::json& body = nullptr);
  // POST CompactVirtualHardDisk (v2); returns the reply body.
  nlohmann::json compact(const std::string& path, int mode = 0);
  // Polls the job until it has finished; returns its fields.
  nlohmann::json wait_job(const std::string& job_path, std::chrono::seconds timeout = std::chrono::seconds(60));
  // Polls until the job is Running (or finished).
  nlohmann::json wait_running(const std::string& job_path);

 private:
  std::string socket_, state_dir_, log_;
  std::vector<std::string> options_;
  std::unique_ptr<ChildProcess> process_;
  OpenApi openapi_;
};

}  // namespace vhdkit::testing
