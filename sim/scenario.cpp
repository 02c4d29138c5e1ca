// Scenarios and fault plans; see scenario.hpp.
#include "sim/scenario.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "aegis/fault_catalogue.hpp"
#include "aegis/mutant_catalogue.hpp"
#include "aegis/protocol.hpp"
#include "sim/seed.hpp"

namespace aegis::sim {

const char* to_string(fault_kind k) noexcept {
  switch (k) {
    case fault_kind::crash: return "crash";
    case fault_kind::stall: return "stall";
    case fault_kind::slow: return "slow";
    case fault_kind::clog_offload: return "clog.offload";
    case fault_kind::clog_verdict: return "clog.verdict";
    case fault_kind::clock: return "clock";
    case fault_kind::twin: return "twin";
    case fault_kind::restart: return "restart";
  }
  return "?";
}

namespace {
std::optional<fault_kind> parse_kind(std::string_view s) {
  for (fault_kind k : {fault_kind::crash, fault_kind::stall, fault_kind::slow, fault_kind::clog_offload,
                       fault_kind::clog_verdict, fault_kind::clock, fault_kind::twin, fault_kind::restart}) {
    if (s == to_string(k)) return k;
  }
  return std::nullopt;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t i = s.find(sep, start);
    out.push_back(s.substr(start, i == std::string_view::npos ? std::string_view::npos : i - start));
    if (i == std::string_view::npos) return out;
    start = i + 1;
  }
}

std::optional<std::uint64_t> parse_u64(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}
}  // namespace

std::string fault_plan::to_string() const {
  std::vector<std::string> items;
  for (const fault_event& e : events) {
    std::string item = fmt::format("{}@{}", sim::to_string(e.kind), format_duration(e.at_ns));
    // Always with its duration: `clock@T` alone does not parse (found by fuzz_fault_plan).
    item += "/" + format_duration(e.duration_ns);
    if (e.kind == fault_kind::slow) item += fmt::format("/{}", e.arg);
    if (e.kind == fault_kind::clog_offload || e.kind == fault_kind::clog_verdict) item += "/" + format_duration(e.arg);
    items.push_back(std::move(item));
  }
  for (const fault_site_setting& s : sites) items.push_back(fmt::format("site:{}/{}/{}", s.name, s.activation_ppm, s.rate_ppm));
  if (heal_at_ns) items.push_back("heal@" + format_duration(*heal_at_ns));
  if (items.empty()) return "none";
  return fmt::format("{}", fmt::join(items, ";"));
}

