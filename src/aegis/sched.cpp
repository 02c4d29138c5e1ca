// Scheduling of a latency-critical process (see sched.hpp).
#include "aegis/sched.hpp"

#include <linux/sched.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

namespace aegis {

namespace {
// glibc 2.36 has no wrapper and Debian 12's headers no struct sched_attr
// outside <linux/sched/types.h>; this is its first, stable layout (SCHED_ATTR_SIZE_VER0).
struct sched_attr_v0 {
  std::uint32_t size;
  std::uint32_t sched_policy;
  std::uint64_t sched_flags;
  std::int32_t sched_nice;
  std::uint32_t sched_priority;
  std::uint64_t sched_runtime;
  std::uint64_t sched_deadline;
  std::uint64_t sched_period;
};
static_assert(sizeof(sched_attr_v0) == 48, "SCHED_ATTR_SIZE_VER0");

long set_attr(const sched_attr_v0& a) { return ::syscall(SYS_sched_setattr, 0, &a, 0); }
long get_attr(sched_attr_v0& a) { return ::syscall(SYS_sched_getattr, 0, &a, sizeof a, 0); }
}  // namespace

std::string apply_scheduling(const sched_request& r) {
  sched_attr_v0 a{};
  a.size = sizeof a;
  if (r.fifo_priority != 0) {
    if (r.fifo_priority < 1 || r.fifo_priority > 99) return "SCHED_FIFO priority must be 1..99";
    a.sched_policy = SCHED_FIFO;
    a.sched_priority = static_cast<std::uint32_t>(r.fifo_priority);
    if (set_attr(a) != 0) {
      const int e = errno;
      return std::string("cannot switch to SCHED_FIFO: ") + std::strerror(e) +
             (e == EPERM ? " (needs CAP_SYS_NICE or an RLIMIT_RTPRIO allowance, e.g. ulimit -r 99)" : "");
    }
    return {};
  }
  if (r.slice_ns == 0) return {};
  if (r.slice_ns < 100'000 || r.slice_ns > 100'000'000) return "the scheduler slice must be 100us..100ms";
  // Keep the current nice value: sched_setattr sets it too.
  sched_attr_v0 cur{};
  if (get_attr(cur) == 0) a.sched_nice = cur.sched_nice;
  a.sched_policy = SCHED_NORMAL;
  a.sched_runtime = static_cast<std::uint64_t>(r.slice_ns);
  if (set_attr(a) != 0) return std::string("cannot set the scheduler slice: ") + std::strerror(errno);
  return {};
}

std::string describe_scheduling() {
  sched_attr_v0 a{};
  if (get_attr(a) != 0) return std::string("unknown (") + std::strerror(errno) + ")";
  if (a.sched_policy == SCHED_FIFO) return "SCHED_FIFO priority " + std::to_string(a.sched_priority);
  if (a.sched_policy == SCHED_RR) return "SCHED_RR priority " + std::to_string(a.sched_priority);
  std::string s = a.sched_policy == SCHED_NORMAL ? "SCHED_OTHER" : "policy " + std::to_string(a.sched_policy);
  if (a.sched_runtime != 0) s += " slice " + std::to_string(a.sched_runtime / 1000) + " us";
  return s;
}

}  // namespace aegis
