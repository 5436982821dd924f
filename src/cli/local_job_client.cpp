// SPDX-License-Identifier: Apache-2.0
#include <map>

#include "cli/job_client.h"
#include "io/file.h"
#include "service/engine.h"

namespace vhdkit::cli {
namespace {

class LocalJobClient final : public JobClient {
 public:
  LocalJobClient() : service_(io::Env::posix(), service::make_engine(io::Env::posix()), one_worker()) {}

  Started compact(const service::CompactRequest& request) override {
    auto r = service_.CompactVirtualHardDisk(request);
    if (!r.job) return Started{r.return_value, "", r.message};
    return Started{r.return_value, r.job->instance_id(), ""};
  }

  Result<service::JobStatus> status(const std::string& job) override {
    auto j = service_.find_job(job);
    if (!j) return fail(ReturnCode::InvalidParameter, "", "no job " + job);
    return j->status();
  }

  Result<std::vector<service::JobStatus>> list() override {
    std::vector<service::JobStatus> out;
    for (auto& j : service_.jobs()) out.push_back(j->status());
    return out;
  }

  ReturnCode request_state_change(const std::string& job, service::RequestedState state) override {
    auto j = service_.find_job(job);
    return j ? j->request_state_change(state) : ReturnCode::InvalidParameter;
  }

 private:
  static service::ServiceOptions one_worker() {
    service::ServiceOptions o;
    o.workers = 1;
    return o;
  }
  service::ImageManagementService service_;
};

}  // namespace

std::unique_ptr<JobClient> local_job_client() { return std::make_unique<LocalJobClient>(); }

}  // namespace vhdkit::cli
