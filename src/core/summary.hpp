// aegis-core's result: the judgement of a run (identity, lost, exit code),
// the summary JSON, the human summary on stdout. docs/SUMMARY.md is the
// contract for every key, line and exit code.
//
// Usage:
//   const aegis::core::run_facts facts{...};                // after the drain and stop()
//   const aegis::core::judgement j = aegis::core::judge(facts);
//   const nlohmann::json s = aegis::core::summary_json(facts, j);
//   aegis::core::print_summary(facts, j);
//   int code = aegis::core::write_summary_json(o.summary_json, s, j.exit_code);
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>

#include "aegis/metrics.hpp"
#include "aegis/offloader.hpp"
#include "core/cli.hpp"
#include "core/drain.hpp"
#include "core/ledger.hpp"
#include "core/load_generator.hpp"

namespace aegis::core {

/// Everything the summary is made of, gathered once the offloader has stopped.
struct run_facts {
  const options& o;                        ///< The flags.
  const offloader_config& cfg;             ///< The offloader's configuration (epoch, endpoints, send window).
  std::filesystem::path endpoint_dir;      ///< The absolute endpoint directory.
  offloader_counters counters;             ///< The offloader's final counters.
  ledger_tally tally;                      ///< The ledger over ids 1..load.max_id.
  const latency_histogram& latency;        ///< Verdict latencies.
  load_result load;                        ///< The production phase.
  drain_result drain;                      ///< The drain.
  ns_t last_fate_ns = 0;                   ///< When the last fate came; 0 = none.
  bool stopped_by_signal = false;          ///< A stop signal ended production.
};

/// What the run comes to.
struct judgement {
  std::uint64_t lost = 0;         ///< Accepted ids with no terminal state in the ledger.
  bool identity_ok = false;       ///< The counters' identity holds and the ledger agrees with them.
  double throughput_per_s = 0;    ///< Verdicts per second from the schedule's start to the last fate.
  int exit_code = exit_ok;        ///< exit_ok, exit_identity, exit_lost or exit_undrained.
};

/// Checks the accounting identity against the ledger and picks the exit code
/// (identity first, then block-mode loss, then an unfinished drain).
judgement judge(const run_facts& facts);

/// The summary JSON (docs/SUMMARY.md), with `j.exit_code` as "exit_code".
nlohmann::json summary_json(const run_facts& facts, const judgement& j);

/// Prints the human summary on stdout and flushes it.
void print_summary(const run_facts& facts, const judgement& j);

/// Writes `summary` to `path` atomically (PATH.tmp, then rename) when `path`
/// is not empty. On failure the JSON goes to stderr after one line saying
/// why, and an `exit_ok` run becomes `exit_summary`. Returns the exit code.
int write_summary_json(const std::string& path, const nlohmann::json& summary, int exit_code);

}  // namespace aegis::core
