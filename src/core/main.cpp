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
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(FIU_ENABLE)
#include <fiu-control.h>
#include <fiu.h>
#endif

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <latch>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "aegis/metrics.hpp"
#include "aegis/os_offloader.hpp"
#include "aegis/sched.hpp"
#include "aegis/writable.hpp"
#include "core/duration.hpp"
#include "core/ledger.hpp"
#include "core/payment_stream.hpp"

namespace {

using aegis::ns_t;
namespace fs = std::filesystem;

// Exit codes (docs/SUMMARY.md).
constexpr int exit_ok = 0;
constexpr int exit_error = 1;
constexpr int exit_usage = 2;
constexpr int exit_startup = 3;
constexpr int exit_identity = 4;
constexpr int exit_lost = 5;
constexpr int exit_undrained = 6;
constexpr int exit_summary = 7;

struct options {
  std::string endpoint_dir;
  std::string mode = "block";
  std::size_t ring_capacity = 65536;
  std::optional<std::uint64_t> count;
  std::optional<ns_t> duration_ns;
  double rate = 0;
  unsigned producers = 1;
  ns_t retransmit_timeout_ns = 200'000'000;
  ns_t target_latency_ns = 25'000'000;
  std::uint32_t max_sends = 10;
  ns_t ttl_ns = 0;
  ns_t drain_timeout_ns = 30'000'000'000;
  ns_t block_deadline_ns = aegis::no_deadline;
  std::optional<int> metrics_port;
  std::string summary_json;
  std::string ledger_path;
  std::uint64_t seed = 1;
  double high_risk_share = 1.0;
  std::size_t batch_max = 1024;
  std::size_t send_window = 8192;
  std::string fiu_fifo;
  std::string endpoint_group;                   // --endpoint-group: DIR is 0770 and this group's (docs/THREAT_MODEL.md)
  ns_t bridge_wait_report_ns = 5'000'000'000;  // --bridge-wait-report: stderr line while no bridge has said HELLO
  bool start_after_hello = false;              // --start-after-hello: producers (and the schedule) wait for a bridge
  ns_t pump_nap_ns = 1'000'000;                 // --pump-nap: offloader_config::nap_ns
  ns_t pace_quantum_ns = 250'000;               // --pace-quantum: least time between a producer's paced sleeps
  ns_t warmup_ns = 0;                           // --latency-warmup: payments due this early are not in latency_us
  aegis::sched_request sched{.slice_ns = 100'000, .fifo_priority = 0};  // --sched-slice, --realtime-priority
};

// CLI11 validator for our duration syntax.
struct duration_validator : CLI::Validator {
  duration_validator() {
    name_ = "DURATION";
    func_ = [](const std::string& s) -> std::string {
      return aegis::core::parse_duration(s) ? std::string{} : "invalid duration '" + s + "' (use e.g. 200ms, 10s, 500us, 0)";
    };
  }
};

ns_t duration_or_die(const std::string& s) { return *aegis::core::parse_duration(s); }

// Signals are blocked in every thread and taken synchronously by one watcher.
std::atomic<bool> g_stop_requested{false};
std::atomic<int> g_signal{0};
std::atomic<int> g_signals{0};  // Signals received so far.

std::uint64_t random_epoch() {
  std::random_device rd;
  std::uint64_t e = 0;
  while (e == 0) e = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  return e;
}

// Holds DIR/core.lock with flock for the process lifetime: a second core on
// the same directory would silently steal the ipc endpoints by re-binding.
int take_lock(const fs::path& dir, std::string& error) {
  const fs::path lock = dir / "core.lock";
  const int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    error = fmt::format("cannot open {}: {}", lock.string(), std::strerror(errno));
    return -1;
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char buf[32] = {};
    const auto n = ::pread(fd, buf, sizeof buf - 1, 0);
    const std::string holder = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string("?");
    error = fmt::format("another aegis-core (pid {}) holds {}", holder.substr(0, holder.find('\n')), dir.string());
    ::close(fd);
    return -1;
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    // The lock is what matters; the pid is a courtesy for the error message.
  }
  return fd;
}

// The endpoint directory is the only access control on the ipc sockets: whoever
// can enter it can connect, read TXN frames and push verdicts. It must be ours
// and 0700, or 0770 and owned by --endpoint-group (bridges running as another
// user in that group); anything looser is refused (docs/THREAT_MODEL.md).
bool prepare_dir(const fs::path& dir, const std::string& group, std::string& error) {
  gid_t gid = 0;
  if (!group.empty()) {
    const struct group* g = ::getgrnam(group.c_str());
    if (g == nullptr) {
      error = fmt::format("--endpoint-group {}: no such group", group);
      return false;
    }
    gid = g->gr_gid;
  }
  const mode_t want = group.empty() ? 0700 : 0770;
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    fs::create_directories(dir.parent_path(), ec);
    if (ec || (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)) {
      error = fmt::format("cannot create {}: {}", dir.string(), ec ? ec.message() : std::strerror(errno));
      return false;
    }
    if ((!group.empty() && ::chown(dir.c_str(), static_cast<uid_t>(-1), gid) != 0) || ::chmod(dir.c_str(), want) != 0) {
      error = fmt::format("cannot set mode {:04o} on {}: {}", want, dir.string(), std::strerror(errno));
      return false;
    }
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    error = fmt::format("cannot stat {}: {}", dir.string(), std::strerror(errno));
    return false;
  }
  if (!S_ISDIR(st.st_mode)) {
    error = fmt::format("{} exists and is not a directory", dir.string());
    return false;
  }
  const mode_t mode = st.st_mode & 07777;
  if (st.st_uid != ::geteuid()) {
    error = fmt::format("endpoint dir {} is owned by uid {}, not by this user (uid {}); refusing to serve from it",
                        dir.string(), st.st_uid, ::geteuid());
    return false;
  }
  if ((mode & ~want) != 0 || (!group.empty() && st.st_gid != gid)) {
    error = group.empty()
                ? fmt::format("endpoint dir {} has mode {:04o}, looser than 0700; run: chmod 700 {}", dir.string(), mode,
                              dir.string())
                : fmt::format("endpoint dir {} has mode {:04o} group {}, want at most 0770 and group {}; run: chgrp {} {} && chmod 770 {}",
                              dir.string(), mode, st.st_gid, group, group, dir.string(), dir.string());
    return false;
  }
  return true;
}

