// Mutation switches: deliberately broken variants of production code, used
// only to prove that the simulator, the properties and the real-process tests
// catch real bugs (ctest label `mutant`).
//
// Usage (inside a component templated on Env):
//   if (AEGIS_MUTANT(env_, "no_rewind")) return;   // the bug
//   ring_.rewind();                                 // the correct code
//
// A site is dead code in every normal build:
// - Env has `bool mutant(std::string_view) const` (the simulator): the run's
//   chosen mutant (`aegis-sim run --mutant NAME`), so one simulator binary can
//   exercise every variant without a rebuild. Normal runs choose none.
// - otherwise, the build defines AEGIS_MUTANT_NAME="name" (a dedicated mutant
//   build of aegis-core, for the real-process tests): a compile-time constant.
// - otherwise: the constant `false`, folded away by the compiler (the
//   static_assert below holds every such build to it).
//
// This header is the site alone. The list of mutants is test-side:
// `aegis::mutants` in testing/aegis/mutant_catalogue.hpp, also described in
// docs/FAULTS.md.
#pragma once

#include <concepts>
#include <string_view>

namespace aegis {

namespace detail {
#if defined(AEGIS_MUTANT_NAME)
inline constexpr std::string_view compiled_mutant = AEGIS_MUTANT_NAME;
#else
inline constexpr std::string_view compiled_mutant = {};
#endif
}  // namespace detail

namespace faults {
/// True when the named mutant is switched on for this environment.
template <class Env>
constexpr bool mutant_on([[maybe_unused]] const Env& env, std::string_view name) noexcept {
  if constexpr (requires { { env.mutant(name) } -> std::same_as<bool>; }) {
    return env.mutant(name);
  } else {
    return !detail::compiled_mutant.empty() && detail::compiled_mutant == name;
  }
}

namespace detail {
/// An environment with no `mutant()`, as every production environment is.
struct env_without_mutants {};
}  // namespace detail

static_assert(!::aegis::detail::compiled_mutant.empty() || !mutant_on(detail::env_without_mutants{}, "no_rewind"),
              "outside a dedicated mutant build, a mutant site in a production environment is the constant false");
}  // namespace faults
}  // namespace aegis

#define AEGIS_MUTANT(env, name) (::aegis::faults::mutant_on((env), (name)))
