// aegis-core's command line: every flag, its default and its checks
// (docs/SUMMARY.md is the contract; docs/ERRORS.md lists the messages).
//
// Usage:
//   aegis::core::cli_result r = aegis::core::parse_cli(argc, argv);
//   if (!r.opts) return r.exit_code;  // --help printed (0), or one usage line on stderr (2)
//   const aegis::core::options& o = *r.opts;
//
// Durations follow the one grammar of src/aegis/duration.hpp. Options where 0
// means "off" (--ttl, --bridge-wait-report, --pace-quantum, --latency-warmup,
// --sched-slice) accept it; the others say they must be positive.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "aegis/env.hpp"
#include "aegis/sched.hpp"
#include "core/exit_codes.hpp"

namespace aegis::core {

/// Everything a run needs, checked: what parse_cli returns.
struct options {
  std::string endpoint_dir;                     ///< --endpoint-dir: holds the sockets and core.lock.
  std::string mode = "block";                   ///< --mode: "block" or "drop".
  std::size_t ring_capacity = 65536;            ///< --ring-capacity: a power of two >= 2.
  std::optional<std::uint64_t> count;           ///< --count: payments to generate (excludes duration_ns).
  std::optional<ns_t> duration_ns;              ///< --duration: how long to generate (positive).
  double rate = 0;                              ///< --rate: payments per second; 0 = flat out.
  unsigned producers = 1;                       ///< --producers: 1..64 threads.
  ns_t retransmit_timeout_ns = 200'000'000;     ///< --retransmit-timeout (positive).
  ns_t target_latency_ns = 25'000'000;          ///< --target-latency (positive).
  std::uint32_t max_sends = 10;                 ///< --max-sends.
  ns_t ttl_ns = 0;                              ///< --ttl; 0 = never expire.
  ns_t drain_timeout_ns = 30'000'000'000;       ///< --drain-timeout.
  ns_t block_deadline_ns = aegis::no_deadline;  ///< --block-deadline; no_deadline = wait forever.
  std::optional<int> metrics_port;              ///< --metrics-port; 0 = any free port.
  std::string summary_json;                     ///< --summary-json; empty = none.
  std::string ledger_path;                      ///< --ledger; empty = none.
  std::uint64_t seed = 1;                       ///< --seed of the payment stream.
  double high_risk_share = 1.0;                 ///< --high-risk-share in [0, 1].
  std::size_t batch_max = 1024;                 ///< --batch-max.
  std::size_t send_window = 8192;               ///< --send-window (raised to batch_max by the run).
  std::string fiu_fifo;                         ///< --fiu-fifo control prefix; empty = none.
  std::string endpoint_group;                   ///< --endpoint-group: DIR is 0770 and this group's (docs/THREAT_MODEL.md).
  ns_t bridge_wait_report_ns = 5'000'000'000;   ///< --bridge-wait-report: stderr line while no bridge has said HELLO; 0 = never.
  bool start_after_hello = false;               ///< --start-after-hello: producers (and the schedule) wait for a bridge.
  ns_t pump_nap_ns = 1'000'000;                 ///< --pump-nap: offloader_config::nap_ns (positive).
  ns_t pace_quantum_ns = 250'000;               ///< --pace-quantum: least time between a producer's paced sleeps.
  ns_t warmup_ns = 0;                           ///< --latency-warmup: payments due this early are not in latency_us.
  aegis::sched_request sched{.slice_ns = 100'000, .fifo_priority = 0};  ///< --sched-slice, --realtime-priority.
};

/// What parse_cli found: options to run with, or the exit code to leave with.
struct cli_result {
  std::optional<options> opts;  ///< Set when the run should go on.
  int exit_code = exit_ok;      ///< When opts is empty: exit_ok after --help, exit_usage after a bad flag.
};

/// Parses and checks the command line. Prints help (stdout) or one
/// `aegis-core: <what is wrong>` line (stderr) itself; never throws.
cli_result parse_cli(int argc, char** argv);

}  // namespace aegis::core
