// Swarm scenarios; see swarm.hpp.
#include "sim/swarm.hpp"

#include <algorithm>

#include "aegis/assert.hpp"
#include "aegis/fault_catalogue.hpp"
#include "sim/prng.hpp"

namespace aegis::sim {

namespace {

// Timed kinds. "stall.short" and "stall.long" are separate swarm switches
// because a stall shorter than the retransmit timeout and one longer than it
// exercise different code (a quiet wait versus a retransmit round).
const char* const timed_kinds[] = {"crash", "crash.burst", "stall.short", "stall.long",
                                   "slow",  "clog.offload", "clog.verdict", "clock"};

// Workload switches: they change the scenario, not the fault plan. Listed
// after the sites so that adding one shifts no earlier kind's draw.
// "ttl.short": in drop mode, a TTL of 5-300 ms instead of derive()'s
// 0.5-3 s, i.e. as short as the stalls, clogs and restarts above, so that
// entries expire while their verdicts are on the way. With derive()'s TTLs
// only about one seed in 1500 reached that race.
// The load kinds come last for the same reason. They matter at a real
// model's cost (scenarios draw 200 ns to 1 ms per record):
// "slow.long": the model slows 2-10x for seconds (the run grows to hold it);
// "overload": offered 1.2-3x the model's capacity, so block mode must hold
//   back-pressure and drop mode shed load, without a resend storm;
// "poison": 0.01-2 % of transactions make the model fail.
// "twin": a second bridge runs alongside for a while (a rolling restart).
// "restart": the core process dies and a new one (a new epoch) starts
//   1-300 ms later while the bridge lives on.
const char* const workload_kinds[] = {"ttl.short", "slow.long", "overload", "poison", "twin", "restart"};

std::vector<std::string> make_kinds() {
  std::vector<std::string> k(std::begin(timed_kinds), std::end(timed_kinds));
  for (std::string_view site : fault_sites) k.push_back("site:" + std::string(site));
  k.insert(k.end(), std::begin(workload_kinds), std::end(workload_kinds));
  return k;
}

}  // namespace

const std::vector<std::string>& swarm_kinds() {
  static const std::vector<std::string> kinds = make_kinds();  // Immutable after first use: not simulation state.
  return kinds;
}

swarm_mix swarm_mix_for(std::uint64_t seed) {
  prng r = prng::derive(seed, "chaos.swarm.mix");
  swarm_mix mix;
  for (const std::string& k : swarm_kinds()) {
    // Each kind on with probability 1/2, drawn for every kind so the mix of
    // one kind never shifts another's.
    if (r.chance(1, 2)) mix.kinds.push_back(k);
  }
  return mix;
}

fault_plan swarm_fault_plan(const scenario& d) {
  AEGIS_ASSERT(d.retransmit_ns.has_value(), "swarm_fault_plan takes a derived scenario");
  AEGIS_ASSERT(d.sim_duration_ns > 0, "a run has a positive duration");
  const swarm_mix mix = swarm_mix_for(d.seed);
  prng r = prng::derive(d.seed, "chaos.swarm.plan");
  const ns_t ms = 1'000'000;
  const ns_t heal = d.sim_duration_ns / 4 * 3 / ms * ms;
  const ns_t retransmit = *d.retransmit_ns;
  // Fault times fall in [5%, 100%) of the fault phase, in whole milliseconds so
  // plans print short.
  auto when = [&] { return (heal / 20 + static_cast<ns_t>(r.below(static_cast<std::uint64_t>(heal - heal / 20)))) / ms * ms; };
  auto ms_in = [&](std::int64_t lo, std::int64_t hi) { return r.range(lo, hi) * ms; };
  auto count = [&] { return static_cast<int>(r.range(1, 3)); };

  fault_plan p;
  for (const std::string& k : mix.kinds) {
    if (k == "crash") {
      for (int i = count(); i > 0; --i) p.events.push_back({fault_kind::crash, when(), ms_in(1, 400), 0});
    } else if (k == "crash.burst") {
      // Rapid restarts: a new incarnation dies before it has settled.
      ns_t t = when();
      for (int i = static_cast<int>(r.range(2, 5)); i > 0; --i) {
        const ns_t restart = ms_in(1, 30);
        p.events.push_back({fault_kind::crash, t, restart, 0});
        t += restart + ms_in(1, 20);
      }
    } else if (k == "stall.short") {
      const std::int64_t hi = std::max<std::int64_t>(1, retransmit / ms - 1);
      for (int i = count(); i > 0; --i) p.events.push_back({fault_kind::stall, when(), ms_in(1, hi), 0});
    } else if (k == "stall.long") {
      const std::int64_t lo = retransmit / ms + 1;
      for (int i = count(); i > 0; --i) p.events.push_back({fault_kind::stall, when(), ms_in(lo, lo * 4), 0});
    } else if (k == "slow") {
      for (int i = count(); i > 0; --i) p.events.push_back({fault_kind::slow, when(), ms_in(20, 500), r.range(2, 50)});
    } else if (k == "clog.offload" || k == "clog.verdict") {
      const fault_kind fk = k == "clog.offload" ? fault_kind::clog_offload : fault_kind::clog_verdict;
      for (int i = count(); i > 0; --i) p.events.push_back({fk, when(), ms_in(10, 300), ms_in(1, 50)});
    } else if (k == "clock") {
      for (int i = count(); i > 0; --i) p.events.push_back({fault_kind::clock, when(), ms_in(1, 100), 0});
    } else if (k.starts_with("site:")) {
      const std::string name = k.substr(5);
      // Sites that stop the pump for a while fire rarely or the run is all stall.
      const bool heavy = name == "pump.slow" || name == "clock.stall";
      const auto rate = static_cast<std::uint32_t>(heavy ? r.range(20, 500) : r.range(100, 50'000));
      p.sites.push_back({name, 1'000'000, rate});  // The swarm already chose it: active for sure.
    } else if (k == "twin") {
      for (int i = count(); i > 0; --i) p.events.push_back({fault_kind::twin, when(), ms_in(20, 600), 0});
    } else if (k == "restart") {
      for (int i = count(); i > 0; --i) p.events.push_back({fault_kind::restart, when(), ms_in(1, 300), 0});
    } else if (k == "slow.long") {
      // Seconds long, ending before the heal (chaos_scenario makes the run long enough).
      const ns_t len = ms_in(1000, 3000);
      const ns_t start = std::max<ns_t>(heal / 20, heal - len - ms_in(0, 500)) / ms * ms;
      p.events.push_back({fault_kind::slow, start, std::min(len, heal - start), r.range(2, 10)});
    }
    // The other workload kinds add no fault: chaos_scenario applies them.
  }
  p.heal_at_ns = heal;
  std::stable_sort(p.events.begin(), p.events.end(), [](const fault_event& a, const fault_event& b) { return a.at_ns < b.at_ns; });
  return p;
}

bool runs_python(std::uint64_t seed, double share) {
  AEGIS_ASSERT(share >= 0.0 && share <= 1.0, "a share lies in [0, 1]");
  return static_cast<double>(prng::derive(seed, "chaos.bridge").below(1'000'000)) < share * 1e6;
}

scenario chaos_scenario(std::uint64_t seed, ns_t sim_duration_ns) {
  scenario s;
  s.seed = seed;
  s.sim_duration_ns = sim_duration_ns;
  // Converge bound: long enough for a healthy system to drain a full ring.
  s.converge_ns = std::max<ns_t>(5'000'000'000, sim_duration_ns);
  prng r = prng::derive(seed, "chaos.scheduler");
  if (r.chance(1, 4)) s.strategy = schedule_strategy::pct;
  s.pct_depth = static_cast<std::uint32_t>(r.range(2, 4));
  s.fault_spec = "none";
  const std::vector<std::string> kinds = swarm_mix_for(seed).kinds;
  const auto has = [&kinds](std::string_view k) { return std::find(kinds.begin(), kinds.end(), k) != kinds.end(); };
  // A slowdown of seconds needs a run of seconds: 4 s, heal at 3 s.
  if (has("slow.long")) s.sim_duration_ns = std::max<ns_t>(s.sim_duration_ns, 4'000'000'000);
  prng load = prng::derive(seed, "chaos.load");
  const auto overload_pct = load.range(120, 300);
  const auto poison_ppm = static_cast<std::uint32_t>(load.range(100, 20'000));
  if (has("poison")) s.poison_ppm = poison_ppm;
  scenario d = derive(std::move(s));
  if (has("overload")) {
    d.rate_per_s = std::max<std::uint64_t>(
        50, std::min<std::uint64_t>(100'000, static_cast<std::uint64_t>(d.model_capacity_per_s() * static_cast<double>(overload_pct) / 100.0)));
  }
  // Converge bound: a healthy system drains a full ring at the model's
  // capacity, restarts and settles within this.
  const double drain_s = static_cast<double>(*d.ring_capacity) / d.model_capacity_per_s();
  d.converge_ns = std::max<ns_t>(d.converge_ns, static_cast<ns_t>(2.0 * drain_s * 1e9) + 3'000'000'000);
  if (*d.mode == admission::drop && has("ttl.short")) {
    d.ttl_ns = prng::derive(seed, "chaos.ttl").range(5, 300) * 1'000'000;
  }
  d.plan = swarm_fault_plan(d);
  d.fault_spec = d.plan.to_string();
  AEGIS_ASSERT(d.plan.heal_at_ns.has_value(), "a swarm plan heals");
  return d;
}

}  // namespace aegis::sim
