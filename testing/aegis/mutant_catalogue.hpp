// The mutant catalogue: every deliberately broken variant planted in
// production code with AEGIS_MUTANT (the site macro is aegis/mutant.hpp in
// faults/), with the bug it plants. Test-side: production builds never see
// it, so a production header names no test-only list.
//
// Usage (simulator and test code):
//   for (const aegis::mutant_info& m : aegis::mutants) choices.emplace_back(m.name);
//
// `aegis-sim run --mutant` and `aegis-sim chaos --mutant` accept exactly these
// names; properties/mutant_test.cpp requires each one to be caught; and
// properties/catalogue_test.cpp checks that this list, the AEGIS_MUTANT sites
// in src/ and docs/FAULTS.md name the same mutants.
#pragma once

#include <array>
#include <string_view>

namespace aegis {

/// A deliberately broken variant and the bug it plants.
struct mutant_info {
  std::string_view name;         ///< Value for --mutant / AEGIS_MUTANT_NAME.
  std::string_view description;  ///< The bug, in words.
};

/// Every mutant site in production code.
inline constexpr std::array<mutant_info, 8> mutants = {{
    {"release_on_send", "the core releases a transaction when it is sent, not when its verdict arrives"},
    {"no_rewind", "no rewind and resend after a bridge restart or a bridge's death"},
    {"ring_wrap_off_by_one", "an off-by-one in the ring's full check at the wrap"},
    {"skip_drop_count", "the drop counter is skipped on one admission path"},
    {"publish_before_write", "the write cursor is published before the slot is written"},
    {"accept_duplicates", "duplicate verdicts are not ignored"},
    {"ignore_retransmit_timeout", "the retransmit timeout is ignored"},
    {"accept_old_epoch", "a VERDICT frame of another core epoch (a restarted core's predecessor) is applied, not rejected"},
}};

/// Mutants planted in the Python bridge's BridgeCore (src/aegis_bridge/core.py,
/// MUTANTS; docs/FAULTS.md, "Bridge mutants"). The simulator runs them with
/// `--bridge python` only: the C++ bridge model has no such site.
inline constexpr std::array<mutant_info, 1> bridge_mutants = {{
    {"wrong_seq_on_resend", "the bridge's first answer to a resent record carries seq + 1"},
}};

/// True when `name` is one of bridge_mutants.
constexpr bool is_bridge_mutant(std::string_view name) noexcept {
  for (const mutant_info& m : bridge_mutants) {
    if (m.name == name) return true;
  }
  return false;
}

}  // namespace aegis
