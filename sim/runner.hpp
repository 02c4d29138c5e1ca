// Runs one scenario end to end: the production offloader (src/aegis/offloader.hpp)
// instantiated with sim_env, the bridge model, a seeded workload of producer
// fibers, the fault plan, invariants after every event, a heal phase and a
// convergence bound.
//
// Usage:
//   aegis::sim::scenario s = aegis::sim::derive({.seed = 42});
//   aegis::sim::run_report r = aegis::sim::run_scenario(s, {});
//   std::cout << r.summary();                        // accounting + trace_hash=...
//   return r.exit_code;                              // 0 pass, 1 correctness, 2 liveness
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "aegis/offloader.hpp"
#include "sim/bridge_model.hpp"
#include "sim/load_checks.hpp"
#include "sim/network.hpp"
#include "sim/scenario.hpp"
#include "sim/world.hpp"

namespace aegis::sim {

/// Exit codes of aegis-sim (TigerBeetle's VOPR habit: one code per failure class).
enum exit_code : int {
  exit_pass = 0,         ///< Every check held.
  exit_correctness = 1,  ///< An invariant or property broke (or determinism did).
  exit_liveness = 2,     ///< Deadlock, livelock, or no convergence after healing.
  exit_crash = 3,        ///< An assertion fired (printed by the SIGABRT handler).
  exit_load = 4,         ///< Liveness under load: resend amplification, resends in steady state, no recovery or goodput.
};

/// How to run (not part of the scenario: does not change the trace hash).
struct run_options {
  std::string trace_path;        ///< Write Chrome trace-event JSON here when set.
  std::uint64_t max_steps = 0;   ///< Yield-point budget; 0 = derived from the load.
  /// Called in scheduler context after each event, after the built-in
  /// invariants: properties add their own checks here. Return a non-empty
  /// string to fail the run with it.
  std::function<std::string()> extra_invariant;
  /// Self-test of the crash path: an assertion fires at this virtual time (-1 = never).
  ns_t assert_at_ns = -1;
  /// Observes every TXN frame a bridge incarnation receives.
  bridge_model::batch_observer on_batch;
  /// Called on the producer fiber after each offload() returns (txn ids start at 1).
  std::function<void(std::uint64_t txn_id, offload_status status)> on_offload;
  /// Called on the pump fiber for each fate, after the runner's own checks.
  std::function<void(std::uint64_t txn_id, std::uint64_t seq, fate f, ns_t now_ns)> on_fate;
};

/// What the workload saw, from the producers' and the fate callback's side.
struct workload_counts {
  std::uint64_t offered = 0;           ///< offload() calls returned.
  std::uint64_t accepted = 0;          ///< ... accepted.
  std::uint64_t dropped_ring_full = 0; ///< ... dropped_ring_full.
  std::uint64_t dropped_timeout = 0;   ///< ... dropped_timeout.
  std::uint64_t dropped_closed = 0;    ///< ... dropped_closed.
  std::uint64_t verdicts = 0;          ///< Fate callbacks with a verdict.
  std::uint64_t expired = 0;           ///< Fate callbacks with expired.
};

/// Everything a run produced.
struct run_report {
  int exit_code = exit_pass;               ///< 0, 1 or 2 (3 never returns: abort).
  std::string failure;                     ///< Words, when exit_code != 0.
  run_outcome outcome = run_outcome::finished;  ///< The world's outcome.
  std::uint64_t trace_hash = 0;            ///< XXH64 of every event.
  std::uint64_t events = 0;                ///< Events recorded.
  ns_t end_ns = 0;                         ///< Virtual time at the end.
  std::uint64_t steps = 0;                 ///< Yield points.
  offloader_counters counters;             ///< The offloader's counters at the end.
  workload_counts workload;                ///< The workload's own accounting.
  bridge_model_stats bridge;               ///< Bridge model counters.
  network_counters network;                ///< Transport counters.
  load_figures load;                       ///< Liveness-under-load figures.
  std::uint64_t load_steady_level = 0;     ///< In-flight counted as steady.
  std::vector<std::pair<std::string, fault_site_stats>> fault_sites;  ///< Per-site activation and firings.
  std::vector<std::pair<std::string, std::uint64_t>> coverage;  ///< Rare states reached (faults/aegis/coverage.hpp).
  std::string pct_guarantee;               ///< PCT's bound for this run.
  std::uint32_t preempt_ppm = 0;           ///< random: the preemption density used.

  /// The end-of-run block: accounting summary, faults covered, trace_hash= line.
  std::string summary() const;
};

/// Runs `s` (which must have gone through derive()).
run_report run_scenario(const scenario& s, const run_options& options);

}  // namespace aegis::sim
