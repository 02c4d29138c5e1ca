// Proves the ring buffer's edges on the production os_env: an empty ring, a
// full ring (which counts unreleased entries), wrap-around, rewind across the
// wrap, a block-mode deadline expiring, a blocked producer woken by release()
// and by close(), exact counters, and element lifetimes (every constructed
// element destroyed exactly once). Every edge test runs against both producer
// policies, so the single-producer fast path and the multi-producer variant
// keep the same contract. Contract violations are checked as death tests.
//
// Waits use a deadline that fails the test; nothing sleeps in place of
// synchronisation. Replay one test with:
//   build/release/src/ring_buffer_test --gtest_filter='<Suite>.<Test>'
#include "aegis/ring_buffer.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "aegis/lifetime_tracker.hpp"

namespace {
using aegis::admission;
using aegis::no_deadline;
using aegis::ns_t;
using aegis::os_env;
using aegis::push_status;
using aegis::testing::lifetime_counts;
using aegis::testing::tracked;

constexpr ns_t ms_ns = 1'000'000;
/// How long a test waits for another thread before it fails. Generous: the CI
/// machine has two cores and may run a sanitizer build next to us.
constexpr ns_t test_wait_ns = 20'000 * ms_ns;

template <class T, class Producers>
using ring = aegis::ring_buffer<T, os_env, Producers>;

/// Reads everything readable into a vector of (position, value) pairs.
template <class Ring>
std::vector<std::pair<std::uint64_t, int>> read_all(Ring& r, std::size_t max = 1'000) {
  std::vector<std::pair<std::uint64_t, int>> out;
  r.read(max, [&](std::uint64_t pos, int& v) { out.emplace_back(pos, v); });
  return out;
}

/// Polls `cond` until it holds or `test_wait_ns` passes; returns whether it held.
template <class Cond>
bool eventually(Cond cond) {
  os_env env;
  const ns_t deadline = env.now_ns() + test_wait_ns;
  while (!cond()) {
    if (env.now_ns() >= deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

template <class Producers>
class RingBufferEdges : public ::testing::Test {
 protected:
  os_env env_;
};
using producer_policies = ::testing::Types<aegis::single_producer, aegis::multi_producer>;
TYPED_TEST_SUITE(RingBufferEdges, producer_policies);

TYPED_TEST(RingBufferEdges, EmptyRingHasNothingToRead) {
  ring<int, TypeParam> r{this->env_, 4, admission::drop};
  int calls = 0;
  EXPECT_EQ(r.read(10, [&](std::uint64_t, int&) { ++calls; }), 0u);
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(r.readable(), 0u);
  EXPECT_EQ(r.write_position(), 0u);
  EXPECT_EQ(r.read_position(), 0u);
  EXPECT_EQ(r.release_position(), 0u);
  // Releasing and rewinding an empty ring are no-ops, not errors.
  r.release(0);
  r.rewind();
  EXPECT_EQ(r.read_position(), 0u);
  const auto c = r.counters();
  EXPECT_EQ(c.offered, 0u);
  EXPECT_EQ(c.depth, 0u);
  EXPECT_EQ(c.unreleased, 0u);
  // A deadline already past returns at once with nothing readable.
  EXPECT_FALSE(r.wait_readable(this->env_.now_ns()));
}

TYPED_TEST(RingBufferEdges, CapacityMustBeAPowerOfTwoOfAtLeastTwo) {
  for (std::size_t bad : {0u, 1u, 3u, 6u, 100u}) {
    EXPECT_THROW((ring<int, TypeParam>{this->env_, bad, admission::drop}), std::invalid_argument) << bad;
  }
  ring<int, TypeParam> r{this->env_, 2, admission::drop};
  EXPECT_EQ(r.capacity(), 2u);
  EXPECT_EQ(r.mode(), admission::drop);
}

TYPED_TEST(RingBufferEdges, FullRingDropsAndCountsExactly) {
  ring<int, TypeParam> r{this->env_, 4, admission::drop};
  for (int i = 0; i < 4; ++i) ASSERT_EQ(r.push(i), push_status::accepted) << i;
  EXPECT_EQ(r.push(99), push_status::dropped_full);
  EXPECT_EQ(r.try_push(99), push_status::dropped_full);
  auto c = r.counters();
  EXPECT_EQ(c.offered, 6u);
  EXPECT_EQ(c.accepted, 4u);
  EXPECT_EQ(c.dropped_full, 2u);
  EXPECT_EQ(c.timed_out, 0u);
  EXPECT_EQ(c.closed, 0u);
  EXPECT_EQ(c.depth, 4u);
  EXPECT_EQ(c.unreleased, 4u);
  // The rejected value never entered the ring.
  const auto got = read_all(r);
  ASSERT_EQ(got.size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(got[i], std::make_pair(std::uint64_t(i), i));
}

TYPED_TEST(RingBufferEdges, FullMeansUnreleasedNotUnread) {
  ring<int, TypeParam> r{this->env_, 4, admission::drop};
  for (int i = 0; i < 4; ++i) ASSERT_EQ(r.try_push(i), push_status::accepted);
  ASSERT_EQ(read_all(r).size(), 4u);
  // Everything is read, nothing released: the ring is still full.
  EXPECT_EQ(r.counters().depth, 0u);
  EXPECT_EQ(r.counters().unreleased, 4u);
  EXPECT_EQ(r.try_push(4), push_status::dropped_full);
  // Releasing one entry frees exactly one slot.
  r.release(1);
  EXPECT_EQ(r.counters().unreleased, 3u);
  EXPECT_EQ(r.try_push(4), push_status::accepted);
  EXPECT_EQ(r.try_push(5), push_status::dropped_full);
}

TYPED_TEST(RingBufferEdges, WrapAroundKeepsOrderAndPositions) {
  ring<int, TypeParam> r{this->env_, 4, admission::drop};
  int next_push = 0;
  std::uint64_t next_pos = 0;
  // Uneven batch sizes so the cursors cross the wrap at every offset.
  for (int lap = 0; lap < 25; ++lap) {
    const int batch = 1 + lap % 4;
    for (int i = 0; i < batch; ++i) ASSERT_EQ(r.try_push(next_push++), push_status::accepted);
    const auto got = read_all(r);
    ASSERT_EQ(got.size(), std::size_t(batch));
    for (const auto& [pos, v] : got) {
      EXPECT_EQ(pos, next_pos);
      EXPECT_EQ(v, int(next_pos));
      EXPECT_EQ(r.at(pos), v) << "at() must find a read, unreleased entry";
      ++next_pos;
    }
    r.release(r.read_position());
  }
  EXPECT_GT(r.write_position(), 10 * r.capacity());
  EXPECT_EQ(r.counters().accepted, std::uint64_t(next_push));
}

// The consumer finds published entries by their stamps (one producer: one
// stamp per stamp cache line, then a scan of the line the producer is in;
// docs/RING.md). Every backlog 0..capacity, every read
// limit and every starting offset in the slot array: a read returns exactly
// min(backlog, max) entries, in order, and readable() counts the rest. The
// slots past the backlog hold stamps of the previous laps, which must never
// pass for published.
TYPED_TEST(RingBufferEdges, ReadsExactlyWhatIsPublishedForEveryBacklogAndLimit) {
  constexpr std::size_t cap = 16;
  for (std::size_t offset = 0; offset < cap; ++offset) {
    for (std::size_t backlog = 0; backlog <= cap; ++backlog) {
      for (std::size_t max : {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{7}, std::size_t{8},
                              std::size_t{15}, cap, cap + 1, std::size_t{1'000}}) {
        ring<int, TypeParam> r{this->env_, cap, admission::drop};
        // Two laps first, so every slot carries an older stamp, then move the
        // cursors to `offset`.
        for (std::size_t i = 0; i < 2 * cap + offset; ++i) {
          ASSERT_EQ(r.try_push(-1), push_status::accepted);
          ASSERT_EQ(r.read(1, [](std::uint64_t, int&) {}), 1u);
          r.release(r.read_position());
        }
        const std::uint64_t first = r.write_position();
        for (std::size_t i = 0; i < backlog; ++i) ASSERT_EQ(r.try_push(int(i)), push_status::accepted);
        ASSERT_EQ(r.readable(), backlog);
        const auto got = read_all(r, max);
        const std::size_t want = std::min(backlog, max);
        ASSERT_EQ(got.size(), want) << "offset " << offset << " backlog " << backlog << " max " << max;
        for (std::size_t i = 0; i < got.size(); ++i) {
          EXPECT_EQ(got[i].first, first + i);
          EXPECT_EQ(got[i].second, int(i));
        }
        EXPECT_EQ(r.readable(), backlog - want);
        EXPECT_EQ(r.has_readable(), backlog > want);
      }
    }
  }
}

TYPED_TEST(RingBufferEdges, RewindAcrossTheWrapReReadsUnreleasedInOrder) {
  ring<int, TypeParam> r{this->env_, 4, admission::drop};
  // Move all cursors to position 3, so the next four entries occupy slots 3, 0, 1, 2.
  for (int i = 0; i < 3; ++i) ASSERT_EQ(r.try_push(i), push_status::accepted);
  ASSERT_EQ(read_all(r).size(), 3u);
  r.release(3);
  for (int i = 3; i < 7; ++i) ASSERT_EQ(r.try_push(i), push_status::accepted);
  const auto first = read_all(r);
  ASSERT_EQ(first.size(), 4u);
  EXPECT_EQ(first.front(), std::make_pair(std::uint64_t(3), 3));
  EXPECT_EQ(first.back(), std::make_pair(std::uint64_t(6), 6));

  r.rewind();
  EXPECT_EQ(r.read_position(), 3u);
  EXPECT_EQ(r.counters().depth, 4u);
  EXPECT_EQ(read_all(r), first);

  // Release part of the batch, rewind again: only the unreleased tail comes back.
  r.release(5);
  r.rewind();
  EXPECT_EQ(read_all(r), (std::vector<std::pair<std::uint64_t, int>>{{5, 5}, {6, 6}}));
  // Reading in small batches after a rewind also resumes at the release cursor.
  r.rewind();
  EXPECT_EQ(read_all(r, 1), (std::vector<std::pair<std::uint64_t, int>>{{5, 5}}));
  EXPECT_EQ(read_all(r, 1), (std::vector<std::pair<std::uint64_t, int>>{{6, 6}}));
  EXPECT_TRUE(read_all(r).empty());
}

TYPED_TEST(RingBufferEdges, RewindWithUnreadEntriesKeepsThemAfterTheReReadOnes) {
  ring<int, TypeParam> r{this->env_, 8, admission::drop};
  for (int i = 0; i < 6; ++i) ASSERT_EQ(r.try_push(i), push_status::accepted);
  ASSERT_EQ(read_all(r, 3).size(), 3u);
  r.release(1);
  r.rewind();
  const auto got = read_all(r);
  ASSERT_EQ(got.size(), 5u);
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].second, int(i + 1));
}

TYPED_TEST(RingBufferEdges, BlockModeDeadlineExpires) {
  ring<int, TypeParam> r{this->env_, 2, admission::block};
  ASSERT_EQ(r.push(0), push_status::accepted);
  ASSERT_EQ(r.push(1), push_status::accepted);
  // A deadline already past: no wait at all.
  EXPECT_EQ(r.push(2, this->env_.now_ns() - 1), push_status::timed_out);
  // A deadline in the future: waits (spinning, then parked) until it passes.
  const ns_t deadline = this->env_.now_ns() + 20 * ms_ns;
  EXPECT_EQ(r.push(3, deadline), push_status::timed_out);
  EXPECT_GE(this->env_.now_ns(), deadline) << "returned timed_out before the deadline";
  // try_push never waits, even in block mode.
  EXPECT_EQ(r.try_push(4), push_status::dropped_full);
  const auto c = r.counters();
  EXPECT_EQ(c.offered, 5u);
  EXPECT_EQ(c.accepted, 2u);
  EXPECT_EQ(c.timed_out, 2u);
  EXPECT_EQ(c.dropped_full, 1u);
  EXPECT_EQ(c.offered, c.accepted + c.dropped_full + c.timed_out + c.closed);
}

TYPED_TEST(RingBufferEdges, BlockedProducerResumesWhenTheConsumerReleases) {
  ring<int, TypeParam> r{this->env_, 2, admission::block};
  ASSERT_EQ(r.push(0), push_status::accepted);
  ASSERT_EQ(r.push(1), push_status::accepted);
  auto blocked = std::async(std::launch::async, [&] { return r.push(2); });
  // The producer registers as blocked just before it parks.
  ASSERT_TRUE(eventually([&] { return r.blocked_producers() == 1; })) << "the producer never blocked";
  EXPECT_EQ(blocked.wait_for(std::chrono::milliseconds(1)), std::future_status::timeout)
      << "push returned although the ring is full";
  ASSERT_EQ(read_all(r).size(), 2u);
  r.release(1);
  if (blocked.wait_for(std::chrono::nanoseconds(test_wait_ns)) != std::future_status::ready) {
    r.close();  // Unblock the thread so the test can report instead of hanging.
    FAIL() << "a producer blocked on a full ring was not woken by release()";
  }
  EXPECT_EQ(blocked.get(), push_status::accepted);
  EXPECT_EQ(r.blocked_producers(), 0u);
  EXPECT_EQ(read_all(r), (std::vector<std::pair<std::uint64_t, int>>{{2, 2}}));
  EXPECT_EQ(r.counters().timed_out, 0u);
}

TYPED_TEST(RingBufferEdges, CloseWakesABlockedProducerAndRejectsLaterFullPushes) {
  ring<int, TypeParam> r{this->env_, 2, admission::block};
  ASSERT_EQ(r.push(0), push_status::accepted);
  ASSERT_EQ(r.push(1), push_status::accepted);
  auto blocked = std::async(std::launch::async, [&] { return r.push(2); });
  ASSERT_TRUE(eventually([&] { return r.blocked_producers() == 1; })) << "the producer never blocked";
  r.close();
  ASSERT_EQ(blocked.wait_for(std::chrono::nanoseconds(test_wait_ns)), std::future_status::ready)
      << "close() did not wake a blocked producer";
  EXPECT_EQ(blocked.get(), push_status::closed);
  EXPECT_TRUE(r.is_closed());
  EXPECT_EQ(r.push(3), push_status::closed);
  EXPECT_EQ(r.try_push(3), push_status::closed);
  // Entries already admitted stay readable after close.
  EXPECT_EQ(read_all(r).size(), 2u);
  // A closed ring with space still admits: close() only stops waiting.
  r.release(2);
  EXPECT_EQ(r.push(4), push_status::accepted);
  const auto c = r.counters();
  EXPECT_EQ(c.closed, 3u);
  EXPECT_EQ(c.offered, c.accepted + c.dropped_full + c.timed_out + c.closed);
  // A closed, empty ring makes a waiting consumer return at once.
  EXPECT_TRUE(r.wait_readable(no_deadline));  // Entry 4 is readable.
  ASSERT_EQ(read_all(r).size(), 1u);
  EXPECT_FALSE(r.wait_readable(no_deadline));
}

TYPED_TEST(RingBufferEdges, WaitReadableWakesWhenAProducerPublishes) {
  ring<int, TypeParam> r{this->env_, 8, admission::drop};
  std::atomic<bool> go{false};
  std::thread producer([&] {
    while (!go.load()) std::this_thread::yield();
    (void)r.try_push(42);
  });
  go.store(true);
  const bool ready = r.wait_readable(this->env_.now_ns() + test_wait_ns);
  producer.join();
  ASSERT_TRUE(ready) << "wait_readable missed a published entry";
  EXPECT_EQ(read_all(r), (std::vector<std::pair<std::uint64_t, int>>{{0, 42}}));
}

TYPED_TEST(RingBufferEdges, WaitReadableTimesOut) {
  ring<int, TypeParam> r{this->env_, 8, admission::drop};
  const ns_t deadline = this->env_.now_ns() + 5 * ms_ns;
  EXPECT_FALSE(r.wait_readable(deadline));
  EXPECT_GE(this->env_.now_ns(), deadline);
}

TYPED_TEST(RingBufferEdges, EveryConstructedElementIsDestroyedOnce) {
  lifetime_counts counts;
  {
    ring<tracked, TypeParam> r{this->env_, 4, admission::drop};
    // Emplace builds in place: one construction per accepted entry.
    for (std::uint64_t i = 0; i < 4; ++i) ASSERT_EQ(r.try_emplace(counts, i), push_status::accepted);
    EXPECT_EQ(counts.constructed.load(), 4);
    // A rejected emplace constructs nothing.
    EXPECT_EQ(r.try_emplace(counts, 99), push_status::dropped_full);
    EXPECT_EQ(counts.constructed.load(), 4);

    std::vector<std::uint64_t> seen;
    r.read(2, [&](std::uint64_t, tracked& t) { seen.push_back(t.value()); });
    EXPECT_EQ(counts.live(), 4) << "reading must not destroy entries";
    r.rewind();
    r.read(3, [&](std::uint64_t, tracked& t) { seen.push_back(t.value()); });
    EXPECT_EQ(seen, (std::vector<std::uint64_t>{0, 1, 0, 1, 2}));
    r.release(2);
    EXPECT_EQ(counts.live(), 2) << "release destroys exactly the released entries";
    // Pushing a value copies it; the original is ours to destroy.
    {
      tracked local{counts, 100};
      ASSERT_EQ(r.push(local), push_status::accepted);
      ASSERT_EQ(r.push(tracked{counts, 101}), push_status::accepted);
      EXPECT_EQ(r.push(tracked{counts, 102}), push_status::dropped_full);
    }
    EXPECT_EQ(counts.live(), 4);
    // Wrap the cursors several times.
    for (std::uint64_t i = 0; i < 20; ++i) {
      ASSERT_EQ(r.read(1, [](std::uint64_t, tracked&) {}), 1u);
      r.release(r.release_position() + 1);  // The read cursor stays one entry ahead.
      ASSERT_EQ(r.try_emplace(counts, 200 + i), push_status::accepted);
    }
    EXPECT_EQ(counts.live(), 4);
    // Leave some entries read-unreleased and some unread for the destructor.
    r.read(1, [](std::uint64_t, tracked&) {});
  }
  EXPECT_EQ(counts.live(), 0) << "the destructor must destroy every entry still in the ring";
  EXPECT_EQ(counts.bad_destroys.load(), 0) << "an element was destroyed twice";
  EXPECT_EQ(counts.bad_reads.load(), 0) << "a destroyed element was read";
}

TYPED_TEST(RingBufferEdges, MoveOnlyEntries) {
  ring<std::unique_ptr<int>, TypeParam> r{this->env_, 2, admission::drop};
  ASSERT_EQ(r.push(std::make_unique<int>(5)), push_status::accepted);
  int got = 0;
  r.read(1, [&](std::uint64_t, std::unique_ptr<int>& p) { got = *p; });
  EXPECT_EQ(got, 5);
  r.release(1);
}

TYPED_TEST(RingBufferEdges, LayoutPutsEachCursorOnItsOwnCacheLine) {
  static_assert(ring<int, TypeParam>::layout_ok());
  static_assert(alignof(ring<int, TypeParam>) >= aegis::cache_line_size);
  SUCCEED();
}

// Contract violations abort with the contract in words.
using RingBufferContractsDeathTest = RingBufferEdges<aegis::single_producer>;

TEST_F(RingBufferContractsDeathTest, ReleasingUnreadEntriesAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  ring<int, aegis::single_producer> r{env_, 4, admission::drop};
  ASSERT_EQ(r.try_push(1), push_status::accepted);
  EXPECT_DEATH(r.release(1), "cannot release unread entries");
}

TEST_F(RingBufferContractsDeathTest, MovingTheReleaseCursorBackAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  ring<int, aegis::single_producer> r{env_, 4, admission::drop};
  ASSERT_EQ(r.try_push(1), push_status::accepted);
  ASSERT_EQ(r.try_push(2), push_status::accepted);
  ASSERT_EQ(read_all(r).size(), 2u);
  r.release(2);
  EXPECT_DEATH(r.release(1), "release cursor must not move back");
}

TEST_F(RingBufferContractsDeathTest, AtOutsideTheReadWindowAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  ring<int, aegis::single_producer> r{env_, 4, admission::drop};
  ASSERT_EQ(r.try_push(1), push_status::accepted);
  EXPECT_DEATH((void)r.at(0), "entry not read yet");
}

TEST(RingBufferStatus, EveryStatusHasAName) {
  EXPECT_STREQ(aegis::to_string(push_status::accepted), "accepted");
  EXPECT_STREQ(aegis::to_string(push_status::dropped_full), "dropped_full");
  EXPECT_STREQ(aegis::to_string(push_status::timed_out), "timed_out");
  EXPECT_STREQ(aegis::to_string(push_status::closed), "closed");
}

}  // namespace
