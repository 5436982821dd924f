// SPDX-License-Identifier: Apache-2.0
#include "io/testing/mem_env.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

namespace vhdkit::io {

namespace {
constexpr uint64_t kBlock = 4096;  // allocation unit, as on ext4/xfs
}

struct MemNode {
  mutable std::mutex mu;
  std::vector<std::byte> data;
  std::vector<bool> allocated;  // one flag per 4 KiB block of data
  Permission permission = Permission::ReadWrite;
  std::map<const MemFile*, LockMode> locks;

  explicit MemNode(std::vector<std::byte> bytes = {}) { assign(std::move(bytes)); }

  void assign(std::vector<std::byte> bytes) {
    data = std::move(bytes);
    allocated.assign((data.size() + kBlock - 1) / kBlock, true);
  }

  void resize(uint64_t size) {
    data.resize(static_cast<size_t>(size));
    allocated.resize(static_cast<size_t>((size + kBlock - 1) / kBlock), false);
  }

  void write(uint64_t offset, std::span<const std::byte> buf) {
    if (buf.empty()) return;
    if (offset + buf.size() > data.size()) resize(offset + buf.size());
    std::memcpy(data.data() + offset, buf.data(), buf.size());
    for (uint64_t b = offset / kBlock; b * kBlock < offset + buf.size(); ++b) allocated[b] = true;
  }
};

MemFile::MemFile(std::string path, std::shared_ptr<MemNode> node, Access access)
    : File(std::move(path)), node_(std::move(node)), access_(access) {}

MemFile::~MemFile() {
  std::lock_guard g(node_->mu);
  node_->locks.erase(this);  // like closing an fd: its OFD locks go with it
}

std::vector<std::byte> MemFile::bytes() const {
  std::lock_guard g(node_->mu);
  return node_->data;
}

Status MemFile::check_writable_open() const {
  if (access_ != Access::ReadWrite) return fail(error(ReturnCode::AccessDenied, "the file is open read-only"));
  return ok();
}

Result<size_t> MemFile::do_read(uint64_t offset, std::span<std::byte> buf) {
  std::lock_guard g(node_->mu);
  if (offset >= node_->data.size()) return size_t{0};
  size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), node_->data.size() - offset));
  std::memcpy(buf.data(), node_->data.data() + offset, n);
  return n;
}

Result<size_t> MemFile::do_write(uint64_t offset, std::span<const std::byte> buf) {
  VHDKIT_TRY(check_writable_open());
  std::lock_guard g(node_->mu);
  node_->write(offset, buf);
  return buf.size();
}

Status MemFile::do_flush() { return ok(); }  // nothing is volatile in memory

Status MemFile::do_truncate(uint64_t size) {
  VHDKIT_TRY(check_writable_open());
  std::lock_guard g(node_->mu);
  node_->resize(size);
  return ok();
}

Result<uint64_t> MemFile::do_size() {
  std::lock_guard g(node_->mu);
  return node_->data.size();
}

Status MemFile::do_punch_hole(uint64_t offset, uint64_t length) {
  VHDKIT_TRY(check_writable_open());
  std::lock_guard g(node_->mu);
  // Like FALLOC_FL_KEEP_SIZE: the size never changes; bytes past the end need nothing.
  uint64_t size = node_->data.size();
  if (offset >= size || length == 0) return ok();
  uint64_t end = std::min(size, offset + length);
  std::fill(node_->data.begin() + static_cast<ptrdiff_t>(offset), node_->data.begin() + static_cast<ptrdiff_t>(end),
            std::byte{0});
  // Only whole blocks are given back; partly covered ones stay allocated (zeroed). A range reaching the end
  // of the file frees its last block too.
  uint64_t first = (offset + kBlock - 1) / kBlock;
  uint64_t last = end == size ? (end + kBlock - 1) / kBlock : end / kBlock;
  for (uint64_t b = first; b < last; ++b) node_->allocated[b] = false;
  return ok();
}

