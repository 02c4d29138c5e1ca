// The final drain; see drain.hpp.
#include "core/drain.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cstdio>

#include "aegis/assert.hpp"

namespace aegis::core {

drain_result drain_in_flight(zmq_env& env, os_offloader& off, ns_t timeout_ns, const stop_signals& stop) {
  AEGIS_ASSERT(timeout_ns >= 0, "the drain timeout is not negative");
  fmt::print("producers stopped{}; draining (up to {} ms)\n", stop.requested() ? " by signal" : "", timeout_ns / 1'000'000);
  std::fflush(stdout);
  const ns_t started_ns = env.now_ns();
  const ns_t deadline_ns = aegis::deadline_after(started_ns, timeout_ns);
  const int signals_before_drain = stop.received.load();
  drain_result r;
  for (;;) {
    r.drained = off.drain(std::min(deadline_ns, aegis::deadline_after(env.now_ns(), 100'000'000)));
    if (r.drained || env.now_ns() >= deadline_ns) break;
    if (stop.received.load() > signals_before_drain && stop.received.load() >= 2) {
      fmt::print("second signal: drain abandoned\n");
      break;
    }
  }
  r.drained_ns = env.now_ns();
  AEGIS_ASSERT(r.drained_ns >= started_ns, "the drain ends after it starts");
  AEGIS_ASSERT(!r.drained || off.counters().in_flight == 0, "a finished drain leaves nothing in flight");
  return r;
}

}  // namespace aegis::core
