// Environment policies: everything production code may not touch directly.
//
// Usage:
//   aegis::os_env env;                         // production: real clock, threads
//   aegis::ns_t t = env.now_ns();
//   aegis::ring_buffer<txn, aegis::os_env> ring{env, 1024, aegis::admission::block};
//
// A component that waits, reads time, starts threads or shares memory between
// threads is a template over an environment type `Env` and holds an `Env&`.
// Production instantiates it with `os_env` (a plain alias, no virtual call);
// a simulator instantiates it with its own policy whose every call is a
// deterministic yield point of a seeded fiber scheduler. The concepts below
// are deliberately small so that a single-threaded simulator can model them.
#pragma once

#include <atomic>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <limits>
#include <string_view>
#include <thread>
#include <utility>

namespace aegis {

/// Time everywhere in Aegis: signed 64-bit integer nanoseconds. No doubles.
using ns_t = std::int64_t;

/// A deadline that never arrives.
inline constexpr ns_t no_deadline = std::numeric_limits<ns_t>::max();

/// Saturating `now + duration`, so `now + no_deadline` stays `no_deadline`.
constexpr ns_t deadline_after(ns_t now_ns, ns_t duration_ns) noexcept {
  if (duration_ns >= no_deadline - now_ns) return no_deadline;
  return now_ns + duration_ns;
}

// ---------------------------------------------------------------------------
// Concepts. Each states what an implementation must guarantee.
// ---------------------------------------------------------------------------

/// Clock: `now_ns()` is monotonic (never decreases between two calls on any
/// thread of the same environment) and measured in nanoseconds from an
/// arbitrary origin. `sleep_until_ns(t)` returns no earlier than `now_ns() >= t`
/// (in the simulator: once virtual time has reached t; other fibers run meanwhile).
template <class E>
concept clock_policy = requires(E& e, ns_t t) {
  { e.now_ns() } noexcept -> std::same_as<ns_t>;
  { e.sleep_until_ns(t) } -> std::same_as<void>;
};

/// Atomics: `E::atomic<T>` behaves like `std::atomic<T>` (load, store,
/// fetch_add, exchange, compare_exchange_strong/weak with memory orders) and is
/// constructed as `atomic<T>{env, initial}`. The simulator's version makes every
/// operation a scheduling point, so interleavings of the ring's producer and
/// consumer are explored; production's is `std::atomic<T>` itself.
template <class E>
concept atomics_policy = requires(E& e) {
  typename E::template atomic<std::uint64_t>;
  typename E::template atomic<std::uint32_t>;
  requires std::constructible_from<typename E::template atomic<std::uint64_t>, E&, std::uint64_t>;
  requires std::constructible_from<typename E::template atomic<std::uint32_t>, E&, std::uint32_t>;
};

/// Scheduler:
/// - `spin_pause()`: one iteration of a spin loop. A CPU relax hint in
///   production; a yield to another fiber in the simulator. Must never block.
/// - `yield()`: give up the CPU to another runnable thread.
/// - `park(word, expected, deadline)`: if `word == expected`, sleep until
///   another thread calls `unpark_all(word)` or `now_ns() >= deadline`.
///   Returns false only when the deadline passed. Spurious wake-ups are
///   allowed (callers re-check their condition), lost wake-ups are not: an
///   unpark that follows a change of `word` always wakes a parked thread.
/// - `unpark_all(word)`: wake every thread parked on `word`.
/// - `spawn(name, fn)`: start a thread (fiber in the simulator) running fn;
///   the returned handle has `join()`.
template <class E>
concept scheduler_policy =
    atomics_policy<E> &&
    requires(E& e, typename E::template atomic<std::uint32_t>& word, std::uint32_t v, ns_t t,
             std::function<void()> fn) {
      { e.spin_pause() } -> std::same_as<void>;
      { e.yield() } -> std::same_as<void>;
      { e.park(word, v, t) } -> std::same_as<bool>;
      { e.unpark_all(word) } -> std::same_as<void>;
      { e.spawn(std::string_view{}, std::move(fn)) };
      { e.spawn(std::string_view{}, std::move(fn)).join() };
    };

/// The full environment the ring buffer needs.
template <class E>
concept environment = clock_policy<E> && atomics_policy<E> && scheduler_policy<E>;

// ---------------------------------------------------------------------------
// Production policy.
// ---------------------------------------------------------------------------

namespace detail {
/// `std::atomic<T>` that can be constructed the way the policy requires.
/// Adds no state and no behaviour.
template <class T, class Env>
struct os_atomic : std::atomic<T> {
  constexpr os_atomic(Env&, T initial) noexcept : std::atomic<T>(initial) {}
  using std::atomic<T>::operator=;
};
}  // namespace detail

/// Production environment: `std::chrono::steady_clock`, `std::thread`,
/// futex-backed parking (`std::atomic::wait` cannot time out, so park uses
/// the futex syscall directly with a timeout). Stateless: holding an `os_env&`
/// costs one pointer and every call inlines.
struct os_env {
  template <class T>
  using atomic = detail::os_atomic<T, os_env>;

  /// Monotonic nanoseconds from `std::chrono::steady_clock`.
  ns_t now_ns() const noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  /// Sleeps until steady_clock reaches `deadline_ns`.
  void sleep_until_ns(ns_t deadline_ns) const {
    if (deadline_ns == no_deadline) {
      for (;;) std::this_thread::sleep_for(std::chrono::hours(24));
    }
    std::this_thread::sleep_until(std::chrono::steady_clock::time_point(
        std::chrono::nanoseconds(deadline_ns)));
  }

  /// CPU relax hint for spin loops.
  void spin_pause() const noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }

  /// `sched_yield`.
  void yield() const noexcept { std::this_thread::yield(); }

  /// Futex wait on `word` while it equals `expected`, until `deadline_ns`.
  bool park(atomic<std::uint32_t>& word, std::uint32_t expected, ns_t deadline_ns) const noexcept;

  /// Futex wake of every waiter on `word`.
  void unpark_all(atomic<std::uint32_t>& word) const noexcept;

  /// Starts a `std::thread` (the name is set with pthread_setname_np, 15 chars).
  std::thread spawn(std::string_view name, std::function<void()> fn) const;
};

static_assert(environment<os_env>, "os_env must model the full environment policy");
static_assert(sizeof(os_env::atomic<std::uint64_t>) == sizeof(std::atomic<std::uint64_t>),
              "the production atomic adds no state");

}  // namespace aegis
