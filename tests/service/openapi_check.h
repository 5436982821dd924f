// SPDX-License-Identifier: Apache-2.0
// Holds the daemon's replies to docs/openapi.json: finds the schema the document gives for a path, method
// and status, and checks a JSON value against it (the JSON Schema subset the document uses: $ref, type,
// enum, required, properties, additionalProperties, items, minimum, maximum, oneOf, pattern).
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace vhdkit::testing {

class OpenApi {
 public:
  explicit OpenApi(const std::string& document_path);
  // Problems found (empty: the reply matches the document). `path` is concrete ("/v2/jobs/abc").
  std::vector<std::string> check_reply(const std::string& method, const std::string& path, unsigned status,
                                       const nlohmann::json& body) const;
  const nlohmann::json& document() const { return doc_; }

 private:
  void check(const nlohmann::json& schema, const nlohmann::json& value, const std::string& where,
             std::vector<std::string>& problems) const;
  nlohmann::json doc_;
};

}  // namespace vhdkit::testing
