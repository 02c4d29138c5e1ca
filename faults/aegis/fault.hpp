// Fault sites: one way to mark a place in production code where the world may
// fail on purpose.
//
// Usage (inside a component templated on Env):
//   if (AEGIS_FAULT(env_, "transport.send")) return send_result::would_block;
//
// What a site compiles to depends on the environment and the build:
// - Env has `bool fault_fires(const char*)` (the simulator): the world's seeded,
//   recorded decision (each site activated once per run with a probability,
//   then firing at a rate).
// - otherwise, built with FIU_ENABLE (aegis-core's default): libfiu's
//   `fiu_fail(name)`, so `fiu-run`, `fiu-ctrl` and Python's `fiu_ctrl` can
//   switch the site on in a running process.
// - otherwise: the constant `false`; the site costs nothing.
//
// This header is the site alone. Every site name is catalogued in
// docs/FAULTS.md and, test-side, in `aegis::fault_sites`
// (testing/aegis/fault_catalogue.hpp).
#pragma once

#include <concepts>
#include <string_view>

#if defined(FIU_ENABLE)
#include <fiu.h>
#endif

namespace aegis {

namespace faults {
/// True when the fault at `name` should fire now. Zero cost when disabled.
template <class Env>
inline bool fires([[maybe_unused]] Env& env, [[maybe_unused]] const char* name) noexcept {
  if constexpr (requires { { env.fault_fires(name) } -> std::same_as<bool>; }) {
    return env.fault_fires(name);
  } else {
#if defined(FIU_ENABLE)
    return fiu_fail(name) != 0;
#else
    return false;
#endif
  }
}
}  // namespace faults
}  // namespace aegis

#define AEGIS_FAULT(env, name) (::aegis::faults::fires((env), (name)))