double us(std::uint64_t ns) { return static_cast<double>(ns) / 1000.0; }

int run(const options& o) {
  for (const auto& [flag, path] : {std::pair{"--summary-json", &o.summary_json}, std::pair{"--ledger", &o.ledger_path}}) {
    if (path->empty()) continue;
    if (const std::string why = aegis::why_unwritable(*path); !why.empty()) {
      fmt::print(stderr, "aegis-core: cannot write {} {}: {}\n", flag, *path, why);
      return exit_startup;
    }
  }
  const fs::path dir = fs::absolute(o.endpoint_dir);
  std::string error;
  if (!prepare_dir(dir, o.endpoint_group, error)) {
    fmt::print(stderr, "aegis-core: {}\n", error);
    return exit_startup;
  }
  const int lock_fd = take_lock(dir, error);
  if (lock_fd < 0) {
    fmt::print(stderr, "aegis-core: {}\n", error);
    return exit_startup;
  }

#if defined(FIU_ENABLE)
  fiu_init(0);
  if (!o.fiu_fifo.empty() && fiu_rc_fifo(o.fiu_fifo.c_str()) != 0) {
    fmt::print(stderr, "aegis-core: cannot open fiu control fifo {}-{}\n", o.fiu_fifo, ::getpid());
    return exit_startup;
  }
#endif

  // Before the ZeroMQ context and every thread: they all inherit it.
  if (const std::string err = aegis::apply_scheduling(o.sched); !err.empty()) {
    if (o.sched.fifo_priority != 0) {
      fmt::print(stderr, "aegis-core: --realtime-priority {}: {}\n", o.sched.fifo_priority, err);
      return exit_startup;
    }
    fmt::print(stderr, "aegis-core: warning: --sched-slice: {}; running with the kernel's default\n", err);
  }

  aegis::zmq_env env;
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

  aegis::core::ledger ledger;
  aegis::latency_histogram latency;
  std::atomic<ns_t> last_fate_ns{0};
  // Payments stamped before this are verdicted and counted as usual but left
  // out of the latency percentiles (--latency-warmup); set once the schedule starts.
  std::atomic<ns_t> latency_from_ns{o.warmup_ns > 0 ? aegis::no_deadline : 0};
  std::optional<aegis::os_offloader> off;
  try {
    off.emplace(env, cfg, [&](const aegis::txn& t, std::uint64_t, aegis::fate f, const aegis::verdict* v, ns_t) {
      // A verdict carries the time its frame arrived: no clock read per record
      // (a read costs ~60 ns on a kvm-clock VM, as much as the rest of this).
      const ns_t now = v != nullptr ? v->received_ns : env.now_ns();
      ledger.terminal(t.txn_id, f);
      if (f == aegis::fate::verdict && t.timestamp_ns >= latency_from_ns.load(std::memory_order_relaxed)) {
        latency.record(now - t.timestamp_ns);
      }
      last_fate_ns.store(now, std::memory_order_relaxed);
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

  fmt::print("offload: {}\nverdicts: {}\n", cfg.offload_endpoint, cfg.verdict_endpoint);
  fmt::print("epoch: {:#018x}\nmode: {}\nring_capacity: {}\npid: {}\n", cfg.epoch, o.mode, cfg.ring_capacity, ::getpid());
  if (metrics) fmt::print("metrics: http://127.0.0.1:{}/metrics\n", metrics->port());
  fmt::print("scheduling: {}\n", aegis::describe_scheduling());
  std::fflush(stdout);

  const aegis::core::payment_stream stream(o.seed, o.high_risk_share);
  off->start();

  // Signal watcher: SIGINT/SIGTERM stop the producers and close admission so
  // producers blocked on a full ring return (dropped_closed) instead of hanging.
  std::atomic<bool> finished{false};
  const ns_t start_wait_ns = env.now_ns();
  std::thread watcher([&] {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    const timespec tick{0, 50'000'000};
    // Also says on stderr, every --bridge-wait-report, that no bridge has said
    // HELLO yet (block mode: producers wait; drop mode: full-ring drops are
    // counted), and when frames of another protocol version arrive.
    ns_t next_wait_report_ns = aegis::deadline_after(env.now_ns(), o.bridge_wait_report_ns);
    std::uint64_t bad_version_seen = 0;
    while (!finished.load()) {
      const aegis::offloader_counters wc = off->counters();
      if (wc.hellos == 0 && o.bridge_wait_report_ns > 0 && env.now_ns() >= next_wait_report_ns) {
        fmt::print(stderr,
                   "aegis-core: waiting for a bridge on {}: no HELLO after {} s ({} mode; offered {}, dropped {}, "
                   "in_flight {}); a bridge needs --offload {} --verdicts {}\n",
                   cfg.offload_endpoint, (env.now_ns() - start_wait_ns) / 1'000'000'000, o.mode, wc.offered,
                   wc.dropped(), wc.in_flight, cfg.offload_endpoint, cfg.verdict_endpoint);
        next_wait_report_ns = aegis::deadline_after(env.now_ns(), o.bridge_wait_report_ns);
      }
      if (wc.rejected(aegis::reject_reason::bad_version) > bad_version_seen) {
        bad_version_seen = wc.rejected(aegis::reject_reason::bad_version);
        fmt::print(stderr, "aegis-core: rejected {} frame(s) of another protocol version (this core speaks v{}); is the bridge up to date?\n",
                   bad_version_seen, aegis::protocol_version);
      }
      const int sig = sigtimedwait(&set, nullptr, &tick);
      if (sig > 0) {
        g_signal.store(sig);
        g_signals.fetch_add(1);
        g_stop_requested.store(true);
        off->close_admission();
      }
    }
  });

  std::atomic<bool> metrics_done{false};
  std::thread metrics_thread;
  if (metrics) {
    metrics_thread = std::thread([&] {
      while (!metrics_done.load()) {
        metrics->update(off->counters(), latency);
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    });
  }

  // Benchmarks: without this, a bridge that connects up to one reconnect
  // interval after our bind makes the first transactions wait for it, and
  // that start-up wait lands in the latency percentiles and the throughput.
  if (o.start_after_hello) {
    while (off->counters().hellos == 0 && !g_stop_requested.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  // Producers claim ids from one counter; id k is due at start + (k-1)/rate.
  std::atomic<std::uint64_t> next_id{0};
  std::atomic<std::uint64_t> generated{0};
  // The schedule starts once every producer runs: starting a thread takes
  // milliseconds here now and then, and payments due meanwhile would show
  // that as latency. start_ns and end_ns are written before `go` opens.
  const ns_t period_ns = o.rate > 0 ? static_cast<ns_t>(1e9 / o.rate) : 0;
  ns_t start_ns = 0;
  ns_t end_ns = aegis::no_deadline;
  std::latch ready(o.producers);
  std::latch go(1);
  std::vector<std::thread> producers;
  for (unsigned p = 0; p < o.producers; ++p) {
    // env.spawn names the thread and gives it 1 us timer slack, as the pump
    // gets: the default 50 us would make every paced sleep 50 us late.
    producers.push_back(env.spawn("aegis-producer", [&] {
      // Open-loop pacing that costs little at 1M/s: the clock is read only
      // when the schedule looks ahead of the last reading (a read costs ~60 ns
      // here). Behind schedule, payments go out back to back with their
      // intended times, so lateness shows up as latency. Flat out, the
      // payment time is refreshed every 16 payments.
      ready.count_down();
      go.wait();
      ns_t now = env.now_ns();
      ns_t last_wake = 0;
      std::uint64_t made = 0;
      for (;;) {
        if (g_stop_requested.load(std::memory_order_relaxed)) return;
        const std::uint64_t id = next_id.fetch_add(1, std::memory_order_relaxed) + 1;
        if (o.count && id > *o.count) return;
        ns_t due = now;
        if (period_ns > 0) {
          due = start_ns + static_cast<ns_t>(id - 1) * period_ns;
          if (due >= end_ns) return;
          if (due > now) {
            now = env.now_ns();
            if (due > now) {
              // Sleeps are at least --pace-quantum apart; what fell due
              // meanwhile goes out on waking, back to back, still stamped
              // with its intended time (so the wait counts as latency). On
              // this class of VM a timed sleep costs ~20 us of CPU and
              // overshoots by ~50 us, and one per payment at 50k/s took half
              // a core from the pipeline being measured.
              const ns_t wake = std::max(due, aegis::deadline_after(last_wake, o.pace_quantum_ns));
              // The burst is complete: let a napping pump send it now.
              off->flush();
              env.sleep_until_ns(wake);
              now = last_wake = wake;
            }
          }
        } else {
          if (++made % 16 == 0) now = due = env.now_ns();
          if (due >= end_ns) return;
        }
        generated.fetch_add(1, std::memory_order_relaxed);
        const aegis::txn t = stream.make(id, due);
        if (!stream.high_risk(t)) continue;
        ledger.offered(id);
        const auto st = off->offload(t);
        if (st != aegis::offload_status::accepted) ledger.dropped(id, st);
      }
    }));
  }
  ready.wait();
  start_ns = env.now_ns();
  if (o.warmup_ns > 0) latency_from_ns.store(aegis::deadline_after(start_ns, o.warmup_ns));
  if (o.duration_ns) end_ns = aegis::deadline_after(start_ns, *o.duration_ns);
  go.count_down();
  for (auto& t : producers) t.join();
  const ns_t produced_ns = env.now_ns();
  // Ids claimed but not generated (the id that ended a producer's loop) are never offered.
  const std::uint64_t max_id = next_id.load();

  fmt::print("producers stopped{}; draining (up to {} ms)\n", g_stop_requested.load() ? " by signal" : "",
             o.drain_timeout_ns / 1'000'000);
  std::fflush(stdout);
  // Drain in slices so that a second SIGTERM/SIGINT cuts the drain short.
  const ns_t drain_deadline = aegis::deadline_after(env.now_ns(), o.drain_timeout_ns);
  const int signals_before_drain = g_signals.load();
  bool drained = false;
  for (;;) {
    drained = off->drain(std::min(drain_deadline, aegis::deadline_after(env.now_ns(), 100'000'000)));
    if (drained || env.now_ns() >= drain_deadline) break;
    if (g_signals.load() > signals_before_drain && g_signals.load() >= 2) {
      fmt::print("second signal: drain abandoned\n");
      break;
    }
  }
  const ns_t drained_ns = env.now_ns();
  off->stop();
  finished.store(true);
  watcher.join();
  if (metrics) {
    metrics_done.store(true);
    metrics_thread.join();
    metrics->update(off->counters(), latency);
  }

  const aegis::offloader_counters c = off->counters();
  const aegis::core::ledger_tally tally = ledger.tally(max_id);
  using ls = aegis::core::ledger_state;
  const std::uint64_t lost = tally[ls::in_flight];
  const bool counters_ok = c.identity_holds();
  const bool ledger_ok = tally[ls::verdict] == c.verdicts && tally[ls::expired] == c.expired &&
                         tally[ls::abandoned] == c.abandoned &&
                         tally[ls::dropped_ring_full] == c.dropped_ring_full &&
                         tally[ls::dropped_timeout] == c.dropped_timeout && tally[ls::dropped_closed] == c.dropped_closed &&
                         tally[ls::in_flight] == c.in_flight && tally.conflicts == 0;
  const bool identity_ok = counters_ok && ledger_ok;

  const ns_t last_fate = last_fate_ns.load();
  const double active_s = static_cast<double>((last_fate > start_ns ? last_fate : drained_ns) - start_ns) / 1e9;
  const double throughput = active_s > 0 ? static_cast<double>(c.verdicts) / active_s : 0.0;

  int code = exit_ok;
  if (!identity_ok) code = exit_identity;
  else if (cfg.mode == aegis::admission::block && lost > 0) code = exit_lost;
  else if (!drained) code = exit_undrained;

  nlohmann::json j;
  j["mode"] = o.mode;
  j["offered"] = c.offered;
  j["accepted"] = c.accepted;
  j["dropped"] = {{"ring_full", c.dropped_ring_full}, {"timeout", c.dropped_timeout}, {"closed", c.dropped_closed}};
  j["dropped_total"] = c.dropped();
  j["verdicts"] = c.verdicts;
  j["expired"] = c.expired;
  j["abandoned"] = c.abandoned;
  j["unscored_verdicts"] = c.unscored_verdicts;
  j["in_flight"] = c.in_flight;
  j["lost"] = lost;
  j["duplicate_verdicts"] = c.duplicate_verdicts;
  nlohmann::json rejected = nlohmann::json::object();
  for (auto r : aegis::all_reject_reasons) rejected[aegis::to_string(r)] = c.rejected(r);
  j["rejected_frames"] = rejected;
  j["retransmits"] = c.retransmits;
  j["retransmit_rounds"] = c.retransmit_rounds;
  j["silence_rewinds"] = c.silence_rewinds;
  j["window"] = c.window;
  j["srtt_us"] = static_cast<double>(c.srtt_ns) / 1e3;
  j["bridge_incarnations"] = c.bridge_incarnations;
  j["late_verdicts"] = c.late_verdicts;
  j["unknown_seq"] = c.unknown_seq;
  j["stale_incarnation"] = c.stale_incarnation;
  j["hellos"] = c.hellos;
  j["frames_sent"] = c.frames_sent;
  j["frames_received"] = c.frames_received;
  j["send_stalls"] = c.send_stalls;
  j["latency_us"] = {{"p50", us(latency.percentile_ns(0.50))},
                     {"p99", us(latency.percentile_ns(0.99))},
                     {"p999", us(latency.percentile_ns(0.999))},
                     {"max", us(latency.max_ns())},
                     {"count", latency.count()}};
  j["throughput_per_s"] = throughput;
  j["epoch"] = cfg.epoch;
  j["generated"] = generated.load();
  j["drained"] = drained;
  j["identity_ok"] = identity_ok;
  j["ledger_conflicts"] = tally.conflicts;
  j["stopped_by_signal"] = g_stop_requested.load();
  j["produce_s"] = static_cast<double>(produced_ns - start_ns) / 1e9;
  j["latency_warmup_s"] = static_cast<double>(o.warmup_ns) / 1e9;
  j["drain_s"] = static_cast<double>(drained_ns - produced_ns) / 1e9;
  j["exit_code"] = code;
  j["config"] = {{"ring_capacity", o.ring_capacity},
                 {"rate", o.rate},
                 {"producers", o.producers},
                 {"count", o.count ? nlohmann::json(*o.count) : nlohmann::json(nullptr)},
                 {"duration_ns", o.duration_ns ? nlohmann::json(*o.duration_ns) : nlohmann::json(nullptr)},
                 {"retransmit_timeout_ns", o.retransmit_timeout_ns},
                 {"target_latency_ns", o.target_latency_ns},
                 {"max_sends", o.max_sends},
                 {"ttl_ns", o.ttl_ns},
                 {"batch_max", o.batch_max},
                 {"send_window", cfg.send_window},
                 {"pump_nap_ns", o.pump_nap_ns},
                 {"pace_quantum_ns", o.pace_quantum_ns},
                 {"scheduling", aegis::describe_scheduling()},
                 {"seed", o.seed},
                 {"high_risk_share", o.high_risk_share},
                 {"endpoint_dir", dir.string()}};

  fmt::print(
      "aegis-core summary ({} mode)\n"
      "  offered {}  accepted {}  dropped {} (ring_full {}, timeout {}, closed {})\n"
      "  verdicts {} (unscored {})  expired {}  abandoned {}  in_flight {}  lost {}\n"
      "  duplicates {}  late {}  unknown_seq {}  stale_incarnation {}  rejected {}\n"
      "  retransmits {} ({} rounds)  bridge_incarnations {}\n"
      "  latency us: p50 {:.1f}  p99 {:.1f}  p999 {:.1f}  max {:.1f}\n"
      "  throughput {:.0f} verdicts/s   drained {}   identity {}   exit {}\n",
      o.mode, c.offered, c.accepted, c.dropped(), c.dropped_ring_full, c.dropped_timeout, c.dropped_closed, c.verdicts,
      c.unscored_verdicts, c.expired, c.abandoned, c.in_flight, lost, c.duplicate_verdicts, c.late_verdicts, c.unknown_seq, c.stale_incarnation,
      [&] {
        std::uint64_t n = 0;
        for (auto v : c.rejected_frames) n += v;
        return n;
      }(),
      c.retransmits, c.retransmit_rounds, c.bridge_incarnations, us(latency.percentile_ns(0.5)),
      us(latency.percentile_ns(0.99)), us(latency.percentile_ns(0.999)), us(latency.max_ns()), throughput,
      drained ? "yes" : "NO", identity_ok ? "ok" : "BROKEN", code);
  std::fflush(stdout);

  if (!o.summary_json.empty()) {
    std::string why;
    const std::string tmp = o.summary_json + ".tmp";
    {
      errno = 0;
      std::ofstream f(tmp);
      f << j.dump(2) << "\n";
      f.flush();
      if (!f) why = std::strerror(errno != 0 ? errno : EIO);
    }
    std::error_code ec;
    if (why.empty()) fs::rename(tmp, o.summary_json, ec);  // Readers never see a half-written summary.
    if (ec) why = ec.message();
    if (!why.empty()) {
      // The summary is the result of the run: never lose it. One line, then the JSON.
      fmt::print(stderr, "aegis-core: cannot write --summary-json {}: {}; summary follows on stderr\n{}\n",
                 o.summary_json, why, j.dump());
      if (code == exit_ok) code = exit_summary;
    }
  }
  try {
    if (!o.ledger_path.empty()) ledger.write(o.ledger_path, max_id);
  } catch (const std::exception& e) {
    fmt::print(stderr, "aegis-core: {}\n", e.what());
    return code == exit_ok ? exit_error : code;
  }
  ::close(lock_fd);
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"aegis-core: demo payment core offloading high-risk transactions to the Aegis bridge"};
  options o;
  std::string retransmit = "200ms", target_latency = "25ms", ttl = "0", drain = "30s", duration, block_deadline;
  std::uint64_t count = 0;
  int metrics_port = -1;
  const duration_validator is_duration;
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
  auto* count_opt = app.add_option("--count", count, "Payments to generate")
                        ->check(CLI::Range(std::uint64_t{1}, std::numeric_limits<std::uint64_t>::max()));
  auto* duration_opt = app.add_option("--duration", duration, "Run time, e.g. 10s")->check(is_duration);
  count_opt->excludes(duration_opt);
  app.add_option("--rate", o.rate, "Payments per second, open-loop; 0 = as fast as possible")->check(CLI::NonNegativeNumber);
  app.add_option("--producers", o.producers, "Producer threads")->check(CLI::Range(1u, 64u));
  app.add_option("--retransmit-timeout", retransmit,
                 "Floor of the safety timer: resend what a live bridge holds and does not answer for this long")
      ->check(is_duration);
  app.add_option("--target-latency", target_latency, "Flow control: keep send-to-verdict latency near this")->check(is_duration);
  app.add_option("--max-sends", o.max_sends, "Abandon a transaction sent this many times without a verdict")
      ->check(CLI::Range(1u, 1000000u));
  app.add_option("--ttl", ttl, "Expire unverdicted transactions this old; 0 = never")->check(is_duration);
  app.add_option("--block-deadline", block_deadline, "Block mode: give up admitting after this long (default: never)")
      ->check(is_duration);
  app.add_option("--batch-max", o.batch_max, "Most TXN records per frame")->check(CLI::Range(1, 1024));
  app.add_option("--send-window", o.send_window,
                 "Most records sent ahead of the oldest unverdicted one (raised to --batch-max if below)")
      ->check(CLI::Range(1, 1 << 24));
  app.add_option("--metrics-port", metrics_port, "Serve Prometheus metrics on 127.0.0.1:PORT (0 = any free port)")
      ->check(CLI::Range(0, 65535));
  app.add_option("--summary-json", o.summary_json, "Write the summary JSON here (docs/SUMMARY.md)");
  app.add_option("--ledger", o.ledger_path, "Write '<txn_id> <fate>' per offered transaction here");
  app.add_option("--seed", o.seed, "Seed of the synthetic payment stream");
  app.add_option("--drain-timeout", drain, "How long to wait for in-flight verdicts at the end")->check(is_duration);
  app.add_option("--high-risk-share", o.high_risk_share, "Share of payments the risk rule offloads")->check(CLI::Range(0.0, 1.0));
  app.add_option("--endpoint-group", o.endpoint_group, "DIR is 0770 and owned by this group (bridges as other users); default 0700");
  std::string wait_report = "5s";
  app.add_option("--bridge-wait-report", wait_report, "Say so on stderr this often while no bridge has connected; 0 = never")
      ->check(is_duration);
  app.add_flag("--start-after-hello", o.start_after_hello,
               "Start the producers (and the --rate schedule) only once a bridge has sent HELLO (benchmarks)");
  app.add_option("--fiu-fifo", o.fiu_fifo, "Enable fiu-ctrl: control fifo PREFIX (fiu-ctrl -f PREFIX ... PID)");
  std::string pump_nap = "1ms", pace_quantum = "250us", sched_slice = "100us", latency_warmup = "0";
  app.add_option("--latency-warmup", latency_warmup,
                 "Leave payments due in the first DURATION of the run out of latency_us (they are still offloaded and counted)")
      ->check(is_duration);
  app.add_option("--pump-nap", pump_nap, "How long an idle pump naps before looking at the ring again (the batching interval at low rates)")
      ->check(is_duration);
  app.add_option("--pace-quantum", pace_quantum,
                 "--rate: least time between a producer's sleeps; payments due meanwhile go out together (0 = sleep per payment)")
      ->check(is_duration);
  app.add_option("--sched-slice", sched_slice,
                 "Scheduler slice (EEVDF, Linux 6.6+) every thread asks for, 100us..100ms; shorter wakes sooner; 0 = kernel default")
      ->check(is_duration);
  app.add_option("--realtime-priority", o.sched.fifo_priority,
                 "Run every thread SCHED_FIFO at this priority (1-99; needs CAP_SYS_NICE or ulimit -r); 0 = off")
      ->check(CLI::Range(0, 99));

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    fmt::print(stderr, "aegis-core: {}\n", e.what());
    return exit_usage;
  }
  if (count_opt->count() > 0) o.count = count;
  if (!duration.empty()) o.duration_ns = duration_or_die(duration);
  // Durations that must be positive; the validator already refused bad syntax.
  const auto positive = [](ns_t v, const char* flag) {
    if (v > 0) return true;
    fmt::print(stderr, "aegis-core: {} must be positive\n", flag);
    return false;
  };
  if (o.duration_ns && !positive(*o.duration_ns, "--duration")) return exit_usage;
  o.retransmit_timeout_ns = duration_or_die(retransmit);
  if (!positive(o.retransmit_timeout_ns, "--retransmit-timeout")) return exit_usage;
  o.target_latency_ns = duration_or_die(target_latency);
  if (!positive(o.target_latency_ns, "--target-latency")) return exit_usage;
  o.ttl_ns = duration_or_die(ttl);
  o.drain_timeout_ns = duration_or_die(drain);
  if (!block_deadline.empty()) o.block_deadline_ns = duration_or_die(block_deadline);
  if (metrics_port >= 0) o.metrics_port = metrics_port;
  o.bridge_wait_report_ns = duration_or_die(wait_report);
  o.pump_nap_ns = duration_or_die(pump_nap);
  if (!positive(o.pump_nap_ns, "--pump-nap")) return exit_usage;
  o.pace_quantum_ns = duration_or_die(pace_quantum);
  o.warmup_ns = duration_or_die(latency_warmup);
  o.sched.slice_ns = duration_or_die(sched_slice);
  if (o.sched.slice_ns != 0 && (o.sched.slice_ns < 100'000 || o.sched.slice_ns > 100'000'000)) {
    fmt::print(stderr, "aegis-core: --sched-slice must be 0 or 100us..100ms\n");
    return exit_usage;
  }

  // Block the stop signals before any thread starts, so only the watcher takes them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  try {
    return run(o);
  } catch (const std::exception& e) {
    fmt::print(stderr, "aegis-core: {}\n", e.what());
    return exit_error;
  }
}
