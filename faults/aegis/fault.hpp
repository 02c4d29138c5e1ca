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
// Every site name is catalogued in docs/FAULTS.md and in `aegis::fault_sites`.
#pragma once

#include <array>
#include <concepts>
#include <string_view>

#if defined(FIU_ENABLE)
#include <fiu.h>
#endif

namespace aegis {

/// Every fault site in production code. docs/FAULTS.md describes each one.
inline constexpr std::array<std::string_view, 6> fault_sites = {
    "transport.send",        // offload socket send fails (EAGAIN or error)
    "transport.recv",        // verdict socket receive fails
    "transport.alloc",       // an allocation the pump makes fails (std::bad_alloc)
    "pump.slow",             // one pump iteration takes far longer than usual
    "clock.stall",           // the pump sees the clock stand still for a while
    "transport.send_error",  // offload socket send fails with a hard error
};

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