Status MemFile::do_copy_range(uint64_t from, uint64_t to, uint64_t length) {
  VHDKIT_TRY(check_writable_open());
  std::lock_guard g(node_->mu);
  if (from > node_->data.size() || length > node_->data.size() - from) {
    return fail(error(ReturnCode::Failed, fmt::format("copy_range: source {}+{} lies past the end of the file ({})",
                                                      from, length, node_->data.size())));
  }
  std::vector<std::byte> tmp(node_->data.begin() + static_cast<ptrdiff_t>(from),
                             node_->data.begin() + static_cast<ptrdiff_t>(from + length));
  node_->write(to, tmp);
  return ok();
}

Result<uint64_t> MemFile::do_allocated_bytes() {
  std::lock_guard g(node_->mu);
  return static_cast<uint64_t>(std::count(node_->allocated.begin(), node_->allocated.end(), true)) * kBlock;
}

Result<std::vector<ByteRun>> MemFile::do_data_ranges(uint64_t offset, uint64_t length) {
  std::lock_guard g(node_->mu);
  std::vector<ByteRun> out;
  const uint64_t end = std::min<uint64_t>(offset + length, node_->data.size());
  for (uint64_t b = offset / kBlock; b * kBlock < end; ++b) {
    if (!node_->allocated[b]) continue;
    uint64_t a = std::max(b * kBlock, offset), e = std::min((b + 1) * kBlock, end);
    if (!out.empty() && out.back().end() == a) {
      out.back().length += e - a;
    } else {
      out.push_back({a, e - a});
    }
  }
  return out;
}

Status MemFile::do_allocate(uint64_t offset, uint64_t length) {
  VHDKIT_TRY(check_writable_open());
  std::lock_guard g(node_->mu);
  const uint64_t end = std::min<uint64_t>(offset + length, node_->data.size());
  for (uint64_t b = offset / kBlock; b * kBlock < end; ++b) node_->allocated[b] = true;
  return ok();
}

Status MemFile::do_try_lock(LockMode mode) {
  if (mode == LockMode::Exclusive && access_ != Access::ReadWrite)
    return fail(error(ReturnCode::InvalidState, "an exclusive lock needs the file open for writing"));
  std::lock_guard g(node_->mu);
  if (mode == LockMode::NoWriter) node_->locks.erase(this);
  for (const auto& [holder, held] : node_->locks) {
    if (holder == this) continue;
    if (mode == LockMode::Exclusive || held == LockMode::Exclusive) {
      return fail(
          error(ReturnCode::InUse, fmt::format("the image is in use by another open of it in this program ({} lock)",
                                               held == LockMode::Exclusive ? "exclusive" : "shared")));
    }
  }
  if (mode != LockMode::NoWriter) node_->locks[this] = mode;
  return ok();
}

Status MemFile::do_unlock() {
  std::lock_guard g(node_->mu);
  node_->locks.erase(this);
  return ok();
}

std::unique_ptr<File> make_mem_file(std::string path, std::vector<std::byte> bytes, Access access) {
  return std::make_unique<MemFile>(std::move(path), std::make_shared<MemNode>(std::move(bytes)), access);
}

MemEnv::MemEnv() = default;
MemEnv::~MemEnv() = default;

std::shared_ptr<MemNode> MemEnv::find(const std::string& path) const {
  auto it = files_.find(path);
  return it == files_.end() ? nullptr : it->second;
}

Status MemEnv::check_directory_writable(const std::string& path, std::string_view doing) const {
  std::string dir = directory_of(path);
  auto it = directories_.find(dir);
  if (it != directories_.end() && it->second == Permission::ReadOnly)
    return fail(ReturnCode::AccessDenied, path,
                fmt::format("{}{}its directory {} is not writable", doing, doing.empty() ? "" : ": ", dir));
  return ok();
}

