// Proves that the ring buffer behaves like a bounded std::deque with three
// cursors, for every sequence of operations rapidcheck can find: push and
// try_push (in drop and block mode), read, release and rewind. After each
// command the ring's statuses, the positions and values it hands out, all of
// its counters and the number of live elements must equal the model's.
// Capacity, admission mode and producer policy vary per run; a failure shrinks
// to a minimal command sequence.
//
// A failure prints a line `RC_PARAMS="reproduce=..."`; replay it with:
//   RC_PARAMS="reproduce=..." build/release/src/ring_buffer_model_test --gtest_filter='RingBufferModel.*'
#include "aegis/ring_buffer.hpp"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>
#include <rapidcheck/state.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <ostream>
#include <utility>
#include <vector>

#include "aegis/lifetime_tracker.hpp"

namespace aegis {
// Lets rapidcheck print the admission mode of a failing run by name.
inline void showValue(admission a, std::ostream& os) { os << (a == admission::drop ? "drop" : "block"); }
}  // namespace aegis

namespace {
using aegis::admission;
using aegis::os_env;
using aegis::push_status;
using aegis::testing::lifetime_counts;
using aegis::testing::tracked;

/// The model: the entries between the release and write cursors, in order.
struct ring_model {
  std::size_t capacity = 0;
  admission mode = admission::drop;
  std::uint64_t release = 0;      ///< Release cursor.
  std::uint64_t read = 0;         ///< Read cursor, in [release, write].
  std::deque<std::uint64_t> entries;  ///< Values at positions [release, write).
  aegis::ring_counters counters;  ///< What the ring must report.

  std::uint64_t write() const { return release + entries.size(); }
  bool full() const { return entries.size() == capacity; }

  /// Admits `value` if there is room; otherwise records the given rejection.
  push_status admit(std::uint64_t value, push_status when_full) {
    ++counters.offered;
    if (full()) {
      if (when_full == push_status::dropped_full) ++counters.dropped_full;
      if (when_full == push_status::timed_out) ++counters.timed_out;
      return when_full;
    }
    entries.push_back(value);
    ++counters.accepted;
    sync_depths();
    return push_status::accepted;
  }

