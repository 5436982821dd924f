// SPDX-License-Identifier: Apache-2.0
#include "io/borrowed_file.h"

namespace vhdkit::io {
namespace {

class BorrowedFile final : public File {
 public:
  explicit BorrowedFile(File& inner) : File(inner.path()), inner_(inner) {}

 protected:
  Result<size_t> do_read(uint64_t offset, std::span<std::byte> buf) override { return inner_.read_up_to(offset, buf); }
  Result<size_t> do_write(uint64_t offset, std::span<const std::byte> buf) override {
    VHDKIT_TRY(inner_.write_at(offset, buf));
    return buf.size();
  }
  Status do_flush() override { return inner_.flush(); }
  Status do_truncate(uint64_t size) override { return inner_.truncate(size); }
  Result<uint64_t> do_size() override { return inner_.size(); }
  Status do_punch_hole(uint64_t offset, uint64_t length) override { return inner_.punch_hole(offset, length); }
  Status do_copy_range(uint64_t from, uint64_t to, uint64_t length) override {
    return inner_.copy_range(from, to, length);
  }
  Result<uint64_t> do_allocated_bytes() override { return inner_.allocated_bytes(); }
  Result<std::vector<ByteRun>> do_data_ranges(uint64_t offset, uint64_t length) override {
    return inner_.data_ranges(offset, length);
  }
  Result<uint64_t> do_host_block_size() override { return inner_.host_block_size(); }
  Status do_allocate(uint64_t offset, uint64_t length) override { return inner_.allocate(offset, length); }
  void do_prefetch(uint64_t offset, uint64_t length) override { inner_.prefetch(offset, length); }
  Result<FileIdentity> do_identity() override { return inner_.identity(); }
  Status do_try_lock(LockMode) override { return ok(); }
  Status do_unlock() override { return ok(); }

 private:
  File& inner_;
};

}  // namespace

std::unique_ptr<File> borrow(File& inner) { return std::make_unique<BorrowedFile>(inner); }

}  // namespace vhdkit::io
