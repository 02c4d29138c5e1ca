// aegis-core: the demo payment core and test harness of the offload path.
//
// Usage:
//   aegis-core --endpoint-dir /run/aegis --mode block --count 200000 --summary-json s.json
//   aegis-core --endpoint-dir D --mode drop --ring-capacity 1024 --rate 50000 --duration 10s --ledger L
//
// It generates a seeded synthetic payment stream, offloads the high-risk share
// open-loop at --rate (timestamps are the intended send times, so latency is
// measured from when a payment *should* have been sent: coordinated omission
// is not hidden), then stops the producers, drains, prints a human summary and
// writes the summary JSON and ledger. docs/SUMMARY.md is the contract for the
// output, the flags and the exit codes.
//
// This file is the sequence of steps; each step lives in its own unit:
// cli (flags), endpoint_dir (directory and lock), load_generator (producers),
// stop_signals (SIGINT/SIGTERM watcher), drain, summary (judgement, JSON,
// human summary) and ledger.
#include <unistd.h>

#if defined(FIU_ENABLE)
#include <fiu-control.h>
#include <fiu.h>
#endif

#include <fmt/core.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>

#include "aegis/assert.hpp"
#include "aegis/metrics.hpp"
#include "aegis/os_offloader.hpp"
#include "aegis/sched.hpp"
#include "aegis/writable.hpp"
#include "core/cli.hpp"
#include "core/drain.hpp"
#include "core/endpoint_dir.hpp"
#include "core/exit_codes.hpp"
#include "core/fate_log.hpp"
#include "core/load_generator.hpp"
#include "core/payment_stream.hpp"
#include "core/stop_signals.hpp"
#include "core/summary.hpp"

