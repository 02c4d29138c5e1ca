// Greedy shrinking of a failing chaos scenario to a smaller one that fails the
// same way: drop fault events and fault sites one at a time, halve the run and
// the load, shorten each fault, keeping every step that still fails. It is the
// delta-debugging loop of Zeller's ddmin with chunk size one, which is enough
// for plans of a few dozen items and easy to read back in a failure report.
//
// Usage:
//   auto fails = [&](const scenario& c) { return run_in_child(c).exit_code == original_code; };
//   auto out_of_time = [&] { return steady_clock::now() > deadline; };
//   aegis::sim::shrink_result r = aegis::sim::shrink_scenario(failing, fails, out_of_time);
//   std::cout << r.minimal.reproduce_command();
//
// The predicate runs the candidate (chaos runs it in a forked child so a crash
// cannot take the shrinker down); the shrinker itself is pure.
#pragma once

#include <cstdint>
#include <functional>

#include "sim/scenario.hpp"

namespace aegis::sim {

/// What shrinking produced.
struct shrink_result {
  scenario minimal;              ///< The smallest failing scenario found (the input if nothing shrank).
  std::uint32_t attempts = 0;    ///< Candidates run.
  std::uint32_t accepted = 0;    ///< Candidates that still failed and were kept.
  bool timed_out = false;        ///< Stopped by out_of_time() before a fixed point.
};

/// Shrinks `failing` (a derived scenario) while `still_fails(candidate)` holds.
/// Every candidate is itself derived and replayable by reproduce_command().
shrink_result shrink_scenario(const scenario& failing, const std::function<bool(const scenario&)>& still_fails,
                              const std::function<bool()>& out_of_time);

/// The candidates one shrink round tries for `s`, most promising first.
std::vector<scenario> shrink_candidates(const scenario& s);

}  // namespace aegis::sim
