#include "service/engine.h"

#include "compact/open_compactable.h"

namespace vhdkit::service {
namespace {

class CompactionEngine final : public Engine {
 public:
  // The compaction's own opening, read-only: it knows which formats and disk types it handles.
  Status probe(io::Env& env, const std::string& path) override {
    VHDKIT_ASSIGN(auto image, compact::open_compactable(env, path, io::Access::ReadOnly));
    return ok();
  }

  Result<compact::Report> compact(io::Env& env, const std::string& path, const compact::Options& options,
                                  compact::Observer* observer) override {
    return compact::compact_image(env, path, options, observer);
  }
};

}  // namespace

std::unique_ptr<Engine> make_engine() { return std::make_unique<CompactionEngine>(); }

}  // namespace vhdkit::service
