// `aegis-sim chaos`: swarm seeds on a wall-clock budget, in parallel worlds,
// with progress, shrinking of failures, a report, and the merge of shard
// reports. docs/CHAOS.md is the user's guide.
//
// Usage (the CLI in sim/main.cpp is a thin wrapper):
//   aegis::sim::chaos_options o;
//   o.budget_ns = 60'000'000'000;  o.jobs = 2;  o.out_dir = "chaos-out";
//   int rc = aegis::sim::run_chaos(o);      // 0 when every seed passed
//
//   aegis-sim chaos --budget 60s --jobs 2 --out chaos-out
//   aegis-sim chaos --budget 10m --shard 3/8 --seed-base 0x5eed --out shard-3
//   aegis-sim chaos --merge shard-1 shard-2 shard-3 --out merged
//
// Each seed runs in a forked child process: a world is an object and could run
// on a thread, but an assertion aborts the whole process, and a crash must
// cost one seed, not the run. The parent only schedules, collects and reports;
// it never runs a world itself, so wall-clock reads in it cannot touch a run.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "aegis/env.hpp"

namespace CLI {
class App;
}

namespace aegis::sim {

/// Options of one chaos run.
struct chaos_options {
  ns_t budget_ns = 0;                     ///< Stop starting seeds after this much wall time.
  std::uint32_t jobs = 0;                 ///< Parallel worlds; 0 = one per core.
  std::uint32_t shard_k = 1;              ///< This shard (1-based) ...
  std::uint32_t shard_n = 1;              ///< ... of this many.
  std::optional<std::uint64_t> seed_base; ///< First seed; unset = random (printed).
  std::optional<std::uint64_t> seed_count;  ///< Size of the seed space (all shards); unset = unbounded.
  std::string out_dir = "chaos-out";      ///< Report directory.
  std::uint32_t max_failures = 5;         ///< Stop after this many failing seeds.
  ns_t sim_duration_ns = 0;               ///< Seed length; 0 = chaos_default_length_ns.
  ns_t shrink_budget_ns = 30'000'000'000; ///< Wall time to shrink each failure.
  ns_t seed_timeout_ns = 120'000'000'000; ///< Wall time after which a seed is a hang.
  std::string mutant;                     ///< Mutant to switch on (when the simulator supports it).
  double python_share = 0.125;            ///< Share of seeds that run the real bridge (--bridge python).
  std::string bench_results;              ///< Append the speed figure to this bench-results.json.
  std::string progress = "auto";          ///< auto | bar | lines | none.
  std::string self_exe = "aegis-sim";     ///< How replay lines name the binary.
};

/// Runs chaos; 0 when every seed passed, 1 when any failed, 64 on bad usage.
int run_chaos(const chaos_options& o);

/// Merges shard reports into `out_dir`; 0 on success, 1 on overlap or a failing
/// seed in any shard, 64 when a report is unreadable.
int merge_chaos(const std::vector<std::string>& dirs, const std::string& out_dir);

/// CLI arguments of the chaos subcommand.
struct chaos_cli_args {
  std::string budget;              ///< DURATION.
  std::uint32_t jobs = 0;          ///< --jobs.
  std::string shard = "1/1";       ///< K/N.
  std::string seed_base;           ///< Seed text.
  std::uint64_t seed_count = 0;    ///< 0 = unbounded.
  std::string out = "chaos-out";   ///< --out.
  std::uint32_t max_failures = 5;  ///< --max-failures.
  std::string sim_duration;        ///< Seed length.
  std::string shrink_budget = "30s";  ///< --shrink-budget.
  std::string seed_timeout = "120s";  ///< --seed-timeout.
  std::string mutant;              ///< --mutant.
  double python_share = 0.125;     ///< --python-share.
  std::string bench_results;       ///< --bench-results.
  std::string progress = "auto";   ///< --progress.
  std::vector<std::string> merge;  ///< --merge DIR...
};

/// Registers `chaos` on the aegis-sim app.
CLI::App* add_chaos_subcommand(CLI::App& app, chaos_cli_args& a);

/// Runs the parsed chaos subcommand (`argv0` names the binary in replay lines).
int run_chaos_command(const chaos_cli_args& a, const char* argv0);

}  // namespace aegis::sim
