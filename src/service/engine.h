// What the job service needs from the layers below it, as one small interface: production wires it to
// open_image() and compact::compact_image(); tests of the job model substitute their own.
#pragma once

#include <memory>
#include <string>

#include "compact/compact.h"
#include "core/error.h"
#include "io/file.h"

namespace vhdkit::service {

class Engine {
 public:
  virtual ~Engine() = default;
  // Is the image at path one compaction handles? NotSupported naming the reason otherwise. Cheap: it
  // reads the format signature and structures, never the whole image. Other open errors are left for the
  // job to report (a damaged image is a job failure, not a parameter error).
  virtual Status probe(io::Env& env, const std::string& path) = 0;
  virtual Result<compact::Report> compact(io::Env& env, const std::string& path, const compact::Options& options,
                                          compact::Observer* observer) = 0;
};

// open_image() + compact::compact_image().
std::unique_ptr<Engine> make_engine();

}  // namespace vhdkit::service