  void sync_depths() {
    counters.depth = write() - read;
    counters.unreleased = entries.size();
  }
};

/// Checks everything observable about the ring against the model state `m`.
template <class Sut>
void check_matches(const ring_model& m, Sut& sut) {
  const aegis::ring_counters c = sut.ring->counters();
  RC_ASSERT(c.offered == m.counters.offered);
  RC_ASSERT(c.accepted == m.counters.accepted);
  RC_ASSERT(c.dropped_full == m.counters.dropped_full);
  RC_ASSERT(c.timed_out == m.counters.timed_out);
  RC_ASSERT(c.closed == 0u);
  RC_ASSERT(c.depth == m.write() - m.read);
  RC_ASSERT(c.unreleased == m.entries.size());
  RC_ASSERT(sut.ring->write_position() == m.write());
  RC_ASSERT(sut.ring->read_position() == m.read);
  RC_ASSERT(sut.ring->release_position() == m.release);
  RC_ASSERT(sut.ring->readable() == m.write() - m.read);
  // Exactly the unreleased entries are alive: none leaked, none destroyed early.
  RC_ASSERT(sut.counts->live() == static_cast<std::int64_t>(m.entries.size()));
  RC_ASSERT(sut.counts->bad_destroys.load() == 0);
  RC_ASSERT(sut.counts->bad_reads.load() == 0);
}

/// The system under test; the counts live apart so they outlive the ring.
template <class Producers>
struct sut_holder {
  std::unique_ptr<lifetime_counts> counts = std::make_unique<lifetime_counts>();
  os_env env;
  std::unique_ptr<aegis::ring_buffer<tracked, os_env, Producers>> ring;
};

template <class Producers>
using command = rc::state::Command<ring_model, sut_holder<Producers>>;

/// try_push never waits, in either mode.
template <class Producers>
struct try_push_cmd : command<Producers> {
  std::uint64_t value = *rc::gen::arbitrary<std::uint64_t>();
  void apply(ring_model& m) const override { (void)m.admit(value, push_status::dropped_full); }
  void run(const ring_model& m0, sut_holder<Producers>& sut) const override {
    ring_model m = m0;
    const push_status want = m.admit(value, push_status::dropped_full);
    const push_status got = sut.ring->try_push(tracked{*sut.counts, value});
    RC_ASSERT(got == want);
    check_matches(m, sut);
  }
  void show(std::ostream& os) const override { os << "try_push(" << value << ")"; }
};

/// push with a deadline already past: drop mode drops, block mode times out.
template <class Producers>
struct push_cmd : command<Producers> {
  std::uint64_t value = *rc::gen::arbitrary<std::uint64_t>();
  static push_status when_full(const ring_model& m) {
    return m.mode == admission::drop ? push_status::dropped_full : push_status::timed_out;
  }
  void apply(ring_model& m) const override { (void)m.admit(value, when_full(m)); }
  void run(const ring_model& m0, sut_holder<Producers>& sut) const override {
    ring_model m = m0;
    const push_status want = m.admit(value, when_full(m));
    const push_status got = sut.ring->push(tracked{*sut.counts, value}, sut.env.now_ns() - 1);
    RC_ASSERT(got == want);
    check_matches(m, sut);
  }
  void show(std::ostream& os) const override { os << "push(" << value << ", deadline=past)"; }
};

template <class Producers>
struct read_cmd : command<Producers> {
  std::size_t max = *rc::gen::inRange<std::size_t>(0, 20);
  void apply(ring_model& m) const override {
    m.read += std::min<std::uint64_t>(max, m.write() - m.read);
    m.sync_depths();
  }
  void run(const ring_model& m0, sut_holder<Producers>& sut) const override {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> got;
    const std::size_t n = sut.ring->read(max, [&](std::uint64_t pos, tracked& t) { got.emplace_back(pos, t.value()); });
    RC_ASSERT(n == got.size());
    const std::uint64_t want_n = std::min<std::uint64_t>(max, m0.write() - m0.read);
    RC_ASSERT(got.size() == want_n);
    for (std::size_t i = 0; i < got.size(); ++i) {
      const std::uint64_t pos = m0.read + i;
      RC_ASSERT(got[i].first == pos);
      RC_ASSERT(got[i].second == m0.entries[pos - m0.release]);
    }
    check_matches(this->nextState(m0), sut);
  }
  void show(std::ostream& os) const override { os << "read(" << max << ")"; }
};

template <class Producers>
struct release_cmd : command<Producers> {
  std::uint64_t upto;
  explicit release_cmd(const ring_model& m) : upto(*rc::gen::inRange<std::uint64_t>(m.release, m.read + 1)) {}
  void checkPreconditions(const ring_model& m) const override {
    RC_PRE(upto >= m.release);
    RC_PRE(upto <= m.read);
  }
  void apply(ring_model& m) const override {
    m.entries.erase(m.entries.begin(), m.entries.begin() + static_cast<std::ptrdiff_t>(upto - m.release));
    m.release = upto;
    m.sync_depths();
  }
  void run(const ring_model& m0, sut_holder<Producers>& sut) const override {
    sut.ring->release(upto);
    const ring_model m = this->nextState(m0);
    check_matches(m, sut);
    // Every entry still held is readable in place at its position.
    for (std::uint64_t p = m.release; p < m.read; ++p) RC_ASSERT(sut.ring->at(p).value() == m.entries[p - m.release]);
  }
  void show(std::ostream& os) const override { os << "release(" << upto << ")"; }
};

template <class Producers>
struct rewind_cmd : command<Producers> {
  void apply(ring_model& m) const override {
    m.read = m.release;
    m.sync_depths();
  }
  void run(const ring_model& m0, sut_holder<Producers>& sut) const override {
    sut.ring->rewind();
    check_matches(this->nextState(m0), sut);
  }
  void show(std::ostream& os) const override { os << "rewind()"; }
};

template <class Producers>
void check_against_model() {
  const std::size_t capacity = *rc::gen::element<std::size_t>(2, 4, 8, 16);
  const admission mode = *rc::gen::element(admission::drop, admission::block);
  RC_TAG(capacity, mode == admission::drop ? "drop" : "block");

  ring_model initial;
  initial.capacity = capacity;
  initial.mode = mode;
  sut_holder<Producers> sut;
  sut.ring = std::make_unique<aegis::ring_buffer<tracked, os_env, Producers>>(sut.env, capacity, mode);
  rc::state::check(initial, sut,
                   rc::state::gen::execOneOfWithArgs<try_push_cmd<Producers>, push_cmd<Producers>, read_cmd<Producers>,
                                                     release_cmd<Producers>, rewind_cmd<Producers>>());
  // The destructor destroys whatever the commands left in the ring, exactly once.
  sut.ring.reset();
  RC_ASSERT(sut.counts->live() == 0);
  RC_ASSERT(sut.counts->bad_destroys.load() == 0);
}

RC_GTEST_PROP(RingBufferModel, SingleProducerMatchesDequeModel, ()) { check_against_model<aegis::single_producer>(); }

RC_GTEST_PROP(RingBufferModel, MultiProducerMatchesDequeModel, ()) { check_against_model<aegis::multi_producer>(); }

}  // namespace
