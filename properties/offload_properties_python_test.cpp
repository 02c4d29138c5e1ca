// The claim of offload_properties_test, with the real bridge: every case runs
// the Python bridge's BridgeCore in the embedded interpreter (`--bridge
// python`, sim/python_bridge.hpp) instead of the C++ model, so the bridge's
// own decode, dedupe, incarnation, epoch and verdict code meets generated
// crashes, restarts, stalls, slowdowns and clogs.
// - block mode: nothing lost, exactly one verdict each, offload order per
//   incarnation, convergence after the heal, and the core rejects nothing
//   the (honest) bridge sent;
// - drop mode: every drop accounted for, the same rejection rule;
// - determinism: a case run twice in one process gives one trace hash.
// Fewer cases than the model's properties: a case costs several times more.
//
// A failure prints the `aegis-sim replay ...` line (it carries
// "bridge":"python") and rapidcheck's RC_PARAMS="reproduce=..." line:
//   RC_PARAMS="reproduce=..." build/release/properties/offload_properties_python_test
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

scenario with_python(scenario s) {
  s.bridge = bridge_kind::python;
  return s;
}


RC_GTEST_PROP(OffloadPropertiesPython, BlockModeLosesNothingAndConverges, ()) {
  check_case(with_python(*gen_scenario(gen_options{.mode = admission::block})));
}

RC_GTEST_PROP(OffloadPropertiesPython, DropModeAccountsForEveryDrop, ()) {
  check_case(with_python(*gen_scenario(gen_options{.mode = admission::drop})));
}

RC_GTEST_PROP(OffloadPropertiesPython, SameScenarioSameTraceHash, ()) {
  const admission mode = *rc::gen::element(admission::block, admission::drop);
  check_same_trace_hash(with_python(*gen_scenario(gen_options{.mode = mode, .duration_max_ns = 800'000'000})));
}

}  // namespace
