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
// - otherwise: the constant `false`, folded away by the compiler.
//
// Every mutant is listed in `aegis::mutants` and in docs/FAULTS.md.
#pragma once

#include <array>
#include <concepts>
#include <string_view>

namespace aegis {

/// A deliberately broken variant and the bug it plants.
struct mutant_info {
  std::string_view name;         ///< Value for --mutant / AEGIS_MUTANT_NAME.
  std::string_view description;  ///< The bug, in words.
};

/// Every mutant site in production code.
inline constexpr std::array<mutant_info, 7> mutants = {{
    {"release_on_send", "the core releases a transaction when it is sent, not when its verdict arrives"},
    {"no_rewind", "no rewind and resend after a bridge restart or a bridge's death"},
    {"ring_wrap_off_by_one", "an off-by-one in the ring's full check at the wrap"},
    {"skip_drop_count", "the drop counter is skipped on one admission path"},
    {"publish_before_write", "the write cursor is published before the slot is written"},
    {"accept_duplicates", "duplicate verdicts are not ignored"},
    {"ignore_retransmit_timeout", "the retransmit timeout is ignored"},
}};

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
}  // namespace faults
}  // namespace aegis

#define AEGIS_MUTANT(env, name) (::aegis::faults::mutant_on((env), (name)))
