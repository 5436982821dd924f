// SPDX-License-Identifier: Apache-2.0
#include "cli_util.h"

#include <random>
#include <regex>

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

VhdiInfo vhdiinfo(const std::string& path) {
  std::string out = run_ok("vhdiinfo " + q(path));
  VhdiInfo i;
  std::smatch m;
  if (std::regex_search(out, m, std::regex(R"(Media size\s*:.*\((\d+) bytes\))"))) i.media_size = std::stoull(m[1]);
  if (std::regex_search(out, m, std::regex(R"(Disk type\s*:\s*(\w+))"))) i.disk_type = m[1];
  EXPECT_NE(i.media_size, 0u) << "vhdiinfo printed no media size:\n" << out;
  return i;
}

void expect_compare_agrees(const std::string& a, const std::string& fa, const std::string& b, const std::string& fb,
                           int expected_status) {
  RunResult ours = vhdkit("compare " + q(a) + " " + q(b));
  RunResult qemu = run("qemu-img compare -f " + fa + " -F " + fb + " " + q(a) + " " + q(b));
  EXPECT_EQ(ours.status, expected_status) << a << " vs " << b << "\n" << ours.out << ours.err;
  EXPECT_EQ(qemu.status, expected_status) << qemu.out << qemu.err;
  EXPECT_EQ(ours.out, qemu.out) << a << " vs " << b;
}

void make_cli_differencing_pair(const std::string& format, const std::string& parent, const std::string& child,
                                const std::string& expected_raw) {
  const std::string vk = q(vhdkit_bin());
  run_ok(vk + " create --format " + format + " --size 16M " + q(parent));
  run_ok(vk + " write " + q(parent) + " 0 --pattern 0x22 --length 4M");
  run_ok(vk + " create --format " + format + " --parent " + q(parent) + " " + q(child));
  run_ok(vk + " write " + q(child) + " 1M --pattern 0x33 --length 1M");
  run_ok("qemu-img create -q -f raw " + q(expected_raw) + " 16M");
  run_ok("qemu-io -f raw -c 'write -P 0x22 0 4M' -c 'write -P 0x33 1M 1M' " + q(expected_raw));
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
