// The endpoint directory: the only access control on the core's ipc sockets,
// and the lock that keeps a second core from stealing them.
//
// Usage:
//   std::string error;
//   if (!aegis::core::prepare_endpoint_dir(dir, group, error)) die(error);
//   aegis::core::endpoint_lock lock = aegis::core::endpoint_lock::take(dir, error);
//   if (!lock.held()) die(error);   // "another aegis-core (pid N) holds DIR"
//
// Whoever can enter the directory can connect, read TXN frames and push
// verdicts, so it must be ours and 0700, or 0770 and owned by the group the
// bridges run in; anything looser is refused (docs/THREAT_MODEL.md).
#pragma once

#include <filesystem>
#include <string>

namespace aegis::core {

/// Creates `dir` (0700, or 0770 and `group`'s when `group` is not empty) or
/// checks an existing one: a directory, owned by this user, no looser than
/// that mode. False with `error` set (one line, with the fix) otherwise.
bool prepare_endpoint_dir(const std::filesystem::path& dir, const std::string& group, std::string& error);

/// DIR/core.lock held with flock(LOCK_EX) for the lock's lifetime; the file
/// holds the holder's pid, for the error message of the next core. A second
/// core on the same directory would silently steal the ipc endpoints by
/// re-binding, so the lock is taken before binding.
class endpoint_lock {
 public:
  /// Takes the lock on `dir`, or returns a lock that is not held with `error` set.
  static endpoint_lock take(const std::filesystem::path& dir, std::string& error);
  endpoint_lock(endpoint_lock&& other) noexcept;
  endpoint_lock& operator=(endpoint_lock&&) = delete;
  endpoint_lock(const endpoint_lock&) = delete;
  endpoint_lock& operator=(const endpoint_lock&) = delete;
  /// Releases the lock (closes the file).
  ~endpoint_lock();
  /// True when this process holds the lock.
  bool held() const noexcept { return fd_ >= 0; }

 private:
  explicit endpoint_lock(int fd) noexcept : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace aegis::core
