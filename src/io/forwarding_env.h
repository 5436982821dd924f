// SPDX-License-Identifier: Apache-2.0
// An Env that passes every call to another; wrappers (the daemon's caller identity, tests' counters)
// override only what they change.
#pragma once

#include "io/file.h"

namespace vhdkit::io {

class ForwardingEnv : public Env {
 public:
  explicit ForwardingEnv(Env& inner) : inner_(inner) {}
  Result<std::unique_ptr<File>> open(const std::string& path, Access access, Creation creation) override {
    return inner_.open(path, access, creation);
  }
  bool exists(const std::string& path) override { return inner_.exists(path); }
  Status rename(const std::string& from, const std::string& to) override { return inner_.rename(from, to); }
  Status remove(const std::string& path) override { return inner_.remove(path); }
  Status sync_dir(const std::string& dir) override { return inner_.sync_dir(dir); }
  Status check_writable(const std::string& path) override { return inner_.check_writable(path); }
  Result<std::vector<std::string>> list_files(const std::string& dir) override { return inner_.list_files(dir); }
  Result<std::string> canonical(const std::string& path) override { return inner_.canonical(path); }
  Result<std::string> absolute(const std::string& path) override { return inner_.absolute(path); }

 protected:
  Env& inner_;
};

}  // namespace vhdkit::io
