// IpcRingBuffer: a bounded lock-free ring whose entries stay until released.
//
// Usage:
//   aegis::os_env env;
//   aegis::ring_buffer<txn, aegis::os_env> ring{env, 1024, aegis::admission::drop};
//   if (ring.push(t) == aegis::push_status::dropped_full) { /* count it */ }
//   // consumer thread:
//   ring.read(64, [](std::uint64_t pos, txn& t) { send(pos, t); });
//   ring.release(acked_up_to);   // entries [release, acked_up_to) destroyed
//   ring.rewind();               // re-read everything not yet released
//
// Three cursors, all monotonically increasing 64-bit positions (they never
// wrap in practice: 2^64 pushes at 1G/s is 584 years):
//
//     release <= read <= write,   write - release <= capacity
//
//   [release, read)  read by the consumer, not yet released (in flight)
//   [read, write)    published, not yet read
//
// A full ring counts unreleased entries, so a transport can keep every
// unacknowledged entry in place and resend it after a peer restart by
// calling rewind(). Position p lives in slot p & (capacity - 1).
//
// Publication. Every slot has a stamp beside it (a parallel array): position
// p is published when stamp[p & mask] == p + 1, stored with release after the
// entry is constructed. The consumer finds new entries by reading stamps and
// never reads the write cursor, so the producer's cursor line stays in the
// producer's cache: the only lines that cross cores per entry are the entry's
// own (and one stamp line per eight entries). When the consumer polled the
// write cursor instead, each push's store to it had to take the line back
// from the consumer first; with 256-byte entries that ownership round trip,
// not the copy, set the throughput (docs/RING.md).
//
// Producers. `single_producer` is the fast path: the producer owns `write_`,
// stores the stamp (release) and its cursor (relaxed) and never executes a
// CAS. `multi_producer` lets several threads share one ring: they claim a
// position with a CAS on `write_`, then construct and stamp their slots in
// any order; the consumer stops at the first unstamped position, so it still
// sees one contiguous sequence of positions. We chose a multi-producer variant over
// one ring per producer because the transport numbers transactions by ring
// position (seq = position + 1): one ring gives one contiguous sequence, one
// in-order resend after a restart, and one release cursor, where several
// rings would need a merge step and per-ring sequence spaces on the wire.
//
// Admission. `admission::drop` never waits: a full ring returns
// `dropped_full` at once. `admission::block` spins briefly, then parks through
// the environment's scheduler until the consumer releases space or the
// deadline passes (`timed_out`), or the ring is closed (`closed`).
//
// Counters are exact and may be read from any thread without locks:
// offered = accepted + dropped_full + timed_out + closed_rejects. The hot path
// stores no counter: every admitted entry advances the write cursor by one,
// so `accepted` is the write cursor and `offered` is the sum; only rejections
// (already off the fast path) increment a counter.
#pragma once

#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "aegis/assert.hpp"
#include "aegis/env.hpp"
#include "aegis/mutant.hpp"

namespace aegis {

/// What a full ring does with a new entry; set per instance (per deployment).
enum class admission : std::uint8_t {
  block,  ///< Wait (through the scheduler) until space frees or the deadline passes.
  drop,   ///< Return `push_status::dropped_full` immediately.
};

/// Outcome of an admission attempt. Only `accepted` put the entry in the ring.
enum class push_status : std::uint8_t {
  accepted,      ///< The entry is in the ring.
  dropped_full,  ///< The ring was full and the entry was not admitted (drop mode, or try_push).
  timed_out,     ///< Block mode: the deadline passed before space freed.
  closed,        ///< The ring was closed while waiting or before the call.
};

/// Human-readable name of a status, for logs and summaries.
constexpr const char* to_string(push_status s) noexcept {
  switch (s) {
    case push_status::accepted: return "accepted";
    case push_status::dropped_full: return "dropped_full";
    case push_status::timed_out: return "timed_out";
    case push_status::closed: return "closed";
  }
  return "?";
}

/// Producer policy: exactly one thread calls push/try_push at a time.
struct single_producer {};
/// Producer policy: any number of threads may push concurrently.
struct multi_producer {};

/// A consistent-enough snapshot of a ring's counters. Each field is exact at
/// the moment it was loaded; fields are loaded one after another.
struct ring_counters {
  std::uint64_t offered = 0;         ///< Admission attempts that have returned (accepted + every rejection).
  std::uint64_t accepted = 0;        ///< Entries admitted (the write cursor; multi_producer: positions claimed).
  std::uint64_t dropped_full = 0;    ///< Rejected because the ring was full.
  std::uint64_t timed_out = 0;       ///< Block mode: deadline passed while waiting.
  std::uint64_t closed = 0;          ///< Rejected because the ring was closed.
  std::uint64_t depth = 0;           ///< Published but not yet read (write - read).
  std::uint64_t unreleased = 0;      ///< Admitted but not yet released (write - release).
};

inline constexpr std::size_t cache_line_size = 64;

template <class T, environment Env, class Producers = single_producer>
class ring_buffer {
  static_assert(std::is_nothrow_move_constructible_v<T> || std::is_nothrow_copy_constructible_v<T>,
                "ring entries are constructed on the hot path and must not throw when moved");
  static_assert(std::is_same_v<Producers, single_producer> || std::is_same_v<Producers, multi_producer>,
                "Producers is single_producer or multi_producer");

