// SPDX-License-Identifier: Apache-2.0
#include "service/engine.h"

#include "compact/prepare.h"

namespace vhdkit::service {
namespace {

class Prepared final : public PreparedCompaction {
 public:
  Prepared(io::Env& env, std::unique_ptr<compact::Prepared> p) : env_(env), p_(std::move(p)) {}
  std::optional<io::FileIdentity> identity() const override { return p_->identity(); }
  disk::VirtualDisk* disk() override { return &p_->disk(); }
  Result<compact::Report> run(compact::Observer* observer) override { return p_->run(env_, observer); }

 private:
  io::Env& env_;
  std::unique_ptr<compact::Prepared> p_;
};

class CompactionEngine final : public Engine {
 public:
  explicit CompactionEngine(io::Env& env) : env_(env) {}
  Result<std::unique_ptr<PreparedCompaction>> prepare(io::Env& access, const std::string& path,
                                                      const compact::Options& options) override {
    VHDKIT_ASSIGN(auto p, compact::prepare(access, path, options));
    return std::unique_ptr<PreparedCompaction>(std::make_unique<Prepared>(env_, std::move(p)));
  }

 private:
  io::Env& env_;
};

}  // namespace

std::unique_ptr<Engine> make_engine(io::Env& env) { return std::make_unique<CompactionEngine>(env); }

}  // namespace vhdkit::service
