// Proves the framework catches real bugs: for each deliberately broken
// variant of the production code (aegis::mutants, switched on per simulated
// run through AEGIS_MUTANT), the property search finds a failing case within
// a fixed budget of generated cases, and shrinks it. Each test prints, per
// mutant: time to detection, cases run, the shrunk schedule's length, and the
// failure with its replay line. A mutant that survives the budget fails its
// test: either the properties got weaker or the mutant became equivalent.
//
// Ring mutants are searched with the ring model under the simulator's
// interleavings (properties/ring_case.hpp); offloader mutants with whole
// generated scenarios (properties/scenario_gen.hpp).
// Rerun one with: build/release/properties/mutant_test --gtest_filter='Mutants/MutantIsCaught.Caught/no_rewind'
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <iostream>
#include <string>

#include "aegis/mutant_catalogue.hpp"
#include "properties/mutant_search.hpp"

namespace {

using aegis::admission;
using aegis::sim::fault_kind;

/// How one mutant is hunted.
struct hunt {
  std::string mutant;
  bool ring = false;                 ///< Ring model search instead of scenarios.
  aegis::props::gen_options gen{};   ///< Scenario searches: the generator.
  int max_cases = 0;                 ///< Budget of generated cases.
};

// Budgets: a few times the cases each mutant needed when measured, so the
// test is not flaky, and small enough that the whole target fits its share
// of the suite's time (docs/FAULTS.md has the measured figures).
const hunt hunts[] = {
    {"release_on_send", false, {.mode = admission::block}, 30},
    {"no_rewind", false, {.mode = admission::block}, 120},
    {"ring_wrap_off_by_one", true, {}, 300},
    {"skip_drop_count", true, {}, 300},
    {"publish_before_write", true, {}, 300},
    // Two incarnations answer one record only when a live bridge's queue is
    // resent: a second bridge alongside one that is frozen or slow past its
    // dead interval. The hunt aims at that.
    {"accept_duplicates", false, {.mode = admission::block, .fault_kinds = {fault_kind::twin, fault_kind::twin, fault_kind::stall, fault_kind::slow}}, 200},
    // Only data sent to a first incarnation that dies before its HELLO lands
    // needs the timeout (later restarts rewind): the hunt aims at start-up.
    {"ignore_retransmit_timeout", false, {.mode = admission::block, .allow_long_retransmit = false, .fault_window_ms = 60}, 200},
    // Only a core restart puts frames of another epoch on the wire (the
    // bridge's connecting PUSH delivers what it queued for the dead core to
    // the new one): the hunt draws restarts, and bridge faults beside them.
    {"accept_old_epoch", false, {.mode = admission::block, .allow_long_retransmit = false, .fault_kinds = {fault_kind::restart, fault_kind::restart, fault_kind::crash, fault_kind::stall}}, 40},
};

// gtest prints the parameter of a test by name, not as bytes.
void PrintTo(const hunt& h, std::ostream* os) { *os << h.mutant; }

/// Wall-clock budget for shrinking after detection.
constexpr double shrink_budget_s = 8.0;

class MutantIsCaught : public ::testing::TestWithParam<hunt> {};

TEST_P(MutantIsCaught, Caught) {
  const hunt& h = GetParam();
  const aegis::props::search_result r =
      h.ring ? aegis::props::search_ring(h.mutant, h.max_cases, 0x5eed, shrink_budget_s)
             : aegis::props::search_scenarios(h.mutant, h.gen, h.max_cases, 0x5eed, shrink_budget_s);
  std::cout << fmt::format("mutant {:<26} {}  time_to_detect={:.2f}s cases_to_detect={} shrunk_length={} total={:.2f}s\n",
                           h.mutant, r.caught ? "CAUGHT" : "SURVIVED", r.seconds_to_detect, r.cases_to_detect,
                           r.shrunk_length, r.seconds_total);
  if (r.caught) std::cout << r.description;
  EXPECT_TRUE(r.caught) << "mutant '" << h.mutant << "' survived " << h.max_cases << " generated cases";
}

INSTANTIATE_TEST_SUITE_P(Mutants, MutantIsCaught, ::testing::ValuesIn(hunts),
                         [](const ::testing::TestParamInfo<hunt>& i) { return i.param.mutant; });

// The epoch check matters only across a core restart: the property search
// without restarts (the offload property suite's generator) lets
// accept_old_epoch through, which is why the restart cases exist.
TEST(Mutants, AcceptOldEpochNeedsACoreRestart) {
  for (const admission mode : {admission::block, admission::drop}) {
    const aegis::props::search_result r =
        aegis::props::search_scenarios("accept_old_epoch", {.mode = mode}, 60, 0x5eed, shrink_budget_s);
    EXPECT_FALSE(r.caught) << "caught without a core restart:\n" << r.description;
  }
}

TEST(Mutants, EveryCataloguedMutantIsHunted) {
  for (const aegis::mutant_info& m : aegis::mutants) {
    bool hunted = false;
    for (const hunt& h : hunts) hunted |= h.mutant == m.name;
    EXPECT_TRUE(hunted) << "mutant '" << m.name << "' has no hunt in mutant_test.cpp";
  }
}

}  // namespace
