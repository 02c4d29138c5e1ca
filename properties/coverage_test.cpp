// Proves the fault schedules the property suite generates actually reach the
// rare states that matter ("sometimes" assertions, in the spirit of
// Antithesis): a property that passes without ever crashing the bridge while
// the ring is full has proven nothing about that case. The catalogue is
// aegis::coverage_points (testing/aegis/coverage.hpp); production code, the
// runner and the bridge model report each state through AEGIS_SOMETIMES /
// world::reached.
//
// The test runs a fixed, deterministic batch of cases drawn from the same
// generators the properties use (sampled with fixed seeds, so it cannot
// flake), plus the regression corpus and ring cases under the simulator scheduler, prints every state
// with how many runs reached it, and fails naming each state never reached.
// Rerun with: build/release/properties/coverage_test
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <map>
#include <string>

#include "aegis/coverage.hpp"
#include "properties/ring_case.hpp"
#include "properties/scenario_gen.hpp"
#include "sim/checked_run.hpp"
#include "sim/schedule.hpp"

namespace {

using aegis::admission;
using namespace aegis::sim;

/// Generated cases per mode (plus the corpus): every state is reached, and
/// the rarest by several runs, at these counts.
constexpr std::uint64_t cases_per_mode = 40;
constexpr std::uint64_t ring_cases = 60;

TEST(Coverage, EveryCataloguedRareStateIsReached) {
  std::map<std::string, std::uint64_t> runs_reaching;
  auto add = [&](const std::vector<std::pair<std::string, std::uint64_t>>& cov) {
    for (const auto& [name, count] : cov) {
      if (count != 0) ++runs_reaching[name];
    }
  };
  for (admission mode : {admission::block, admission::drop}) {
    const auto gen = aegis::props::gen_scenario({.mode = mode});
    for (std::uint64_t i = 0; i < cases_per_mode; ++i) {
      const scenario s = aegis::props::sample(gen, 0xc0de0000 + i + (mode == admission::drop ? 1000 : 0));
      const checked_result r = run_checked_isolated(s);
      // Coverage only counts runs that passed: a failing run is the
      // properties' business, and is reported here too so it is not lost.
      EXPECT_EQ(r.exit_code, exit_pass) << describe_failure(s, r);
      add(r.coverage);
    }
  }
  // The regression corpus's passing entries are part of the suite too: some
  // guard states random schedules seldom reach (rapid restarts while the
  // pump is slow leave a dead incarnation's verdicts queued).
  for (const auto& entry : std::filesystem::directory_iterator(std::filesystem::path(AEGIS_SOURCE_DIR) / "fixtures/corpus")) {
    if (entry.path().extension() != ".json") continue;
    std::ifstream in{entry.path()};
    std::stringstream text;
    text << in.rdbuf();
    const scenario s = parse_schedule(text.str());
    if (!s.mutant.empty()) continue;
    const checked_result r = run_checked_isolated(s);
    EXPECT_EQ(r.exit_code, exit_pass) << entry.path() << "\n" << describe_failure(s, r);
    add(r.coverage);
  }
  const auto ring_gen = aegis::props::gen_ring_case();
  for (std::uint64_t i = 0; i < ring_cases; ++i) {
    const aegis::props::ring_case c = aegis::props::sample(ring_gen, 0x41e9 + i);
    const aegis::props::ring_case_result r = aegis::props::run_ring_case(c);
    EXPECT_TRUE(r.failure.empty()) << r.failure;
    add(r.coverage);
  }

  std::cout << "rare-state coverage (runs reaching each state):\n";
  std::string missing;
  for (const aegis::coverage_point& p : aegis::coverage_points) {
    const auto it = runs_reaching.find(std::string(p.name));
    const std::uint64_t n = it == runs_reaching.end() ? 0 : it->second;
    std::cout << fmt::format("  {:<44} {:>4}  {}\n", p.name, n, n == 0 ? "NEVER REACHED" : "");
    if (n == 0) missing += fmt::format("\n  {} ({}): {}", p.name, p.reported_by, p.meaning);
  }
  for (const auto& [name, n] : runs_reaching) {
    bool known = false;
    for (const aegis::coverage_point& p : aegis::coverage_points) known |= p.name == name;
    EXPECT_TRUE(known) << "state '" << name << "' is reported but not in aegis::coverage_points";
  }
  EXPECT_TRUE(missing.empty()) << "rare states never reached by the generated schedules:" << missing
                               << "\nwiden the generators in properties/scenario_gen.hpp or ring_case.hpp";
}

}  // namespace
