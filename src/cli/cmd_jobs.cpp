// SPDX-License-Identifier: Apache-2.0
// vhdkit jobs [--service=SOCKET] [--json] [--cancel] [JOB]: the jobs vhdkitd knows (the caller's own; all of
// them for root), one job in full, or RequestStateChange(Terminate) on one.
#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/job_client.h"
#include "cli/report.h"
#include "service/job_json.h"

namespace vhdkit::cli {
namespace {

struct JobsArgs {
  std::string socket = kDefaultSocket;
  std::optional<std::string> job;
  bool cancel = false;
  bool json = false;
};

// Text from the service (a path another user chose, a description naming it) as it may reach a
// terminal: control characters (escape sequences, line breaks) and backslashes are written as \xHH, \uHHHH
// (the C1 controls) and \\, so a name can neither forge a line of the listing nor drive the terminal.
std::string printable(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    auto u = static_cast<unsigned char>(c);
    auto next = i + 1 < text.size() ? static_cast<unsigned char>(text[i + 1]) : 0;
    if (u == 0xc2 && next >= 0x80 && next <= 0x9f) {  // U+0080..U+009F: C1 controls (CSI is U+009B)
      out += fmt::format("\\u{:04x}", next);
      ++i;
    } else if (c == '\\') {
      out += "\\\\";
    } else if (u < 0x20 || u == 0x7f) {
      out += fmt::format("\\x{:02x}", u);
    } else {
      out += c;
    }
  }
  return out;
}

std::string row(const service::JobStatus& s) {
  std::string error = s.state == service::JobState::Exception
                          ? fmt::format("  ErrorCode:{} {}", s.error_code, printable(s.error_description))
                          : "";
  return fmt::format("{}  {:<10} {:>3}%  {}{}", printable(s.instance_id), service::to_string(s.state),
                     s.percent_complete, printable(s.path), error);
}

int run_jobs(const JobsArgs& args) {
  auto client = service_job_client(args.socket);
  if (args.cancel) {
    if (!args.job) {
      fmt::print(stderr, "vhdkit: --cancel needs the job's id\n");
      return exit_status(ReturnCode::InvalidParameter);
    }
    ReturnCode rc = client->request_state_change(*args.job, service::RequestedState::Terminate);
    bool accepted = rc == ReturnCode::Completed || rc == ReturnCode::JobStarted;
    fmt::print("RequestStateChange(Terminate) on {} returned {} ({})\n", *args.job, static_cast<uint32_t>(rc),
               describe(rc));
    return accepted ? 0 : exit_status(rc);
  }
  std::vector<service::JobStatus> jobs;
  if (args.job) {
    auto s = client->status(*args.job);
    if (!s) {
      fmt::print(stderr, "{}\n", message(s.error()));
      return exit_status(s.error().code());
    }
    jobs.push_back(*s);
  } else {
    auto all = client->list();
    if (!all) {
      fmt::print(stderr, "{}\n", message(all.error()));
      return exit_status(all.error().code());
    }
    jobs = std::move(*all);
  }
  if (args.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& s : jobs) out.push_back(service::to_json(s));
    fmt::print("{}\n", service::json_text(args.job ? out[0] : out, 4));
  } else if (args.job) {
    nlohmann::json fields = service::to_json(jobs[0]);
    for (const auto& [k, v] : fields.items()) fmt::print("{}: {}\n", k, service::json_text(v));
  } else {
    if (jobs.empty()) fmt::print("no jobs\n");
    for (const auto& s : jobs) fmt::print("{}\n", row(s));
  }
  return 0;
}

}  // namespace

Command register_jobs(CLI::App& app) {
  auto args = std::make_shared<JobsArgs>();
  auto* sub = app.add_subcommand("jobs", "List, show or cancel vhdkitd's compaction jobs");
  sub->add_option("--service", args->socket, "vhdkitd's socket")->capture_default_str();
  sub->add_flag("--cancel", args->cancel, "Terminate JOB (it stops at its next safe point; the image stays valid)");
  sub->add_flag("--json", args->json, "Print the CIM_ConcreteJob fields as JSON");
  sub->add_option("JOB", args->job, "A job's InstanceID (or its path /v2/jobs/ID)");
  return {sub, [args] { return run_jobs(*args); }};
}

}  // namespace vhdkit::cli
