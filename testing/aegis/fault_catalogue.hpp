// The fault-site catalogue: every name production code passes to AEGIS_FAULT
// (the site macro is aegis/fault.hpp in faults/). Test-side: the simulator
// validates fault plans against it and draws swarm settings from it; the
// property suite generates fault plans from it. Production builds never see
// it.
//
// Usage (simulator and test code):
//   for (std::string_view site : aegis::fault_sites) known.emplace_back(site);
//
// properties/catalogue_test.cpp checks that this list, the AEGIS_FAULT sites
// in src/ and docs/FAULTS.md name the same sites.
#pragma once

#include <array>
#include <string_view>

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

}  // namespace aegis
