// Assertions that state their contract in words.
//
// Usage:
//   AEGIS_ASSERT(n <= capacity, "a batch never exceeds the ring capacity");
//
// AEGIS_ASSERT is always on: it guards cold paths, decoding and the simulator.
// AEGIS_DEBUG_ASSERT guards the hot path and compiles away in release builds
// (NDEBUG) unless AEGIS_ASSERTS_ALWAYS is defined (simulator and test builds).
#pragma once

#include <cstdio>
#include <cstdlib>

namespace aegis::detail {
[[noreturn]] inline void assert_fail(const char* expr, const char* msg, const char* file, int line) noexcept {
  std::fprintf(stderr, "%s:%d: assertion failed: %s\n  contract: %s\n", file, line, expr, msg);
  std::fflush(stderr);
  std::abort();
}
}  // namespace aegis::detail

#define AEGIS_ASSERT(cond, msg)                                                            \
  do {                                                                                     \
    if (!(cond)) [[unlikely]] ::aegis::detail::assert_fail(#cond, msg, __FILE__, __LINE__); \
  } while (0)

#if !defined(NDEBUG) || defined(AEGIS_ASSERTS_ALWAYS)
#define AEGIS_DEBUG_ASSERT(cond, msg) AEGIS_ASSERT(cond, msg)
#else
#define AEGIS_DEBUG_ASSERT(cond, msg) \
  do {                                \
  } while (0)
#endif
