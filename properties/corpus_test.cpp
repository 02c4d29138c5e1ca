// Replays the regression corpus: every fixtures/corpus/*.json is a schedule
// (seed, every parameter, fault plan, optional mutant) plus the outcome it must
// have, checked with exactly the property checks `aegis-sim replay` applies.
// An entry without a mutant is a case that once failed (or guards a rare
// path) and must now pass; an entry with a mutant must keep failing, with the
// expected exit code and words. docs/CORPUS.md says how to add one.
// Rerun one entry with: build/release/sim/aegis-sim replay --schedule fixtures/corpus/NAME.json
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "sim/checked_run.hpp"
#include "sim/schedule.hpp"

namespace {

namespace fs = std::filesystem;

TEST(Corpus, EveryEntryHasItsExpectedOutcome) {
  const fs::path dir = fs::path(AEGIS_SOURCE_DIR) / "fixtures/corpus";
  ASSERT_TRUE(fs::is_directory(dir)) << dir;
  int entries = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".json") continue;
    ++entries;
    std::ifstream in{entry.path()};
    std::stringstream text;
    text << in.rdbuf();
    const nlohmann::json j = nlohmann::json::parse(text.str());
    ASSERT_TRUE(j.contains("expect")) << entry.path() << " has no \"expect\"";
    const nlohmann::json& expect = j["expect"];
    const aegis::sim::scenario s = aegis::sim::parse_schedule(text.str());
    const aegis::sim::checked_result r = aegis::sim::run_checked_isolated(s);
    const int want_exit = expect.value("exit_code", 0);
    std::cout << fmt::format("{}: exit {} (expected {}) trace_hash={:016x}\n", entry.path().filename().string(),
                             r.exit_code, want_exit, r.trace_hash);
    EXPECT_EQ(r.exit_code, want_exit) << entry.path() << "\n" << aegis::sim::describe_failure(s, r) << "replay: "
                                      << aegis::sim::replay_command(s).substr(0, 0) << "aegis-sim replay --schedule "
                                      << entry.path().string();
    if (expect.contains("failure_contains")) {
      const std::string words = expect["failure_contains"].get<std::string>();
      EXPECT_NE(r.failure.find(words), std::string::npos) << entry.path() << ": failure '" << r.failure
                                                          << "' lacks '" << words << "'";
    }
  }
  EXPECT_GE(entries, 1) << "the corpus is empty";
}

}  // namespace
