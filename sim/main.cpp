// aegis-sim: runs the production offloader against the bridge model in a
// seeded, deterministic world. See docs/SIMULATOR.md.
//
//   aegis-sim run --seed 42                       # one run; exit 0/1/2/3
//   aegis-sim run --seed 42 --check-determinism   # twice in one process, hashes compared
//   aegis-sim run --seed $(git rev-parse HEAD) --faults default --trace run.json
//   aegis-sim bench                               # speed figures, appended to bench-results.json
//   aegis-sim chaos --budget 60s --out chaos-out  # swarm seeds on a budget (docs/CHAOS.md)
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <ctime>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <unistd.h>

#include "aegis/bench_results.hpp"
#include "aegis/mutant_catalogue.hpp"
#include "aegis/writable.hpp"
#ifndef AEGIS_SIM_RUN_ONLY  // aegis-sim-debug (-O0) carries only `run` and `bench`.
#include "sim/chaos.hpp"
#include "sim/replay.hpp"
#endif
#include "sim/python_bridge.hpp"
#include "sim/runner.hpp"
#include "sim/scenario.hpp"
#include "sim/seed.hpp"

namespace {

using namespace aegis::sim;

// The reproduce line of the run in progress, for the SIGABRT handler: an
// assertion in production or simulator code aborts, and the handler turns
// that into exit code 3 with the line that replays it.
char g_reproduce[8192] = "";

extern "C" void on_abort(int) {
  const char* head = "\naegis-sim: CRASH (an assertion fired or abort was called); reproduce with:\n";
  (void)!write(2, head, std::strlen(head));
  (void)!write(2, g_reproduce, std::strlen(g_reproduce));
  (void)!write(2, "\n", 1);
  _exit(exit_crash);
}

void set_reproduce(const std::string& cmd) {
  std::snprintf(g_reproduce, sizeof g_reproduce, "%s", cmd.c_str());
}

struct run_args {
  std::string seed = "0";
  std::string mode;
  std::string sim_duration = "10s";
  std::uint32_t producers = 0;
  std::size_t ring_capacity = 0;
  std::uint64_t rate = 0;
  std::uint32_t burst = 0;
  std::string scheduler = "random";
  std::uint32_t pct_depth = 3;
  std::uint32_t preempt_ppm = 0;
  std::string ttl, retransmit, converge = "10s";
  std::size_t batch_max = 0;
  std::string faults = "default";
  std::string trace;
  bool check_determinism = false;
  std::uint64_t max_steps = 0;
  std::string self_test_assert_at;
  std::string mutant;
  std::string bridge = "model";
  std::string model_cost, batch_cost;
  std::uint32_t poison_ppm = 0;
  bool poison_given = false;
};

// For the workload options whose 0 would mean "take it from the seed": an
// explicit 0 is a mistake, not a request for the default.
const CLI::Validator at_least_one{[](std::string& v) -> std::string {
                                    if (v.empty() || v.find_first_not_of('0') != std::string::npos) return {};
                                    return "must be at least 1 (leave the option out for its default)";
                                  },
                                  ">= 1"};

void add_run_options(CLI::App* cmd, run_args& a) {
  cmd->add_option("--seed", a.seed, "decimal, 0x-hex, or a 40-hex git commit hash")->required();
  cmd->add_option("--mode", a.mode, "block|drop (default: from the seed)")->check(CLI::IsMember({"block", "drop"}));
  cmd->add_option("--sim-duration", a.sim_duration, "workload duration in virtual time, e.g. 30s, 500ms");
  cmd->add_option("--producers", a.producers, "producer fibers (default: from the seed, 1..4)")
      ->check(at_least_one);
  cmd->add_option("--ring-capacity", a.ring_capacity, "ring slots, a power of two (default: from the seed)")
      ->check(at_least_one);
  cmd->add_option("--rate", a.rate, "offered txn per simulated second (default: from the seed)")
      ->check(at_least_one);
  cmd->add_option("--burst", a.burst, "rate multiplier during bursts, 1 = none (default: from the seed)")
      ->check(at_least_one);
  cmd->add_option("--scheduler", a.scheduler, "random|pct")->check(CLI::IsMember({"random", "pct"}));
  cmd->add_option("--pct-depth", a.pct_depth, "PCT bug depth d");
  cmd->add_option("--preempt-ppm", a.preempt_ppm, "random scheduler: preemption chance per yield point (ppm)");
  cmd->add_option("--ttl", a.ttl, "offloader TTL, 0s = none (default: 0 in block mode, from the seed in drop)");
  cmd->add_option("--retransmit", a.retransmit, "offloader retransmit timeout (default: from the seed)");
  cmd->add_option("--batch-max", a.batch_max, "offloader batch size (default: from the seed)")
      ->check(at_least_one);
  cmd->add_option("--converge", a.converge, "after the workload, everything accepted is terminal within this");
  cmd->add_option("--faults", a.faults, "none | default | a fault plan (see docs/SIMULATOR.md)");
  cmd->add_option("--trace", a.trace, "write Chrome trace-event JSON (Perfetto) to this file");
  cmd->add_flag("--check-determinism", a.check_determinism, "run twice in this process and compare trace hashes");
  cmd->add_option("--max-steps", a.max_steps, "yield-point budget (default: from the load)");
  cmd->add_option("--self-test-assert-at", a.self_test_assert_at, "test of the crash path: assert at this virtual time")
      ->group("");
  // The choices come from the test-side catalogue; an unknown name is refused
  // by the scenario check, with the message docs/ERRORS.md gives.
  std::string mutant_names;
  for (const aegis::mutant_info& m : aegis::mutants) mutant_names += (mutant_names.empty() ? "" : ", ") + std::string(m.name);
  for (const aegis::mutant_info& m : aegis::bridge_mutants) mutant_names += ", " + std::string(m.name) + " (--bridge python)";
  cmd->add_option("--mutant", a.mutant, "switch on a deliberately broken variant: " + mutant_names + " (docs/FAULTS.md)");
  cmd->add_option("--bridge", a.bridge, "model: the C++ bridge model; python: the real bridge's BridgeCore, embedded")
      ->check(CLI::IsMember({"model", "python"}));
  cmd->add_option("--model-cost", a.model_cost, "bridge model's scoring cost per record, e.g. 100us (default: from the seed)");
  cmd->add_option("--batch-cost", a.batch_cost, "bridge model's scoring cost per batch, e.g. 40us (default: from the seed)");
  cmd->add_option("--poison-ppm", a.poison_ppm, "share of transactions the model fails on, ppm (default 0)")
      ->each([&a](const std::string&) { a.poison_given = true; });
}

aegis::ns_t duration_or_die(const std::string& flag, const std::string& v) {
  auto d = parse_duration(v);
  if (!d) throw CLI::ValidationError(flag, "not a duration: " + v);
  return *d;
}

scenario scenario_from(const run_args& a) {
  scenario s;
  auto seed = parse_seed(a.seed);
  if (!seed) throw CLI::ValidationError("--seed", "not a seed: " + a.seed);
  s.seed = *seed;
  if (!a.mode.empty()) s.mode = a.mode == "block" ? aegis::admission::block : aegis::admission::drop;
  s.sim_duration_ns = duration_or_die("--sim-duration", a.sim_duration);
  if (a.producers != 0) s.producers = a.producers;
  if (a.ring_capacity != 0) s.ring_capacity = a.ring_capacity;
  if (a.rate != 0) s.rate_per_s = a.rate;
  if (a.burst != 0) s.burst_factor = a.burst;
  s.strategy = *parse_strategy(a.scheduler);
  s.pct_depth = a.pct_depth;
  if (a.preempt_ppm != 0) s.preempt_ppm = a.preempt_ppm;
  if (!a.ttl.empty()) s.ttl_ns = duration_or_die("--ttl", a.ttl);
  if (!a.retransmit.empty()) s.retransmit_ns = duration_or_die("--retransmit", a.retransmit);
  if (a.batch_max != 0) s.batch_max = a.batch_max;
  s.converge_ns = duration_or_die("--converge", a.converge);
  s.fault_spec = a.faults;
  s.mutant = a.mutant;
  s.bridge = *parse_bridge_kind(a.bridge);
  if (!a.model_cost.empty()) s.model_record_ns = duration_or_die("--model-cost", a.model_cost);
  if (!a.batch_cost.empty()) s.model_batch_ns = duration_or_die("--batch-cost", a.batch_cost);
  if (a.poison_given) s.poison_ppm = a.poison_ppm;
  if (const std::string bad = invalid_parameter(s); !bad.empty()) throw CLI::ValidationError(bad);
  try {
    return derive(std::move(s));
  } catch (const std::invalid_argument& e) {
    throw CLI::ValidationError(e.what());  // e.what() already names --faults
  }
}

int cmd_run(const run_args& a) {
  if (!a.trace.empty()) {
    if (const std::string why = aegis::why_unwritable(a.trace); !why.empty()) {
      throw CLI::ValidationError("--trace", "cannot write " + a.trace + ": " + why);
    }
  }
  const scenario s = scenario_from(a);
  std::string repro = s.reproduce_command();
  if (!a.trace.empty()) repro += " --trace " + a.trace;
  set_reproduce(repro);
  std::cout << fmt::format("SEED={}\n", s.seed) << s.describe() << std::flush;
  run_options o;
  o.trace_path = a.trace;
  o.max_steps = a.max_steps;
  if (!a.self_test_assert_at.empty()) {
    o.assert_at_ns = duration_or_die("--self-test-assert-at", a.self_test_assert_at);
    set_reproduce(repro + " --self-test-assert-at " + a.self_test_assert_at);
  }
  const run_report r = run_scenario(s, o);
  std::cout << r.summary();
  int code = r.exit_code;
  if (a.check_determinism && code == exit_pass) {
    run_options again;
    again.max_steps = a.max_steps;
    const run_report r2 = run_scenario(s, again);
    if (r2.trace_hash != r.trace_hash || r2.events != r.events) {
      std::cout << fmt::format("DETERMINISM FAILURE: second run trace_hash={:016x} events={} (first {:016x} events={})\n",
                               r2.trace_hash, r2.events, r.trace_hash, r.events);
      code = exit_correctness;
    } else {
      std::cout << fmt::format("determinism: second run trace_hash={:016x} matches\n", r2.trace_hash);
    }
  }
  if (code != exit_pass) std::cout << "reproduce: " << repro << (a.check_determinism ? " --check-determinism" : "") << "\n";
  return code;
}

struct bench_args {
  std::string results = "bench-results.json";
  std::string sim_duration = "10s";
  std::uint64_t rate = 50'000;
};

// The real bridge against the model, at 10k txn/s: the same block-mode
// scenario (seed 1, no faults, the shipped model's cost) with each bridge,
// three alternating runs each, medians. Rows: the python bridge's time
// compression beside the model's from the same run and beside the 5x target,
// and events/s for both.
int bench_bridges(const bench_args& b, std::vector<aegis::bench::result_row>& rows) {
  constexpr int reps = 3;
  std::map<std::string, std::vector<double>> compression, events_per_s;
  int code = exit_pass;
  for (int rep = 0; rep < reps; ++rep) {
    for (const char* bridge : {"model", "python"}) {
      run_args a;
      a.seed = "1";
      a.mode = "block";
      a.sim_duration = b.sim_duration;
      a.producers = 2;
      a.ring_capacity = 4096;
      a.rate = 10'000;
      a.burst = 1;
      a.batch_max = 256;
      a.retransmit = "200ms";
      a.ttl = "0s";
      a.faults = "none";
      a.model_cost = "400ns";
      a.batch_cost = "40us";
      a.bridge = bridge;
      const scenario s = scenario_from(a);
      set_reproduce(s.reproduce_command());
      if (s.bridge == bridge_kind::python) python_bridge::start_interpreter();  // Once, outside the clock.
      const auto t0 = std::chrono::steady_clock::now();
      const run_report r = run_scenario(s, {});
      const double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (r.exit_code != exit_pass) {
        std::cout << r.summary();
        code = r.exit_code;
      }
      const double sim_s = static_cast<double>(r.end_ns) / 1e9;
      compression[bridge].push_back(sim_s / wall_s);
      events_per_s[bridge].push_back(static_cast<double>(r.events) / wall_s);
      std::cout << fmt::format("bench bridge={} rate=10000/s sim_time={:.2f}s wall={:.3f}s time_compression={:.1f}x "
                               "events_per_wall_s={:.0f} trace_hash={:016x}\n",
                               bridge, sim_s, wall_s, sim_s / wall_s, static_cast<double>(r.events) / wall_s, r.trace_hash);
    }
  }
  const auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  const std::string name = "sim/python_bridge_10k";
  rows.push_back({name, "time_compression", "x", median(compression["python"]), "model bridge, same scenario and run",
                  median(compression["model"]), aegis::bench::better::higher});
  rows.push_back({name, "time_compression_vs_target", "x", median(compression["python"]), "real time x5 (target)", 5.0,
                  aegis::bench::better::higher});
  rows.push_back({name, "events_per_wall_s", "events/s", median(events_per_s["python"]),
                  "model bridge, same scenario and run", median(events_per_s["model"]), aegis::bench::better::higher});
  return code;
}

int cmd_bench(const bench_args& b) {
  if (const std::string why = aegis::why_unwritable(b.results); !why.empty()) {
    throw CLI::ValidationError("--results", "cannot write " + b.results + ": " + why);
  }
  std::vector<aegis::bench::result_row> rows;
  std::vector<double> events_per_s;
  int code = exit_pass;
  for (const char* mode : {"block", "drop"}) {
    run_args a;
    a.seed = "1";
    a.mode = mode;
    a.sim_duration = b.sim_duration;
    a.producers = 2;
    a.ring_capacity = 4096;
    a.rate = b.rate;
    a.burst = 1;
    a.batch_max = 256;
    a.retransmit = "200ms";
    a.ttl = std::string(mode) == "drop" ? "2s" : "0s";
    a.faults = "none";
    a.model_cost = "400ns";  // The shipped model's speed: the figure is the simulator's own cost.
    a.batch_cost = "40us";
    const scenario s = scenario_from(a);
    set_reproduce(s.reproduce_command());
    // Wall time is read here, outside the simulated run, only to measure it.
    // CPU time too: on a shared machine wall time also counts other processes.
    auto cpu_now = [] {
      timespec ts{};
      clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
      return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
    };
    const double cpu0 = cpu_now();
    const auto t0 = std::chrono::steady_clock::now();
    const run_report r = run_scenario(s, {});
    const double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu_s = cpu_now() - cpu0;
    if (r.exit_code != exit_pass) {
      std::cout << r.summary();
      code = r.exit_code;
    }
    const double sim_s = static_cast<double>(r.end_ns) / 1e9;
    const double verdicted_per_wall_s = static_cast<double>(r.counters.verdicts) / wall_s;
    const double compression = sim_s / wall_s;
    std::cout << fmt::format(
        "bench mode={} rate={}/s sim_time={:.2f}s wall={:.3f}s verdicts={} verdicted_per_wall_s={:.0f} "
        "time_compression={:.1f}x steps_per_wall_s={:.0f} cpu={:.3f}s verdicted_per_cpu_s={:.0f} "
        "cpu_time_compression={:.1f}x trace_hash={:016x}\n",
        mode, b.rate, sim_s, wall_s, r.counters.verdicts, verdicted_per_wall_s, compression,
        static_cast<double>(r.steps) / wall_s, cpu_s, static_cast<double>(r.counters.verdicts) / cpu_s, sim_s / cpu_s,
        r.trace_hash);
    const std::string name = fmt::format("sim/{}_{}k", mode, b.rate / 1000);
    // Compared with the real-process end-to-end figure of the same
    // `make bench` run when a benchmark wrote one (the flat-out row
    // "e2e_throughput" with the shipped model, in txn/s);
    // otherwise with the target.
    std::string peer = "target";
    double peer_value = 1e6;
    if (std::ifstream in{b.results}; in.good() && in.peek() != std::ifstream::traits_type::eof()) {
      const nlohmann::json all = nlohmann::json::parse(in, nullptr, false);
      if (all.is_array()) {
        for (const auto& row : all) {
          if (row.value("unit", "") == "txn/s" && row.value("name", "") == "e2e_throughput") {
            peer = "real-process " + row.value("name", "") + " " + row.value("metric", "");
            peer_value = row.value("ours", 0.0);
          }
        }
      }
    }
    rows.push_back({name, "verdicted_per_wall_s", "txn/s", verdicted_per_wall_s, peer, peer_value,
                    aegis::bench::better::higher});
    rows.push_back({name, "time_compression", "x", compression, "real time x20 (target)", 20.0,
                    aegis::bench::better::higher});
    rows.push_back({name, "verdicted_per_cpu_s", "txn/s", static_cast<double>(r.counters.verdicts) / cpu_s,
                    "target", 1e6, aegis::bench::better::higher});
    events_per_s.push_back(static_cast<double>(r.events) / wall_s);
  }
  // The simulator's overall speed in events (timers, fiber slices, sends, receives) per wall second.
  rows.push_back({"sim/block_50k", "events_per_wall_s", "events/s", events_per_s[0], "drop mode, same run",
                  events_per_s[1], aegis::bench::better::higher});
  if (const int c = bench_bridges(b, rows); c != exit_pass) code = c;
  aegis::bench::append_results(b.results, rows);
  std::cout << "appended " << rows.size() << " rows to " << b.results << "\n";
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGABRT, on_abort);
  CLI::App app{"aegis-sim: deterministic simulation of the Aegis offload path"};
  // Bad input is one line on stderr and exit 64 (docs/ERRORS.md).
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return std::string("aegis-sim: ") + e.what() + " (see --help)\n";
  });
  app.require_subcommand(1);
  run_args ra;
  CLI::App* run = app.add_subcommand("run", "run one seed");
  add_run_options(run, ra);
  bench_args ba;
  CLI::App* bench = app.add_subcommand("bench", "simulator speed at 50k txn/s in both modes");
  bench->add_option("--results", ba.results, "bench-results.json to append to");
  bench->add_option("--sim-duration", ba.sim_duration, "virtual duration per mode");
  bench->add_option("--rate", ba.rate, "offered txn per simulated second")->check(at_least_one);
#ifndef AEGIS_SIM_RUN_ONLY
  chaos_cli_args ca;
  CLI::App* chaos = add_chaos_subcommand(app, ca);
  replay_args rpa;
  CLI::App* replay = add_replay_subcommand(app, rpa);
#endif
  try {
    app.parse(argc, argv);
#ifndef AEGIS_SIM_RUN_ONLY
    if (replay->parsed()) return run_replay(rpa, set_reproduce);
#endif
    if (run->parsed()) return cmd_run(ra);
#ifndef AEGIS_SIM_RUN_ONLY
    if (chaos->parsed()) return run_chaos_command(ca, argv[0]);
#endif
    if (bench->parsed()) return cmd_bench(ba);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 64;
  }
  return 64;
}
