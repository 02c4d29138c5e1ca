// Rare-state catalogue; see chaos_coverage.hpp.
#include "sim/chaos_coverage.hpp"

#include <array>

namespace aegis::sim {

namespace {

constexpr std::array<rare_state, 16> catalogue = {{
    {"bridge_restarted", "the bridge crashed and a new incarnation took over"},
    {"rapid_restarts", "three or more bridge crashes in one run"},
    {"retransmit_after_restart", "records resent to a new incarnation after a restart"},
    {"retransmit_round", "the retransmit timeout fired and rewound the ring"},
    {"stall_longer_than_retransmit", "a bridge stall outlasted the retransmit timeout"},
    {"stale_incarnation_ignored", "a verdict from a superseded incarnation was ignored"},
    {"duplicate_verdict_ignored", "a second verdict for a terminal seq was ignored"},
    {"late_verdict_after_expiry", "a verdict arrived after its transaction's TTL (TTL racing a verdict)"},
    {"ttl_expired", "a transaction expired by TTL"},
    {"ring_full_drop", "drop mode refused a transaction because the ring was full"},
    {"send_backpressure", "the offload socket refused a send (HWM or injected EAGAIN)"},
    {"alloc_failure_survived", "a pump allocation failed and was retried"},
    {"recv_failure_survived", "a verdict-socket receive failed and was retried"},
    {"messages_lost_with_bridge", "queued messages died with a crashed bridge"},
    {"bridge_send_wait", "the bridge had to wait for room to send verdicts"},
    {"clock_stalled", "the core's clock stood still during the run"},
}};

}  // namespace

std::span<const rare_state> rare_state_catalogue() noexcept { return catalogue; }

std::vector<std::string_view> rare_states_hit(const scenario& s, const run_report& r) {
  const offloader_counters& c = r.counters;
  bool long_stall = false;
  bool clock_fault = false;
  for (const fault_event& e : s.plan.events) {
    const bool before_heal = !s.plan.heal_at_ns || e.at_ns < *s.plan.heal_at_ns;
    if (before_heal && e.kind == fault_kind::stall && s.retransmit_ns && e.duration_ns > *s.retransmit_ns) long_stall = true;
    if (before_heal && e.kind == fault_kind::clock) clock_fault = true;
  }
  for (const auto& [name, st] : r.fault_sites) {
    if (name == "clock.stall" && st.fired > 0) clock_fault = true;
  }
  const bool hit[catalogue.size()] = {
      r.bridge.starts >= 2,
      r.bridge.crashes >= 3,
      c.retransmits > 0 && c.bridge_incarnations >= 2,
      c.retransmit_rounds > 0,
      long_stall,
      c.stale_incarnation > 0,
      c.duplicate_verdicts > 0,
      c.late_verdicts > 0,
      c.expired > 0,
      c.dropped_ring_full > 0,
      c.send_stalls > 0,
      c.alloc_failures > 0,
      c.recv_failures > 0,
      r.network.lost > 0,
      r.bridge.send_waits > 0,
      clock_fault,
  };
  std::vector<std::string_view> out;
  for (std::size_t i = 0; i < catalogue.size(); ++i) {
    if (hit[i]) out.push_back(catalogue[i].name);
  }
  return out;
}

}  // namespace aegis::sim
