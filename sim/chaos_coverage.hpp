// Rare states a chaos run can reach ("sometimes" assertions in the spirit of
// Antithesis): each one is a situation the design must survive and that a
// healthy run seldom shows. `aegis-sim chaos` counts, per state, the seeds that
// reached it, and reports the share of the catalogue covered.
//
// Usage:
//   std::vector<std::string_view> hit = aegis::sim::rare_states_hit(scenario, report);
//   for (const auto& s : aegis::sim::rare_state_catalogue()) std::cout << s.name << ": " << s.meaning << "\n";
//
// Minimal on purpose: every state is read off the end-of-run counters and the
// fault plan, so it needs no hook inside the run. The properties suite's own
// catalogue (issue 5) observes states inside the run; when both exist, this one
// is the cheap per-seed summary.
#pragma once

#include <span>
#include <string_view>
#include <vector>

#include "sim/runner.hpp"
#include "sim/scenario.hpp"

namespace aegis::sim {

/// One catalogued rare state.
struct rare_state {
  std::string_view name;     ///< Stable key, used in summary.json.
  std::string_view meaning;  ///< What it stands for, in words.
};

/// Every rare state, in a fixed order.
std::span<const rare_state> rare_state_catalogue() noexcept;

/// The catalogued states this run reached (names from the catalogue).
std::vector<std::string_view> rare_states_hit(const scenario& s, const run_report& r);

}  // namespace aegis::sim
