// What this proves about `aegis-sim chaos`'s parts, without running worlds:
// - shards K/N are disjoint and together cover the seed space (checked over a
//   range for several N), so nightly machines never repeat or skip a seed;
// - a seed's swarm mix and plan are a pure function of the seed, the plan
//   prints and parses back to itself (the replay line carries it as text), and
//   swarms really differ between seeds (not one fixed mix);
// - the shrinker reaches the minimal failing plan for a known failure shape
//   and never returns a candidate the predicate rejected;
// - junit.xml escapes what failure text can hold, and merging refuses shard
//   reports that ran the same seed.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "sim/chaos_report.hpp"
#include "sim/chaos_shrink.hpp"
#include "sim/swarm.hpp"

namespace aegis::sim {
namespace {

TEST(chaos_shard, shards_are_disjoint_and_cover_the_range) {
  for (std::uint32_t n : {1u, 2u, 3u, 7u}) {
    const std::uint64_t base = 1000;
    const std::uint64_t range = 100 * n;
    std::set<std::uint64_t> seen;
    for (std::uint32_t k = 1; k <= n; ++k) {
      for (std::uint64_t i = 0; shard_seed(base, i, k, n) < base + range; ++i) {
        EXPECT_TRUE(seen.insert(shard_seed(base, i, k, n)).second) << "shard " << k << "/" << n << " repeats a seed";
      }
    }
    EXPECT_EQ(seen.size(), range) << "shards of " << n << " leave a gap";
    EXPECT_EQ(*seen.begin(), base);
    EXPECT_EQ(*seen.rbegin(), base + range - 1);
  }
}

TEST(chaos_swarm, plan_is_a_function_of_the_seed_and_round_trips) {
  for (std::uint64_t seed = 1; seed <= 50; ++seed) {
    const scenario a = chaos_scenario(seed, chaos_default_length_ns);
    const scenario b = chaos_scenario(seed, chaos_default_length_ns);
    EXPECT_EQ(a.plan, b.plan) << "seed " << seed;
    EXPECT_EQ(a.reproduce_command(), b.reproduce_command());
    std::string error;
    const auto parsed = parse_fault_plan(a.plan.to_string(), &error);
    ASSERT_TRUE(parsed.has_value()) << error << " in " << a.plan.to_string();
    EXPECT_EQ(*parsed, a.plan) << "seed " << seed << " plan does not print and parse back to itself";
    ASSERT_TRUE(a.plan.heal_at_ns.has_value());
    EXPECT_LE(*a.plan.heal_at_ns, a.sim_duration_ns) << "the heal falls inside the run";
  }
}

TEST(chaos_swarm, mixes_differ_between_seeds_and_use_every_kind) {
  std::set<std::vector<std::string>> mixes;
  std::set<std::string> kinds_seen;
  for (std::uint64_t seed = 1; seed <= 200; ++seed) {
    const swarm_mix m = swarm_mix_for(seed);
    mixes.insert(m.kinds);
    kinds_seen.insert(m.kinds.begin(), m.kinds.end());
  }
  EXPECT_GT(mixes.size(), 150u) << "swarm mixes should vary from seed to seed";
  EXPECT_EQ(kinds_seen.size(), swarm_kinds().size()) << "some fault kind is never enabled";
}

TEST(chaos_swarm, long_stalls_outlast_the_retransmit_timeout) {
  int long_stalls = 0;
  for (std::uint64_t seed = 1; seed <= 100; ++seed) {
    const scenario s = chaos_scenario(seed, 4'000'000'000);
    for (const fault_event& e : s.plan.events) {
      if (e.kind == fault_kind::stall && e.duration_ns > *s.retransmit_ns) ++long_stalls;
    }
  }
  EXPECT_GT(long_stalls, 0) << "the swarm must produce stalls longer than the retransmit timeout";
}

TEST(chaos_swarm, ttl_short_gives_drop_seeds_ttls_as_short_as_the_faults) {
  // Without it only about one seed in 1500 had an entry expire while its
  // verdict was on the way (derive() draws TTLs of 0.5-3 s).
  int short_ttls = 0;
  for (std::uint64_t seed = 1; seed <= 200; ++seed) {
    const scenario s = chaos_scenario(seed, chaos_default_length_ns);
    if (*s.mode == admission::block) {
      EXPECT_EQ(*s.ttl_ns, 0) << "seed " << seed << ": block mode promises no loss, so no TTL";
    } else if (*s.ttl_ns < 500'000'000) {
      EXPECT_GE(*s.ttl_ns, 5'000'000) << "seed " << seed;
      ++short_ttls;
    }
  }
  EXPECT_GT(short_ttls, 20) << "about a quarter of the seeds should be drop mode with ttl.short on";
}

TEST(chaos_shrink, reaches_the_minimal_plan_for_a_known_failure) {
  scenario s = chaos_scenario(7, 2'000'000'000);
  // Give the plan two crashes and noise; the "bug" needs any crash.
  s.plan.events.push_back({fault_kind::crash, 100'000'000, 5'000'000, 0});
  s.plan.events.push_back({fault_kind::stall, 200'000'000, 50'000'000, 0});
  s.plan.sites.push_back({"transport.send", 1'000'000, 1000});
  auto has_crash = [](const scenario& c) {
    for (const fault_event& e : c.plan.events) {
      if (e.kind == fault_kind::crash && e.at_ns < *c.plan.heal_at_ns) return true;
    }
    return false;
  };
  ASSERT_TRUE(has_crash(s));
  std::uint32_t calls = 0;
  const shrink_result r = shrink_scenario(
      s,
      [&](const scenario& c) {
        ++calls;
        return has_crash(c);
      },
      [] { return false; });
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.attempts, calls);
  EXPECT_TRUE(has_crash(r.minimal)) << "the shrinker returned a passing case";
  EXPECT_EQ(r.minimal.plan.events.size(), 1u) << r.minimal.plan.to_string();
  EXPECT_TRUE(r.minimal.plan.sites.empty()) << r.minimal.plan.to_string();
  EXPECT_EQ(*r.minimal.producers, 1u);
  EXPECT_EQ(r.minimal.fault_spec, r.minimal.plan.to_string()) << "the printed plan follows the shrunk plan";
}

TEST(chaos_shrink, stops_when_out_of_time) {
  const scenario s = chaos_scenario(9, 1'000'000'000);
  const shrink_result r = shrink_scenario(s, [](const scenario&) { return true; }, [] { return true; });
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.attempts, 0u);
  EXPECT_EQ(r.minimal.plan, s.plan);
}

TEST(chaos_report, junit_escapes_failure_text) {
  chaos_summary s;
  s.default_length = "1s";
  seed_outcome o;
  o.seed = 5;
  o.kind = "correctness";
  o.failure = "a < b && \"c\" > 'd'\x01";
  s.add(o);
  failure_record f;
  f.seed = 5;
  f.kind = "correctness";
  f.failure = o.failure;
  f.replay = "aegis-sim replay --schedule '{\"seed\":5}'";
  s.failures.push_back(f);
  const std::string x = junit_xml(s);
  EXPECT_NE(x.find("a &lt; b &amp;&amp; &quot;c&quot; &gt; &apos;d&apos;"), std::string::npos) << x;
  EXPECT_EQ(x.find('\x01'), std::string::npos) << "control characters are not allowed in XML";
  EXPECT_NE(x.find("name=\"seed 5\""), std::string::npos);
  EXPECT_NE(x.find("name=\"summary\""), std::string::npos);
}

TEST(chaos_report, merge_refuses_overlapping_shards) {
  namespace fs = std::filesystem;
  const fs::path root = fs::temp_directory_path() / ("chaos_test_" + std::to_string(::getpid()));
  fs::remove_all(root);
  auto shard = [&](const char* name, const char* k, std::vector<std::uint64_t> seeds) {
    chaos_summary s;
    s.shard = k;
    s.seed_base = 1;
    s.default_length = "1s";
    for (auto seed : seeds) {
      seed_outcome o;
      o.seed = seed;
      o.kind = "pass";
      s.add(o);
    }
    fs::create_directories(root / name);
    write_report(s, (root / name).string());
    return (root / name).string();
  };
  const std::string a = shard("a", "1/2", {1, 3, 5});
  const std::string b = shard("b", "2/2", {2, 4, 6});
  const std::string c = shard("c", "2/2", {3, 4});
  std::string error;
  const auto ok = merge_reports({a, b}, &error);
  ASSERT_TRUE(ok.has_value()) << error;
  EXPECT_EQ(ok->outcomes.size(), 6u);
  EXPECT_FALSE(merge_reports({a, c}, &error).has_value());
  EXPECT_NE(error.find("seed 3"), std::string::npos) << error;
  fs::remove_all(root);
}

}  // namespace
}  // namespace aegis::sim
