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
  /// Observes every TXN frame a bridge incarnation receives (with the frame's epoch).
  bridge_model::batch_observer on_batch;
  /// Called on the producer fiber after each offload() returns (txn ids start at 1).
  std::function<void(std::uint64_t txn_id, offload_status status)> on_offload;
  /// Called when a core process starts, with its epoch (again after each restart).
  std::function<void(std::uint64_t epoch)> on_core_start;
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

  /// Adds another core life's counts (a run's totals over its lives).
  workload_counts& operator+=(const workload_counts& o) noexcept {
    offered += o.offered;
    accepted += o.accepted;
    dropped_ring_full += o.dropped_ring_full;
    dropped_timeout += o.dropped_timeout;
    dropped_closed += o.dropped_closed;
    verdicts += o.verdicts;
    expired += o.expired;
    return *this;
  }
};

/// One core process's life. A `restart` fault ends a life and starts the
/// next with a new epoch; each life owes exactly what it accepted.
struct core_epoch_report {
  std::uint64_t epoch = 0;                ///< The epoch on the wire (random, non-zero, never reused).
  ns_t started_ns = 0;                    ///< When this core started.
  ns_t died_ns = -1;                      ///< When it died (-1: it ran to the end).
  std::uint64_t first_txn_id = 0;         ///< Its producers' txn ids start here (ids are global, so per-epoch distinguishable).
  workload_counts workload;               ///< The workload's own accounting of this life.
  offloader_counters counters;            ///< Its counters at its end.
  std::uint64_t died_with_core = 0;       ///< Accepted by this core, not terminal when it died: lost with the process.
  std::uint64_t died_in_offload = 0;      ///< offload() calls in progress when it died (the caller died too).
  std::uint64_t old_epoch_frames = 0;     ///< VERDICT frames of an earlier core's epoch delivered to this core.
  std::uint64_t wrong_epoch_rejects = 0;  ///< Its wrong_epoch rejects (exactly old_epoch_frames).
};

/// What became of a transaction whose core died (run_report::txn_died, by id).
enum class died_with : std::uint8_t {
  none = 0,     ///< Its core lived to give it a fate (or a drop).
  core = 1,     ///< Accepted, not terminal when its core died.
  offload = 2,  ///< offload() had not returned when its core died.
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
  offloader_counters counters;             ///< The last core's counters at the end (epochs: each core's).
  workload_counts workload;                ///< The workload's own accounting (all epochs).
  std::vector<core_epoch_report> epochs;   ///< One per core process, in order (one without restarts).
  std::vector<died_with> txn_died;         ///< By txn id: lost with a dying core (empty without restarts).
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
