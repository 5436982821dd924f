// SPDX-License-Identifier: Apache-2.0
// vhdkit write [--format F] IMAGE OFFSET (--pattern BYTE --length N | --from FILE): writes virtual bytes
// through our own writer, allocating blocks as needed. For demos and tests: it makes images whose content
// we know without any other tool.
#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "cli/commands.h"
#include "cli/image_args.h"
#include "cli/report.h"
#include "cli/sizes.h"

namespace vhdkit::cli {
namespace {

struct WriteArgs {
  ImageRequest image;
  std::string offset, length, pattern, from;
};

constexpr size_t kChunk = 1 << 20;

// Feeds the bytes to write, a chunk at a time: a repeated byte, or the contents of a host file.
class Source {
 public:
  virtual ~Source() = default;
  virtual uint64_t size() const = 0;
  virtual Status fill(uint64_t offset, std::span<std::byte> buf) = 0;
};

class PatternSource final : public Source {
 public:
  PatternSource(std::byte value, uint64_t length) : value_(value), length_(length) {}
  uint64_t size() const override { return length_; }
  Status fill(uint64_t, std::span<std::byte> buf) override {
    std::fill(buf.begin(), buf.end(), value_);
    return ok();
  }

 private:
  std::byte value_;
  uint64_t length_;
};

class FileSource final : public Source {
 public:
  FileSource(std::unique_ptr<io::File> file, uint64_t size) : file_(std::move(file)), size_(size) {}
  uint64_t size() const override { return size_; }
  Status fill(uint64_t offset, std::span<std::byte> buf) override { return file_->read_at(offset, buf); }

 private:
  std::unique_ptr<io::File> file_;
  uint64_t size_;
};

Result<std::unique_ptr<Source>> make_source(const WriteArgs& args) {
  if (!args.from.empty()) {
    VHDKIT_ASSIGN(auto file, io::Env::posix().open(args.from, io::Access::ReadOnly));
    VHDKIT_ASSIGN(uint64_t size, file->size());
    return std::make_unique<FileSource>(std::move(file), size);
  }
  auto value = parse_size(args.pattern);
  if (!value || *value > 0xff)
    return fail(ReturnCode::InvalidParameter, "", fmt::format("--pattern {} is not a byte (0 to 0xff)", args.pattern));
  return std::make_unique<PatternSource>(std::byte(*value), *parse_size(args.length));
}

int run_write(const WriteArgs& args) {
  auto source = make_source(args);
  if (!source) return report(source.error());
  ImageRequest request = args.image;
  request.access = io::Access::ReadWrite;
  auto opened = open_image(request);
  if (!opened) return report(opened.error());
  disk::VirtualDisk& disk = **opened;
  const uint64_t offset = *parse_size(args.offset), length = (*source)->size();
  if (offset > disk.virtual_size() || length > disk.virtual_size() - offset)
    return report(Error(ReturnCode::InvalidParameter, disk.path(),
                        fmt::format("{} bytes at offset {} do not fit in the {}-byte virtual disk", length, offset,
                                    disk.virtual_size())));
  std::vector<std::byte> buf(static_cast<size_t>(std::min<uint64_t>(kChunk, length)));
  for (uint64_t done = 0; done < length;) {
    std::span<std::byte> chunk(buf.data(), static_cast<size_t>(std::min<uint64_t>(kChunk, length - done)));
    if (auto s = (*source)->fill(done, chunk); !s) return report(s.error());
    if (auto s = disk.write(offset + done, chunk); !s) return report(s.error());
    done += chunk.size();
  }
  if (auto s = disk.flush(); !s) return report(s.error());
  fmt::print("wrote {} at offset {} of {}\n", human_size_and_bytes(length), offset, disk.path());
  return 0;
}

}  // namespace

Command register_write(CLI::App& app) {
  auto args = std::make_shared<WriteArgs>();
  auto* sub = app.add_subcommand(
      "write", "Write bytes into the virtual disk (a repeated byte, or a file's contents) through vhdkit's writer");
  add_image_arguments(*sub, args->image, "the disk image to write to");
  sub->add_option("OFFSET", args->offset, "virtual offset to write at (e.g. 0, 0x200000, 3M)")
      ->required()
      ->check(size_validator());
  // Exactly one source: --pattern with --length, or --from.
  auto* source = sub->add_option_group("source", "what to write (--pattern and --length, or --from)");
  auto* pattern = source->add_option("-p,--pattern", args->pattern, "the byte to repeat (e.g. 0xab)");
  auto* length = source->add_option("-l,--length", args->length, "how many bytes of --pattern (e.g. 64K)")
                     ->check(size_validator());
  auto* from = source->add_option("--from", args->from, "write this host file's contents instead");
  pattern->needs(length);
  length->needs(pattern);
  from->excludes(pattern)->excludes(length);
  source->require_option(1, 2);
  return {sub, [args] { return run_write(*args); }};
}

}  // namespace vhdkit::cli
