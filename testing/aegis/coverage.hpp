// The rare-state catalogue: every name production code, the simulator's
// runner and its bridge model report with AEGIS_SOMETIMES / world::reached
// (the mark itself is aegis/sometimes.hpp), with who reports it. The property
// suite fails when a catalogued state is never reached
// (properties/coverage_test.cpp).
//
// Usage (test and simulator code only; production includes aegis/sometimes.hpp):
//   for (const aegis::coverage_point& p : aegis::coverage_points) report(p.name, seen[p.name]);
//
// Every name is listed here and in docs/FAULTS.md; properties/catalogue_test.cpp
// checks the three agree with the source. Test-side (testing/): it names
// simulator and property files, so production builds never see it.
#pragma once

#include <array>
#include <string_view>

#include "aegis/sometimes.hpp"

namespace aegis {

/// One rare state the property suite must reach.
struct coverage_point {
  std::string_view name;         ///< The name passed to AEGIS_SOMETIMES / world::reached.
  std::string_view reported_by;  ///< File that reports it.
  std::string_view meaning;      ///< The situation, in words.
};

/// The catalogue of rare states. properties/coverage_test.cpp fails when one is
/// never reached; docs/FAULTS.md explains each.
inline constexpr std::array<coverage_point, 11> coverage_points = {{
    {"bridge_crashed_while_ring_full", "sim/runner.cpp",
     "the bridge died while every ring slot held an unreleased transaction"},
    {"bridge_crashed_between_scoring_and_verdict", "sim/bridge_model.cpp",
     "the bridge died after taking a batch and before sending its verdicts"},
    {"rewind_after_restart", "src/aegis/offload_state.hpp",
     "a new bridge incarnation moved the send cursor back over sent, unverdicted entries"},
    {"rewind_across_wrap", "src/aegis/offload_state.hpp",
     "a resend span [first live, highest sent) crosses the ring's wrap-around"},
    {"stale_incarnation_verdict_applied", "src/aegis/offload_state.hpp",
     "verdicts from a superseded bridge incarnation arrived (and were applied like any other)"},
    {"retransmit_timeout_during_stall", "sim/runner.cpp",
     "the bridge stalled long enough to be presumed dead and the core resent meanwhile"},
    {"retransmit_timeout_fired", "src/aegis/offload_state.hpp",
     "a timer resend: a bridge incarnation fell silent, or the safety timer expired"},
    {"ttl_expiry_racing_verdict", "src/aegis/offload_state.hpp",
     "a verdict arrived for an entry the TTL had already expired"},
    {"duplicate_verdict_ignored", "src/aegis/offload_state.hpp",
     "a second verdict for a held, already-verdicted entry arrived and was ignored"},
    {"old_epoch_verdict_reached_new_core", "sim/runner.cpp",
     "after a core restart, a VERDICT frame the bridge had queued for the dead core reached the new one"},
    {"ring_rewind_across_wrap", "properties/ring_case.hpp",
     "ring_buffer::rewind() moved the read cursor back across the wrap-around"},
}};

}  // namespace aegis
