// SPDX-License-Identifier: Apache-2.0
// vhdkit map [--json] [--format F] IMAGE: the allocated extents of the virtual disk, in the shape of
// `qemu-img map --output=json` (so the two can be compared field by field).
#include <fmt/format.h>

#include <memory>

#include "cli/commands.h"
#include "cli/image_args.h"
#include "cli/map_svg.h"
#include "cli/report.h"

namespace vhdkit::cli {
namespace {

struct MapArgs {
  ImageRequest image;
  bool json = false;
  std::optional<std::string> svg;  // --svg FILE: draw the map instead (map_svg.h)
};

// One object per line, fields in qemu-img's order.
void print_qemu_json(const std::vector<disk::MapExtent>& extents) {
  fmt::print("[");
  for (size_t n = 0; n < extents.size(); ++n) {
    const auto& e = extents[n];
    fmt::print("{}{{ \"start\": {}, \"length\": {}, \"depth\": {}, \"present\": {}, \"zero\": {}, \"data\": {}",
               n ? ",\n" : "", e.start, e.length, e.depth, e.present, e.zero, e.data);
    if (e.offset) fmt::print(", \"offset\": {}", *e.offset);
    fmt::print("}}");
  }
  fmt::print("]\n");
}

std::string_view describe(const disk::MapExtent& e) {
  if (e.data) return "data";
  if (!e.present) return "unallocated";
  if (e.zero) return "zero";
  return "unknown";
}

void print_table(const std::vector<disk::MapExtent>& extents) {
  fmt::print("{:>18}  {:>18}  {:>5}  {:<11}  {}\n", "start", "length", "depth", "contents", "host offset");
  for (const auto& e : extents) {
    std::string host = e.offset ? fmt::format("{:#x}", *e.offset) : "-";
    fmt::print("{:>#18x}  {:>#18x}  {:>5}  {:<11}  {}\n", e.start, e.length, e.depth, describe(e), host);
  }
}

int run_map(const MapArgs& args) {
  auto opened = open_image(args.image);
  if (!opened) return report(opened.error());
  if (args.svg) {
    auto drawn = write_map_svg(**opened, *args.svg);
    return drawn ? 0 : report(drawn.error());
  }
  auto extents = (*opened)->map();
  if (!extents) return report(extents.error());
  if (args.json)
    print_qemu_json(*extents);
  else
    print_table(*extents);
  return 0;
}

}  // namespace

Command register_map(CLI::App& app) {
  auto args = std::make_shared<MapArgs>();
  auto* sub = app.add_subcommand("map", "List the extents of the virtual disk and where each one is stored");
  add_image_arguments(*sub, args->image);
  sub->add_flag("--json", args->json, "print JSON in the shape of qemu-img map --output=json");
  sub->add_option("--svg", args->svg, "draw the map to FILE.svg: one cell per block, coloured by state");
  return {sub, [args] { return run_map(*args); }};
}

}  // namespace vhdkit::cli
