// SPDX-License-Identifier: Apache-2.0
#include "openapi_check.h"

#include <fstream>
#include <regex>

namespace vhdkit::testing {

using nlohmann::json;

OpenApi::OpenApi(const std::string& document_path) {
  std::ifstream in(document_path);
  doc_ = json::parse(in);
}

namespace {

bool has_type(const json& value, const std::string& type) {
  if (type == "null") return value.is_null();
  if (type == "object") return value.is_object();
  if (type == "array") return value.is_array();
  if (type == "string") return value.is_string();
  if (type == "boolean") return value.is_boolean();
  if (type == "integer") return value.is_number_integer();
  if (type == "number") return value.is_number();
  return false;
}

// "/v2/jobs/{id}" matches "/v2/jobs/abc".
bool matches(const std::string& templ, const std::string& path) {
  std::string re = std::regex_replace(templ, std::regex(R"(\{[^}]+\})"), "[^/]+");
  return std::regex_match(path, std::regex(re));
}

}  // namespace

void OpenApi::check(const json& schema, const json& value, const std::string& where,
                    std::vector<std::string>& problems) const {
  if (schema.contains("$ref")) {
    std::string ref = schema["$ref"];  // "#/components/schemas/X"
    return check(doc_.at(json::json_pointer(ref.substr(1))), value, where, problems);
  }
  if (schema.contains("oneOf")) {
    int matched = 0;
    for (const auto& alt : schema["oneOf"]) {
      std::vector<std::string> p;
      check(alt, value, where, p);
      matched += p.empty();
    }
    if (matched != 1) problems.push_back(where + ": matches " + std::to_string(matched) + " of oneOf");
    return;
  }
  if (schema.contains("type")) {
    bool ok = false;
    if (schema["type"].is_array()) {
      for (const auto& t : schema["type"]) ok = ok || has_type(value, t);
    } else {
      ok = has_type(value, schema["type"]);
    }
    if (!ok) return problems.push_back(where + ": " + value.dump() + " is not of type " + schema["type"].dump());
  }
  if (schema.contains("enum") && std::find(schema["enum"].begin(), schema["enum"].end(), value) == schema["enum"].end())
    problems.push_back(where + ": " + value.dump() + " is not one of " + schema["enum"].dump());
  if (value.is_number()) {
    if (schema.contains("minimum") && value.get<double>() < schema["minimum"].get<double>())
      problems.push_back(where + ": below minimum");
    if (schema.contains("maximum") && value.get<double>() > schema["maximum"].get<double>())
      problems.push_back(where + ": above maximum");
  }
  if (value.is_string() && schema.contains("pattern") &&
      !std::regex_search(value.get<std::string>(), std::regex(schema["pattern"].get<std::string>())))
    problems.push_back(where + ": " + value.dump() + " does not match " + schema["pattern"].dump());
  if (value.is_object()) {
    for (const auto& r : schema.value("required", json::array()))
      if (!value.contains(r)) problems.push_back(where + ": missing " + r.get<std::string>());
    const json props = schema.value("properties", json::object());
    for (const auto& [k, v] : value.items()) {
      if (props.contains(k)) {
        check(props[k], v, where + "." + k, problems);
      } else if (schema.contains("additionalProperties") && schema["additionalProperties"] == false) {
        problems.push_back(where + ": field " + k + " is not in the document");
      }
    }
  }
  if (value.is_array() && schema.contains("items")) {
    for (size_t i = 0; i < value.size(); ++i)
      check(schema["items"], value[i], where + "[" + std::to_string(i) + "]", problems);
  }
}

std::vector<std::string> OpenApi::check_reply(const std::string& method, const std::string& path, unsigned status,
                                              const json& body) const {
  std::string m = method == "GET" ? "get" : "post";
  for (const auto& [templ, item] : doc_["paths"].items()) {
    if (!matches(templ, path)) continue;
    if (!item.contains(m)) {
      // A method the path does not take is answered 405 with a Refusal.
      if (status != 405) return {"the document has no " + method + " for " + templ};
      std::vector<std::string> problems;
      check(json{{"$ref", "#/components/schemas/Refusal"}}, body, "405", problems);
      return problems;
    }
    const auto& responses = item[m]["responses"];
    std::string code = std::to_string(status);
    if (!responses.contains(code)) return {"the document gives no status " + code + " for " + method + " " + templ};
    std::vector<std::string> problems;
    check(responses[code]["content"]["application/json"]["schema"], body, method + " " + templ + " " + code, problems);
    return problems;
  }
  // Unknown paths are answered 404 with a Refusal.
  if (status == 404) {
    std::vector<std::string> problems;
    check(json{{"$ref", "#/components/schemas/Refusal"}}, body, "404", problems);
    return problems;
  }
  return {"the document has no path matching " + path};
}

}  // namespace vhdkit::testing
