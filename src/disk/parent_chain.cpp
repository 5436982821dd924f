// SPDX-License-Identifier: Apache-2.0
#include "disk/parent_chain.h"

#include <fmt/format.h>

namespace vhdkit::disk {
namespace {

// Marks errors about the chain itself, so that they pass up unchanged and are never turned into a mere
// "parent not usable" under ParentPolicy::Optional.
constexpr std::string_view kChainPrefix = "the parent chain ";

bool is_chain_error(const Error& e) { return e.message().starts_with(kChainPrefix); }

}  // namespace

Status ParentChain::enter(io::Env& env, io::File& file) {
  if (paths_.size() >= kMaxParentChainDepth) {
    return fail(ReturnCode::Failed, file.path(),
                fmt::format("{}is deeper than {} disks (refused here, at {})", kChainPrefix, kMaxParentChainDepth,
                            file.path()));
  }
  std::string canonical = env.canonical(file.path()).value_or(file.path());
  std::optional<io::FileIdentity> id;
  if (auto i = file.identity()) id = *i;
  for (size_t k = 0; k < paths_.size(); ++k) {
    bool same = paths_[k] == canonical || (id && k < ids_.size() && ids_[k].same_file(*id));
    if (same) {
      return fail(ReturnCode::Failed, file.path(),
                  fmt::format("{}loops: {} is its own ancestor (disk {} of the chain, child first)", kChainPrefix,
                              canonical, k + 1));
    }
  }
  paths_.push_back(std::move(canonical));
  ids_.push_back(id.value_or(io::FileIdentity{}));
  return ok();
}

Result<ResolvedParent> resolve_parent(io::Env& env, const std::string& child_path, const ParentLink& link,
                                      ParentPolicy policy, ParentChain& chain) {
  ResolvedParent out;
  auto give_up = [&](ReturnCode code, std::string why) -> Result<ResolvedParent> {
    if (policy == ParentPolicy::Require) return fail(code, child_path, why);
    out.problem = std::move(why);
    return std::move(out);
  };
  if (!link.candidates.empty()) out.path = link.candidates.front().path;

  // A candidate the opener may not read counts as missing, with the same words: a differencing disk
  // anyone can make must not tell its maker whether a file he cannot read exists (a service opens the
  // chain with its caller's rights).
  const ParentCandidate* found = nullptr;
  Result<std::unique_ptr<io::File>> file = fail(ReturnCode::FileNotFound, child_path, "no parent candidate");
  for (const ParentCandidate& c : link.candidates) {
    if (!env.exists(c.path)) continue;
    file = env.open(c.path, io::Access::ReadOnly);
    if (!file && file.error().code() == ReturnCode::AccessDenied) continue;
    found = &c;
    break;
  }
  if (!found) {
    std::string looked;
    for (const ParentCandidate& c : link.candidates)
      looked += fmt::format("{}{} (from {})", looked.empty() ? "" : ", ", c.path, c.source);
    for (const std::string& u : link.unusable)
      looked += fmt::format("{}{} (names no file on this host)", looked.empty() ? "" : ", ", u);
    return give_up(ReturnCode::FileNotFound,
                   fmt::format("the parent disk of this differencing disk was not found; looked for: {}",
                               looked.empty() ? "nothing (no parent locator or name)"
                                              : looked + " (none of them is a file this user may read)"));
  }
  out.path = found->path;
  if (!file) {
    return give_up(file.error().code(),
                   fmt::format("the parent {} cannot be opened: {}", found->path, file.error().message()));
  }
  auto parent = link.open(std::move(*file), chain);
  if (!parent) {
    if (is_chain_error(parent.error())) return fail(parent.error());
    if (parent.error().path() != found->path) return fail(parent.error());  // a link further up is broken
    return give_up(parent.error().code(),
                   fmt::format("the parent {} cannot be used: {}", found->path, parent.error().message()));
  }
  if (auto why = link.mismatch(**parent, found->path)) return give_up(ReturnCode::Failed, *why);
  out.disk = std::move(*parent);
  return out;
}

}  // namespace vhdkit::disk
