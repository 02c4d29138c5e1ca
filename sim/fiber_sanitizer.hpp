// Tells AddressSanitizer and ThreadSanitizer about the simulator's fiber
// switches, so the whole simulator runs under both (docs/HARDENING.md).
//
// Usage (world.cpp is the only user):
//   detail::fiber_sanitizer_state san;             // one per fiber
//   { detail::entering_fiber g{san, stack}; resume(); }  // scheduler: run the fiber until it switches back
//   { detail::leaving_fiber g{san}; resume(); }     // fiber: give the CPU back, resume later
//   detail::fiber_started(san);                      // first thing the fiber's body does
//   detail::fiber_ending(san);                       // last thing before the fiber leaves for good
//
// Why: a Boost.Context switch moves the stack pointer to another stack behind
// the sanitizers' backs. ASan then misjudges which stack it is on (false stack
// reports, "ignoring requested __asan_handle_no_return" when a killed fiber is
// unwound by an exception), and TSan keeps one shadow call stack and one
// vector clock where there are many. Debian's libboost_context is built for
// fcontext only, so Boost's own BOOST_USE_ASAN (ucontext) mode does not link;
// the annotations are made here instead, at every switch the world makes.
//
// Zero cost without a sanitizer: the state is an empty struct and every
// function body is empty, decided at compile time by the macros g++ and clang
// define under -fsanitize=address / -fsanitize=thread.
#pragma once

#include <boost/context/stack_context.hpp>

#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
#define AEGIS_SIM_ASAN_FIBERS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define AEGIS_SIM_ASAN_FIBERS 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define AEGIS_SIM_TSAN_FIBERS 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define AEGIS_SIM_TSAN_FIBERS 1
#endif
#endif

#if defined(AEGIS_SIM_ASAN_FIBERS)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(AEGIS_SIM_TSAN_FIBERS)
#include <sanitizer/tsan_interface.h>
#endif

#include "aegis/assert.hpp"

namespace aegis::sim::detail {

/// True when this translation unit annotates fiber switches for ASan.
#if defined(AEGIS_SIM_ASAN_FIBERS)
inline constexpr bool asan_fibers = true;
#else
inline constexpr bool asan_fibers = false;
#endif
/// True when this translation unit annotates fiber switches for TSan.
#if defined(AEGIS_SIM_TSAN_FIBERS)
inline constexpr bool tsan_fibers = true;
#else
inline constexpr bool tsan_fibers = false;
#endif

/// What the sanitizers need to know about one fiber; empty without them.
struct fiber_sanitizer_state {
#if defined(AEGIS_SIM_ASAN_FIBERS)
  void* fake_stack = nullptr;          ///< ASan: this fiber's fake stack while it is switched out.
  const void* return_bottom = nullptr; ///< ASan: lowest address of the stack this fiber switches back to.
  std::size_t return_size = 0;         ///< ASan: size of that stack.
#endif
#if defined(AEGIS_SIM_TSAN_FIBERS)
  void* tsan_fiber = nullptr;          ///< TSan: the fiber's own context (shadow stack, clock).
#endif
};

/// A new fiber's sanitizer state (TSan: its own context). Call before the
/// Boost fiber is constructed: construction already jumps into it once.
inline void fiber_created(fiber_sanitizer_state& s) {
#if defined(AEGIS_SIM_TSAN_FIBERS)
  AEGIS_ASSERT(s.tsan_fiber == nullptr, "a fiber's TSan context is created once");
  s.tsan_fiber = __tsan_create_fiber(0);
  AEGIS_ASSERT(s.tsan_fiber != nullptr, "TSan creates the fiber context");
#endif
  (void)s;
}

/// Releases the fiber's sanitizer state; the fiber is not running and never runs again.
inline void fiber_destroyed(fiber_sanitizer_state& s) {
#if defined(AEGIS_SIM_TSAN_FIBERS)
  AEGIS_ASSERT(s.tsan_fiber != __tsan_get_current_fiber(), "a fiber's TSan context is destroyed from outside it");
  if (s.tsan_fiber != nullptr) __tsan_destroy_fiber(s.tsan_fiber);
  s.tsan_fiber = nullptr;
#endif
  (void)s;
}

/// Scope around a call that jumps into a fiber and returns when the fiber
/// switches back (resume), ends, or is unwound (destroying its continuation);
/// `stack` is the fiber's stack, or null for the jump Boost makes while it
/// constructs the fiber (ASan then needs no annotation: nothing in it throws).
///
/// ASan: start before the jump, finish after it, on this side; the fiber side
/// pairs them with `fiber_started`/`leaving_fiber`/`fiber_ending`.
/// TSan: the caller switches TSan to the fiber before the jump and back after
/// it, so every instrumented frame between (Boost's `resume()` on both sides,
/// the unwinding) enters and leaves on the same TSan context and the shadow
/// stacks stay balanced. Switches synchronise (flag 0): fibers of one world
/// are one thread taking turns, so they are ordered.
class entering_fiber {
 public:
  /// Announces the jump into the fiber whose state is `s` and whose stack is `stack`.
  entering_fiber(fiber_sanitizer_state& s, const boost::context::stack_context* stack) {
#if defined(AEGIS_SIM_ASAN_FIBERS)
    annotated_ = stack != nullptr;
    if (annotated_) {
      AEGIS_ASSERT(stack->sp != nullptr && stack->size > 0, "an ASan switch names the fiber's live stack");
      __sanitizer_start_switch_fiber(&fake_stack_, static_cast<char*>(stack->sp) - stack->size, stack->size);
    }
#endif
#if defined(AEGIS_SIM_TSAN_FIBERS)
    AEGIS_ASSERT(s.tsan_fiber != nullptr, "the fiber has a TSan context (fiber_created)");
    previous_ = __tsan_get_current_fiber();
    __tsan_switch_to_fiber(s.tsan_fiber, 0);
#endif
    (void)s;
    (void)stack;
  }
  /// Back on this side of the jump.
  ~entering_fiber() {
#if defined(AEGIS_SIM_ASAN_FIBERS)
    if (annotated_) __sanitizer_finish_switch_fiber(fake_stack_, nullptr, nullptr);
#endif
#if defined(AEGIS_SIM_TSAN_FIBERS)
    __tsan_switch_to_fiber(previous_, 0);
#endif
  }
  entering_fiber(const entering_fiber&) = delete;
  entering_fiber& operator=(const entering_fiber&) = delete;

