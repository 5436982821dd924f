// SPDX-License-Identifier: Apache-2.0
#include "daemon/connection_limits.h"

#include <fmt/format.h>

namespace vhdkit::service {

ConnectionLimits::Ticket ConnectionLimits::admit(std::optional<uint32_t> uid, std::string& why) {
  std::lock_guard lock(mu_);
  size_t& mine = per_user_[uid];
  if (total_ >= total_limit_) {
    why = fmt::format("vhdkitd holds its limit of {} connections (max-connections); try again later", total_limit_);
  } else if (mine >= per_user_limit_) {
    why = fmt::format(
        "this user holds {} connections to vhdkitd, its limit per user (max-connections-per-user); close some "
        "or try again later",
        mine);
  } else {
    ++total_;
    ++mine;
    // The pointer only makes the ticket non-null; the deleter gives the place back.
    return Ticket(this, [self = shared_from_this(), uid](void*) { self->release(uid); });
  }
  if (mine == 0) per_user_.erase(uid);
  return nullptr;
}

size_t ConnectionLimits::open_connections() {
  std::lock_guard lock(mu_);
  return total_;
}

void ConnectionLimits::release(std::optional<uint32_t> uid) {
  std::lock_guard lock(mu_);
  --total_;
  if (auto it = per_user_.find(uid); it != per_user_.end() && --it->second == 0) per_user_.erase(it);
}

}  // namespace vhdkit::service
