// SPDX-License-Identifier: Apache-2.0
// vhdkit compare [-f F] [-F F] [-s] A B: are the virtual contents of two images equal? Speaks like
// `qemu-img compare`: exit 0 equal, 1 different, other statuses for errors.
#include <fmt/format.h>

#include <algorithm>
#include <memory>

#include "cli/commands.h"
#include "cli/image_args.h"
#include "cli/report.h"
#include "image/compare.h"

namespace vhdkit::cli {
namespace {

struct CompareArgs {
  ImageRequest first, second;
  bool strict = false;
};

constexpr int kExitDifferent = 1;
// exit_status() gives 1 to a generic failure; here 1 means "different", so errors that would be 1 say 9.
constexpr int kExitCompareFailed = 9;

int report_error(const Error& e) {
  int status = report(e);
  return status == kExitDifferent ? kExitCompareFailed : status;
}

// qemu-img compare names the start of the first differing 512-byte sector; so do we, to agree with it.
constexpr uint64_t kSector = 512;

int run_compare(const CompareArgs& args) {
  ImageRequest second = args.second;
  if (second.format.empty()) second.format = args.first.format;
  auto a = open_image(args.first);
  if (!a) return report_error(a.error());
  auto b = open_image(second);
  if (!b) return report_error(b.error());
  auto rule = args.strict ? image::SizeRule::Strict : image::SizeRule::ZeroTail;
  auto result = image::compare_contents(**a, **b, rule);
  if (!result) return report_error(result.error());
  if (result->sizes_differ && args.strict) {
    fmt::print("Strict mode: Image size mismatch!\n");
    return kExitDifferent;
  }
  // Like qemu-img, warn about the sizes only once the common part compared equal.
  const uint64_t common = std::min((*a)->virtual_size(), (*b)->virtual_size());
  if (result->sizes_differ && (result->equal || *result->first_difference >= common))
    fmt::print("Warning: Image size mismatch!\n");
  if (!result->equal) {
    fmt::print("Content mismatch at offset {}!\n", *result->first_difference / kSector * kSector);
    return kExitDifferent;
  }
  fmt::print("Images are identical.\n");
  return 0;
}

}  // namespace

Command register_compare(CLI::App& app) {
  auto args = std::make_shared<CompareArgs>();
  auto* sub = app.add_subcommand(
      "compare",
      "Compare the virtual contents of two images of any formats (exit status 0: identical, 1: different, "
      "other: error); a difference is reported as the offset of the first differing 512-byte sector");
  sub->add_option("IMAGE1", args->first.path, "the first image")->required();
  sub->add_option("IMAGE2", args->second.path, "the second image")->required();
  add_format_option(*sub, args->first.format, "-f,--format", "the first image (and the second, unless -F)");
  add_format_option(*sub, args->second.format, "-F,--second-format", "the second image");
  sub->add_flag("-s,--strict", args->strict, "images of different virtual sizes are different");
  return {sub, [args] { return run_compare(*args); }};
}

}  // namespace vhdkit::cli