  static constexpr bool is_mp = std::is_same_v<Producers, multi_producer>;
  using u64_atomic = typename Env::template atomic<std::uint64_t>;
  using u32_atomic = typename Env::template atomic<std::uint32_t>;

 public:
  using value_type = T;

  /// Spin iterations before a blocked producer or waiting consumer parks.
  static constexpr int spin_limit = 128;

  /// Creates a ring of `capacity` slots (a power of two, >= 2).
  ring_buffer(Env& env, std::size_t capacity, admission mode)
      : env_(env),
        write_(env, 0),
        dropped_full_(env, 0),
        timed_out_(env, 0),
        closed_rejects_(env, 0),
        read_(env, 0),
        release_(env, 0),
        space_word_(env, 0),
        space_waiters_(env, 0),
        data_word_(env, 0),
        consumer_waiting_(env, 0),
        closed_(env, 0),
        capacity_(checked_capacity(capacity)),
        mask_(capacity_ - 1),
        mode_(mode),
        slots_(std::allocator<T>{}.allocate(capacity_)),
        stamps_(static_cast<u64_atomic*>(::operator new(capacity_ * sizeof(u64_atomic), std::align_val_t{cache_line_size}))) {
    // Fault every page of the slot storage in now (zeros; no object lives
    // there yet). Untouched, the first lap of the ring takes one page fault
    // per 4 KiB of slots on the producers' hot path, ~10 us each on a VM:
    // with 80-byte entries that was the offload() p99.
    std::memset(static_cast<void*>(slots_), 0, capacity_ * sizeof(T));
    for (std::size_t i = 0; i < capacity_; ++i) std::construct_at(stamps_ + i, env, 0);
  }

  ring_buffer(const ring_buffer&) = delete;
  ring_buffer& operator=(const ring_buffer&) = delete;

  /// Destroys every entry still in the ring (released or not, read or not).
  ~ring_buffer() {
    static_assert(layout_ok(), "write, read and release cursors and the producer's counters must each sit on their own cache line");
    static_assert(alignof(ring_buffer) >= cache_line_size, "the ring must be cache-line aligned");
    const std::uint64_t w = write_.load(std::memory_order_acquire);
    for (std::uint64_t p = release_.load(std::memory_order_relaxed); p < w; ++p) {
      std::destroy_at(slot(p));
    }
    std::allocator<T>{}.deallocate(slots_, capacity_);
    for (std::size_t i = 0; i < capacity_; ++i) std::destroy_at(stamps_ + i);
    ::operator delete(stamps_, std::align_val_t{cache_line_size});
  }

  // ------------------------------------------------------------------ producer

  /// Admits `args...` constructed in place if there is space; never waits.
  /// Returns `accepted` or `dropped_full` (or `closed`).
  template <class... Args>
  [[nodiscard]] push_status try_emplace(Args&&... args) {
    if (try_claim_and_construct(std::forward<Args>(args)...)) return push_status::accepted;
    return reject_full();
  }

