// rapidcheck generators for whole simulated cases: a fault schedule (timed
// fault events and fault-site settings) plus every workload parameter and the
// simulator seed. Because the schedule is a generated value, a failing case
// shrinks: events and sites are removed, times move earlier, durations and
// loads get smaller, until the smallest schedule that still fails is left.
//
// Usage (inside a property):
//   aegis::sim::scenario s = *aegis::props::gen_scenario({.mode = aegis::admission::block});
//   // or, outside a property, deterministically:
//   aegis::sim::scenario s = aegis::props::sample(aegis::props::gen_scenario({}), /*seed=*/7);
//
// Every generated scenario is derived (aegis::sim::derive): it prints as a
// schedule (aegis::sim::schedule_json) and replays with `aegis-sim replay`.
#pragma once

#include <rapidcheck.h>

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "aegis/fault_catalogue.hpp"
#include "sim/scenario.hpp"
#include "sim/schedule.hpp"

namespace aegis::sim {
/// rapidcheck prints a scenario as its schedule: the minimal failing case is
/// the replayable JSON.
inline void showValue(const scenario& s, std::ostream& os) { os << schedule_json(s); }
}  // namespace aegis::sim

namespace aegis::props {

/// `g` drawn at full size: rapidcheck grows `size` over a run, which would
/// keep the early cases' times, durations and loads near their minimum. The
/// value still shrinks towards its minimum.
template <class T>
rc::Gen<T> full(rc::Gen<T> g) {
  return rc::gen::resize(rc::kNominalSize, std::move(g));
}

/// What the generator may produce.
struct gen_options {
  admission mode = admission::block;  ///< Admission mode of every case.
  /// Block mode only: sometimes a retransmit timeout longer than the run, so
  /// recovery from a restart must come from the core's rewind alone (faults
  /// then start after the first HELLO, see gen_scenario).
  bool allow_long_retransmit = true;
  ns_t duration_min_ns = 600'000'000;   ///< Shortest workload.
  ns_t duration_max_ns = 1'400'000'000; ///< Longest workload.
  /// When non-zero, every timed fault falls in the first this-many ms: a
  /// search aimed at start-up (the first incarnation, before its HELLO lands).
  std::int64_t fault_window_ms = 0;
  /// When non-empty, timed faults are drawn from these kinds only (repeat a
  /// kind to weight it): a search aimed at one interplay of faults.
  std::vector<sim::fault_kind> fault_kinds{};
};

/// A retransmit timeout "longer than the run": recovery never relies on it.
inline constexpr ns_t long_retransmit_ns = 60'000'000'000;

/// One timed fault before `heal_ms`, no earlier than `earliest_ms`.
inline rc::Gen<sim::fault_event> gen_fault_event(std::int64_t earliest_ms, std::int64_t heal_ms,
                                                 std::vector<sim::fault_kind> kinds = {}) {
  return rc::gen::exec([=] {
    using sim::fault_kind;
    const auto kind = kinds.empty() ? *full(rc::gen::element(fault_kind::crash, fault_kind::crash, fault_kind::stall, fault_kind::stall,
                                                        fault_kind::slow, fault_kind::clog_offload, fault_kind::clog_verdict,
                                                        fault_kind::clock, fault_kind::twin))
                                    : *full(rc::gen::elementOf(kinds));
    // Early faults (before the first HELLO lands) matter for the first
    // incarnation, which the core does not rewind for: half the times are
    // drawn from the first 40 ms.
    const std::int64_t hi = std::max(earliest_ms + 1, heal_ms);
    const std::int64_t at_ms = *full(rc::gen::oneOf(rc::gen::inRange<std::int64_t>(earliest_ms, std::min(hi, earliest_ms + 40)),
                                               rc::gen::inRange<std::int64_t>(earliest_ms, hi)));
    sim::fault_event e{kind, at_ms * 1'000'000, 0, 0};
    switch (kind) {
      case fault_kind::crash:
        // Half are rapid restarts: a new incarnation while the old one's
        // verdicts may still sit unread in the core's queue.
        e.duration_ns = *full(rc::gen::oneOf(rc::gen::inRange<std::int64_t>(1, 10), rc::gen::inRange<std::int64_t>(1, 400))) *
                        1'000'000;
        break;
      case fault_kind::stall: e.duration_ns = *full(rc::gen::inRange<std::int64_t>(10, 1200)) * 1'000'000; break;
      case fault_kind::slow:
        e.duration_ns = *full(rc::gen::inRange<std::int64_t>(20, 800)) * 1'000'000;
        e.arg = *full(rc::gen::inRange<std::int64_t>(2, 60));
        break;
      case fault_kind::clog_offload:
      case fault_kind::clog_verdict:
        e.duration_ns = *full(rc::gen::inRange<std::int64_t>(20, 600)) * 1'000'000;
        e.arg = *full(rc::gen::inRange<std::int64_t>(1, 200)) * 1'000'000;
        break;
      case fault_kind::clock: e.duration_ns = *full(rc::gen::inRange<std::int64_t>(1, 100)) * 1'000'000; break;
      case fault_kind::twin: e.duration_ns = *full(rc::gen::inRange<std::int64_t>(10, 600)) * 1'000'000; break;
      case fault_kind::restart:
        // The core down for a moment (old verdicts still on their way) or for long.
        e.duration_ns = *full(rc::gen::oneOf(rc::gen::inRange<std::int64_t>(1, 20), rc::gen::inRange<std::int64_t>(1, 500))) *
                        1'000'000;
        break;
    }
    return e;
  });
}

/// A fault site switched on for the whole run (activation certain: the
/// schedule says which sites, shrinking removes them) at a rate in ppm.
inline rc::Gen<sim::fault_site_setting> gen_fault_site() {
  return rc::gen::exec([] {
    const auto index = *full(rc::gen::inRange<std::size_t>(0, fault_sites.size()));
    const auto rate = *full(rc::gen::element(std::uint32_t{200}, std::uint32_t{2'000}, std::uint32_t{20'000}, std::uint32_t{200'000}));
    return sim::fault_site_setting{std::string(fault_sites[index]), 1'000'000, rate};
  });
}

/// A whole derived case.
inline rc::Gen<sim::scenario> gen_scenario(gen_options o) {
  return rc::gen::exec([o] {
    sim::scenario s;
    s.seed = *rc::gen::arbitrary<std::uint64_t>();
    s.mode = o.mode;
    s.sim_duration_ns = *full(rc::gen::inRange<std::int64_t>(o.duration_min_ns / 100'000'000, o.duration_max_ns / 100'000'000 + 1)) *
                        100'000'000;
    s.producers = *full(rc::gen::inRange<std::uint32_t>(1, 4));
    s.ring_capacity = std::size_t{1} << *full(rc::gen::inRange(3, 11));
    s.rate_per_s = *full(rc::gen::inRange<std::uint64_t>(2, 31)) * 1000;
    s.burst_factor = *full(rc::gen::inRange<std::uint32_t>(1, 5));
    s.batch_max = *full(rc::gen::inRange<std::size_t>(1, 129));
    s.strategy = *full(rc::gen::element(sim::schedule_strategy::random, sim::schedule_strategy::random,
                                   sim::schedule_strategy::pct));
    s.converge_ns = 5'000'000'000;
    bool long_retransmit = false;
    if (o.mode == admission::block) {
      long_retransmit = o.allow_long_retransmit && *full(rc::gen::inRange(0, 3)) == 0;
      s.retransmit_ns = long_retransmit ? long_retransmit_ns : *full(rc::gen::inRange<std::int64_t>(20, 301)) * 1'000'000;
      s.ttl_ns = 0;
    } else {
      s.retransmit_ns = *full(rc::gen::inRange<std::int64_t>(20, 301)) * 1'000'000;
      s.ttl_ns = *full(rc::gen::inRange<std::int64_t>(50, 1001)) * 1'000'000;
    }
    const std::int64_t heal_ms = s.sim_duration_ns / 4 * 3 / 1'000'000;
    // With no retransmit to fall back on, faults start after the first
    // incarnation announced itself: the core skips the rewind for it by design.
    const std::int64_t earliest_ms = long_retransmit ? 300 : 1;
    const std::int64_t window_end_ms = o.fault_window_ms > 0 ? std::min(heal_ms, earliest_ms + o.fault_window_ms) : heal_ms;
    sim::fault_plan plan;
    plan.events = *rc::gen::resize(6, rc::gen::container<std::vector<sim::fault_event>>(gen_fault_event(earliest_ms, window_end_ms, o.fault_kinds)));
    if (!long_retransmit) plan.sites = *rc::gen::resize(3, rc::gen::container<std::vector<sim::fault_site_setting>>(gen_fault_site()));
    std::stable_sort(plan.events.begin(), plan.events.end(),
                     [](const sim::fault_event& a, const sim::fault_event& b) { return a.at_ns < b.at_ns; });
    plan.heal_at_ns = heal_ms * 1'000'000;
    s.fault_spec = plan.to_string();
    return sim::derive(s);
  });
}

/// One value of `g`, deterministically, outside any property.
template <class T>
T sample(const rc::Gen<T>& g, std::uint64_t seed, int size = 50) {
  return g(rc::Random(seed), size).value();
}

}  // namespace aegis::props