namespace {

using aegis::ns_t;
using namespace aegis::core;
namespace fs = std::filesystem;

std::uint64_t random_epoch() {
  std::random_device rd;
  std::uint64_t e = 0;
  while (e == 0) e = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  AEGIS_ASSERT(e != 0, "epoch 0 means 'none' on the wire");
  return e;
}

// Output paths are checked before anything starts: a run that cannot write
// its result must not run first.
bool outputs_writable(const options& o) {
  for (const auto& [flag, path] : {std::pair{"--summary-json", &o.summary_json}, std::pair{"--ledger", &o.ledger_path}}) {
    if (path->empty()) continue;
    if (const std::string why = aegis::why_unwritable(*path); !why.empty()) {
      fmt::print(stderr, "aegis-core: cannot write {} {}: {}\n", flag, *path, why);
      return false;
    }
  }
  return true;
}

// libfiu's fault sites, and its control fifo if asked for.
bool start_fault_control(const options& o) {
#if defined(FIU_ENABLE)
  fiu_init(0);
  if (!o.fiu_fifo.empty() && fiu_rc_fifo(o.fiu_fifo.c_str()) != 0) {
    fmt::print(stderr, "aegis-core: cannot open fiu control fifo {}-{}\n", o.fiu_fifo, ::getpid());
    return false;
  }
#else
  (void)o;
#endif
  return true;
}

// Before the ZeroMQ context and every thread: they all inherit it. A slice
// the kernel refuses is a warning; a real-time priority it refuses is fatal.
bool apply_scheduling(const options& o) {
  if (const std::string err = aegis::apply_scheduling(o.sched); !err.empty()) {
    if (o.sched.fifo_priority != 0) {
      fmt::print(stderr, "aegis-core: --realtime-priority {}: {}\n", o.sched.fifo_priority, err);
      return false;
    }
    fmt::print(stderr, "aegis-core: warning: --sched-slice: {}; running with the kernel's default\n", err);
  }
  return true;
}

aegis::offloader_config offloader_config_for(const options& o, const fs::path& dir) {
  AEGIS_ASSERT(dir.is_absolute(), "endpoints name the directory absolutely");
  aegis::offloader_config cfg;
  cfg.mode = o.mode == "drop" ? aegis::admission::drop : aegis::admission::block;
  cfg.ring_capacity = o.ring_capacity;
  cfg.offload_endpoint = "ipc://" + (dir / "offload.sock").string();
  cfg.verdict_endpoint = "ipc://" + (dir / "verdicts.sock").string();
  cfg.retransmit_timeout_ns = o.retransmit_timeout_ns;
  cfg.target_latency_ns = o.target_latency_ns;
  cfg.max_sends = o.max_sends;
  cfg.ttl_ns = o.ttl_ns;
  cfg.block_deadline_ns = o.block_deadline_ns;
  cfg.batch_max = o.batch_max;
  cfg.send_window = std::max(o.send_window, o.batch_max);
  cfg.nap_ns = o.pump_nap_ns;
  cfg.epoch = random_epoch();
  // Enough frames queued per pipe for a whole ring at small batches.
  cfg.offload_socket.send_hwm = 4096;
  cfg.verdict_socket.recv_hwm = 4096;
  AEGIS_ASSERT(cfg.send_window >= cfg.batch_max, "a whole batch fits the send window");
  return cfg;
}

// One `key: value` per line, flushed before any transaction is generated, so
// a test can wait for the `pid:` line.
void print_banner(const options& o, const aegis::offloader_config& cfg, const aegis::metrics_exporter* metrics) {
  fmt::print("offload: {}\nverdicts: {}\n", cfg.offload_endpoint, cfg.verdict_endpoint);
  fmt::print("epoch: {:#018x}\nmode: {}\nring_capacity: {}\npid: {}\n", cfg.epoch, o.mode, cfg.ring_capacity, ::getpid());
  if (metrics != nullptr) fmt::print("metrics: http://127.0.0.1:{}/metrics\n", metrics->port());
  fmt::print("scheduling: {}\n", aegis::describe_scheduling());
  std::fflush(stdout);
}

// Refreshes the Prometheus metrics every 200 ms, and once more when finished.
class metrics_refresher {
 public:
  metrics_refresher(aegis::metrics_exporter* metrics, aegis::os_offloader& off, const aegis::latency_histogram& latency)
      : metrics_(metrics), off_(off), latency_(latency) {
    if (metrics_ == nullptr) return;
    thread_ = std::thread([this] {
      while (!done_.load()) {
        metrics_->update(off_.counters(), latency_);
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    });
  }
  metrics_refresher(const metrics_refresher&) = delete;
  metrics_refresher& operator=(const metrics_refresher&) = delete;
  ~metrics_refresher() { finish(); }
  // After the offloader has stopped: the last update sees the final counters.
  void finish() {
    if (metrics_ == nullptr || !thread_.joinable()) return;
    done_.store(true);
    thread_.join();
    metrics_->update(off_.counters(), latency_);
  }

 private:
  aegis::metrics_exporter* metrics_;
  aegis::os_offloader& off_;
  const aegis::latency_histogram& latency_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

int run(const options& o) {
  if (!outputs_writable(o)) return exit_startup;
  const fs::path dir = fs::absolute(o.endpoint_dir);
  std::string error;
  if (!prepare_endpoint_dir(dir, o.endpoint_group, error)) {
    fmt::print(stderr, "aegis-core: {}\n", error);
    return exit_startup;
  }
  const endpoint_lock lock = endpoint_lock::take(dir, error);
  if (!lock.held()) {
    fmt::print(stderr, "aegis-core: {}\n", error);
    return exit_startup;
  }
  if (!start_fault_control(o)) return exit_startup;
  if (!apply_scheduling(o)) return exit_startup;

  aegis::zmq_env env;
  const aegis::offloader_config cfg = offloader_config_for(o, dir);
  fate_log fates{o.warmup_ns};
  std::optional<aegis::os_offloader> off;
  try {
    off.emplace(env, cfg, [&](const aegis::txn& t, std::uint64_t, aegis::fate f, const aegis::verdict* v, ns_t) {
      // A verdict carries the time its frame arrived: no clock read per record
      // (a read costs ~60 ns on a kvm-clock VM, as much as the rest of this).
      fates.record(t, f, v != nullptr ? v->received_ns : env.now_ns());
    });
  } catch (const std::exception& e) {
    fmt::print(stderr, "aegis-core: {}\n", e.what());
    return exit_startup;
  }
  std::unique_ptr<aegis::metrics_exporter> metrics;
  if (o.metrics_port) {
    try {
      metrics = std::make_unique<aegis::metrics_exporter>(fmt::format("127.0.0.1:{}", *o.metrics_port));
    } catch (const std::exception& e) {
      fmt::print(stderr, "aegis-core: cannot serve metrics on 127.0.0.1:{}: {}\n", *o.metrics_port, e.what());
      return exit_startup;
    }
  }
  print_banner(o, cfg, metrics.get());

  const payment_stream stream(o.seed, o.high_risk_share);
  off->start();
  stop_signals stop;
  watcher signal_watcher(env, *off, cfg, o, stop);
  metrics_refresher refresher(metrics.get(), *off, fates.latency);
  const load_result load = generate_load(env, *off, stream, fates, o, stop);
  const drain_result drain = drain_in_flight(env, *off, o.drain_timeout_ns, stop);
  off->stop();
  signal_watcher.finish();
  refresher.finish();

  const run_facts facts{.o = o,
                        .cfg = cfg,
                        .endpoint_dir = dir,
                        .counters = off->counters(),
                        .tally = fates.ledger.tally(load.max_id),
                        .latency = fates.latency,
                        .load = load,
                        .drain = drain,
                        .last_fate_ns = fates.last_fate_ns.load(),
                        .stopped_by_signal = stop.requested()};
  const judgement verdict = judge(facts);
  const nlohmann::json summary = summary_json(facts, verdict);
  print_summary(facts, verdict);
  const int code = write_summary_json(o.summary_json, summary, verdict.exit_code);
  try {
    if (!o.ledger_path.empty()) fates.ledger.write(o.ledger_path, load.max_id);
  } catch (const std::exception& e) {
    fmt::print(stderr, "aegis-core: {}\n", e.what());
    return code == exit_ok ? exit_error : code;
  }
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  const cli_result cli = parse_cli(argc, argv);
  if (!cli.opts) return cli.exit_code;
  // Block the stop signals before any thread starts, so only the watcher takes them.
  block_stop_signals();
  try {
    return run(*cli.opts);
  } catch (const std::exception& e) {
    fmt::print(stderr, "aegis-core: {}\n", e.what());
    return exit_error;
  }
}
