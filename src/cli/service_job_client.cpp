// SPDX-License-Identifier: Apache-2.0
#include <fmt/format.h>

#include "cli/http_client.h"
#include "cli/job_client.h"
#include "core/utf16.h"
#include "service/job_json.h"

namespace vhdkit::cli {
namespace {

using nlohmann::json;

// ReturnValue from a reply, or Failed when the reply has none.
ReturnCode return_value(const service::HttpReply& r) {
  if (r.body.is_object() && r.body.contains("ReturnValue") && r.body["ReturnValue"].is_number_unsigned())
    return static_cast<ReturnCode>(r.body["ReturnValue"].get<uint32_t>());
  return ReturnCode::Failed;
}

std::string message(const service::HttpReply& r) {
  if (r.body.is_object() && r.body.contains("Message") && r.body["Message"].is_string())
    return r.body["Message"].get<std::string>();
  return fmt::format("vhdkitd answered HTTP {}", r.status);
}

class ServiceJobClient final : public JobClient {
 public:
  explicit ServiceJobClient(std::string socket) : socket_(std::move(socket)) {}

  Started compact(const service::CompactRequest& request) override {
    if (request.output_path) {
      return Started{ReturnCode::NotSupported, "",
                     "--output is not part of the service's API; run it without --service"};
    }
    // JSON carries text, and a host path is bytes: a name that is not UTF-8 cannot be sent as it is, and
    // sending it repaired would name another file.
    if (valid_utf8(request.path) != request.path) {
      return Started{ReturnCode::InvalidParameter, "",
                     fmt::format("{}: the file name is not valid UTF-8, and vhdkitd's API takes paths as UTF-8 text; "
                                 "rename the file or run the command without --service",
                                 valid_utf8(request.path))};
    }
    bool dry = request.action == compact::Action::DryRun;
    json body{{"Path", request.path}, {"Mode", static_cast<uint16_t>(request.mode)}};
    if (dry) body["DryRun"] = true;
    if (request.parent_of_children == compact::ParentOfChildren::Declared) body["IsParent"] = true;
    auto r = service::http_call(socket_, "POST", service::kCompactPathV2, service::json_text(body));
    if (!r) return Started{r.error().code(), "", r.error().what()};
    ReturnCode rv = return_value(*r);
    if (rv != ReturnCode::JobStarted) return Started{rv, "", message(*r)};
    std::string job = r->body.value("Job", "");
    return Started{rv, job, ""};
  }

  Result<service::JobStatus> status(const std::string& job) override {
    VHDKIT_ASSIGN(auto r, service::http_call(socket_, "GET", job_path(job)));
    if (r.status != 200) return fail(return_value(r), "", message(r));
    return service::job_status_from_json(r.body);
  }

  Result<std::vector<service::JobStatus>> list() override {
    VHDKIT_ASSIGN(auto r, service::http_call(socket_, "GET", service::kJobsPath));
    if (r.status != 200 || !r.body.contains("Jobs") || !r.body["Jobs"].is_array())
      return fail(return_value(r), "", message(r));
    std::vector<service::JobStatus> out;
    for (const auto& j : r.body["Jobs"]) {
      VHDKIT_ASSIGN(auto s, service::job_status_from_json(j));
      out.push_back(std::move(s));
    }
    return out;
  }

  ReturnCode request_state_change(const std::string& job, service::RequestedState state) override {
    json body{{"RequestedState", static_cast<uint16_t>(state)}};
    auto r = service::http_call(socket_, "POST", job_path(job) + "/RequestStateChange", service::json_text(body));
    return r ? return_value(*r) : r.error().code();
  }

 private:
  // Jobs are named by their path (/v2/jobs/ID, as CompactVirtualHardDisk returns it) or by their ID.
  static std::string job_path(const std::string& job) {
    return job.starts_with("/") ? job : fmt::format("{}/{}", service::kJobsPath, job);
  }
  std::string socket_;
};

}  // namespace

std::unique_ptr<JobClient> service_job_client(const std::string& socket_path) {
  return std::make_unique<ServiceJobClient>(socket_path);
}

}  // namespace vhdkit::cli
