// Swarm scenarios for `aegis-sim chaos`: each seed switches on a random subset
// of fault kinds, each at a random rate, all derived from the seed (Groce et
// al., "Swarm Testing", ISSTA 2012). A fixed mix of every fault at once tends
// to mask bugs that need one fault left alone long enough to matter; a swarm
// of sparse mixes finds them.
//
// Usage:
//   aegis::sim::scenario s = aegis::sim::chaos_scenario(42, aegis::sim::chaos_default_length_ns);
//   // s is derived: s.plan holds the swarm plan, s.reproduce_command() replays it.
//   aegis::sim::swarm_mix mix = aegis::sim::swarm_mix_for(42);   // which kinds seed 42 enabled
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sim/scenario.hpp"

namespace aegis::sim {

/// The default length of one chaos seed: simulated workload time. The heal
/// comes at 3/4 of it, then the run must converge. Chosen so one core runs at
/// least 100 seeds per minute at the derived rates (5k-50k txn/s); see
/// docs/CHAOS.md for the measured figure.
inline constexpr ns_t chaos_default_length_ns = 1'000'000'000;

/// Every kind a swarm can switch on: timed faults, then fault sites, then
/// workload switches ("ttl.short": drop-mode TTLs as short as the faults).
struct swarm_mix {
  std::vector<std::string> kinds;  ///< Enabled kinds, e.g. "crash", "stall.long", "site:transport.send", "ttl.short".
};

/// The kinds the swarm may enable, in a fixed order.
const std::vector<std::string>& swarm_kinds();

/// The mix seed `seed` enables (a pure function of the seed).
swarm_mix swarm_mix_for(std::uint64_t seed);

/// The swarm fault plan for a derived scenario (uses its retransmit timeout so
/// stalls land on both sides of it, and its duration for the heal time).
fault_plan swarm_fault_plan(const scenario& derived);

/// A fully derived chaos scenario for `seed`: workload from derive(), the
/// scheduler (random, or PCT for one seed in four) and the swarm fault plan.
scenario chaos_scenario(std::uint64_t seed, ns_t sim_duration_ns);

/// Whether chaos runs `seed` with the real bridge (--bridge python), for a
/// share in [0, 1]: a draw of the seed's own stream, so the other seeds'
/// runs do not change with the share, and shrinking keeps the bridge.
bool runs_python(std::uint64_t seed, double share);

/// The seed of the i-th run of shard k (1-based) of n, from `seed_base`:
/// seed_base + i*n + (k-1). Shards are disjoint and together cover every
/// seed from seed_base upwards.
constexpr std::uint64_t shard_seed(std::uint64_t seed_base, std::uint64_t i, std::uint32_t k, std::uint32_t n) noexcept {
  return seed_base + i * n + (k - 1);
}

}  // namespace aegis::sim
