// Liveness under load: does useful work keep flowing, not only "is anything
// lost". Fed by the runner after every event; judged at the end of a run.
// The bounds come from the world's own parameters (docs/SIMULATOR.md,
// "Liveness under load"):
//
// - amplification: records resent <= what the core had outstanding (sent,
//   not terminal) at each bridge death, plus, for each fault that can make a
//   live bridge look dead (stall, slow, clog, clock, fault sites), the most
//   it had outstanding while that fault could act, plus one batch per fault.
// - steady state: no record is resent while no fault has been active for
//   `settle_ns` (the core's longest backed-off timer plus two heartbeats).
// - recovery (offered load, bursts included, <= 80 % of the model's
//   capacity): after the heal, in-flight returns to its steady level within
//   backlog / spare capacity + settle_ns; and, when the ring holds 50 ms of
//   peak arrivals (so a network latency spike does not by itself overflow
//   it), verdicts keep up with >= 95 % of what the producers offered, less
//   one steady level, from then on or from heal + detect_ns (a bridge that
//   died just before the heal pins the window until it is noticed),
//   whichever is later.
//
// Core restarts: the checks judge the whole run, not one core. The runner
// feeds counters summed over the core's lives (each new core's start at
// zero: resends and verdicts are added up, gauges such as in-flight are the
// live core's) and reports each restart as a fault that can cause resends
// (fault(..., suspect=true)) while the core is down and for `settle_ns`
// after. What a dead core held is not owed here: the runner settles each
// core epoch's books at its death (sim/runner.cpp, core_crash).
//
// Usage:
//   aegis::sim::load_checks lc{params};
//   lc.fault(now, end, outstanding);      // each timed fault as it starts
//   lc.death(outstanding);                // each bridge incarnation's death
//   lc.sample(now, counters, attempts);   // after each event
//   std::string why = lc.finish(end_ns);  // empty, or the failure in words
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "aegis/offloader.hpp"

namespace aegis::sim {

/// Everything the bounds are derived from.
struct load_check_params {
  admission mode = admission::block;  ///< Block or drop.
  double capacity_per_s = 0;          ///< The model's nominal capacity (scenario::model_capacity_per_s).
  double offered_per_s = 0;           ///< The workload's nominal rate.
  double offered_peak_per_s = 0;      ///< The rate during bursts (nominal x burst factor).
  std::uint64_t ring_capacity = 0;    ///< Ring slots.
  ns_t heal_ns = 0;                   ///< When every fault ends.
  ns_t workload_end_ns = 0;           ///< When producers stop.
  ns_t settle_ns = 0;                 ///< Longest time a healed fault may still cause resends.
  ns_t detect_ns = 0;                 ///< Time to notice a bridge died (its dead interval): goodput is measured from heal + this.
  ns_t batch_service_ns = 0;          ///< Scoring time of one full frame (batch_max records).
  ns_t ttl_ns = 0;                    ///< Offloader TTL (0 = none).
  std::uint64_t batch_max = 1;        ///< Records per frame at most.
  bool sites_active = false;          ///< Fault sites on until the heal.
};

/// What the checks measured (reported in summaries and chaos reports).
struct load_figures {
  std::uint64_t resent = 0;               ///< Records resent (the core's retransmits).
  std::uint64_t resent_allowed = 0;       ///< The amplification bound.
  std::uint64_t resent_in_steady = 0;     ///< Records resent while no fault was active.
  std::uint64_t deaths = 0;               ///< Bridge incarnation deaths seen.
  std::uint64_t backlog_at_heal = 0;      ///< In-flight at the heal.
  ns_t recovery_bound_ns = -1;            ///< Derived bound (-1: not checked, load above 80 %).
  ns_t recovered_after_ns = -1;           ///< Heal to steady in-flight (-1: never).
  double goodput_ratio = -1;              ///< Verdicts / offered after recovery (-1: not measured).
};

class load_checks {
 public:
  /// Checks for one run.
  explicit load_checks(load_check_params p);

  /// A timed fault starts now and acts until `end_ns`. `suspect`: it can
  /// make a live bridge look dead (stall, slow, clog, clock), so what is
  /// outstanding while it acts may be resent once; a crash's resends are
  /// counted by death() instead.
  void fault(ns_t now_ns, ns_t end_ns, std::uint64_t outstanding, bool suspect);
  /// A bridge incarnation dies while the core has `outstanding` records sent and not terminal.
  void death(std::uint64_t outstanding);
  /// After each event: the core's counters and the workload's attempts so far.
  void sample(ns_t now_ns, const offloader_counters& c, std::uint64_t attempts);
  /// Ends the run: the first bound broken, in words, or empty.
  std::string finish(ns_t end_ns);
  /// The figures measured so far.
  const load_figures& figures() const noexcept { return fig_; }
  /// In-flight that counts as steady (derived from the parameters).
  std::uint64_t steady_level() const noexcept { return steady_level_; }
  /// Whether the recovery bound applies (offered <= 80 % of capacity).
  bool recovery_checked() const noexcept { return recovery_checked_; }

 private:
  struct episode {
    ns_t until_ns;            // End of the fault plus settle.
    std::uint64_t max_outstanding;
  };

  load_check_params p_;
  load_figures fig_;
  std::vector<episode> episodes_;
  std::uint64_t allowance_ = 0;       // Deaths plus closed episodes.
  ns_t quiet_from_ns_ = 0;            // Resends from here on break the steady state.
  std::uint64_t last_resent_ = 0;
  ns_t first_steady_resend_ns_ = -1;
  std::uint64_t steady_level_ = 0;
  bool recovery_checked_ = false;
  bool heal_seen_ = false;
  ns_t recovered_at_ns_ = -1;
  ns_t goodput_from_ns_ = -1;         // Where the goodput span starts.
  std::uint64_t verdicts_at_recovery_ = 0;
  std::uint64_t attempts_at_recovery_ = 0;
  std::uint64_t verdicts_at_end_ = 0;
  std::uint64_t attempts_at_end_ = 0;
};

}  // namespace aegis::sim
