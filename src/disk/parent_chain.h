// SPDX-License-Identifier: Apache-2.0
// The one parent-chain resolver of every differencing format. A format gives a small link adapter: where
// its locators say the parent may be (candidates, best first), how to open one (its driver, read-only,
// continuing this chain) and how to tell the parent is the right one (VHD: Unique Id; VHDX: DataWriteGuid
// = parent_linkage). The depth limit, loop detection and the messages are this file's, for all formats.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/error.h"
#include "disk/virtual_disk.h"
#include "io/file.h"

namespace vhdkit::disk {

// Deeper chains are refused: Windows stops far earlier, and the limit bounds the recursion.
inline constexpr size_t kMaxParentChainDepth = 32;

struct ParentCandidate {
  std::string path;    // a host path to try
  std::string source;  // where it came from, for messages: "locator W2ru .\parent.vhd"
};

// The disks opened so far, child first (their canonical paths and, where the host has them, identities).
class ParentChain {
 public:
  size_t depth() const { return paths_.size(); }
  // Records the disk just opened; InvalidState naming the loop when it is already in the chain.
  Status enter(io::Env& env, io::File& file);

 private:
  std::vector<std::string> paths_;
  std::vector<io::FileIdentity> ids_;
};

struct ParentLink {
  std::vector<ParentCandidate> candidates;
  std::vector<std::string> unusable;  // locators that name no file on this host ("locator W2ku C:\x.vhd")
  // Opens a candidate's file as the parent (the format's driver, read-only, `chain` continued).
  std::function<Result<std::unique_ptr<VirtualDisk>>(std::unique_ptr<io::File> file, ParentChain& chain)> open;
  // Is this the parent the child was made from? A sentence saying why not otherwise.
  std::function<std::optional<std::string>(VirtualDisk& parent, const std::string& parent_path)> mismatch;
};

struct ResolvedParent {
  std::unique_ptr<VirtualDisk> disk;   // null when ParentPolicy::Optional let the child open without it
  std::string path;                    // the candidate used, or the best one when none was found
  std::optional<std::string> problem;  // why there is no parent (Optional only)
};

// Finds, opens and checks the parent of the differencing disk at child_path. Under ParentPolicy::Require
// every problem is an error naming the child; under Optional it is returned as `problem`, except a loop
// or an over-deep chain, which is always an error. An error from further up the chain comes back once,
// as the broken link said it, not wrapped again at every level.
Result<ResolvedParent> resolve_parent(io::Env& env, const std::string& child_path, const ParentLink& link,
                                      ParentPolicy policy, ParentChain& chain);

}  // namespace vhdkit::disk
