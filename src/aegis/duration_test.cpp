// Proves aegis::parse_duration is the one duration grammar: every string that
// fixtures/durations/grammar.json accepts parses to exactly its nanoseconds,
// every string it rejects is refused, and the edges the vectors do not list
// (int64 bound per unit, no unit besides a bare "0") hold too. The same file
// drives the bridge's test and the CLI cross test (scripts/duration_cross_check.py),
// so the three sides agree by construction.
#include "aegis/duration.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <string>

namespace aegis {
namespace {

nlohmann::json grammar() {
  std::ifstream f(AEGIS_DURATION_GRAMMAR);
  EXPECT_TRUE(f.good()) << "cannot read " << AEGIS_DURATION_GRAMMAR;
  return nlohmann::json::parse(f);
}

TEST(DurationGrammar, AcceptsEveryAcceptedVectorWithItsValue) {
  const nlohmann::json g = grammar();
  ASSERT_FALSE(g.at("accept").empty());
  for (const auto& entry : g.at("accept")) {
    const std::string text = entry.at(0).get<std::string>();
    const auto want_ns = entry.at(1).get<std::int64_t>();
    const std::optional<ns_t> got = parse_duration(text);
    ASSERT_TRUE(got.has_value()) << "'" << text << "' is in the grammar's accept list";
    EXPECT_EQ(*got, want_ns) << "'" << text << "'";
  }
}

TEST(DurationGrammar, RejectsEveryRejectedVector) {
  const nlohmann::json g = grammar();
  ASSERT_FALSE(g.at("reject").empty());
  for (const auto& entry : g.at("reject")) {
    const std::string text = entry.get<std::string>();
    EXPECT_FALSE(parse_duration(text).has_value()) << "'" << text << "' is in the grammar's reject list";
  }
}

TEST(DurationGrammar, EveryUnitStopsAtTheInt64Bound) {
  for (const auto& u : detail::duration_units) {
    const std::int64_t max_number = std::numeric_limits<ns_t>::max() / u.scale_ns;
    const std::string unit(u.suffix);
    EXPECT_EQ(parse_duration(std::to_string(max_number) + unit), max_number * u.scale_ns) << unit;
    EXPECT_FALSE(parse_duration(std::to_string(static_cast<std::uint64_t>(max_number) + 1) + unit).has_value()) << unit;
    EXPECT_EQ(parse_duration("0" + unit), 0) << unit;
  }
}

TEST(DurationGrammar, OnlyABareZeroGoesWithoutAUnit) {
  EXPECT_EQ(parse_duration("0"), 0);
  for (const char* bad : {"00", "1", "60", "9223372036854775807", "0 ", "0.0"}) {
    EXPECT_FALSE(parse_duration(bad).has_value()) << "'" << bad << "'";
  }
}

TEST(DurationGrammar, NeverReadsPastTheView) {
  // "10msXYZ" cut to "10m" is ten minutes: the parser looks only inside the view.
  const std::string_view text = "10msXYZ";
  EXPECT_EQ(parse_duration(text.substr(0, 3)), 600'000'000'000);
  EXPECT_EQ(parse_duration(text.substr(0, 4)), 10'000'000);
  EXPECT_FALSE(parse_duration(text).has_value());
}

}  // namespace
}  // namespace aegis
