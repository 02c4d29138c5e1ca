// Scheduling of a latency-critical process: the CPU scheduler's knobs that
// decide how soon a woken thread runs.
//
// Usage (at the start of main, before any thread or ZeroMQ context exists,
// so that every thread created later inherits it):
//   if (auto err = aegis::apply_scheduling({.slice_ns = 100'000}); !err.empty()) warn(err);
//
// The offload path is a chain of thread wake-ups (producer -> pump -> libzmq
// I/O thread -> bridge I/O thread -> bridge -> and back), so its latency tail
// is set by how long each woken thread waits for a CPU. Two knobs, both
// inherited by threads and processes created afterwards:
// - slice (SCHED_OTHER): the EEVDF base slice this thread asks for (Linux
//   6.6+; `sched_attr.sched_runtime`, 0.1-100 ms). A short slice gives the
//   thread an earlier virtual deadline, so a wake-up preempts a CPU hog
//   instead of waiting for its slice to end. Unprivileged. Older kernels
//   ignore it.
// - fifo_priority: SCHED_FIFO at this priority (1-99). A woken thread then
//   runs before every SCHED_OTHER thread. Needs CAP_SYS_NICE or an
//   RLIMIT_RTPRIO allowance; the kernel's RT throttling (95 % by default)
//   still leaves other processes some CPU.
#pragma once

#include <string>

#include "aegis/env.hpp"

namespace aegis {

/// What to ask of the scheduler. Zero fields leave the kernel's defaults.
struct sched_request {
  ns_t slice_ns = 0;      ///< SCHED_OTHER slice request, 100'000..100'000'000, or 0.
  int fifo_priority = 0;  ///< SCHED_FIFO priority 1..99, or 0 (stay SCHED_OTHER). Wins over slice_ns.
};

/// Applies `r` to the calling thread. Returns an empty string, or why not (one line).
std::string apply_scheduling(const sched_request& r);

/// The calling thread's current policy and slice, e.g. "SCHED_OTHER slice 100 us".
std::string describe_scheduling();

}  // namespace aegis
