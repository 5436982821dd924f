// SPDX-License-Identifier: Apache-2.0
// vhdkitd's API, apart from the sockets: one HTTP request (method, target, body, caller) in, one reply
// (status, JSON body) out. Every reply carries ReturnValue; refusals carry Message, a sentence saying what
// to change. docs/openapi.json describes each path; the tests hold the server to it.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "daemon/caller.h"
#include "daemon/job_store.h"
#include "io/file.h"
#include "service/image_management_service.h"

namespace vhdkit::service {

struct ApiRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // "/v2/jobs/ID" (a query string is ignored)
  std::string body;
  Caller caller;
};

struct ApiReply {
  unsigned status = 200;
  nlohmann::json body;
};

class Api {
 public:
  // `store`, when given, is asked for its problem (records it could not write), which listings carry.
  Api(ImageManagementService& service, io::Env& env, Engine& engine, JobStore* store = nullptr)
      : service_(service), env_(env), engine_(engine), store_(store) {}
  ApiReply handle(const ApiRequest& request);

  // Does answering it read an image (the prepare step, a dry run, state, validation)? Such requests run
  // on the image work threads, apart from the HTTP threads.
  static bool is_image_work(const ApiRequest& request);

  // A refusal before the method ran (bad JSON, unknown field, body too large...): HTTP status + reason.
  static ApiReply refuse(unsigned status, ReturnCode code, const std::string& message);

 private:
  ApiReply compact(const ApiRequest& request, bool v1);
  ApiReply compact_many(const ApiRequest& request);  // batch_api.cpp
  ApiReply state(const ApiRequest& request);
  ApiReply validate(const ApiRequest& request);
  ApiReply list_jobs(const ApiRequest& request);
  ApiReply get_job(const ApiRequest& request, const std::string& id);
  ApiReply change_job(const ApiRequest& request, const std::string& id);
  // The job, if the caller may see it (his own; every job for root).
  std::shared_ptr<Job> visible_job(const Caller& caller, const std::string& id);

  ImageManagementService& service_;
  io::Env& env_;
  Engine& engine_;
  JobStore* store_;
};

}  // namespace vhdkit::service
