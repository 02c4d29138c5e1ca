// Seeded pseudo-random numbers for the simulator: one seed, split per component.
//
// Usage:
//   aegis::sim::prng root{seed};
//   aegis::sim::prng sched = aegis::sim::prng::derive(seed, "scheduler");
//   std::uint64_t pick = sched.below(n);      // uniform in [0, n)
//   bool coin = sched.chance(1, 8);           // true with probability 1/8
//
// Every random decision in a simulated run comes from a stream derived from
// the run's seed and a component name, so adding a decision to one component
// never shifts the numbers another component sees (TigerBeetle's and FDB's
// habit: the scheduler's choices do not change when the workload draws more).
#pragma once

#include <cstdint>
#include <string_view>

#include <xxhash.h>

#include "aegis/assert.hpp"
#include "aegis/env.hpp"

namespace aegis::sim {

/// SplitMix64 step: the standard seeder for xoshiro (Vigna).
constexpr std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// xoshiro256** (Blackman and Vigna): fast, 256-bit state, good statistics.
class prng {
 public:
  /// Seeds the four state words from `seed` through SplitMix64.
  explicit prng(std::uint64_t seed) noexcept {
    std::uint64_t sm = seed;
    for (auto& w : s_) w = splitmix64(sm);
  }

  /// A stream for the component `name`, independent of every other name.
  static prng derive(std::uint64_t seed, std::string_view name) noexcept {
    return prng{seed ^ XXH64(name.data(), name.size(), 0x41454753ULL)};
  }

  /// Next 64 random bits.
  std::uint64_t next() noexcept {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  /// Uniform in [0, n), n > 0 (Lemire's multiply-shift; the tiny bias is irrelevant here).
  std::uint64_t below(std::uint64_t n) noexcept {
    AEGIS_ASSERT(n > 0, "below(n) needs a non-empty range");
    return static_cast<std::uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
  }

  /// Uniform in [lo, hi] inclusive.
  std::int64_t range(std::int64_t lo, std::int64_t hi) noexcept {
    AEGIS_ASSERT(lo <= hi, "range(lo, hi) needs lo <= hi");
    return lo + static_cast<std::int64_t>(below(static_cast<std::uint64_t>(hi - lo) + 1));
  }

  /// True with probability num/den.
  bool chance(std::uint64_t num, std::uint64_t den) noexcept {
    AEGIS_ASSERT(den > 0 && num <= den, "chance(num, den) is a probability");
    return below(den) < num;
  }

  /// True with probability ppm / 1e6 (parts per million; integer, no doubles).
  bool chance_ppm(std::uint32_t ppm) noexcept { return below(1'000'000) < ppm; }

  /// -log2(U) for U uniform in (0, 1], in units of 2^-16: in (0, 32 * 2^16].
  /// Integer only: the bit length of U and a quadratic fit of log2 on the
  /// mantissa (error below 0.008 of a unit, mean error ~0).
  std::int64_t neg_log2_uniform_q16() noexcept {
    // U = u / 2^32 with u in [1, 2^32) written as 2^(31-lz) * (1 + f), f in
    // [0, 1), so -log2(U) = lz + 1 - log2(1 + f). The mantissa f takes the 16
    // bits below the leading one (the leading one itself is not part of f:
    // counting it made exponential_ns's mean 0.87 instead of 1, so producers
    // offered 15% more load than asked).
    const std::uint64_t u = (next() >> 32) | 1;
    const int lz = __builtin_clzll(u) - 32;  // 0..31
    const std::int64_t f = static_cast<std::int64_t>(((u << lz) >> 15) & 0xffff);  // f * 2^16
    // log2(1 + f) ~ f + 0.34657 f (1 - f): exact at 0 and 1.
    const std::int64_t log2_1pf = f + ((f * (65536 - f) * 22713) >> 32);
    const std::int64_t neg_log2_u = (static_cast<std::int64_t>(lz) + 1) * 65536 - log2_1pf;
    AEGIS_ASSERT(neg_log2_u > 0 && neg_log2_u <= 32 * 65536, "-log2(U) of U in (0, 1] is in (0, 32]");
    return neg_log2_u;
  }

  /// Exponentially distributed duration with mean `mean_ns`, capped at 20x the mean.
  /// Integer-only inverse CDF: -ln(U) = ln 2 * -log2(U).
  ns_t exponential_ns(ns_t mean_ns) noexcept {
    AEGIS_ASSERT(mean_ns >= 0, "a mean duration is not negative");
    if (mean_ns == 0) return 0;
    const std::int64_t micro = neg_log2_uniform_q16() * 693147 / 65536;  // -ln(U) in millionths (ln 2 = 0.693147)
    const std::int64_t capped = micro > 20'000'000 ? 20'000'000 : micro;
    return mean_ns / 1'000'000 * capped + (mean_ns % 1'000'000) * capped / 1'000'000;
  }

  /// Failures before the first success of independent trials that fail with
  /// probability q (geometric distribution; inverse CDF log2(U) / log2(q)).
  /// `scale` = geometric_scale(q), computed once: a draw is then a multiply,
  /// no division.
  std::uint64_t geometric(std::uint64_t scale) noexcept {
    const std::uint64_t e = static_cast<std::uint64_t>(neg_log2_uniform_q16()) << 16;  // -log2(U) * 2^32
    return static_cast<std::uint64_t>((static_cast<unsigned __int128>(e) * scale) >> 64);
  }
  /// The `scale` of geometric() for `neg_log2_q_q32` = -log2(q) * 2^32
  /// (0 means q = 0: every trial succeeds, every draw is 0).
  static constexpr std::uint64_t geometric_scale(std::uint64_t neg_log2_q_q32) noexcept {
    return neg_log2_q_q32 == 0 ? 0 : UINT64_MAX / neg_log2_q_q32;
  }

 private:
  static constexpr std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4];
};

}  // namespace aegis::sim
