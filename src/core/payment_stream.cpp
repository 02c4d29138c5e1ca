// Synthetic payments: plausible enough for the bridge's model, fully seeded.
#include "core/payment_stream.hpp"

#include <array>
#include <cmath>
#include <stdexcept>

#include "aegis/assert.hpp"

namespace aegis::core {

namespace {
constexpr std::array<std::array<char, 3>, 4> currencies{{{'E', 'U', 'R'}, {'U', 'S', 'D'}, {'G', 'B', 'P'}, {'C', 'H', 'F'}}};
constexpr std::array<std::uint32_t, 8> mccs{5411, 5812, 5999, 4829, 7995, 5732, 4111, 6011};
}  // namespace

payment_stream::payment_stream(std::uint64_t seed, double high_risk_share) : seed_(seed) {
  if (!(high_risk_share >= 0.0 && high_risk_share <= 1.0)) throw std::invalid_argument("high-risk share must be in [0, 1]");
  all_ = high_risk_share >= 1.0;
  threshold_ = all_ ? ~std::uint64_t{0} : static_cast<std::uint64_t>(std::ldexp(high_risk_share, 64));
}

txn payment_stream::make(std::uint64_t txn_id, ns_t timestamp_ns) const noexcept {
  std::uint64_t r = splitmix64(seed_ ^ splitmix64(txn_id));
  auto next = [&r] { return r = splitmix64(r); };
  txn t;
  t.txn_id = txn_id;
  // Amounts: mostly small, a long tail (a crude log-uniform from 1.00 to ~10,000.00).
  t.amount_minor = static_cast<std::int64_t>(100.0 * std::exp(static_cast<double>(next() % 9211) / 1000.0));
  t.timestamp_ns = timestamp_ns;
  t.merchant_id = next() % 50'000;
  t.card_fp = splitmix64(next() % 2'000'000);  // A hash of one of 2M cards.
  t.currency = currencies[next() % currencies.size()];
  t.channel = static_cast<std::uint8_t>(next() % 3);
  t.mcc = mccs[next() % mccs.size()];
  AEGIS_ASSERT(t.amount_minor >= 100, "every payment is at least one major unit");
  return t;
}

bool payment_stream::high_risk(const txn& t) const noexcept {
  if (all_) return true;
  return splitmix64(seed_ ^ 0x5249534bULL ^ splitmix64(t.txn_id)) < threshold_;
}

}  // namespace aegis::core
