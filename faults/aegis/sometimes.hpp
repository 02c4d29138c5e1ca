// Rare-state marks ("sometimes" assertions, in the spirit of Antithesis):
// production code marks the moment it reaches a state that matters for
// correctness but that a healthy run seldom shows. The simulator counts the
// marks; the property suite fails when a catalogued state is never reached.
//
// Usage (inside a component templated on Env):
//   if (seen_incarnation(inc)) {
//     AEGIS_SOMETIMES(env_, "stale_incarnation_verdict_applied");
//     return;
//   }
//
// What a mark compiles to:
// - Env has `void reached(const char*)` (the simulator): the world counts it.
// - otherwise: nothing; the name is not even stored.
//
// This header is the mark alone, so production headers (installed with the
// library) carry no test catalogue. The catalogue of names, with the test
// files that report them, is `aegis::coverage_points` in
// testing/aegis/coverage.hpp (test-side).
#pragma once

namespace aegis::faults {
/// Reports reaching `name` when the environment records coverage.
template <class Env>
inline void reached([[maybe_unused]] Env& env, [[maybe_unused]] const char* name) {
  if constexpr (requires { env.reached(name); }) env.reached(name);
}
}  // namespace aegis::faults

#define AEGIS_SOMETIMES(env, name) (::aegis::faults::reached((env), (name)))