  /// `try_emplace` with a value.
  template <class U>
  [[nodiscard]] push_status try_push(U&& value) {
    return try_emplace(std::forward<U>(value));
  }

  /// Admits according to the ring's mode. Drop mode behaves as try_push. Block
  /// mode waits until space frees, `deadline_ns` passes or the ring closes.
  template <class U>
  [[nodiscard]] push_status push(U&& value, ns_t deadline_ns = no_deadline) {
    if (try_claim_and_construct(std::forward<U>(value))) [[likely]] return push_status::accepted;
    if (mode_ == admission::drop) {
      if (AEGIS_MUTANT(env_, "skip_drop_count")) return push_status::dropped_full;
      return reject_full();
    }
    return push_slow(std::forward<U>(value), deadline_ns);
  }

  /// Wakes every blocked producer and waiting consumer; later pushes that find
  /// the ring full return `closed` instead of waiting. Entries already in the
  /// ring stay readable. Idempotent, callable from any thread.
  void close() noexcept {
    closed_.store(1, std::memory_order_seq_cst);
    space_word_.fetch_add(1, std::memory_order_seq_cst);
    env_.unpark_all(space_word_);
    data_word_.fetch_add(1, std::memory_order_seq_cst);
    env_.unpark_all(data_word_);
  }

  /// True once close() was called.
  bool is_closed() const noexcept { return closed_.load(std::memory_order_acquire) != 0; }

  /// Producers parked right now waiting for space (block mode); for metrics and tests.
  std::uint32_t blocked_producers() const noexcept { return space_waiters_.load(std::memory_order_acquire); }

  // ------------------------------------------------------------------ consumer

  /// Number of published, unread entries (consumer's view, exact for the
  /// consumer). Counts stamps: O(entries); `has_readable()` asks for one.
  std::size_t readable() noexcept {
    const std::uint64_t r = read_.load(std::memory_order_relaxed);
    return static_cast<std::size_t>(published_limit(r, capacity_) - r);
  }

  /// True if the next entry is published (consumer only): one stamp load.
  bool has_readable() noexcept {
    const std::uint64_t r = read_.load(std::memory_order_relaxed);
    return stamps_[r & mask_].load(std::memory_order_acquire) == r + 1;
  }

  /// Reads up to `max` published entries in position order, calling
  /// `fn(position, T&)` for each, and advances the read cursor past them. The
  /// entries stay in the ring until released. Returns how many were read.
  template <class F>
  std::size_t read(std::size_t max, F&& fn) {
    const std::uint64_t r = read_.load(std::memory_order_relaxed);
    const std::uint64_t limit = published_limit(r, max);
    for (std::uint64_t p = r; p < limit; ++p) fn(p, *slot(p));
    if (limit != r) read_.store(limit, std::memory_order_release);
    return static_cast<std::size_t>(limit - r);
  }

  /// The entry at `position`, which must be in [release, read): read but not
  /// yet released. Consumer only.
  T& at(std::uint64_t position) noexcept {
    AEGIS_DEBUG_ASSERT(position >= release_.load(std::memory_order_relaxed), "entry already released");
    AEGIS_DEBUG_ASSERT(position < read_.load(std::memory_order_relaxed), "entry not read yet");
    return *slot(position);
  }

  /// Destroys the entries [release, upto) and frees their slots. `upto` must
  /// be in [release, read]. Wakes producers blocked on a full ring.
  void release(std::uint64_t upto) noexcept {
    const std::uint64_t rel = release_.load(std::memory_order_relaxed);
    AEGIS_DEBUG_ASSERT(upto >= rel, "release cursor must not move back");
    AEGIS_DEBUG_ASSERT(upto <= read_.load(std::memory_order_relaxed), "cannot release unread entries");
    if (upto == rel) return;
    for (std::uint64_t p = rel; p < upto; ++p) std::destroy_at(slot(p));
    release_.store(upto, std::memory_order_release);
    // Only block mode has producers waiting for space; drop mode skips the
    // full fence below, which would otherwise cost every consumer batch.
    if (mode_ == admission::drop) return;
    // Dekker pairing with push_slow: either the producer sees the new release
    // cursor, or we see its waiter registration and wake it.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (space_waiters_.load(std::memory_order_relaxed) != 0) {
      space_word_.fetch_add(1, std::memory_order_release);
      env_.unpark_all(space_word_);
    }
  }