Result<std::unique_ptr<File>> MemEnv::open(const std::string& path, Access access, Creation creation) {
  std::lock_guard g(mu_);
  auto node = find(path);
  if (node && creation == Creation::CreateNew) return fail(ReturnCode::Failed, path, "the file already exists");
  if (!node && creation == Creation::OpenExisting) return fail(ReturnCode::FileNotFound, path, "no such file");
  if (!node) VHDKIT_TRY(check_directory_writable(path, "cannot create"));
  if (node && access == Access::ReadWrite) {
    std::lock_guard n(node->mu);
    if (node->permission == Permission::ReadOnly)
      return fail(ReturnCode::AccessDenied, path, "cannot open: Permission denied");
  }
  if (!node) {
    node = std::make_shared<MemNode>();
    files_[path] = node;
  } else if (creation == Creation::CreateOrTruncate) {
    std::lock_guard n(node->mu);
    node->resize(0);
  }
  return std::make_unique<MemFile>(path, std::move(node), access);
}

bool MemEnv::exists(const std::string& path) {
  std::lock_guard g(mu_);
  return files_.contains(path);
}

Status MemEnv::rename(const std::string& from, const std::string& to) {
  std::lock_guard g(mu_);
  auto node = find(from);
  if (!node) return fail(ReturnCode::FileNotFound, from, fmt::format("rename to {} failed: no such file", to));
  VHDKIT_TRY(check_directory_writable(from, "cannot rename"));
  VHDKIT_TRY(check_directory_writable(to, "cannot rename"));
  files_.erase(from);
  files_[to] = std::move(node);  // open files keep their node, as open fds keep their inode
  return ok();
}

Status MemEnv::remove(const std::string& path) {
  std::lock_guard g(mu_);
  if (!files_.contains(path)) return fail(ReturnCode::FileNotFound, path, "remove failed: no such file");
  VHDKIT_TRY(check_directory_writable(path, "cannot remove"));
  files_.erase(path);
  return ok();
}

Status MemEnv::sync_dir(const std::string&) {
  std::lock_guard g(mu_);
  ++sync_dir_calls_;
  return ok();
}

Status MemEnv::check_writable(const std::string& path) {
  std::lock_guard g(mu_);
  auto node = find(path);
  if (!node) return fail(ReturnCode::FileNotFound, path, "no such file");
  {
    std::lock_guard n(node->mu);
    if (node->permission == Permission::ReadOnly)
      return fail(ReturnCode::AccessDenied, path, "the file is not writable");
  }
  return check_directory_writable(path, "");
}

std::optional<std::vector<std::byte>> MemEnv::bytes(const std::string& path) const {
  std::lock_guard g(mu_);
  auto node = find(path);
  if (!node) return std::nullopt;
  std::lock_guard n(node->mu);
  return node->data;
}

void MemEnv::set_bytes(const std::string& path, std::vector<std::byte> bytes) {
  std::lock_guard g(mu_);
  auto& node = files_[path];
  if (!node) node = std::make_shared<MemNode>();
  std::lock_guard n(node->mu);
  node->assign(std::move(bytes));
}

void MemEnv::set_permission(const std::string& path, Permission permission) {
  std::lock_guard g(mu_);
  if (auto node = find(path)) {
    std::lock_guard n(node->mu);
    node->permission = permission;
  }
}

void MemEnv::set_directory_permission(const std::string& dir, Permission permission) {
  std::lock_guard g(mu_);
  directories_[dir] = permission;
}

Result<std::vector<std::string>> MemEnv::list_files(const std::string& dir) {
  std::lock_guard g(mu_);
  std::vector<std::string> out;
  auto normal = [](const std::string& d) {
    std::string n = std::filesystem::path(d.empty() ? "." : d).lexically_normal().string();
    while (n.size() > 1 && n.back() == '/') n.pop_back();
    return n;
  };
  const std::string want = normal(dir);
  for (const auto& [path, node] : files_)
    if (normal(directory_of(path)) == want) out.push_back(std::filesystem::path(path).filename().string());
  return out;  // files_ is ordered by path: the names of one folder come sorted
}

std::vector<std::string> MemEnv::paths() const {
  std::lock_guard g(mu_);
  std::vector<std::string> out;
  for (const auto& [path, node] : files_) out.push_back(path);
  return out;
}

uint64_t MemEnv::sync_dir_calls() const {
  std::lock_guard g(mu_);
  return sync_dir_calls_;
}

}  // namespace vhdkit::io
