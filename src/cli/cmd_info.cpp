// SPDX-License-Identifier: Apache-2.0
// vhdkit info [--json] [--format F] IMAGE: what the image is, its sizes and blocks, its parent chain, and what
// a compaction would find (a dry run: the volumes and file systems, what each mode would release).
#include <fmt/format.h>

#include <memory>

#include "cli/commands.h"
#include "cli/image_args.h"
#include "cli/json_output.h"
#include "cli/reclaim_lines.h"
#include "cli/report.h"
#include "cli/sizes.h"
#include "compact/compact.h"
#include "service/job_json.h"

namespace vhdkit::cli {
namespace {

struct InfoArgs {
  ImageRequest image;
  bool json = false;
};

// One image of the chain, the child first. `missing` is a parent the child names but that could not be
// opened: only its recorded path is known.
struct ChainLink {
  std::string path;
  std::optional<disk::DiskInfo> info;
  bool missing() const { return !info; }
};

std::vector<ChainLink> parent_chain(disk::VirtualDisk& child) {
  std::vector<ChainLink> chain;
  disk::VirtualDisk* d = &child;
  while (true) {
    disk::DiskInfo i = d->info();
    disk::VirtualDisk* p = d->parent();
    if (p) {
      chain.push_back({p->path(), p->info()});
      d = p;
      continue;
    }
    if (i.type == disk::DiskType::Differencing) chain.push_back({i.parent_path.value_or("(no parent recorded)"), {}});
    return chain;
  }
}

Json to_json(const disk::VirtualDisk& disk, const disk::DiskInfo& i, std::optional<uint64_t> actual_size,
             const std::vector<ChainLink>& chain) {
  Json j;
  j["filename"] = disk.path();
  j["format"] = disk::to_string(i.format);
  j["type"] = disk::to_string(i.type);
  j["virtual-size"] = i.virtual_size;
  if (i.block_size) {
    j["block-size"] = i.block_size;
    j["blocks-allocated"] = i.blocks_allocated;
    j["blocks-total"] = i.block_count;
  }
  j["file-size"] = i.file_size;
  if (actual_size) j["actual-size"] = *actual_size;
  j["logical-sector-size"] = i.logical_sector_size;
  j["physical-sector-size"] = i.physical_sector_size;
  if (!i.creator.empty()) j["creator"] = i.creator;
  if (!i.disk_id.empty()) j["disk-id"] = i.disk_id;
  if (i.parent_path) j["parent"] = *i.parent_path;
  if (i.type == disk::DiskType::Differencing) {
    j["parent-missing"] = !chain.empty() && chain.front().missing();
    Json links = Json::array();
    for (const auto& link : chain) {
      Json l;
      l["filename"] = link.path;
      if (link.info) {
        l["format"] = disk::to_string(link.info->format);
        l["type"] = disk::to_string(link.info->type);
        l["virtual-size"] = link.info->virtual_size;
      } else {
        l["missing"] = true;
      }
      links.push_back(std::move(l));
    }
    j["parent-chain"] = std::move(links);
  }
  if (!i.details.empty()) {
    Json details = Json::object();
    for (const auto& [key, value] : i.details) details[key] = value;
    j["details"] = std::move(details);
  }
  return j;
}

void print_human(const disk::VirtualDisk& disk, const disk::DiskInfo& i, std::optional<uint64_t> actual_size,
                 const std::vector<ChainLink>& chain) {
  fmt::print("image: {}\n", disk.path());
  fmt::print("format: {} ({})\n", disk::to_string(i.format), disk::to_string(i.type));
  fmt::print("virtual size: {}\n", human_size_and_bytes(i.virtual_size));
  if (i.block_size) {
    fmt::print("block size: {}\n", human_size_and_bytes(i.block_size));
    fmt::print("blocks allocated: {} of {}\n", i.blocks_allocated, i.block_count);
  }
  fmt::print("file size: {}\n", human_size_and_bytes(i.file_size));
  if (actual_size) fmt::print("disk size: {} (what the host stores)\n", human_size(*actual_size));
  fmt::print("sector size: {} logical, {} physical\n", i.logical_sector_size, i.physical_sector_size);
  if (!i.creator.empty()) fmt::print("creator: {}\n", i.creator);
  if (!i.disk_id.empty()) fmt::print("disk id: {}\n", i.disk_id);
  if (i.type == disk::DiskType::Differencing) {
    fmt::print("parent chain:\n");
    for (const auto& link : chain) {
      if (link.info)
        fmt::print("  {} ({}, {}, {})\n", link.path, disk::to_string(link.info->format),
                   disk::to_string(link.info->type), human_size(link.info->virtual_size));
      else
        fmt::print("  {} (missing: cannot be opened)\n", link.path);
    }
  }
  for (const auto& [key, value] : i.details) fmt::print("{}: {}\n", key, value);
}

// A dry run of Full mode (which also counts Quick and Prezeroed): what the file-system pass finds. Images that
// cannot be compacted (raw, fixed, a missing parent) say why instead.
Result<compact::Report> reclaim_dry_run(const std::string& path) {
  compact::Options o;
  o.mode = compact::Mode::Full;
  o.action = compact::Action::DryRun;
  auto r = compact::compact_image(io::Env::posix(), path, o);
  if (r || r.error().code() != ReturnCode::InvalidState) return r;
  // A parent of differencing disks gets no Full (the parent rule): show what Prezeroed, which it may have, does.
  o.mode = compact::Mode::Prezeroed;
  return compact::compact_image(io::Env::posix(), path, o);
}

void print_reclaim(const Result<compact::Report>& r) {
  if (!r) {
    fmt::print("compaction: {}\n", r.error().message());
    return;
  }
  fmt::print("compaction ({}, dry run): {} -> {}\n", r->mode == compact::Mode::Full ? "Full" : "Prezeroed",
             human_size(r->file_size_before), human_size(r->file_size_after));
  for (const std::string& line : reclaim_lines(*r)) fmt::print("{}\n", line);
}

int run_info(const InfoArgs& args) {
  ImageRequest request = args.image;
  // A missing parent must not stop us from describing the child: say it is missing instead.
  request.parents = disk::ParentPolicy::Optional;
  auto opened = open_image(request);
  if (!opened) return report(opened.error());
  disk::VirtualDisk& disk = **opened;
  disk::DiskInfo i = disk.info();
  auto allocated = disk.file().allocated_bytes();
  std::optional<uint64_t> actual_size;
  if (allocated) actual_size = *allocated;
  auto chain = parent_chain(disk);
  const bool compactable = i.type != disk::DiskType::Fixed && i.format != disk::Format::Raw;
  std::optional<Result<compact::Report>> reclaim;
  if (compactable) reclaim = reclaim_dry_run(disk.path());
  if (args.json) {
    Json j = to_json(disk, i, actual_size, chain);
    if (reclaim && *reclaim) j["compaction"] = service::to_json(**reclaim);
    if (reclaim && !*reclaim) j["compaction-problem"] = reclaim->error().message();
    print_json(j);
  } else {
    print_human(disk, i, actual_size, chain);
    if (reclaim) print_reclaim(*reclaim);
  }
  return 0;
}

}  // namespace

Command register_info(CLI::App& app) {
  auto args = std::make_shared<InfoArgs>();
  auto* sub = app.add_subcommand(
      "info", "Show an image's format, type, virtual size, blocks allocated, file size, parent chain, creator");
  add_image_arguments(*sub, args->image);
  sub->add_flag("--json", args->json, "print JSON (field names as in qemu-img info --output=json)");
  return {sub, [args] { return run_info(*args); }};
}

}  // namespace vhdkit::cli
