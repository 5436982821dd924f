// SPDX-License-Identifier: Apache-2.0
// How many connections vhdkitd holds open: in all, and per user (the peer's uid; TCP callers, who are
// known only by the token, count as one user). A connection beyond either limit is answered with a
// refusal and closed, so that one user's idle connections cannot take the descriptors every other
// user's requests need.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace vhdkit::service {

class ConnectionLimits : public std::enable_shared_from_this<ConnectionLimits> {
 public:
  ConnectionLimits(size_t total, size_t per_user) : total_limit_(total), per_user_limit_(per_user) {}

  // Held by a connection while it is open; releases its place when destroyed.
  using Ticket = std::shared_ptr<void>;
  // A ticket for one more connection of `uid` (nullopt: a TCP caller), or null with `why` set.
  Ticket admit(std::optional<uint32_t> uid, std::string& why);

  size_t open_connections();

 private:
  void release(std::optional<uint32_t> uid);

  const size_t total_limit_, per_user_limit_;
  std::mutex mu_;
  size_t total_ = 0;
  std::map<std::optional<uint32_t>, size_t> per_user_;
};

}  // namespace vhdkit::service
