#include "cli_util.h"

#include <random>

namespace vhdkit::testing {

RunResult vhdkit(const std::string& args) { return run(q(vhdkit_bin()) + " " + args); }

nlohmann::json parse_json(const std::string& text, const std::string& what) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(j.is_discarded()) << what << " printed no valid JSON:\n" << text;
  return j.is_discarded() ? nlohmann::json() : j;
}

nlohmann::json vhdkit_json(const std::string& args) {
  return parse_json(run_ok(q(vhdkit_bin()) + " " + args), "vhdkit " + args);
}

void make_random_file(const std::string& path, uint64_t size, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::byte> data(size);
  for (uint64_t i = 0; i < size; i += 8) {
    uint64_t v = rng();
    for (uint64_t k = 0; k < 8 && i + k < size; ++k) data[i + k] = std::byte(v >> (8 * k));
  }
  write_file(path, data);
}

}  // namespace vhdkit::testing
