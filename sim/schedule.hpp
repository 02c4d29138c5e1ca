// A schedule: one simulated case written down completely (seed, every
// workload parameter, the fault plan, the mutant) as a small JSON object, so a
// failing property prints it, `aegis-sim replay --schedule` reruns it and the
// regression corpus (fixtures/corpus/*.json) stores it.
//
// Usage:
//   aegis::sim::scenario s = aegis::sim::derive({.seed = 7});
//   std::string j = aegis::sim::schedule_json(s);          // {"seed":7,"mode":"block",...}
//   aegis::sim::scenario back = aegis::sim::parse_schedule(j);   // same scenario, derived
//   std::string cmd = aegis::sim::replay_command(s);        // aegis-sim replay --schedule '{...}'
//
// Every field is written, so a schedule never depends on what derive() would
// pick for a missing one; parse_schedule accepts missing fields (the seed
// derives them) so a hand-written corpus entry can stay short.
#pragma once

#include <string>
#include <string_view>

#include "sim/scenario.hpp"

namespace aegis::sim {

/// The derived scenario `s` as one-line JSON with every parameter.
std::string schedule_json(const scenario& s);

/// Parses a schedule (JSON object text) into a derived scenario. Throws
/// std::invalid_argument with a reason when malformed.
scenario parse_schedule(std::string_view json_text);

/// Reads a schedule from `arg`: JSON text when it starts with '{', else a
/// file holding one. Throws std::invalid_argument.
scenario load_schedule(const std::string& arg);

/// The one command that reruns `s` with the property checks of its mode:
/// `aegis-sim replay --schedule '<json>'` (the binary path from AEGIS_SIM_PATH
/// when the build defines it).
std::string replay_command(const scenario& s);

/// Items in the plan (timed events + fault sites): the "length" of a schedule.
std::size_t schedule_length(const scenario& s) noexcept;

}  // namespace aegis::sim
