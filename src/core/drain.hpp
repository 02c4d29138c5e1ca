// aegis-core's end of run: wait for in-flight verdicts, up to --drain-timeout,
// in slices so that a second SIGTERM/SIGINT cuts the wait short.
//
// Usage:
//   const aegis::core::drain_result d = aegis::core::drain_in_flight(env, off, o.drain_timeout_ns, stop);
//   if (!d.drained) code = aegis::core::exit_undrained;
#pragma once

#include "aegis/os_offloader.hpp"
#include "core/stop_signals.hpp"

namespace aegis::core {

/// How the drain ended.
struct drain_result {
  bool drained = false;  ///< Nothing was in flight at the end.
  ns_t drained_ns = 0;   ///< When the drain ended (drained, timed out or abandoned).
};

/// Says on stdout that the producers stopped (and whether by signal), then
/// drains `off` until nothing is in flight, `timeout_ns` passes, or a second
/// stop signal arrives ("second signal: drain abandoned").
drain_result drain_in_flight(zmq_env& env, os_offloader& off, ns_t timeout_ns, const stop_signals& stop);

}  // namespace aegis::core
