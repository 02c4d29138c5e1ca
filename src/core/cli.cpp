// aegis-core's command line; see cli.hpp.
#include "core/cli.hpp"

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <limits>
#include <string>

#include "aegis/assert.hpp"
#include "aegis/duration.hpp"

namespace aegis::core {

namespace {

// CLI11 validator for the one duration grammar (aegis/duration.hpp).
struct duration_validator : CLI::Validator {
  duration_validator() {
    name_ = "DURATION";
    func_ = [](const std::string& s) -> std::string {
      return aegis::parse_duration(s) ? std::string{} : "invalid duration '" + s + "' (use e.g. 200ms, 10s, 500us, 0)";
    };
  }
};

// Only for strings the validator accepted (or our own defaults).
ns_t checked_duration(const std::string& s) {
  const std::optional<ns_t> d = aegis::parse_duration(s);
  AEGIS_ASSERT(d.has_value(), "the validator refused every string the duration grammar does not accept");
  AEGIS_ASSERT(*d >= 0, "durations are never negative");
  return *d;
}

// The flags as CLI11 reads them: durations as text until every flag has been
// validated, so that a bad one is reported as what was typed.
struct raw_flags {
  std::string retransmit = "200ms", target_latency = "25ms", ttl = "0", drain = "30s", duration, block_deadline;
  std::string wait_report = "5s";
  std::string pump_nap = "1ms", pace_quantum = "250us", sched_slice = "100us", latency_warmup = "0";
  std::uint64_t count = 0;
  int metrics_port = -1;
};

// Declares every flag on `app`, writing into `o` and `raw`. Returns the
// --count option, whose presence (not its value) decides whether it was given.
CLI::Option* declare_flags(CLI::App& app, options& o, raw_flags& raw, const duration_validator& is_duration) {
  app.add_option("--endpoint-dir", o.endpoint_dir, "Directory for offload.sock, verdicts.sock and core.lock (created 0700)")->required();
  app.add_option("--mode", o.mode, "Admission when the ring is full")->check(CLI::IsMember({"block", "drop"}));
  app.add_option("--ring-capacity", o.ring_capacity, "Ring slots, a power of two >= 2")
      ->check([](const std::string& s) -> std::string {
        try {
          const auto n = std::stoull(s);
          return n >= 2 && (n & (n - 1)) == 0 ? std::string{} : "ring capacity must be a power of two >= 2";
        } catch (...) {
          return "ring capacity must be a number";
        }
      });
  auto* count_opt = app.add_option("--count", raw.count, "Payments to generate")
                        ->check(CLI::Range(std::uint64_t{1}, std::numeric_limits<std::uint64_t>::max()));
  auto* duration_opt = app.add_option("--duration", raw.duration, "Run time, e.g. 10s")->check(is_duration);
  count_opt->excludes(duration_opt);
  app.add_option("--rate", o.rate, "Payments per second, open-loop; 0 = as fast as possible")->check(CLI::NonNegativeNumber);
  app.add_option("--producers", o.producers, "Producer threads")->check(CLI::Range(1u, 64u));
  app.add_option("--retransmit-timeout", raw.retransmit,
                 "Floor of the safety timer: resend what a live bridge holds and does not answer for this long")
      ->check(is_duration);
  app.add_option("--target-latency", raw.target_latency, "Flow control: keep send-to-verdict latency near this")->check(is_duration);
  app.add_option("--max-sends", o.max_sends, "Abandon a transaction sent this many times without a verdict")
      ->check(CLI::Range(1u, 1000000u));
  app.add_option("--ttl", raw.ttl, "Expire unverdicted transactions this old; 0 = never")->check(is_duration);
  app.add_option("--block-deadline", raw.block_deadline, "Block mode: give up admitting after this long (default: never)")
      ->check(is_duration);
  app.add_option("--batch-max", o.batch_max, "Most TXN records per frame")->check(CLI::Range(1, 1024));
  app.add_option("--send-window", o.send_window,
                 "Most records sent ahead of the oldest unverdicted one (raised to --batch-max if below)")
      ->check(CLI::Range(1, 1 << 24));
  app.add_option("--metrics-port", raw.metrics_port, "Serve Prometheus metrics on 127.0.0.1:PORT (0 = any free port)")
      ->check(CLI::Range(0, 65535));
  app.add_option("--summary-json", o.summary_json, "Write the summary JSON here (docs/SUMMARY.md)");
  app.add_option("--ledger", o.ledger_path, "Write '<txn_id> <fate>' per offered transaction here");
  app.add_option("--seed", o.seed, "Seed of the synthetic payment stream");
  app.add_option("--drain-timeout", raw.drain, "How long to wait for in-flight verdicts at the end")->check(is_duration);
  app.add_option("--high-risk-share", o.high_risk_share, "Share of payments the risk rule offloads")->check(CLI::Range(0.0, 1.0));
  app.add_option("--endpoint-group", o.endpoint_group, "DIR is 0770 and owned by this group (bridges as other users); default 0700");
  app.add_option("--bridge-wait-report", raw.wait_report, "Say so on stderr this often while no bridge has connected; 0 = never")
      ->check(is_duration);
  app.add_flag("--start-after-hello", o.start_after_hello,
               "Start the producers (and the --rate schedule) only once a bridge has sent HELLO (benchmarks)");
  app.add_option("--fiu-fifo", o.fiu_fifo, "Enable fiu-ctrl: control fifo PREFIX (fiu-ctrl -f PREFIX ... PID)");
  app.add_option("--latency-warmup", raw.latency_warmup,
                 "Leave payments due in the first DURATION of the run out of latency_us (they are still offloaded and counted)")
      ->check(is_duration);
  app.add_option("--pump-nap", raw.pump_nap, "How long an idle pump naps before looking at the ring again (the batching interval at low rates)")
      ->check(is_duration);
  app.add_option("--pace-quantum", raw.pace_quantum,
                 "--rate: least time between a producer's sleeps; payments due meanwhile go out together (0 = sleep per payment)")
      ->check(is_duration);
  app.add_option("--sched-slice", raw.sched_slice,
                 "Scheduler slice (EEVDF, Linux 6.6+) every thread asks for, 100us..100ms; shorter wakes sooner; 0 = kernel default")
      ->check(is_duration);
  app.add_option("--realtime-priority", o.sched.fifo_priority,
                 "Run every thread SCHED_FIFO at this priority (1-99; needs CAP_SYS_NICE or ulimit -r); 0 = off")
      ->check(CLI::Range(0, 99));
  AEGIS_ASSERT(count_opt != nullptr, "--count is declared, so its presence can be asked");
  AEGIS_ASSERT(app.get_option("--endpoint-dir")->get_required(), "--endpoint-dir is required (docs/SUMMARY.md)");
  return count_opt;
}

// Durations that must be positive; the validator already refused bad syntax.
bool positive(ns_t v, const char* flag) {
  AEGIS_ASSERT(flag != nullptr && flag[0] == '-', "the message names the flag");
  AEGIS_ASSERT(v >= 0, "the grammar has no negative durations");
  if (v > 0) return true;
  fmt::print(stderr, "aegis-core: {} must be positive\n", flag);
  return false;
}

// Turns the validated text into `o`'s values and checks what CLI11 cannot
// (positive durations, the slice range). False after printing the one line.
bool finish(options& o, const raw_flags& raw, bool count_given) {
  AEGIS_ASSERT(!count_given || raw.count >= 1, "CLI11 checked --count >= 1");
  AEGIS_ASSERT(!count_given || raw.duration.empty(), "CLI11 checked that --count excludes --duration");
  if (count_given) o.count = raw.count;
  if (!raw.duration.empty()) o.duration_ns = checked_duration(raw.duration);
  if (o.duration_ns && !positive(*o.duration_ns, "--duration")) return false;
  o.retransmit_timeout_ns = checked_duration(raw.retransmit);
  if (!positive(o.retransmit_timeout_ns, "--retransmit-timeout")) return false;
  o.target_latency_ns = checked_duration(raw.target_latency);
  if (!positive(o.target_latency_ns, "--target-latency")) return false;
  o.ttl_ns = checked_duration(raw.ttl);
  o.drain_timeout_ns = checked_duration(raw.drain);
  if (!raw.block_deadline.empty()) o.block_deadline_ns = checked_duration(raw.block_deadline);
  if (raw.metrics_port >= 0) o.metrics_port = raw.metrics_port;
  o.bridge_wait_report_ns = checked_duration(raw.wait_report);
  o.pump_nap_ns = checked_duration(raw.pump_nap);
  if (!positive(o.pump_nap_ns, "--pump-nap")) return false;
  o.pace_quantum_ns = checked_duration(raw.pace_quantum);
  o.warmup_ns = checked_duration(raw.latency_warmup);
  o.sched.slice_ns = checked_duration(raw.sched_slice);
  if (o.sched.slice_ns != 0 && (o.sched.slice_ns < 100'000 || o.sched.slice_ns > 100'000'000)) {
    fmt::print(stderr, "aegis-core: --sched-slice must be 0 or 100us..100ms\n");
    return false;
  }
  return true;
}

}  // namespace

cli_result parse_cli(int argc, char** argv) {
  AEGIS_ASSERT(argc >= 1 && argv != nullptr, "main passes the program name at least");
  CLI::App app{"aegis-core: demo payment core offloading high-risk transactions to the Aegis bridge"};
  options o;
  raw_flags raw;
  const duration_validator is_duration;
  CLI::Option* count_opt = declare_flags(app, o, raw, is_duration);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return {.opts = std::nullopt, .exit_code = app.exit(e)};
  } catch (const CLI::ParseError& e) {
    fmt::print(stderr, "aegis-core: {}\n", e.what());
    return {.opts = std::nullopt, .exit_code = exit_usage};
  }
  if (!finish(o, raw, count_opt->count() > 0)) return {.opts = std::nullopt, .exit_code = exit_usage};
  // What the rest of the core relies on, whatever the flags said.
  AEGIS_ASSERT(o.mode == "block" || o.mode == "drop", "--mode is one of block, drop");
  AEGIS_ASSERT(o.ring_capacity >= 2, "the ring holds at least two slots");
  AEGIS_ASSERT((o.ring_capacity & (o.ring_capacity - 1)) == 0, "the ring capacity is a power of two");
  AEGIS_ASSERT(!(o.count && o.duration_ns), "--count excludes --duration");
  AEGIS_ASSERT(o.producers >= 1, "at least one producer");
  AEGIS_ASSERT(o.producers <= 64, "at most 64 producers");
  AEGIS_ASSERT(o.retransmit_timeout_ns > 0, "the safety timer's floor is positive");
  AEGIS_ASSERT(o.target_latency_ns > 0, "the flow-control target is positive");
  AEGIS_ASSERT(o.pump_nap_ns > 0, "an idle pump naps a positive time");
  AEGIS_ASSERT(o.ttl_ns >= 0, "0 (never) or a positive TTL");
  AEGIS_ASSERT(o.drain_timeout_ns >= 0, "the drain timeout is not negative");
  AEGIS_ASSERT(o.pace_quantum_ns >= 0, "the pace quantum is not negative");
  AEGIS_ASSERT(o.warmup_ns >= 0, "the latency warm-up is not negative");
  return {.opts = std::move(o), .exit_code = exit_ok};
}

}  // namespace aegis::core