std::optional<fault_plan> parse_fault_plan(std::string_view text, std::string* error) {
  auto fail = [&](std::string why) -> std::optional<fault_plan> {
    if (error != nullptr) *error = std::move(why);
    return std::nullopt;
  };
  fault_plan plan;
  if (text == "none" || text.empty()) return plan;
  for (std::string_view item : split(text, ';')) {
    if (item.empty()) continue;
    if (item.substr(0, 5) == "site:") {
      const auto parts = split(item.substr(5), '/');
      if (parts.size() != 3 || parts[0].empty()) return fail(fmt::format("bad site item '{}'", item));
      const auto act = parse_u64(parts[1]), rate = parse_u64(parts[2]);
      if (std::find(fault_sites.begin(), fault_sites.end(), parts[0]) == fault_sites.end()) {
        std::string known;
        for (std::string_view site : fault_sites) known += (known.empty() ? "" : ", ") + std::string(site);
        return fail(fmt::format("unknown fault site '{}' (sites: {})", parts[0], known));
      }
      if (!act || !rate || *act > 1'000'000 || *rate > 1'000'000) return fail(fmt::format("bad ppm in '{}'", item));
      plan.sites.push_back({std::string(parts[0]), static_cast<std::uint32_t>(*act), static_cast<std::uint32_t>(*rate)});
      continue;
    }
    const std::size_t at = item.find('@');
    if (at == std::string_view::npos) return fail(fmt::format("item '{}' has no @TIME", item));
    const std::string_view kind = item.substr(0, at);
    const auto parts = split(item.substr(at + 1), '/');
    const auto t = parse_duration(parts[0]);
    if (!t) return fail(fmt::format("bad time in '{}'", item));
    if (kind == "heal") {
      if (parts.size() != 1) return fail(fmt::format("heal takes only a time: '{}'", item));
      plan.heal_at_ns = *t;
      continue;
    }
    const auto k = parse_kind(kind);
    if (!k) return fail(fmt::format("unknown fault kind '{}'", kind));
    fault_event e{*k, *t, 0, 0};
    const std::size_t want = (*k == fault_kind::slow || *k == fault_kind::clog_offload || *k == fault_kind::clog_verdict) ? 3 : 2;
    if (parts.size() != want) return fail(fmt::format("'{}' needs {} fields after @", item, want));
    const auto d = parse_duration(parts[1]);
    if (!d) return fail(fmt::format("bad duration in '{}'", item));
    e.duration_ns = *d;
    if (*k == fault_kind::slow) {
      const auto f = parse_u64(parts[2]);
      if (!f || *f < 1 || *f > 100'000) return fail(fmt::format("bad factor in '{}'", item));
      e.arg = static_cast<std::int64_t>(*f);
    } else if (want == 3) {
      const auto x = parse_duration(parts[2]);
      if (!x) return fail(fmt::format("bad extra delay in '{}'", item));
      e.arg = *x;
    }
    plan.events.push_back(e);
  }
  std::stable_sort(plan.events.begin(), plan.events.end(),
                   [](const fault_event& a, const fault_event& b) { return a.at_ns < b.at_ns; });
  return plan;
}

fault_plan default_fault_plan(std::uint64_t seed, ns_t duration_ns) {
  // Times are drawn inside fractions of the run so every default plan has a
  // fault-free stretch before the heal at 3/4 of the run.
  prng r = prng::derive(seed, "faults.plan");
  auto frac = [&](std::int64_t lo_pct, std::int64_t hi_pct) {
    const ns_t t = duration_ns / 100 * r.range(lo_pct, hi_pct);
    return t / 1'000'000 * 1'000'000;  // Whole milliseconds: plans print short.
  };
  auto ms = [&](std::int64_t lo, std::int64_t hi) { return r.range(lo, hi) * 1'000'000; };
  fault_plan p;
  p.events.push_back({fault_kind::crash, frac(5, 25), ms(20, 1000), 0});
  p.events.push_back({fault_kind::stall, frac(30, 45), ms(50, 1500), 0});
  p.events.push_back({fault_kind::slow, frac(45, 55), ms(200, 2000), r.range(5, 50)});
  if (r.chance(1, 2)) {
    // A burst of rapid restarts.
    ns_t t = frac(55, 62);
    for (int i = 0; i < 3; ++i) {
      const ns_t restart = ms(5, 100);
      p.events.push_back({fault_kind::crash, t, restart, 0});
      t += restart + ms(1, 50);
    }
  }
  p.events.push_back({r.chance(1, 2) ? fault_kind::clog_offload : fault_kind::clog_verdict, frac(62, 70), ms(100, 1000),
                      ms(1, 50)});
  if (r.chance(1, 3)) p.events.push_back({fault_kind::clock, frac(10, 70), ms(1, 100), 0});
  for (std::string_view site : fault_sites) {
    // Rare: a slow pump iteration sleeps 20 ms, a clock stall freezes an iteration.
    const std::uint32_t rate = (site == "pump.slow" || site == "clock.stall") ? 200 : 2'000;
    p.sites.push_back({std::string(site), 250'000, rate});
  }
  // Drawn last, so the draws above keep their values: a core restart in a
  // quarter of the plans, the core down 1 ms-500 ms.
  if (r.chance(1, 4)) p.events.push_back({fault_kind::restart, frac(15, 65), ms(1, 500), 0});
  p.heal_at_ns = duration_ns / 4 * 3;
  std::stable_sort(p.events.begin(), p.events.end(), [](const fault_event& a, const fault_event& b) { return a.at_ns < b.at_ns; });
  return p;
}

std::string invalid_parameter(const scenario& s) {
  if (s.sim_duration_ns <= 0) return "sim_duration (--sim-duration) must be positive";
  if (s.producers && *s.producers < 1) return "producers (--producers) must be at least 1";
  if (s.ring_capacity && (*s.ring_capacity < 2 || (*s.ring_capacity & (*s.ring_capacity - 1)) != 0)) {
    return "ring_capacity (--ring-capacity) must be a power of two >= 2";
  }
  if (s.rate_per_s && *s.rate_per_s < 1) return "rate (--rate) must be at least 1";
  if (s.burst_factor && *s.burst_factor < 1) return "burst (--burst) must be at least 1";
  if (s.pct_depth < 1) return "pct_depth (--pct-depth) must be at least 1";
  if (s.preempt_ppm && *s.preempt_ppm > 1'000'000) return "preempt_ppm (--preempt-ppm) must be at most 1000000";
  if (s.ttl_ns && *s.ttl_ns < 0) return "ttl (--ttl) must not be negative";
  if (s.retransmit_ns && *s.retransmit_ns <= 0) return "retransmit (--retransmit) must be positive";
  if (s.batch_max && (*s.batch_max < 1 || *s.batch_max > max_records)) {
    return fmt::format("batch_max (--batch-max) must be in 1..{}", max_records);
  }
  if (s.converge_ns <= 0) return "converge (--converge) must be positive";
  if (s.model_record_ns && (*s.model_record_ns < 1 || *s.model_record_ns > 100'000'000)) {
    return "model_cost (--model-cost) must be in 1ns..100ms";
  }
  if (s.model_batch_ns && (*s.model_batch_ns < 0 || *s.model_batch_ns > 100'000'000)) {
    return "batch_cost (--batch-cost) must be in 0s..100ms";
  }
  if (s.poison_ppm && *s.poison_ppm > 1'000'000) return "poison_ppm (--poison-ppm) must be at most 1000000";
  const auto is_named = [&](const mutant_info& m) { return m.name == s.mutant; };
  if (!s.mutant.empty() && std::none_of(mutants.begin(), mutants.end(), is_named) && !is_bridge_mutant(s.mutant)) {
    std::string names;
    for (const mutant_info& m : mutants) names += (names.empty() ? "" : ", ") + std::string(m.name);
    for (const mutant_info& m : bridge_mutants) names += ", " + std::string(m.name);
    return fmt::format("mutant (--mutant) '{}' is not one of: {}", s.mutant, names);
  }
  if (is_bridge_mutant(s.mutant) && s.bridge != bridge_kind::python) {
    return fmt::format("mutant (--mutant) '{}' is planted in the Python bridge: it needs bridge python (--bridge python)",
                       s.mutant);
  }
  return {};
}

scenario derive(scenario s) {
  prng r = prng::derive(s.seed, "scenario");
  // Draw every value, used or not, so one parameter given on the command line
  // does not shift the others.
  const admission mode = r.chance(1, 2) ? admission::block : admission::drop;
  const auto producers = static_cast<std::uint32_t>(r.range(1, 4));
  const std::size_t capacity = std::size_t{1} << r.range(6, 12);
  const auto rate = static_cast<std::uint64_t>(r.range(5, 50)) * 1000;
  const auto burst = static_cast<std::uint32_t>(r.chance(1, 2) ? 1 : r.range(2, 8));
  const ns_t retransmit = r.range(50, 400) * 1'000'000;
  const std::size_t batch = static_cast<std::size_t>(r.range(1, 256));
  const ns_t ttl = r.range(500, 3000) * 1'000'000;
  // The world's service time, drawn after every older parameter so that
  // those keep their values: a per-record cost log-uniform from 200 ns (a
  // linear model) to 1 ms (a large boosted-tree or neural model), a
  // per-batch cost of 20-200 us, and the offered load as a share of the
  // model's capacity (10-80 %; the swarm adds overload).
  const double ln_lo = 5.298317366548036, ln_hi = 13.815510557964274;  // ln(200), ln(1e6)
  const auto record_ns = static_cast<ns_t>(std::exp(ln_lo + (ln_hi - ln_lo) * static_cast<double>(r.below(1'000'000)) / 1e6));
  const ns_t batch_ns = r.range(20, 200) * 1'000;
  const auto load_pct = r.range(10, 80);
  if (!s.model_record_ns) s.model_record_ns = record_ns;
  if (!s.model_batch_ns) s.model_batch_ns = batch_ns;
  if (!s.poison_ppm) s.poison_ppm = 0;
  if (!s.mode) s.mode = mode;
  if (!s.producers) s.producers = producers;
  if (!s.ring_capacity) s.ring_capacity = capacity;
  if (!s.batch_max) s.batch_max = batch;
  if (!s.rate_per_s) {
    const auto at_load = static_cast<std::uint64_t>(s.model_capacity_per_s() * static_cast<double>(load_pct) / 100.0);
    s.rate_per_s = std::max<std::uint64_t>(50, std::min(rate, at_load));
  }
  if (!s.burst_factor) s.burst_factor = burst;
  if (!s.retransmit_ns) s.retransmit_ns = retransmit;
  // Block mode promises no loss: no TTL. Drop mode exercises expiry.
  if (!s.ttl_ns) s.ttl_ns = *s.mode == admission::block ? 0 : ttl;
  if (s.fault_spec == "default") {
    s.plan = default_fault_plan(s.seed, s.sim_duration_ns);
  } else {
    std::string error;
    auto p = parse_fault_plan(s.fault_spec, &error);
    if (!p) throw std::invalid_argument("--faults: " + error);
    s.plan = *p;
  }
  if (!s.plan.heal_at_ns) s.plan.heal_at_ns = s.sim_duration_ns / 4 * 3;
  AEGIS_ASSERT(*s.producers >= 1, "at least one producer");
  AEGIS_ASSERT(*s.ring_capacity >= 2 && (*s.ring_capacity & (*s.ring_capacity - 1)) == 0, "ring capacity is a power of two");
  return s;
}

double scenario::model_capacity_per_s() const {
  AEGIS_ASSERT(model_record_ns && model_batch_ns && batch_max, "capacity of a derived scenario");
  // A model call takes what one wake-up read, at most a chunk of model time.
  const std::size_t per_chunk = static_cast<std::size_t>(std::max<ns_t>(1, model_chunk_ns / std::max<ns_t>(1, *model_record_ns)));
  const double records_per_batch = static_cast<double>(std::min<std::size_t>({64 * *batch_max, std::size_t{8192}, per_chunk}));
  const double ns_per_record = static_cast<double>(*model_record_ns) * model_cost_factor_mean +
                               static_cast<double>(*model_batch_ns) / records_per_batch;
  return 1e9 / ns_per_record;
}

const char* to_string(bridge_kind b) noexcept { return b == bridge_kind::python ? "python" : "model"; }

std::optional<bridge_kind> parse_bridge_kind(std::string_view text) noexcept {
  if (text == "model") return bridge_kind::model;
  if (text == "python") return bridge_kind::python;
  return std::nullopt;
}

std::string scenario::reproduce_command() const {
  std::string cmd = fmt::format(
      "aegis-sim run --seed {} --mode {} --sim-duration {} --producers {} --ring-capacity {} --rate {} --burst {} "
      "--scheduler {}",
      seed, *mode == admission::block ? "block" : "drop", format_duration(sim_duration_ns), *producers, *ring_capacity,
      *rate_per_s, *burst_factor, sim::to_string(strategy));
  if (strategy == schedule_strategy::pct) cmd += fmt::format(" --pct-depth {}", pct_depth);
  if (preempt_ppm) cmd += fmt::format(" --preempt-ppm {}", *preempt_ppm);
  cmd += fmt::format(" --ttl {} --retransmit {} --batch-max {} --converge {} --model-cost {} --batch-cost {}",
                     format_duration(*ttl_ns), format_duration(*retransmit_ns), *batch_max, format_duration(converge_ns),
                     format_duration(*model_record_ns), format_duration(*model_batch_ns));
  if (*poison_ppm != 0) cmd += fmt::format(" --poison-ppm {}", *poison_ppm);
  cmd += fmt::format(" --faults '{}'", plan.to_string());
  if (!mutant.empty()) cmd += " --mutant " + mutant;
  if (bridge != bridge_kind::model) cmd += fmt::format(" --bridge {}", sim::to_string(bridge));
  return cmd;
}

std::string scenario::describe() const {
  return fmt::format(
      "mode={}\nsim_duration={}\nproducers={}\nring_capacity={}\nrate_per_s={}\nburst_factor={}\nscheduler={}\n"
      "pct_depth={}\nttl={}\nretransmit_timeout={}\nbatch_max={}\nconverge_within={}\nheal_at={}\nmodel_cost={}\n"
      "batch_cost={}\npoison_ppm={}\nmodel_capacity_per_s={:.0f}\nfaults={}\n",
      *mode == admission::block ? "block" : "drop", format_duration(sim_duration_ns), *producers, *ring_capacity,
      *rate_per_s, *burst_factor, sim::to_string(strategy), pct_depth, format_duration(*ttl_ns),
      format_duration(*retransmit_ns), *batch_max, format_duration(converge_ns), format_duration(*plan.heal_at_ns),
      format_duration(*model_record_ns), format_duration(*model_batch_ns), *poison_ppm, model_capacity_per_s(),
      plan.to_string()) + (mutant.empty() ? "" : fmt::format("mutant={}\n", mutant)) +
         (bridge == bridge_kind::model ? "" : fmt::format("bridge={}\n", sim::to_string(bridge)));
}

}  // namespace aegis::sim
