// The world's pending timers: a binary min-heap of small plain entries
// ordered by (deadline, sequence), with callbacks kept apart in slots that
// never move while the heap reorders.
//
// Usage (world.cpp is the only user):
//   aegis::sim::timer_queue q;
//   q.push_wake(5'000, ++seq, fiber, generation);     // a fiber's wait deadline: no callback
//   q.cancel_wake(fiber);                               // woken before it: the deadline goes
//   q.push_callback(7'000, ++seq, [] { ... });          // scheduler-context callback
//   while (!q.empty() && q.top().at_ns <= now) {
//     aegis::sim::timer_queue::fired t = q.pop();       // entry + callback moved out
//     if (t.fn) t.fn(); else wake(t.entry.fiber, t.entry.generation);
//   }
//
// Why not std::priority_queue<timer-with-std::function>: every sift moved a
// 64-byte element with a std::function inside (a non-trivial move), and the
// sifts were the simulator's largest single cost (15% of a bench run), and
// deadlines of waits that ended early stayed in the heap until they came due
// (thousands of them: the bridge's 200 ms heartbeat wait, the pump's 100 ms
// idle wait). Here a sift moves 32 bytes of plain data, a callback is moved
// once, when its timer fires, and a wait deadline leaves the heap as soon as
// its wait ends (each fiber's entry position is tracked).
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <type_traits>
#include <utility>
#include <vector>

#include "aegis/assert.hpp"
#include "aegis/env.hpp"

namespace aegis::sim {

class timer_queue {
 public:
  /// Slot value of an entry without a callback (a fiber's wait deadline).
  static constexpr std::uint32_t no_slot = UINT32_MAX;

  /// One pending timer. Plain data: the heap moves it freely.
  struct entry {
    ns_t at_ns = 0;                  ///< Deadline (virtual ns).
    std::uint64_t seq = 0;           ///< Tie-break: timers at one deadline fire in the order they were set.
    std::uint64_t generation = 0;    ///< Wait generation of `fiber` (wake entries only).
    std::uint32_t fiber = 0;         ///< The fiber whose wait times out (wake entries only).
    std::uint32_t slot = no_slot;    ///< Callback slot, or no_slot for a wake entry.
  };
  static_assert(std::is_trivially_copyable_v<entry> && sizeof(entry) == 32, "heap entries are 32 bytes of plain data");

  /// A fired timer: its entry and its callback (empty for a wake entry).
  struct fired {
    entry e;                   ///< The entry.
    std::function<void()> fn;  ///< The callback, moved out of its slot.
  };

  /// True when no timer is pending.
  bool empty() const noexcept { return heap_.empty(); }
  /// Pending timers.
  std::size_t size() const noexcept { return heap_.size(); }
  /// The earliest pending timer (queue not empty).
  const entry& top() const noexcept {
    AEGIS_ASSERT(!heap_.empty(), "top() of an empty timer queue");
    return heap_.front();
  }

  /// Adds the wait deadline of `fiber`, replacing the one it still had.
  void push_wake(ns_t at_ns, std::uint64_t seq, std::uint32_t fiber, std::uint64_t generation) {
    if (fiber >= wake_pos_.size()) wake_pos_.resize(fiber + 1, 0);
    cancel_wake(fiber);
    heap_.push_back(entry{at_ns, seq, generation, fiber, no_slot});
    sift_up(heap_.size() - 1);
  }
  /// Removes `fiber`'s wait deadline if one is pending (it was woken before
  /// it, or killed): a wait that ended leaves nothing behind to fire or to
  /// preempt a running fiber, and the heap holds only live timers.
  void cancel_wake(std::uint32_t fiber) noexcept {
    if (fiber >= wake_pos_.size() || wake_pos_[fiber] == 0) return;
    remove_at(wake_pos_[fiber] - 1);
    AEGIS_ASSERT(wake_pos_[fiber] == 0, "a cancelled wait deadline leaves the heap");
  }
  /// Adds a callback timer.
  void push_callback(ns_t at_ns, std::uint64_t seq, std::function<void()> fn) {
    AEGIS_ASSERT(static_cast<bool>(fn), "a callback timer has a callback");
    std::uint32_t slot;
    if (!free_.empty()) {
      slot = free_.back();
      free_.pop_back();
      fns_[slot] = std::move(fn);
    } else {
      AEGIS_ASSERT(fns_.size() < no_slot, "fewer than 2^32 callback timers pending");
      slot = static_cast<std::uint32_t>(fns_.size());
      fns_.push_back(std::move(fn));
    }
    heap_.push_back(entry{at_ns, seq, 0, 0, slot});
    sift_up(heap_.size() - 1);
  }

  /// Removes the earliest timer and hands it over with its callback.
  fired pop() {
    AEGIS_ASSERT(!heap_.empty(), "pop() of an empty timer queue");
    fired out{heap_.front(), {}};
    remove_at(0);
    if (out.e.slot != no_slot) {
      out.fn = std::move(fns_[out.e.slot]);
      fns_[out.e.slot] = nullptr;
      free_.push_back(out.e.slot);
    }
    return out;
  }

 private:
  // (deadline, seq) is unique, so the firing order does not depend on the
  // heap's shape: only on when each timer was set.
  static bool before(const entry& a, const entry& b) noexcept {
    return a.at_ns != b.at_ns ? a.at_ns < b.at_ns : a.seq < b.seq;
  }
  void place(std::size_t i, const entry& e) noexcept {
    heap_[i] = e;
    if (e.slot == no_slot) wake_pos_[e.fiber] = static_cast<std::uint32_t>(i + 1);
  }
  void sift_up(std::size_t i) noexcept {
    const entry e = heap_[i];
    while (i > 0) {
      const std::size_t parent = (i - 1) / 2;
      if (!before(e, heap_[parent])) break;
      place(i, heap_[parent]);
      i = parent;
    }
    place(i, e);
  }
  void sift_down(std::size_t i) noexcept {
    const entry e = heap_[i];
    const std::size_t n = heap_.size();
    for (;;) {
      std::size_t child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && before(heap_[child + 1], heap_[child])) ++child;
      if (!before(heap_[child], e)) break;
      place(i, heap_[child]);
      i = child;
    }
    place(i, e);
  }
  void remove_at(std::size_t i) noexcept {
    AEGIS_ASSERT(i < heap_.size(), "removing a timer that is in the heap");
    if (heap_[i].slot == no_slot) wake_pos_[heap_[i].fiber] = 0;
    const entry last = heap_.back();
    heap_.pop_back();
    if (i == heap_.size()) return;
    heap_[i] = last;
    if (i > 0 && before(last, heap_[(i - 1) / 2])) {
      sift_up(i);
    } else {
      sift_down(i);
    }
  }

  std::vector<entry> heap_;
  std::vector<std::uint32_t> wake_pos_;  // By fiber: heap index + 1 of its wait deadline, 0 = none.
  std::vector<std::function<void()>> fns_;
  std::vector<std::uint32_t> free_;
};

}  // namespace aegis::sim
