// The endpoint directory and its lock; see endpoint_dir.hpp.
#include "core/endpoint_dir.hpp"

#include <fcntl.h>
#include <grp.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/core.h>

#include <cerrno>
#include <cstring>
#include <system_error>
#include <utility>

#include "aegis/assert.hpp"

namespace aegis::core {

namespace fs = std::filesystem;

bool prepare_endpoint_dir(const fs::path& dir, const std::string& group, std::string& error) {
  AEGIS_ASSERT(!dir.empty(), "an endpoint directory is named");
  AEGIS_ASSERT(error.empty(), "no earlier error is overwritten");
  gid_t gid = 0;
  if (!group.empty()) {
    const struct group* g = ::getgrnam(group.c_str());
    if (g == nullptr) {
      error = fmt::format("--endpoint-group {}: no such group", group);
      return false;
    }
    gid = g->gr_gid;
  }
  const mode_t want = group.empty() ? 0700 : 0770;
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    fs::create_directories(dir.parent_path(), ec);
    if (ec || (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)) {
      error = fmt::format("cannot create {}: {}", dir.string(), ec ? ec.message() : std::strerror(errno));
      return false;
    }
    if ((!group.empty() && ::chown(dir.c_str(), static_cast<uid_t>(-1), gid) != 0) || ::chmod(dir.c_str(), want) != 0) {
      error = fmt::format("cannot set mode {:04o} on {}: {}", want, dir.string(), std::strerror(errno));
      return false;
    }
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    error = fmt::format("cannot stat {}: {}", dir.string(), std::strerror(errno));
    return false;
  }
  if (!S_ISDIR(st.st_mode)) {
    error = fmt::format("{} exists and is not a directory", dir.string());
    return false;
  }
  const mode_t mode = st.st_mode & 07777;
  if (st.st_uid != ::geteuid()) {
    error = fmt::format("endpoint dir {} is owned by uid {}, not by this user (uid {}); refusing to serve from it",
                        dir.string(), st.st_uid, ::geteuid());
    return false;
  }
  if ((mode & ~want) != 0 || (!group.empty() && st.st_gid != gid)) {
    error = group.empty()
                ? fmt::format("endpoint dir {} has mode {:04o}, looser than 0700; run: chmod 700 {}", dir.string(), mode,
                              dir.string())
                : fmt::format("endpoint dir {} has mode {:04o} group {}, want at most 0770 and group {}; run: chgrp {} {} && chmod 770 {}",
                              dir.string(), mode, st.st_gid, group, group, dir.string(), dir.string());
    return false;
  }
  // The postcondition every later step relies on: ours, and no looser than asked.
  AEGIS_ASSERT(st.st_uid == ::geteuid(), "the endpoint directory is owned by this user");
  AEGIS_ASSERT((mode & ~want) == 0, "the endpoint directory is no looser than 0700 (0770 with a group)");
  return true;
}

endpoint_lock endpoint_lock::take(const fs::path& dir, std::string& error) {
  AEGIS_ASSERT(!dir.empty(), "a lock lives in a named directory");
  AEGIS_ASSERT(error.empty(), "no earlier error is overwritten");
  const fs::path lock = dir / "core.lock";
  const int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    error = fmt::format("cannot open {}: {}", lock.string(), std::strerror(errno));
    return endpoint_lock{-1};
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char buf[32] = {};
    const auto n = ::pread(fd, buf, sizeof buf - 1, 0);
    const std::string holder = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string("?");
    error = fmt::format("another aegis-core (pid {}) holds {}", holder.substr(0, holder.find('\n')), dir.string());
    ::close(fd);
    return endpoint_lock{-1};
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    // The lock is what matters; the pid is a courtesy for the error message.
  }
  return endpoint_lock{fd};
}

endpoint_lock::endpoint_lock(endpoint_lock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

endpoint_lock::~endpoint_lock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace aegis::core
