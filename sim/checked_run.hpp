// A scenario run with the safety and liveness properties checked on top of the
// runner's own invariants, so the property suite, `aegis-sim replay` and the
// regression corpus judge a case in exactly the same way.
//
// Usage:
//   aegis::sim::scenario s = aegis::sim::parse_schedule(R"({"seed":7,"mode":"drop"})");
//   aegis::sim::checked_result r = aegis::sim::run_checked_isolated(s);   // in a forked child
//   if (r.exit_code != 0) std::cout << aegis::sim::describe_failure(s, r);
//
// Properties checked, by mode (the runner already checks exactly-once fates,
// the accounting identity after every event, no drop in block mode and
// convergence after the heal):
// - both: every TXN frame a bridge incarnation receives carries strictly
//   increasing seqs, so each incarnation sees transactions in offload order
//   between the core's rewinds (and, with one bridge, a resend starts at the
//   oldest seq without a verdict).
// - block: every offered transaction was accepted and got exactly one
//   verdict, none expired; the core's verdict counter equals that set's size.
// - drop: offered = verdicts + expired + dropped exactly; the ids without a
//   fate are exactly the ids offload() reported dropped; the core's counters
//   equal the sizes of the verdict, expired and dropped sets.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "sim/runner.hpp"
#include "sim/scenario.hpp"

namespace aegis::sim {

/// The outcome of a checked run (serialisable: it crosses a fork).
struct checked_result {
  int exit_code = exit_pass;    ///< 0 pass, 1 correctness, 2 liveness, 3 crash (assertion).
  std::string failure;          ///< Words, when exit_code != 0.
  std::uint64_t trace_hash = 0; ///< The run's trace hash (0 after a crash).
  std::uint64_t events = 0;     ///< Events recorded.
  std::uint64_t accepted = 0;   ///< Accepted transactions.
  std::uint64_t verdicts = 0;   ///< Verdict fates.
  std::uint64_t dropped = 0;    ///< Drops reported by offload().
  std::vector<std::pair<std::string, std::uint64_t>> coverage;  ///< Rare states reached.
  std::string summary;          ///< run_report::summary() (or the assertion text).
  load_figures load;            ///< Liveness-under-load figures.
  std::uint64_t model_capacity_per_s = 0;  ///< The model's nominal capacity.
  std::uint64_t rate_per_s = 0;            ///< Offered rate.
};

/// Runs `s` (derived) in this process with every property of its mode checked.
/// `trace_path` writes the Chrome trace when set. An assertion aborts the process.
checked_result run_checked(const scenario& s, const std::string& trace_path = {});

/// As run_checked, in a forked child: an assertion that fires (a mutant can
/// make production code trip its own contracts) becomes exit_code 3 with the
/// assertion text as the failure, and the caller keeps running.
checked_result run_checked_isolated(const scenario& s);

/// The failure report: the schedule (minimal, when it came out of shrinking),
/// the seed, and the one command that replays it.
std::string describe_failure(const scenario& s, const checked_result& r);

}  // namespace aegis::sim
