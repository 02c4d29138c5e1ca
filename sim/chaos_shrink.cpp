// Greedy scenario shrinking; see chaos_shrink.hpp.
#include "sim/chaos_shrink.hpp"

#include <algorithm>

#include "aegis/assert.hpp"

namespace aegis::sim {

namespace {

constexpr ns_t ms = 1'000'000;

// Keeps the plan string (what reproduce_command prints) in step with the plan.
scenario with_plan(scenario s, fault_plan p) {
  s.plan = std::move(p);
  s.fault_spec = s.plan.to_string();
  return s;
}

}  // namespace

std::vector<scenario> shrink_candidates(const scenario& s) {
  std::vector<scenario> out;
  // 1. Remove one timed fault (the plan's largest lever).
  for (std::size_t i = 0; i < s.plan.events.size(); ++i) {
    fault_plan p = s.plan;
    p.events.erase(p.events.begin() + static_cast<std::ptrdiff_t>(i));
    out.push_back(with_plan(s, std::move(p)));
  }
  // 2. Remove one fault site.
  for (std::size_t i = 0; i < s.plan.sites.size(); ++i) {
    fault_plan p = s.plan;
    p.sites.erase(p.sites.begin() + static_cast<std::ptrdiff_t>(i));
    out.push_back(with_plan(s, std::move(p)));
  }
  // 3. Halve the run: the heal moves with it, faults after it go.
  if (s.sim_duration_ns >= 200 * ms) {
    scenario c = s;
    c.sim_duration_ns = s.sim_duration_ns / 2 / ms * ms;
    fault_plan p = s.plan;
    const ns_t heal = std::min(p.heal_at_ns.value_or(c.sim_duration_ns), c.sim_duration_ns / 4 * 3 / ms * ms);
    p.heal_at_ns = heal;
    std::erase_if(p.events, [&](const fault_event& e) { return e.at_ns >= heal; });
    out.push_back(with_plan(std::move(c), std::move(p)));
  }
  // 4. Less load: half the rate, one producer, no bursts.
  if (s.rate_per_s && *s.rate_per_s >= 2'000) {
    scenario c = s;
    c.rate_per_s = *s.rate_per_s / 2;
    out.push_back(std::move(c));
  }
  if (s.producers && *s.producers > 1) {
    scenario c = s;
    c.producers = 1;
    out.push_back(std::move(c));
  }
  if (s.burst_factor && *s.burst_factor > 1) {
    scenario c = s;
    c.burst_factor = 1;
    out.push_back(std::move(c));
  }
  // 5. Shorter faults (halved, whole milliseconds).
  for (std::size_t i = 0; i < s.plan.events.size(); ++i) {
    if (s.plan.events[i].duration_ns < 2 * ms) continue;
    fault_plan p = s.plan;
    p.events[i].duration_ns = p.events[i].duration_ns / 2 / ms * ms;
    out.push_back(with_plan(s, std::move(p)));
  }
  return out;
}

shrink_result shrink_scenario(const scenario& failing, const std::function<bool(const scenario&)>& still_fails,
                              const std::function<bool()>& out_of_time) {
  AEGIS_ASSERT(failing.mode.has_value() && failing.plan.heal_at_ns.has_value(), "shrink takes a derived scenario");
  shrink_result r;
  r.minimal = failing;
  // Restart from the first candidate after every success: the greedy fixed point.
  for (bool progress = true; progress;) {
    progress = false;
    for (scenario& c : shrink_candidates(r.minimal)) {
      if (out_of_time()) {
        r.timed_out = true;
        return r;
      }
      ++r.attempts;
      if (still_fails(c)) {
        ++r.accepted;
        r.minimal = std::move(c);
        progress = true;
        break;
      }
    }
  }
  AEGIS_ASSERT(r.accepted <= r.attempts, "only attempted candidates are accepted");
  return r;
}

}  // namespace aegis::sim
