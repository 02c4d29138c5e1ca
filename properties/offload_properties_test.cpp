// Proves the claim Aegis exists to make, on the production offloader running
// inside the deterministic simulator, for fault schedules rapidcheck generates
// (bridge crashes, restart bursts, stalls on both sides of the retransmit
// timeout, slow scoring, channel clogs, clock stalls, fault-site bursts, and
// core restarts with a new epoch while the bridge lives on):
// - block mode: every accepted transaction gets exactly one verdict, nothing
//   is dropped, each bridge incarnation receives transactions in offload
//   order, and the run converges after the heal;
// - drop mode: offered = verdicts + expired + dropped exactly, the dropped ids
//   are exactly those offload() reported, and the core's counters equal the
//   sizes of those sets;
// - across core restarts, both modes: per core epoch, every accepted
//   transaction has its fate from that epoch or died with its core, and only
//   frames of an earlier epoch are rejected (as wrong_epoch);
// - determinism: any generated case run twice gives the same trace hash.
// The checks themselves live in sim/checked_run.cpp so `aegis-sim replay`
// judges a case exactly as these properties do.
//
// A failure shrinks to a minimal schedule and prints it, the simulator seed,
// the `aegis-sim replay ...` line, and rapidcheck's RC_PARAMS="reproduce=..."
// line; either replays the case:
//   RC_PARAMS="reproduce=..." build/release/properties/offload_properties_test --gtest_filter='OffloadProperties.*'
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>


#include "properties/scenario_checks.hpp"
#include "properties/scenario_gen.hpp"
#include "sim/checked_run.hpp"
#include "sim/runner.hpp"

namespace {

using aegis::admission;
using aegis::props::gen_options;
using aegis::props::gen_scenario;
using aegis::props::check_case;
using aegis::props::check_same_trace_hash;
using namespace aegis::sim;


RC_GTEST_PROP(OffloadProperties, BlockModeLosesNothingAndConverges, ()) {
  check_case(*gen_scenario(gen_options{.mode = admission::block}));
}

RC_GTEST_PROP(OffloadProperties, DropModeAccountsForEveryDrop, ()) {
  check_case(*gen_scenario(gen_options{.mode = admission::drop}));
}

// Core restarts: the core process dies (its ring, and what it accepted but
// had not finished, die with it) and a new one with a new epoch starts while
// the bridge lives on, still holding answers for the dead core. Each epoch
// owes exactly what it accepted (the runner settles a dead epoch's books at
// its death: every accepted transaction has its fate or died with that
// core), no fate crosses epochs, and the old answers the bridge's connecting
// PUSH delivers to the new core are rejected as wrong_epoch, exactly those.
// A new core's first bridge incarnation triggers no rewind (docs/PROTOCOL.md),
// so one that dies unannounced right after a restart is recovered by the
// safety timer only: these cases keep the retransmit timeout within the run.
const std::vector<fault_kind> restart_kinds = {fault_kind::restart, fault_kind::restart, fault_kind::crash,
                                               fault_kind::stall,   fault_kind::slow,    fault_kind::clog_verdict,
                                               fault_kind::twin};

RC_GTEST_PROP(OffloadProperties, BlockModeEachCoreEpochOwesWhatItAccepted, ()) {
  check_case(*gen_scenario(gen_options{.mode = admission::block, .allow_long_retransmit = false, .fault_kinds = restart_kinds}));
}

RC_GTEST_PROP(OffloadProperties, DropModeEachCoreEpochOwesWhatItAccepted, ()) {
  check_case(*gen_scenario(gen_options{.mode = admission::drop, .fault_kinds = restart_kinds}));
}

RC_GTEST_PROP(OffloadProperties, SameScenarioSameTraceHash, ()) {
  const admission mode = *rc::gen::element(admission::block, admission::drop);
  check_same_trace_hash(*gen_scenario(gen_options{.mode = mode, .duration_max_ns = 800'000'000}));
}

}  // namespace
