// The checks a scenario property applies to one generated case, shared by
// offload_properties_test (the model bridge) and
// offload_properties_python_test (the real bridge).
//
// Usage (inside an RC_GTEST_PROP):
//   aegis::props::check_case(s);             // every invariant, in a forked child
//   aegis::props::check_same_trace_hash(s);  // two worlds, one trace hash
#pragma once

#include <rapidcheck.h>

#include <fmt/format.h>

#include "sim/checked_run.hpp"
#include "sim/runner.hpp"
#include "sim/schedule.hpp"

namespace aegis::props {

/// Runs the case in a forked child (a broken build that trips an assertion
/// must fail the property, not the test binary) and fails with the replay line.
inline void check_case(const sim::scenario& s) {
  const sim::checked_result r = sim::run_checked_isolated(s);
  if (r.exit_code != sim::exit_pass) RC_FAIL(sim::describe_failure(s, r));
}

/// Runs the case twice in this process, one world after the other, no
/// observers: only the seed and the schedule decide the trace.
inline void check_same_trace_hash(const sim::scenario& s) {
  const sim::run_report a = sim::run_scenario(s, {});
  const sim::run_report b = sim::run_scenario(s, {});
  RC_ASSERT(a.events == b.events);
  if (a.trace_hash != b.trace_hash) {
    RC_FAIL(fmt::format("trace hashes differ: {:016x} then {:016x}\n  replay: {}", a.trace_hash, b.trace_hash,
                        sim::replay_command(s)));
  }
}

}  // namespace aegis::props
