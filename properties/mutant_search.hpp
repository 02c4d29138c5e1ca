// The property search run against one mutant within a fixed budget: rapidcheck
// generates cases (whole simulated scenarios, or ring command sequences under
// the simulator scheduler), the first failure is the detection, and shrinking
// then runs for at most a wall-clock budget. Used by mutant_test (every mutant
// caught) and replay_test (a caught mutant's printed replay line reproduces).
//
// Usage:
//   aegis::props::search_result r = aegis::props::search_scenarios("no_rewind", {.mode = block}, 200, 1, 10.0);
//   if (r.caught) std::cout << r.description;     // minimal schedule, seed, replay line
//
// Wall time is read here, outside every simulated run, only to report time to
// detection and to bound shrinking.
#pragma once

#include <rapidcheck.h>

#include <chrono>
#include <optional>
#include <string>

#include "properties/ring_case.hpp"
#include "properties/scenario_gen.hpp"
#include "sim/checked_run.hpp"

namespace aegis::props {

/// What a search found.
struct search_result {
  bool caught = false;              ///< A case failed.
  double seconds_to_detect = 0;     ///< Wall time until the first failing case.
  int cases_to_detect = 0;          ///< Cases run until then (the failing one included).
  double seconds_total = 0;         ///< Including shrinking.
  std::size_t shrunk_length = 0;    ///< Schedule items (or ring commands) of the minimal case.
  std::string description;          ///< The minimal case's failure report.
  std::optional<sim::scenario> minimal;     ///< Scenario searches: the minimal failing scenario.
  std::optional<sim::checked_result> minimal_result;  ///< ... and its result.
};

namespace detail {
using wall = std::chrono::steady_clock;

inline double seconds_since(wall::time_point t0) {
  return std::chrono::duration<double>(wall::now() - t0).count();
}

template <class Property>
void run_search(search_result& out, Property&& property, int max_cases, std::uint64_t seed, const std::string& id) {
  rc::detail::TestParams params;
  params.seed = seed;
  params.maxSuccess = max_cases;
  params.maxSize = 100;
  rc::detail::TestMetadata md;
  md.id = id;
  md.description = id;
  (void)rc::detail::checkTestable(std::forward<Property>(property), md, params);
}
}  // namespace detail

/// Searches generated scenarios with `mutant` switched on.
inline search_result search_scenarios(const std::string& mutant, gen_options o, int max_cases, std::uint64_t seed,
                                      double shrink_budget_s) {
  search_result out;
  const auto t0 = detail::wall::now();
  std::optional<detail::wall::time_point> detected;
  int cases = 0;
  detail::run_search(
      out,
      [&] {
        sim::scenario s = *gen_scenario(o);
        // Past the shrink budget every candidate "passes", so rapidcheck stops
        // shrinking at once and keeps the smallest failure found so far.
        if (detected && detail::seconds_since(*detected) > shrink_budget_s) return;
        s.mutant = mutant;
        ++cases;
        const sim::checked_result r = sim::run_checked_isolated(s);
        if (r.exit_code == sim::exit_pass) return;
        if (!detected) {
          detected = detail::wall::now();
          out.seconds_to_detect = detail::seconds_since(t0);
          out.cases_to_detect = cases;
        }
        out.caught = true;
        out.minimal = s;
        out.minimal_result = r;
        out.description = sim::describe_failure(s, r);
        out.shrunk_length = sim::schedule_length(s);
        RC_FAIL(out.description);
      },
      max_cases, seed, "mutant/" + mutant);
  out.seconds_total = detail::seconds_since(t0);
  return out;
}

/// Searches generated ring command sequences with `mutant` switched on.
inline search_result search_ring(const std::string& mutant, int max_cases, std::uint64_t seed, double shrink_budget_s) {
  search_result out;
  const auto t0 = detail::wall::now();
  std::optional<detail::wall::time_point> detected;
  int cases = 0;
  detail::run_search(
      out,
      [&] {
        const ring_case c = *gen_ring_case();
        if (detected && detail::seconds_since(*detected) > shrink_budget_s) return;
        ++cases;
        const ring_case_result r = run_ring_case(c, mutant);
        if (r.failure.empty()) return;
        if (!detected) {
          detected = detail::wall::now();
          out.seconds_to_detect = detail::seconds_since(t0);
          out.cases_to_detect = cases;
        }
        out.caught = true;
        out.shrunk_length = c.commands.size();
        std::ostringstream cmds;
        rc::show(c.commands, cmds);
        out.description = fmt::format("FAILURE: {}\n  world_seed={} capacity={} {} {}-producer {} preempt_ppm={}\n  commands ({}): {}\n",
                                      r.failure, c.world_seed, c.capacity, c.mode == admission::drop ? "drop" : "block",
                                      c.multi_producer ? "multi" : "single", sim::to_string(c.strategy), c.preempt_ppm,
                                      c.commands.size(), cmds.str());
        RC_FAIL(out.description);
      },
      max_cases, seed, "mutant-ring/" + mutant);
  out.seconds_total = detail::seconds_since(t0);
  return out;
}

}  // namespace aegis::props
