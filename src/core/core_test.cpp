// Proves aegis-core's helpers: the payment stream is a pure function of
// (seed, id) and the risk rule offloads the requested share; the ledger records one
// terminal state per accepted id and flags a second one; the latency
// histogram's buckets cover every value with under 3.2% error and its
// percentiles never under-report. (Durations are proven by
// src/aegis/duration_test.cpp against fixtures/durations/grammar.json.)
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>

#include "aegis/metrics.hpp"
#include "core/ledger.hpp"
#include "core/payment_stream.hpp"

namespace aegis::core {
namespace {

TEST(PaymentStream, IsAPureFunctionOfSeedAndId) {
  payment_stream a(42, 1.0), b(42, 1.0), c(43, 1.0);
  for (std::uint64_t id = 1; id < 1000; ++id) {
    const txn x = a.make(id, 5), y = b.make(id, 5), z = c.make(id, 5);
    EXPECT_EQ(x.amount_minor, y.amount_minor);
    EXPECT_EQ(x.card_fp, y.card_fp);
    EXPECT_EQ(x.mcc, y.mcc);
    EXPECT_EQ(x.txn_id, id);
    EXPECT_EQ(x.timestamp_ns, 5);
    EXPECT_GE(x.amount_minor, 100);
    EXPECT_LE(x.channel, 2);
    if (id == 1) EXPECT_NE(x.card_fp, z.card_fp);
  }
}

TEST(PaymentStream, RiskRuleOffloadsTheRequestedShare) {
  payment_stream all(7, 1.0), none(7, 0.0), some(7, 0.25);
  int n_some = 0;
  for (std::uint64_t id = 1; id <= 100'000; ++id) {
    const txn t = all.make(id, 0);
    EXPECT_TRUE(all.high_risk(t));
    EXPECT_FALSE(none.high_risk(t));
    n_some += some.high_risk(t) ? 1 : 0;
  }
  EXPECT_NEAR(n_some, 25'000, 1'000);
  EXPECT_THROW(payment_stream(1, 1.5), std::invalid_argument);
}

TEST(Ledger, RecordsOneTerminalStatePerAcceptedId) {
  ledger l;
  l.offered(1);
  l.offered(2);
  l.offered(3);
  l.offered(ledger::chunk_ids + 5);  // A second chunk.
  l.dropped(2, offload_status::dropped_ring_full);
  EXPECT_TRUE(l.terminal(1, fate::verdict));
  EXPECT_TRUE(l.terminal(ledger::chunk_ids + 5, fate::expired));
  EXPECT_FALSE(l.terminal(1, fate::verdict)) << "a second fate is a conflict";
  EXPECT_FALSE(l.terminal(2, fate::verdict)) << "a dropped id has no fate";
  const auto t = l.tally(ledger::chunk_ids + 10);
  EXPECT_EQ(t[ledger_state::verdict], 1u);
  EXPECT_EQ(t[ledger_state::expired], 1u);
  EXPECT_EQ(t[ledger_state::dropped_ring_full], 1u);
  EXPECT_EQ(t[ledger_state::in_flight], 1u);
  EXPECT_EQ(t.conflicts, 2u);
  const std::string path = ::testing::TempDir() + "ledger_test.txt";
  l.write(path, 3);
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  EXPECT_EQ(ss.str(), "1 verdict\n2 dropped_ring_full\n3 in_flight\n");
}

TEST(LatencyHistogram, BucketsTileTheRangeWithBoundedError) {
  using h = latency_histogram;
  for (std::size_t i = 0; i + 1 < h::bucket_count; ++i) {
    ASSERT_EQ(h::upper_bound_of(i) + 1, h::lower_bound_of(i + 1)) << i;
    ASSERT_EQ(h::index_of(h::lower_bound_of(i)), i);
    ASSERT_EQ(h::index_of(h::upper_bound_of(i)), i);
  }
  std::mt19937_64 rng(3);
  for (int i = 0; i < 100000; ++i) {
    const std::uint64_t v = rng() >> (rng() % 64);
    const std::size_t b = h::index_of(v);
    ASSERT_LE(h::lower_bound_of(b), v);
    ASSERT_GE(h::upper_bound_of(b), v);
    if (v >= 32) ASSERT_LE(static_cast<double>(h::upper_bound_of(b) - h::lower_bound_of(b)) / static_cast<double>(v), 1.0 / 32);
  }
}

TEST(LatencyHistogram, PercentilesNeverUnderReport) {
  latency_histogram lat;
  EXPECT_EQ(lat.percentile_ns(0.99), 0u);
  for (int v = 1; v <= 10000; ++v) lat.record(v * 1000);  // 1 us .. 10 ms
  EXPECT_EQ(lat.count(), 10000u);
  EXPECT_EQ(lat.max_ns(), 10'000'000u);
  const auto p50 = lat.percentile_ns(0.5), p99 = lat.percentile_ns(0.99);
  EXPECT_GE(p50, 5'000'000u);
  EXPECT_LE(p50, 5'000'000u * 1.04);
  EXPECT_GE(p99, 9'900'000u);
  EXPECT_LE(p99, 10'000'000u);
  EXPECT_EQ(lat.percentile_ns(1.0), 10'000'000u);
}

}  // namespace
}  // namespace aegis::core
