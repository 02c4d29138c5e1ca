// Proves, with real threads racing, that every item a producer gets
// `accepted` for reaches the single consumer exactly once and in order per
// producer, that every rejection is counted, and that the ring's counters are
// exact at the end: offered = accepted + dropped_full + timed_out, depth and
// unreleased back to zero. The consumer reads in random batch sizes, releases
// random prefixes and rewinds at random, checking that a re-read returns the
// same entries at the same positions, as the transport does after a restart.
// Each entry carries a checksum of its fields, so a torn or stale slot is
// caught. Runs for both producer policies and all admission behaviours
// (block without deadline: lossless; block with a short deadline; drop).
// Built under ThreadSanitizer by `make test` (preset tsan, label stress).
//
// Nothing sleeps: waits are bounded by a budget whose expiry fails the test.
// A failure prints the seed of the consumer's random choices; replay with:
//   AEGIS_STRESS_SEED=<seed> build/release/src/ring_buffer_stress_test --gtest_filter='<Suite>.<Test>'
// (thread interleavings differ between runs; the seed fixes the consumer's choices).
#include "aegis/ring_buffer.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {
using aegis::admission;
using aegis::ns_t;
using aegis::os_env;
using aegis::push_status;

#if defined(__SANITIZE_THREAD__)
constexpr std::uint64_t scale = 5;  // ThreadSanitizer runs 5-50x slower.
#else
constexpr std::uint64_t scale = 1;
#endif

/// If the whole exchange has not finished by then, something is stuck.
constexpr ns_t budget_ns = 240'000'000'000;

struct stress_item {
  std::uint32_t producer = 0;
  std::uint64_t seq = 0;
  std::uint64_t check = 0;  ///< checksum(producer, seq): catches torn or stale slots.
};

constexpr std::uint64_t checksum(std::uint32_t producer, std::uint64_t seq) noexcept {
  std::uint64_t x = (std::uint64_t(producer) << 48) ^ seq ^ 0x9E3779B97F4A7C15ull;
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ull;
  return x ^ (x >> 29);
}

/// How producers offer entries.
enum class offer_style {
  block_forever,   ///< push() in block mode, no deadline: nothing may be lost.
  block_deadline,  ///< push() in block mode with a short deadline: some time out.
  drop,            ///< push() in drop mode: some are dropped.
};

struct stress_case {
  int producers;
  std::uint64_t items_per_producer;
  std::size_t capacity;
  offer_style style;
};

/// Per-producer tallies of what push() returned.
struct producer_tally {
  std::uint64_t accepted = 0;
  std::uint64_t dropped_full = 0;
  std::uint64_t timed_out = 0;
  std::uint64_t other = 0;
};

std::uint64_t seed_from_env() {
  if (const char* s = std::getenv("AEGIS_STRESS_SEED")) return std::strtoull(s, nullptr, 10);
  return std::random_device{}();
}

std::string replay_line(std::uint64_t seed) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::ostringstream os;
  os << "replay: AEGIS_STRESS_SEED=" << seed << " build/release/src/ring_buffer_stress_test --gtest_filter='"
     << info->test_suite_name() << "." << info->name() << "'";
  return os.str();
}