  /// Moves the read cursor back to the release cursor: every read but
  /// unreleased entry will be read again, in position order.
  void rewind() noexcept { read_.store(release_.load(std::memory_order_relaxed), std::memory_order_release); }

  /// Waits until an entry is readable, the ring is closed or `deadline_ns`
  /// passes. Returns true if an entry is readable. Producers do not fence on
  /// the hot path, so a wake-up can be missed; the consumer therefore parks for
  /// at most `max_park_ns` at a time and re-checks.
  bool wait_readable(ns_t deadline_ns, ns_t max_park_ns = 1'000'000) {
    for (int spins = 0;; ++spins) {
      if (has_readable()) return true;
      if (is_closed()) return false;
      const ns_t now = env_.now_ns();
      if (now >= deadline_ns) return false;
      if (spins < spin_limit) {
        env_.spin_pause();
        continue;
      }
      const std::uint32_t seen = data_word_.load(std::memory_order_acquire);
      consumer_waiting_.store(1, std::memory_order_seq_cst);
      if (!has_readable() && !is_closed()) {
        const ns_t park_deadline = deadline_after(now, max_park_ns);
        env_.park(data_word_, seen, park_deadline < deadline_ns ? park_deadline : deadline_ns);
      }
      consumer_waiting_.store(0, std::memory_order_relaxed);
    }
  }

  // ------------------------------------------------------------------ any thread

  /// Capacity in entries.
  std::size_t capacity() const noexcept { return capacity_; }
  /// The ring's admission mode.
  admission mode() const noexcept { return mode_; }
  /// Write cursor: positions below it have been claimed by producers.
  std::uint64_t write_position() const noexcept { return write_.load(std::memory_order_acquire); }
  /// Read cursor.
  std::uint64_t read_position() const noexcept { return read_.load(std::memory_order_acquire); }
  /// Release cursor.
  std::uint64_t release_position() const noexcept { return release_.load(std::memory_order_acquire); }

  /// Snapshot of the counters; lock-free, callable from any thread.
  ring_counters counters() const noexcept {
    ring_counters c;
    c.dropped_full = dropped_full_.load(std::memory_order_relaxed);
    c.timed_out = timed_out_.load(std::memory_order_relaxed);
    c.closed = closed_rejects_.load(std::memory_order_relaxed);
    const std::uint64_t rel = release_.load(std::memory_order_acquire);
    const std::uint64_t r = read_.load(std::memory_order_acquire);
    const std::uint64_t w = write_.load(std::memory_order_acquire);
    c.accepted = w;  // Each admitted entry advanced the write cursor by exactly one.
    c.offered = c.accepted + c.dropped_full + c.timed_out + c.closed;
    c.depth = w >= r ? w - r : 0;  // Loaded in release, read, write order: never negative in truth.
    c.unreleased = w >= rel ? w - rel : 0;
    return c;
  }

  /// Layout facts, checked at compile time when the class is instantiated.
  static constexpr bool layout_ok() noexcept {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winvalid-offsetof"
    constexpr std::size_t w = offsetof(ring_buffer, write_);
    constexpr std::size_t r = offsetof(ring_buffer, read_);
    constexpr std::size_t rel = offsetof(ring_buffer, release_);
    constexpr std::size_t wait = offsetof(ring_buffer, space_word_);
    constexpr std::size_t counters = offsetof(ring_buffer, release_cache_);  // The producer's private line.
#pragma GCC diagnostic pop
    return r - w >= cache_line_size && rel - r >= cache_line_size && wait - rel >= cache_line_size &&
           counters - w >= cache_line_size && r - counters >= cache_line_size && counters % cache_line_size == 0 &&
           w % cache_line_size == 0 && r % cache_line_size == 0 && rel % cache_line_size == 0;
  }

 private:

  static std::size_t checked_capacity(std::size_t capacity) {
    if (capacity < 2 || (capacity & (capacity - 1)) != 0) {
      throw std::invalid_argument("ring_buffer capacity must be a power of two >= 2");
    }
    return capacity;
  }

