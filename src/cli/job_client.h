// SPDX-License-Identifier: Apache-2.0
// Where `vhdkit compact` and `vhdkit jobs` send their requests: an ImageManagementService in this process,
// or the vhdkitd service over its socket (--service). Both answer with the reference's return values and
// CIM_ConcreteJob fields, so the code that prints progress and results is the same for both.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "service/image_management_service.h"
#include "service/job.h"

namespace vhdkit::cli {

class JobClient {
 public:
  struct Started {
    ReturnCode return_value = ReturnCode::Failed;
    std::string job;      // the job's id when return_value is JobStarted
    std::string message;  // why not, otherwise
  };

  virtual ~JobClient() = default;
  virtual Started compact(const service::CompactRequest& request) = 0;
  virtual Result<service::JobStatus> status(const std::string& job) = 0;
  virtual Result<std::vector<service::JobStatus>> list() = 0;
  virtual ReturnCode request_state_change(const std::string& job, service::RequestedState state) = 0;
};

// Runs jobs in this process, one at a time.
std::unique_ptr<JobClient> local_job_client();
// Talks to vhdkitd on a Unix socket (HTTP/1.1 + JSON, the /v2 API).
std::unique_ptr<JobClient> service_job_client(const std::string& socket_path);

inline constexpr const char* kDefaultSocket = "/run/vhdkit/vhdkitd.sock";

}  // namespace vhdkit::cli