 private:
#if defined(AEGIS_SIM_ASAN_FIBERS)
  void* fake_stack_ = nullptr;
  bool annotated_ = false;
#endif
#if defined(AEGIS_SIM_TSAN_FIBERS)
  void* previous_ = nullptr;
#endif
};

/// Scope, inside a running fiber, around the jump back to whoever resumed it;
/// it ends when the fiber is resumed again, or when it is unwound (a
/// `forced_unwind` thrown out of the jump: the destructor still finishes the
/// ASan switch before the exception travels on). TSan: nothing here, the
/// resuming side switches (see `entering_fiber`).
class leaving_fiber {
 public:
  /// Announces the jump out of the running fiber whose state is `s`.
  explicit leaving_fiber(fiber_sanitizer_state& s) : s_(s) {
#if defined(AEGIS_SIM_ASAN_FIBERS)
    AEGIS_ASSERT(s_.return_bottom != nullptr, "the fiber knows the stack it returns to (fiber_started)");
    __sanitizer_start_switch_fiber(&s_.fake_stack, s_.return_bottom, s_.return_size);
#endif
  }
  /// Running again (or being unwound).
  ~leaving_fiber() {
#if defined(AEGIS_SIM_ASAN_FIBERS)
    // The resumer may differ from last time (a fiber of another process kills it).
    __sanitizer_finish_switch_fiber(s_.fake_stack, &s_.return_bottom, &s_.return_size);
#endif
  }
  leaving_fiber(const leaving_fiber&) = delete;
  leaving_fiber& operator=(const leaving_fiber&) = delete;

 private:
  fiber_sanitizer_state& s_;
};

/// The first thing a fiber does on its own stack (ASan: finish the switch that
/// started it, and remember the resumer's stack).
inline void fiber_started(fiber_sanitizer_state& s) {
#if defined(AEGIS_SIM_ASAN_FIBERS)
  __sanitizer_finish_switch_fiber(nullptr, &s.return_bottom, &s.return_size);
  AEGIS_ASSERT(s.return_bottom != nullptr && s.return_size > 0, "ASan reports the resumer's stack");
#endif
  (void)s;
}

/// The last thing a fiber does before it leaves for good, by returning or by
/// being unwound (ASan: no fake stack to keep, the stack is about to be freed).
inline void fiber_ending(fiber_sanitizer_state& s) {
#if defined(AEGIS_SIM_ASAN_FIBERS)
  AEGIS_ASSERT(s.return_bottom != nullptr, "the fiber knows the stack it returns to");
  __sanitizer_start_switch_fiber(nullptr, s.return_bottom, s.return_size);
#endif
  (void)s;
}

/// Called before a fiber stack's memory is unmapped: frames that never
/// returned (every fiber's entry frame, abandoned fibers) leave their redzones
/// poisoned in ASan's shadow, and a later mapping at the same address (the next
/// fiber's stack, a large heap block) would inherit them as false reports.
inline void stack_released(const boost::context::stack_context& stack) noexcept {
#if defined(AEGIS_SIM_ASAN_FIBERS)
  ASAN_UNPOISON_MEMORY_REGION(static_cast<char*>(stack.sp) - stack.size, stack.size);
#endif
  (void)stack;
}

}  // namespace aegis::sim::detail
