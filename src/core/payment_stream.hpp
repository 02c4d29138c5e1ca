// Seeded synthetic payment stream for aegis-core.
//
// Usage:
//   aegis::core::payment_stream s{seed, /*high_risk_share=*/0.3};
//   aegis::txn t = s.make(txn_id, intended_ns);
//   if (s.high_risk(t)) off.offload(t);
//
// Every field is a pure function of (seed, txn_id), so any number of
// producer threads generate the same stream for the same seed whatever
// order they claim ids in, and a test can recompute any transaction.
#pragma once

#include <cstdint>

#include "aegis/offloader.hpp"

namespace aegis::core {

/// The synthetic payment stream.
class payment_stream {
 public:
  /// `high_risk_share` in [0, 1]: the fraction the risk rule sends to the bridge.
  payment_stream(std::uint64_t seed, double high_risk_share);
  /// The payment with id `txn_id`, made at `timestamp_ns`.
  txn make(std::uint64_t txn_id, ns_t timestamp_ns) const noexcept;
  /// The rule: a payment is high-risk when its pre-score (a pure function of
  /// seed and id, uniform in [0, 1)) is below the share. Share 1 marks all.
  bool high_risk(const txn& t) const noexcept;
  /// The seed.
  std::uint64_t seed() const noexcept { return seed_; }

 private:
  std::uint64_t seed_;
  std::uint64_t threshold_;  // Pre-scores (64-bit) below it are high-risk.
  bool all_;
};

/// splitmix64: a fast, well-mixed 64-bit hash used as the stream's PRNG.
constexpr std::uint64_t splitmix64(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace aegis::core
