// SPDX-License-Identifier: Apache-2.0
// Compacts one image through vhdkit's public API alone: inspect it, start the job, follow it, print the report.
//   compact_image IMAGE [full|quick|prezeroed|pretrimmed|retrim]
#include <vhdkit/vhdkit.h>

#include <cstdio>
#include <filesystem>
#include <string>

int main(int argc, char** argv) {
  using namespace vhdkit::api;
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s IMAGE [MODE]\n", argv[0]);
    return 2;
  }
  // CompactVirtualHardDisk takes a fully qualified path, as Hyper-V's does.
  std::string path = std::filesystem::absolute(argv[1]).lexically_normal().string();
  CompactOptions options;
  if (argc > 2) {
    std::string m = argv[2];
    options.mode = m == "quick"        ? Mode::Quick
                   : m == "prezeroed"  ? Mode::Prezeroed
                   : m == "pretrimmed" ? Mode::Pretrimmed
                   : m == "retrim"     ? Mode::Retrim
                                       : Mode::Full;
  }
  auto info = inspect(path);
  if (!info) {
    std::fprintf(stderr, "%s (%u)\n", info.error().message.c_str(), info.error().return_code);
    return 1;
  }
  std::printf("vhdkit %s: %s is a %s %s disk of %llu bytes in a file of %llu\n", version(), path.c_str(),
              info->type.c_str(), info->format.c_str(), static_cast<unsigned long long>(info->virtual_size),
              static_cast<unsigned long long>(info->file_size));
  Service service(1);
  auto job = service.start_compaction(path, options);
  if (!job) {
    std::fprintf(stderr, "CompactVirtualHardDisk returned %u: %s\n", job.error().return_code,
                 job.error().message.c_str());
    return 1;
  }
  JobState state = job->wait();
  JobStatus s = job->status();
  if (state != JobState::Completed || !s.report) {
    std::fprintf(stderr, "ErrorCode:%u\nErrorDescription:%s\n", s.error_code, s.error_description.c_str());
    return 1;
  }
  std::printf("compacted: %llu -> %llu bytes (%llu released)\n",
              static_cast<unsigned long long>(s.report->file_size_before),
              static_cast<unsigned long long>(s.report->file_size_after),
              static_cast<unsigned long long>(s.report->bytes_released));
  return 0;
}