  T* slot(std::uint64_t p) const noexcept { return slots_ + (p & mask_); }

  // Stamps that share a cache line (the stamp array is line-aligned), the
  // unit in which the consumer looks at them.
  static constexpr std::uint64_t stamps_per_line = cache_line_size / sizeof(u64_atomic);
  static_assert(cache_line_size % sizeof(u64_atomic) == 0 && (stamps_per_line & (stamps_per_line - 1)) == 0,
                "stamps must tile a cache line");

  // How far ahead of the write cursor the single producer prefetches: two
  // cache lines' worth of entries, or two entries when an entry spans more
  // (only an entry's first line is prefetched: prefetching all four lines of
  // a 256-byte entry measured slower). The multi-producer path does not
  // prefetch: a line ahead may be another producer's next slot.
  static constexpr std::uint64_t prefetch_ahead = sizeof(T) >= 2 * cache_line_size ? 2 : 2 * cache_line_size / sizeof(T);

  // A counter with a single writer (single producer) needs no RMW.
  void count(u64_atomic& c) noexcept {
    if constexpr (is_mp) {
      c.fetch_add(1, std::memory_order_relaxed);
    } else {
      c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
  }

  push_status reject_full() noexcept {
    if (is_closed()) [[unlikely]] {
      count(closed_rejects_);
      return push_status::closed;
    }
    count(dropped_full_);
    return push_status::dropped_full;
  }

  // The end of the published run that starts at the read cursor `r`, looking
  // at most `max` entries (and one lap) ahead.
  std::uint64_t published_limit(std::uint64_t r, std::size_t max) noexcept {
    // One lap at most: a stamp never matches a position a lap ahead, and
    // `r + max` must not wrap.
    const std::uint64_t end = r + (max < capacity_ ? max : capacity_);
    if constexpr (is_mp) {
      // Claimed in order, stamped in any order: stop at the first gap.
      while (r < end && stamps_[r & mask_].load(std::memory_order_acquire) == r + 1) ++r;
      return r;
    } else {
      // One producer stamps in position order, so stamp q (acquired) proves
      // every position before q published and visible. Look at the last
      // stamp of each stamp cache line: a match takes the whole line in one
      // load; a miss means the producer is in this line (or about to start
      // it), which is then scanned (it is in our cache now). No line past
      // that one is touched, so the producer's stores further on never first
      // have to take a line back from us. Galloping ahead instead cost
      // uint64_t throughput about half (docs/RING.md).
      std::uint64_t limit = r;
      while (limit < end) {
        std::uint64_t line_end = (limit | (stamps_per_line - 1)) + 1;
        if (line_end > end) line_end = end;
        if (stamps_[(line_end - 1) & mask_].load(std::memory_order_acquire) == line_end) {
          limit = line_end;
          continue;
        }
        while (limit < line_end && stamps_[limit & mask_].load(std::memory_order_acquire) == limit + 1) ++limit;
        break;
      }
      return limit;
    }
  }

  template <class... Args>
  bool try_claim_and_construct(Args&&... args) {
    if constexpr (is_mp) {
      std::uint64_t w = write_.load(std::memory_order_relaxed);
      for (;;) {
        if (w - release_.load(std::memory_order_acquire) >= full_at()) return false;
        if (write_.compare_exchange_weak(w, w + 1, std::memory_order_relaxed, std::memory_order_relaxed)) break;
      }
      if (AEGIS_MUTANT(env_, "publish_before_write")) [[unlikely]] {
        return publish_then_construct(stamps_[w & mask_], w, std::forward<Args>(args)...);
      }
      std::construct_at(slot(w), std::forward<Args>(args)...);
      stamps_[w & mask_].store(w + 1, std::memory_order_release);
    } else {
      const std::uint64_t w = write_.load(std::memory_order_relaxed);
      if (w - release_cache_ >= full_at()) {
        release_cache_ = release_.load(std::memory_order_acquire);
        if (w - release_cache_ >= full_at()) return false;
      }
      if (AEGIS_MUTANT(env_, "publish_before_write")) [[unlikely]] {
        write_.store(w + 1, std::memory_order_relaxed);
        return publish_then_construct(stamps_[w & mask_], w, std::forward<Args>(args)...);
      }
      // The slot lines ahead were last read by the consumer a lap ago and sit
      // in its cache: ask for them for writing now, so that the store a few
      // pushes later does not wait for the line to cross cores.
      __builtin_prefetch(slot(w + prefetch_ahead), 1, 3);
      std::construct_at(slot(w), std::forward<Args>(args)...);
      // The cursor first: whoever sees the stamp (acquire) sees the cursor
      // past it, so read <= write holds for every reader of the counters.
      // Nobody polls the cursor, so this store stays in our cache.
      write_.store(w + 1, std::memory_order_relaxed);
      stamps_[w & mask_].store(w + 1, std::memory_order_release);
    }
    if (consumer_waiting_.load(std::memory_order_relaxed) != 0) [[unlikely]] {
      data_word_.fetch_add(1, std::memory_order_release);
      env_.unpark_all(data_word_);
    }
    return true;
  }

  template <class U>
  push_status push_slow(U&& value, ns_t deadline_ns) {
    for (int spins = 0;; ++spins) {
      if (is_closed()) {
        count(closed_rejects_);
        return push_status::closed;
      }
      if (spins < spin_limit) {
        env_.spin_pause();
      } else {
        const std::uint32_t seen = space_word_.load(std::memory_order_acquire);
        space_waiters_.fetch_add(1, std::memory_order_seq_cst);
        bool in_time = true;
        if (!has_space_seq_cst() && !is_closed()) in_time = env_.park(space_word_, seen, deadline_ns);
        space_waiters_.fetch_sub(1, std::memory_order_relaxed);
        if (!in_time && !has_space_seq_cst()) {
          count(timed_out_);
          return push_status::timed_out;
        }
      }
      if (env_.now_ns() >= deadline_ns && !has_space_seq_cst()) {
        count(timed_out_);
        return push_status::timed_out;
      }
      if (try_claim_and_construct(std::forward<U>(value))) return push_status::accepted;
    }
  }

  // Mutant "ring_wrap_off_by_one": the full check lets one entry too many in,
  // overwriting the oldest unreleased slot at the wrap. Plain capacity otherwise.
  std::uint64_t full_at() const noexcept { return capacity_ + (AEGIS_MUTANT(env_, "ring_wrap_off_by_one") ? 1 : 0); }

  // Mutant "publish_before_write" only: stamps position w, runs the
  // consumer wake-up check, and only then writes the slot, so a consumer can
  // read it unwritten. Never used by a correct build.
  template <class... Args>
  bool publish_then_construct(u64_atomic& stamp, std::uint64_t w, Args&&... args) {
    stamp.store(w + 1, std::memory_order_release);
    if (consumer_waiting_.load(std::memory_order_relaxed) != 0) {
      data_word_.fetch_add(1, std::memory_order_release);
      env_.unpark_all(data_word_);
    }
    std::construct_at(slot(w), std::forward<Args>(args)...);
    return true;
  }

  bool has_space_seq_cst() noexcept {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    return write_.load(std::memory_order_relaxed) - release_.load(std::memory_order_acquire) < capacity_;
  }

  Env& env_;

  // Each cursor sits on its own cache line. The producer caches the release
  // cursor and reads the real one only when the ring looks full; the
  // consumer never reads write_ (it reads stamps), which other threads read
  // only for counters. The producer's cache and rejection counters get a
  // line of their own.
  alignas(cache_line_size) u64_atomic write_;

  alignas(cache_line_size) std::uint64_t release_cache_ = 0;  // Producer-private (single producer only).
  u64_atomic dropped_full_;
  u64_atomic timed_out_;
  u64_atomic closed_rejects_;

  alignas(cache_line_size) u64_atomic read_;

  alignas(cache_line_size) u64_atomic release_;

  alignas(cache_line_size) u32_atomic space_word_;
  u32_atomic space_waiters_;
  u32_atomic data_word_;
  u32_atomic consumer_waiting_;
  u32_atomic closed_;

  alignas(cache_line_size) const std::size_t capacity_;
  const std::uint64_t mask_;
  const admission mode_;
  T* const slots_;
  u64_atomic* const stamps_;  // stamps_[p & mask_] == p + 1 once position p is published.
};

}  // namespace aegis