template <class Producers>
void run_stress(const stress_case& sc) {
  static_assert(aegis::environment<os_env>);
  const std::uint64_t seed = seed_from_env();
  SCOPED_TRACE(replay_line(seed));
  std::mt19937_64 rng(seed);

  os_env env;
  const admission mode = sc.style == offer_style::drop ? admission::drop : admission::block;
  aegis::ring_buffer<stress_item, os_env, Producers> ring{env, sc.capacity, mode};

  std::vector<producer_tally> tallies(sc.producers);
  std::atomic<int> producers_done{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < sc.producers; ++p) {
    threads.push_back(env.spawn("stress-prod", [&, p] {
      producer_tally& t = tallies[p];
      for (std::uint64_t seq = 0; seq < sc.items_per_producer; ++seq) {
        const stress_item item{std::uint32_t(p), seq, checksum(std::uint32_t(p), seq)};
        const ns_t deadline = sc.style == offer_style::block_deadline ? env.now_ns() + 20'000 : aegis::no_deadline;
        switch (ring.push(item, deadline)) {
          case push_status::accepted: ++t.accepted; break;
          case push_status::dropped_full: ++t.dropped_full; break;
          case push_status::timed_out: ++t.timed_out; break;
          case push_status::closed: ++t.other; break;
        }
        if (t.other != 0) break;  // The consumer gave up and closed the ring.
      }
      producers_done.fetch_add(1, std::memory_order_release);
    }));
  }

  // Consumer state. inflight holds the entries read but not released, in
  // position order; replayed counts how many of them the read cursor has
  // passed (it drops to 0 on rewind and climbs back as they are re-read).
  std::vector<std::uint64_t> next_seq(sc.producers, 0);
  std::vector<std::uint64_t> received(sc.producers, 0);
  std::deque<stress_item> inflight;
  std::size_t replayed = 0;
  std::uint64_t release_pos = 0;
  std::uint64_t rewinds = 0;
  std::uint64_t rereads = 0;
  std::string failure;

  // A producer's last push publishes before it counts itself done, so once
  // every producer is done an empty ring stays empty.
  const auto all_producers_done = [&] { return producers_done.load(std::memory_order_acquire) == sc.producers; };
  const auto on_entry = [&](std::uint64_t pos, stress_item& it) {
    if (!failure.empty()) return;
    if (pos != release_pos + replayed) {
      failure = "position " + std::to_string(pos) + " handed out, expected " + std::to_string(release_pos + replayed);
      return;
    }
    if (it.check != checksum(it.producer, it.seq) || it.producer >= std::uint32_t(sc.producers)) {
      failure = "torn entry at position " + std::to_string(pos);
      return;
    }
    if (replayed < inflight.size()) {
      const stress_item& before = inflight[replayed];
      if (before.producer != it.producer || before.seq != it.seq) {
        failure = "re-read after rewind differs at position " + std::to_string(pos);
        return;
      }
      ++rereads;
    } else {
      const bool lossless = sc.style == offer_style::block_forever;
      const std::uint64_t want = next_seq[it.producer];
      if (lossless ? it.seq != want : it.seq < want) {
        failure = "producer " + std::to_string(it.producer) + ": got seq " + std::to_string(it.seq) + ", expected " +
                  (lossless ? "" : "at least ") + std::to_string(want) +
                  (lossless ? " (lost, stale or reordered)" : " (duplicated, stale or reordered)");
        return;
      }
      next_seq[it.producer] = it.seq + 1;
      ++received[it.producer];
      inflight.push_back(it);
    }
    ++replayed;
  };
  const auto release_first = [&](std::size_t k) {
    ring.release(release_pos + k);
    release_pos += k;
    inflight.erase(inflight.begin(), inflight.begin() + static_cast<std::ptrdiff_t>(k));
    replayed -= k;
  };

  const ns_t deadline = env.now_ns() + budget_ns;
  for (;;) {
    if (ring.readable() == 0) {
      // Nothing to read: hand back every slot we hold so producers can go on.
      release_first(replayed);
      if (all_producers_done() && ring.readable() == 0) break;
      if (!ring.wait_readable(std::min(deadline, env.now_ns() + 10'000'000))) {
        if (env.now_ns() >= deadline) {
          failure = "budget exhausted: consumer still waiting for entries";
          break;
        }
        continue;  // Re-check whether the producers are done.
      }
    }
    const std::size_t batch = 1 + rng() % 32;
    ring.read(batch, on_entry);
    if (!failure.empty()) break;
    const std::uint64_t dice = rng() % 64;
    if (dice == 0) {
      ring.rewind();
      replayed = 0;
      ++rewinds;
    } else if (dice < 48) {
      release_first(rng() % (replayed + 1));
    }
  }
  if (!failure.empty()) ring.close();  // Free blocked producers so the threads can be joined.
  for (auto& t : threads) t.join();
  ASSERT_EQ(failure, "");
  release_first(replayed);

  // Exact accounting: what producers were told equals what the ring counted
  // equals what the consumer received.
  producer_tally sum;
  for (int p = 0; p < sc.producers; ++p) {
    EXPECT_EQ(received[p], tallies[p].accepted) << "producer " << p << ": accepted entries received once each";
    sum.accepted += tallies[p].accepted;
    sum.dropped_full += tallies[p].dropped_full;
    sum.timed_out += tallies[p].timed_out;
    sum.other += tallies[p].other;
  }
  const aegis::ring_counters c = ring.counters();
  EXPECT_EQ(c.offered, std::uint64_t(sc.producers) * sc.items_per_producer);
  EXPECT_EQ(c.accepted, sum.accepted);
  EXPECT_EQ(c.dropped_full, sum.dropped_full);
  EXPECT_EQ(c.timed_out, sum.timed_out);
  EXPECT_EQ(c.closed, 0u);
  EXPECT_EQ(sum.other, 0u);
  EXPECT_EQ(c.offered, c.accepted + c.dropped_full + c.timed_out + c.closed);
  EXPECT_EQ(c.depth, 0u);
  EXPECT_EQ(c.unreleased, 0u);
  if (sc.style == offer_style::block_forever) {
    EXPECT_EQ(sum.accepted, c.offered) << "block mode without a deadline must not lose anything";
  }
  EXPECT_GT(sum.accepted, 0u);
  // The run must have exercised what it claims to.
  EXPECT_GT(rewinds, 0u);
  EXPECT_GT(rereads, 0u);
  ::testing::Test::RecordProperty("rewinds", std::to_string(rewinds));
  ::testing::Test::RecordProperty("dropped_full", std::to_string(c.dropped_full));
  ::testing::Test::RecordProperty("timed_out", std::to_string(c.timed_out));
}

TEST(RingBufferStress, SingleProducerBlockModeIsLosslessAndInOrder) {
  run_stress<aegis::single_producer>({1, 4'000'000 / scale, 64, offer_style::block_forever});
}

TEST(RingBufferStress, MultiProducerBlockModeIsLosslessAndInOrderPerProducer) {
  run_stress<aegis::multi_producer>({3, 1'000'000 / scale, 64, offer_style::block_forever});
}

TEST(RingBufferStress, SingleProducerDropModeCountsEveryDrop) {
  run_stress<aegis::single_producer>({1, 4'000'000 / scale, 16, offer_style::drop});
}

TEST(RingBufferStress, MultiProducerDropModeCountsEveryDrop) {
  run_stress<aegis::multi_producer>({3, 1'000'000 / scale, 16, offer_style::drop});
}

TEST(RingBufferStress, MultiProducerBlockDeadlineCountsEveryTimeout) {
  run_stress<aegis::multi_producer>({3, 400'000 / scale, 16, offer_style::block_deadline});
}

}  // namespace
