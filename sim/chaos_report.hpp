// The report of a chaos run: per-seed outcomes in, summary.json and junit.xml
// out, and the merge of several shards' reports into one.
//
// Usage:
//   aegis::sim::chaos_summary sum;               // filled by the chaos runner
//   sum.add(outcome);                            // once per finished seed
//   aegis::sim::write_report(sum, "chaos-out");  // summary.json + junit.xml
//   auto merged = aegis::sim::merge_reports({"shard-1", "shard-2"}, &error);
//
// summary.json is the machine contract (docs/CHAOS.md lists its fields);
// junit.xml holds one testcase per failing seed, whose message is the replay
// command, plus one summary testcase, so any CI system shows failures by seed.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace aegis::sim {

/// One seed's result as the chaos runner saw it.
struct seed_outcome {
  std::uint64_t seed = 0;           ///< The seed.
  std::string mode;                 ///< block | drop.
  std::string scheduler;            ///< random | pct.
  std::string bridge = "model";     ///< model | python (the real BridgeCore, embedded).
  int exit_code = 0;                ///< aegis-sim run's exit code; 2 for a wall-clock hang too.
  std::string kind;                 ///< pass | correctness | liveness | crash | hang.
  std::string failure;              ///< Words, when it failed.
  std::uint64_t trace_hash = 0;     ///< XXH64 of the run's events.
  std::uint64_t events = 0;         ///< Simulated events.
  std::uint64_t virtual_ns = 0;     ///< Virtual time at the end.
  double wall_s = 0;                ///< Wall time of the run (measured outside it).
  std::uint64_t offered = 0;        ///< Transactions offered.
  std::uint64_t verdicts = 0;       ///< Transactions verdicted.
  std::vector<std::string> swarm;   ///< Fault kinds the swarm enabled.
  std::vector<std::string> rare_states;  ///< Rare states reached.
  std::string reproduce;            ///< `aegis-sim replay --schedule ...` that replays it with the same checks.
  std::string run_line;             ///< The same case as `aegis-sim run ...` (runner invariants only).
  std::uint64_t resent = 0;         ///< Records the core resent.
  std::uint64_t resent_allowed = 0; ///< The amplification bound for the seed.
  std::uint64_t deaths = 0;         ///< Bridge incarnation deaths.
  std::int64_t recovered_after_ns = -1;  ///< Heal to steady in-flight (-1: never or not reached).
  std::int64_t recovery_bound_ns = -1;   ///< Derived recovery bound (-1: not checked).
  double goodput_ratio = -1;        ///< Verdicts / offered after recovery (-1: not measured).
  double load_ratio = 0;            ///< Offered rate / the model's capacity.
};

/// A failing seed after shrinking.
struct failure_record {
  std::uint64_t seed = 0;           ///< The seed.
  std::string kind;                 ///< correctness | liveness | crash | hang.
  int exit_code = 0;                ///< Exit code the replay gives.
  std::string failure;              ///< The minimal case's failure words.
  std::string original;             ///< Replay line of the seed as first run.
  std::string replay;               ///< Replay line of the minimal case (`aegis-sim replay`).
  std::string run_line;             ///< The minimal case as `aegis-sim run ...`.
  std::string schedule;             ///< The minimal fault plan.
  std::uint64_t trace_hash = 0;     ///< Trace hash of the minimal case.
  std::uint32_t shrink_attempts = 0;  ///< Candidates tried.
  std::uint32_t shrink_steps = 0;     ///< Candidates kept.
  double shrink_s = 0;              ///< Wall time spent shrinking.
  std::string dir;                  ///< Failure directory, relative to the report.
};

/// Everything summary.json holds.
struct chaos_summary {
  std::string shard = "1/1";            ///< K/N.
  std::uint64_t seed_base = 0;          ///< First seed of the space.
  std::string default_length;           ///< Simulated workload per seed, e.g. "1s".
  double budget_s = 0;                  ///< The budget asked for.
  std::uint32_t jobs = 1;               ///< Parallel worlds.
  double wall_s = 0;                    ///< Wall time of the seed phase.
  std::string mutant;                   ///< Mutant switched on, if any.
  double python_share = 0;              ///< Share of seeds run with the real bridge (--python-share).
  std::vector<seed_outcome> outcomes;   ///< Every seed run.
  std::vector<failure_record> failures; ///< Every failing seed, shrunk.
  std::vector<std::string> merged_from; ///< Shard reports merged into this one.
  double core_seconds = 0;              ///< Sum of wall_s * jobs over shards.

  /// Records one seed's outcome.
  void add(seed_outcome o) { outcomes.push_back(std::move(o)); }
  /// Outcomes that failed.
  std::size_t failed_count() const;
  /// The summary.json document.
  nlohmann::json to_json() const;
  /// Reads one back (as written by to_json); nullopt with `error` when malformed.
  static std::optional<chaos_summary> from_json(const nlohmann::json& j, std::string* error);
};

/// junit.xml for the summary: one testcase per failing seed plus one summary testcase.
std::string junit_xml(const chaos_summary& s);

/// Writes summary.json and junit.xml into `dir` (which must exist).
void write_report(const chaos_summary& s, const std::string& dir);

/// Merges shard reports (each a directory with summary.json). Fails, with
/// `error`, when a report is missing or malformed, or two shards ran one seed.
std::optional<chaos_summary> merge_reports(const std::vector<std::string>& dirs, std::string* error);

/// XML text escaping (&, <, >, ", ' and control characters).
std::string xml_escape(std::string_view text);

}  // namespace aegis::sim
