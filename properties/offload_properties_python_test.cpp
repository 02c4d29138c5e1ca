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

#include <fmt/format.h>

#include "properties/scenario_gen.hpp"
#include "sim/checked_run.hpp"
#include "sim/runner.hpp"

namespace {

using aegis::admission;
using aegis::props::gen_options;
using aegis::props::gen_scenario;
using namespace aegis::sim;

scenario with_python(scenario s) {
  s.bridge = bridge_kind::python;
  return s;
}

void check_case(const scenario& s) {
  const checked_result r = run_checked_isolated(s);
  if (r.exit_code != exit_pass) RC_FAIL(describe_failure(s, r));
}

RC_GTEST_PROP(OffloadPropertiesPython, BlockModeLosesNothingAndConverges, ()) {
  check_case(with_python(*gen_scenario(gen_options{.mode = admission::block})));
}

RC_GTEST_PROP(OffloadPropertiesPython, DropModeAccountsForEveryDrop, ()) {
  check_case(with_python(*gen_scenario(gen_options{.mode = admission::drop})));
}

RC_GTEST_PROP(OffloadPropertiesPython, SameScenarioSameTraceHash, ()) {
  const admission mode = *rc::gen::element(admission::block, admission::drop);
  const scenario s = with_python(*gen_scenario(gen_options{.mode = mode, .duration_max_ns = 800'000'000}));
  const run_report a = run_scenario(s, {});
  const run_report b = run_scenario(s, {});
  RC_ASSERT(a.events == b.events);
  if (a.trace_hash != b.trace_hash) {
    RC_FAIL(fmt::format("trace hashes differ: {:016x} then {:016x}\n  replay: {}", a.trace_hash, b.trace_hash,
                        replay_command(s)));
  }
}

}  // namespace
