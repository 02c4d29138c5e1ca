// aegis-sim chaos; see chaos.hpp.
#include "sim/chaos.hpp"

#include <CLI/CLI.hpp>
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "aegis/assert.hpp"
#include "aegis/bench_results.hpp"
#include "aegis/coverage.hpp"
#include "aegis/mutant_catalogue.hpp"
#include "aegis/writable.hpp"
#include "sim/chaos_report.hpp"
#include "sim/chaos_shrink.hpp"
#include "sim/checked_run.hpp"
#include "sim/runner.hpp"
#include "sim/schedule.hpp"
#include "sim/seed.hpp"
#include "sim/swarm.hpp"

namespace aegis::sim {

namespace {

namespace fs = std::filesystem;
using wall_clock = std::chrono::steady_clock;

double seconds_since(wall_clock::time_point t0) { return std::chrono::duration<double>(wall_clock::now() - t0).count(); }

std::string kind_of(int exit_code) {
  switch (exit_code) {
    case exit_pass: return "pass";
    case exit_correctness: return "correctness";
    case exit_liveness: return "liveness";
    case exit_load: return "load";
    default: return "crash";
  }
}

std::string clock_text(double s) {
  const auto total = static_cast<long>(s);
  return fmt::format("{}:{:02}", total / 60, total % 60);
}

// SIGINT in the parent: stop starting seeds, finish the running ones, report.
volatile std::sig_atomic_t g_interrupted = 0;
extern "C" void on_interrupt(int) { g_interrupted = 1; }

/// A seed running in a forked child.
struct child {
  pid_t pid = -1;
  int fd = -1;                   // Read end of the result pipe.
  scenario s;
  std::string result;            // Bytes read so far.
  std::string err_path;          // The child's stderr.
  wall_clock::time_point start;
};

/// The replay line for a scenario: `aegis-sim replay --schedule '<json>'`,
/// which reruns it with the same property checks chaos applied (sim/checked_run.hpp),
/// naming the binary as the user invoked it. The schedule carries the mutant.
std::string replay_line(const scenario& s, const chaos_options& o) {
  // Schedules never contain a single quote (schedule.hpp), so one pair quotes it all.
  return fmt::format("{} replay --schedule '{}'", o.self_exe, schedule_json(s));
}

/// The same case as an `aegis-sim run` line (runner invariants only, no
/// property checks): handy with --trace or --check-determinism.
std::string run_line(const scenario& s, const chaos_options& o) {
  std::string cmd = s.reproduce_command();
  if (cmd.starts_with("aegis-sim")) cmd = o.self_exe + cmd.substr(9);
  return cmd;
}

class chaos_runner {
 public:
  explicit chaos_runner(const chaos_options& o) : o_(o) {
    length_ns_ = o_.sim_duration_ns != 0 ? o_.sim_duration_ns : chaos_default_length_ns;
    jobs_ = o_.jobs != 0 ? o_.jobs : std::max(1u, std::thread::hardware_concurrency());
    if (o_.seed_base) {
      base_ = *o_.seed_base;
    } else {
      // Outside any simulated run: the parent only picks where the seed space starts.
      std::random_device rd;
      base_ = (static_cast<std::uint64_t>(rd()) << 32 | rd()) >> 16;  // 48 bits: short to type.
    }
    work_ = fs::path(o_.out_dir) / ".work";
  }

  int run() {
    prepare_out_dir();
    tty_ = o_.progress == "bar" || (o_.progress == "auto" && ::isatty(STDERR_FILENO) != 0);
    lines_ = o_.progress == "lines" || (o_.progress == "auto" && !tty_);
    std::cout << fmt::format(
        "chaos: budget {} jobs {} shard {}/{} seed-base {} seed length {} (simulated){}{} out {}\n",
        format_duration(o_.budget_ns), jobs_, o_.shard_k, o_.shard_n, base_, format_duration(length_ns_),
        o_.seed_count ? fmt::format(" seed-count {}", *o_.seed_count) : "",
        o_.mutant.empty() ? "" : " mutant " + o_.mutant, o_.out_dir);
    std::cout.flush();
    struct sigaction sa {};
    sa.sa_handler = on_interrupt;
    sigaction(SIGINT, &sa, &old_int_);

    start_ = wall_clock::now();
    seed_phase();
    summary_.wall_s = seconds_since(start_);
    if (tty_) std::cerr << "\n";
    sigaction(SIGINT, &old_int_, nullptr);

    shrink_phase();
    summary_.shard = fmt::format("{}/{}", o_.shard_k, o_.shard_n);
    summary_.seed_base = base_;
    summary_.default_length = format_duration(length_ns_);
    summary_.budget_s = static_cast<double>(o_.budget_ns) / 1e9;
    summary_.jobs = jobs_;
    summary_.mutant = o_.mutant;
    summary_.python_share = aegis::is_bridge_mutant(o_.mutant) ? 1.0 : o_.python_share;
    summary_.core_seconds = summary_.wall_s * jobs_;
    write_report(summary_, o_.out_dir);
    fs::remove_all(work_);
    if (!o_.bench_results.empty()) append_bench();
    print_summary();
    return summary_.failed_count() == 0 ? 0 : 1;
  }

 private:
  void prepare_out_dir() {
    fs::create_directories(o_.out_dir);
    // Only what this command writes: never wipe a directory the user pointed at.
    for (const char* name : {"summary.json", "junit.xml", "seeds.jsonl"}) fs::remove(fs::path(o_.out_dir) / name);
    fs::remove_all(fs::path(o_.out_dir) / "failures");
    fs::remove_all(work_);
    fs::create_directories(work_);
  }

  // ------------------------------------------------------------ seeds

  std::optional<std::uint64_t> next_seed() {
    const std::uint64_t global_index = next_index_ * o_.shard_n + (o_.shard_k - 1);
    if (o_.seed_count && global_index >= *o_.seed_count) return std::nullopt;
    return shard_seed(base_, next_index_++, o_.shard_k, o_.shard_n);
  }

  scenario make_scenario(std::uint64_t seed) const {
    scenario s = chaos_scenario(seed, length_ns_);
    s.mutant = o_.mutant;
    // A mutant planted in the Python bridge exists only there: every seed runs it.
    const bool python = aegis::is_bridge_mutant(o_.mutant) || runs_python(seed, o_.python_share);
    s.bridge = python ? bridge_kind::python : bridge_kind::model;
    return s;
  }

  bool may_start_more() const {
    if (g_interrupted != 0) return false;
    if (seconds_since(start_) * 1e9 >= static_cast<double>(o_.budget_ns)) return false;
    if (summary_.failed_count() >= o_.max_failures) return false;
    return !exhausted_;
  }

  void seed_phase() {
    std::vector<child> running;
    auto last_line = wall_clock::now();
    for (;;) {
      while (running.size() < jobs_ && may_start_more()) {
        const auto seed = next_seed();
        if (!seed) {
          exhausted_ = true;
          break;
        }
        running.push_back(spawn(make_scenario(*seed), ""));
      }
      if (running.empty()) break;
      wait_some(running, 200);
      for (auto it = running.begin(); it != running.end();) {
        if (auto out = try_finish(*it)) {
          record(std::move(*out));
          it = running.erase(it);
        } else {
          ++it;
        }
      }
      if (tty_) {
        draw_bar();
      } else if (lines_ && seconds_since(last_line) >= 5.0) {
        last_line = wall_clock::now();
        std::cout << progress_text() << "\n" << std::flush;
      }
    }
  }

  child spawn(const scenario& s, const std::string& trace_path) {
    int fds[2];
    AEGIS_ASSERT(::pipe2(fds, O_CLOEXEC) == 0, "a pipe for the child's result");
    child c;
    c.s = s;
    c.err_path = (work_ / fmt::format("seed-{}-{}.err", s.seed, spawned_++)).string();
    c.start = wall_clock::now();
    std::cout.flush();
    std::cerr.flush();
    const pid_t pid = ::fork();
    AEGIS_ASSERT(pid >= 0, "fork a child for a seed");
    if (pid == 0) {
      ::close(fds[0]);
      child_main(s, trace_path, fds[1], c.err_path);
    }
    ::close(fds[1]);
    // Non-blocking: the parent polls many children and must never sit on one.
    ::fcntl(fds[0], F_SETFL, ::fcntl(fds[0], F_GETFL) | O_NONBLOCK);
    c.pid = pid;
    c.fd = fds[0];
    return c;
  }

  // The child: run the world, write one JSON line, leave without touching the
  // parent's buffers or destructors (_exit).
  [[noreturn]] static void child_main(const scenario& s, const std::string& trace_path, int fd, const std::string& err_path) {
    ::signal(SIGINT, SIG_IGN);  // The parent decides what an interrupt means.
    const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const int null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (err >= 0) ::dup2(err, STDERR_FILENO);
    if (null >= 0) ::dup2(null, STDOUT_FILENO);
    const auto t0 = wall_clock::now();
    // The property suite's judgment (runner invariants + the properties of the
    // mode), so a chaos failure and its `aegis-sim replay` line agree.
    const checked_result r = run_checked(s, trace_path);
    const double wall_s = seconds_since(t0);
    std::vector<std::string> rare;
    for (const auto& [name, count] : r.coverage) {
      if (count > 0) rare.push_back(name);
    }
    const nlohmann::json j = {{"exit_code", r.exit_code}, {"failure", r.failure},   {"trace_hash", r.trace_hash},
                              {"events", r.events},       {"offered", r.accepted + r.dropped},
                              {"verdicts", r.verdicts},   {"wall_s", wall_s},       {"rare_states", rare},
                              {"resent", r.load.resent},  {"resent_allowed", r.load.resent_allowed},
                              {"deaths", r.load.deaths},  {"recovered_after_ns", r.load.recovered_after_ns},
                              {"recovery_bound_ns", r.load.recovery_bound_ns}, {"goodput_ratio", r.load.goodput_ratio},
                              {"load_ratio", r.model_capacity_per_s > 0 ? static_cast<double>(r.rate_per_s) / static_cast<double>(r.model_capacity_per_s) : 0.0}};
    const std::string line = j.dump() + "\n";
    std::size_t done = 0;
    while (done < line.size()) {
      const ssize_t n = ::write(fd, line.data() + done, line.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) ::_exit(70);
      done += static_cast<std::size_t>(n);
    }
    ::_exit(0);
  }

  void wait_some(std::vector<child>& running, int timeout_ms) {
    std::vector<pollfd> pfds;
    for (const child& c : running) pfds.push_back({c.fd, POLLIN, 0});
    const int n = ::poll(pfds.data(), pfds.size(), timeout_ms);
    if (n < 0 && errno != EINTR) AEGIS_ASSERT(false, "poll on the children's pipes");
  }

  // Reads what the child wrote; returns its outcome once the pipe closed (or
  // it overran the seed timeout and was killed).
  std::optional<seed_outcome> try_finish(child& c) {
    char buf[4096];
    for (;;) {
      const ssize_t n = ::read(c.fd, buf, sizeof buf);
      if (n > 0) {
        c.result.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) break;
      if (n == 0) return collect(c, false);
      break;
    }
    if (seconds_since(c.start) * 1e9 > static_cast<double>(o_.seed_timeout_ns)) {
      ::kill(c.pid, SIGKILL);
      return collect(c, true);
    }
    return std::nullopt;
  }

  seed_outcome collect(child& c, bool timed_out) {
    ::close(c.fd);
    int status = 0;
    while (::waitpid(c.pid, &status, 0) < 0 && errno == EINTR) {
    }
    seed_outcome o;
    o.seed = c.s.seed;
    o.mode = *c.s.mode == admission::block ? "block" : "drop";
    o.scheduler = to_string(c.s.strategy);
    o.bridge = to_string(c.s.bridge);
    o.swarm = swarm_mix_for(c.s.seed).kinds;
    if (*c.s.mode == admission::block) std::erase(o.swarm, "ttl.short");  // Block mode has no TTL: inert there.
    o.reproduce = replay_line(c.s, o_);
    o.run_line = run_line(c.s, o_);
    o.wall_s = seconds_since(c.start);
    const bool clean_exit = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (timed_out) {
      o.exit_code = exit_liveness;
      o.kind = "hang";
      o.failure = fmt::format("no result within {} of wall time (killed): a loop with no yield point?",
                              format_duration(o_.seed_timeout_ns));
    } else if (!clean_exit || c.result.empty()) {
      o.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : exit_crash;
      if (o.exit_code == 0) o.exit_code = exit_crash;
      o.kind = "crash";
      const std::string err = tail_of(c.err_path, 2000);
      o.failure = WIFSIGNALED(status) ? fmt::format("killed by signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status)))
                                      : fmt::format("crashed (exit {})", o.exit_code);
      if (!err.empty()) o.failure += ":\n" + err;
    } else {
      const nlohmann::json j = nlohmann::json::parse(c.result);
      o.exit_code = j.at("exit_code").get<int>();
      o.kind = kind_of(o.exit_code);
      o.failure = j.at("failure").get<std::string>();
      o.trace_hash = j.at("trace_hash").get<std::uint64_t>();
      o.events = j.at("events").get<std::uint64_t>();
      o.virtual_ns = static_cast<std::uint64_t>(c.s.sim_duration_ns);  // The workload; convergence adds a little.
      o.offered = j.at("offered").get<std::uint64_t>();
      o.verdicts = j.at("verdicts").get<std::uint64_t>();
      o.wall_s = j.at("wall_s").get<double>();
      o.rare_states = j.at("rare_states").get<std::vector<std::string>>();
      o.resent = j.at("resent").get<std::uint64_t>();
      o.resent_allowed = j.at("resent_allowed").get<std::uint64_t>();
      o.deaths = j.at("deaths").get<std::uint64_t>();
      o.recovered_after_ns = j.at("recovered_after_ns").get<std::int64_t>();
      o.recovery_bound_ns = j.at("recovery_bound_ns").get<std::int64_t>();
      o.goodput_ratio = j.at("goodput_ratio").get<double>();
      o.load_ratio = j.at("load_ratio").get<double>();
    }
    if (o.kind != "crash") fs::remove(c.err_path);
    else crash_logs_[o.seed] = c.err_path;
    return o;
  }

  static std::string tail_of(const std::string& path, std::size_t max_bytes) {
    std::ifstream in{path};
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return all.size() > max_bytes ? all.substr(all.size() - max_bytes) : all;
  }

  void record(seed_outcome o) {
    for (const auto& r : o.rare_states) rare_seen_.insert(r);
    if (o.kind != "pass") {
      if (tty_) std::cerr << "\r\033[K";
      std::cout << fmt::format("FAIL seed {} ({}): {}\n  replay: {}\n", o.seed, o.kind,
                               o.failure.substr(0, o.failure.find('\n')), o.reproduce)
                << std::flush;
      failing_.push_back(o);
    }
    summary_.add(std::move(o));
  }

  /// Runs one scenario to completion in a child (for shrinking and traces).
  seed_outcome run_sync(const scenario& s, const std::string& trace_path) {
    child c = spawn(s, trace_path);
    for (;;) {
      pollfd p{c.fd, POLLIN, 0};
      ::poll(&p, 1, 200);
      if (auto out = try_finish(c)) return *out;
    }
  }

  // ------------------------------------------------------------ progress

  std::string progress_text() const {
    const double el = seconds_since(start_);
    const double rate = el > 0 ? static_cast<double>(summary_.outcomes.size()) / el : 0.0;
    return fmt::format("chaos: {}/{} seeds {} ({:.1f}/s) failures {} rare states {}/{}", clock_text(el),
                       clock_text(static_cast<double>(o_.budget_ns) / 1e9), summary_.outcomes.size(), rate,
                       summary_.failed_count(), rare_seen_.size(), coverage_points.size());
  }

  void draw_bar() const {
    const double frac = std::min(1.0, seconds_since(start_) * 1e9 / static_cast<double>(std::max<ns_t>(1, o_.budget_ns)));
    constexpr int width = 30;
    const int filled = static_cast<int>(frac * width);
    std::cerr << "\r\033[K[" << std::string(static_cast<std::size_t>(filled), '#')
              << std::string(static_cast<std::size_t>(width - filled), '.') << "] " << progress_text().substr(7)
              << std::flush;
  }

  // ------------------------------------------------------------ failures

  void shrink_phase() {
    // Every failing seed gets a record (junit shows one testcase per seed);
    // at most max_failures + jobs - 1 exist, since seeds stop starting at max_failures.
    for (const seed_outcome& first : failing_) {
      const scenario original = make_scenario(first.seed);
      const auto t0 = wall_clock::now();
      failure_record f;
      f.seed = first.seed;
      f.kind = first.kind;
      f.exit_code = first.exit_code;
      f.original = first.reproduce;
      scenario minimal = original;
      if (first.kind != "hang") {
        std::cout << fmt::format("shrinking seed {} (up to {})...\n", first.seed, format_duration(o_.shrink_budget_ns))
                  << std::flush;
        const shrink_result sr = shrink_scenario(
            original, [&](const scenario& c) { return run_sync(c, "").exit_code == first.exit_code; },
            [&] { return seconds_since(t0) * 1e9 > static_cast<double>(o_.shrink_budget_ns); });
        minimal = sr.minimal;
        f.shrink_attempts = sr.attempts;
        f.shrink_steps = sr.accepted;
      }
      const fs::path dir = fs::path(o_.out_dir) / "failures" / fmt::format("seed-{}", first.seed);
      fs::create_directories(dir);
      // The minimal case once more, with its Perfetto trace.
      seed_outcome last = first.kind == "hang" ? first : run_sync(minimal, (dir / "trace.json").string());
      if (last.exit_code != first.exit_code) {
        // Never report a case that does not fail: fall back to the original.
        minimal = original;
        last = first;
      }
      f.shrink_s = seconds_since(t0);
      f.failure = last.failure;
      f.trace_hash = last.trace_hash;
      f.replay = replay_line(minimal, o_);
      f.run_line = run_line(minimal, o_);
      f.schedule = minimal.plan.to_string();
      f.dir = fs::relative(dir, o_.out_dir).string();
      write_failure_dir(dir, f, original, minimal);
      summary_.failures.push_back(f);
    }
  }

  void write_failure_dir(const fs::path& dir, const failure_record& f, const scenario& original, const scenario& minimal) {
    auto put = [&](const char* name, const std::string& text) {
      std::ofstream out{dir / name, std::ios::trunc};
      out << text;
    };
    put("seed.txt", fmt::format("{}\n", f.seed));
    put("schedule.txt", f.schedule + "\n");
    put("schedule.json", schedule_json(minimal) + "\n");
    // Ready for fixtures/corpus/ (docs/CHAOS.md): the minimal case, expected to
    // pass once the bug is fixed, so every `make test` guards the fix.
    nlohmann::json entry = nlohmann::json::parse(schedule_json(minimal));
    entry["note"] = fmt::format("chaos seed {} ({}): {}", f.seed, f.kind, f.failure.substr(0, f.failure.find('\n')));
    // With a mutant on, the entry instead pins that the mutant stays caught.
    entry["expect"] = {{"exit_code", o_.mutant.empty() ? 0 : f.exit_code}};
    put("corpus-entry.json", entry.dump() + "\n");
    put("params.txt", fmt::format("# minimal case\nSEED={}\n{}\n# as first run\nSEED={}\n{}", minimal.seed,
                                  minimal.describe(), original.seed, original.describe()));
    put("replay.sh", fmt::format("#!/bin/sh\n# Replays the minimal case of chaos seed {} ({}); expect exit {} and "
                                 "trace_hash={:016x}.\n{}\n",
                                 f.seed, f.kind, f.exit_code, f.trace_hash, f.replay));
    fs::permissions(dir / "replay.sh", fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec,
                    fs::perm_options::add);
    nlohmann::json j = {{"seed", f.seed},          {"kind", f.kind},         {"exit_code", f.exit_code},
                        {"failure", f.failure},    {"replay", f.replay},     {"original", f.original},
                        {"schedule", f.schedule},  {"trace_hash", fmt::format("{:016x}", f.trace_hash)},
                        {"run_line", f.run_line},  {"schedule_json", schedule_json(minimal)},
                        {"shrink_attempts", f.shrink_attempts}, {"shrink_steps", f.shrink_steps},
                        {"mutant", o_.mutant}};
    put("failure.json", j.dump(2) + "\n");
    if (auto it = crash_logs_.find(f.seed); it != crash_logs_.end()) {
      std::error_code ec;
      fs::copy_file(it->second, dir / "stderr.txt", fs::copy_options::overwrite_existing, ec);
    }
  }

  // ------------------------------------------------------------ the end

  void append_bench() const {
    const nlohmann::json j = summary_.to_json();
    const std::string name = fmt::format("sim/chaos_seed_{}", format_duration(length_ns_));
    aegis::bench::append_results(
        o_.bench_results, {{name, "seeds_per_minute_per_core", "seeds/min", j.at("seeds_per_minute_per_core").get<double>(),
                            "target", 100.0, aegis::bench::better::higher},
                           {name, "simulated_events_per_second", "events/s", j.at("simulated_events_per_second").get<double>(),
                            "none (reported)", 0.0, aegis::bench::better::higher}});
  }

  void print_summary() const {
    const nlohmann::json j = summary_.to_json();
    const auto& cov = j.at("rare_state_coverage");
    std::cout << fmt::format(
        "chaos: {} seeds in {:.1f}s on {} job(s): {:.0f} seeds/min, {:.0f} seeds/min/core (seed length {}), "
        "{:.2e} simulated events/s\n",
        summary_.outcomes.size(), summary_.wall_s, jobs_, j.at("seeds_per_minute").get<double>(),
        j.at("seeds_per_minute_per_core").get<double>(), format_duration(length_ns_),
        j.at("simulated_events_per_second").get<double>());
    std::cout << fmt::format("chaos: modes {}  schedulers {}  bridges {} (real bridge share {})\n", j.at("modes").dump(),
                             j.at("schedulers").dump(), j.at("bridges").dump(), j.at("python_share").get<double>());
    const nlohmann::json& load = j.at("load");
    std::cout << fmt::format(
        "chaos: load: {} records resent (bound {}, worst seed {:.2f} of its bound) over {} bridge deaths; "
        "recovery after the heal p50 {:.3f}s p99 {:.3f}s (worst {:.2f} of its bound, {} seeds checked); "
        "{} seeds overloaded\n",
        load.at("records_resent").get<std::uint64_t>(), load.at("records_resent_allowed").get<std::uint64_t>(),
        load.at("worst_seed_amplification").get<double>(), load.at("bridge_deaths").get<std::uint64_t>(),
        load.at("recovery_s_p50").get<double>(), load.at("recovery_s_p99").get<double>(),
        load.at("worst_recovery_share_of_bound").get<double>(), load.at("seeds_recovery_checked").get<std::uint64_t>(),
        load.at("seeds_overloaded").get<std::uint64_t>());
    std::cout << fmt::format("chaos: rare states covered {}/{}{}\n", cov.at("covered").get<std::size_t>(),
                             cov.at("total").get<std::size_t>(),
                             cov.at("missing").empty() ? "" : " (missing: " + fmt::format("{}", fmt::join(cov.at("missing").get<std::vector<std::string>>(), ", ")) + ")");
    if (g_interrupted != 0) std::cout << "chaos: interrupted; the report covers the seeds that finished\n";
    if (summary_.failures.empty() && summary_.failed_count() == 0) {
      std::cout << fmt::format("chaos: PASS, no failures. Report: {}/summary.json, {}/junit.xml\n", o_.out_dir, o_.out_dir);
      return;
    }
    std::cout << fmt::format("chaos: FAIL, {} failing seed(s) (failures by kind {})\n", summary_.failed_count(),
                             j.at("failures_by_kind").dump());
    for (const failure_record& f : summary_.failures) {
      std::cout << fmt::format("  seed {} [{}] {}\n    minimal schedule: {}  (shrunk in {} steps, {} tries, {:.1f}s)\n"
                               "    trace: {}/{}/trace.json\n    replay: {}\n",
                               f.seed, f.kind, f.failure.substr(0, f.failure.find('\n')), f.schedule, f.shrink_steps,
                               f.shrink_attempts, f.shrink_s, o_.out_dir, f.dir, f.replay);
    }
    std::cout << fmt::format("chaos: report {}/summary.json, {}/junit.xml, failures in {}/failures/\n", o_.out_dir,
                             o_.out_dir, o_.out_dir);
  }

  const chaos_options& o_;
  ns_t length_ns_ = 0;
  std::uint32_t jobs_ = 1;
  std::uint64_t base_ = 0;
  fs::path work_;
  bool tty_ = false;
  bool lines_ = false;
  bool exhausted_ = false;
  std::uint64_t next_index_ = 0;
  std::uint64_t spawned_ = 0;
  wall_clock::time_point start_;
  struct sigaction old_int_ {};
  chaos_summary summary_;
  std::vector<seed_outcome> failing_;
  std::set<std::string> rare_seen_;
  std::map<std::uint64_t, std::string> crash_logs_;
};

std::optional<std::pair<std::uint32_t, std::uint32_t>> parse_shard(const std::string& text) {
  const auto slash = text.find('/');
  if (slash == std::string::npos) return std::nullopt;
  try {
    std::size_t used_k = 0, used_n = 0;
    const auto k = std::stoul(text.substr(0, slash), &used_k);
    const auto n = std::stoul(text.substr(slash + 1), &used_n);
    if (used_k != slash || used_n != text.size() - slash - 1 || n < 1 || k < 1 || k > n || n > 1'000'000) return std::nullopt;
    return std::pair{static_cast<std::uint32_t>(k), static_cast<std::uint32_t>(n)};
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::string self_path(const char* argv0) {
  std::error_code ec;
  fs::path p = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return argv0;
  const fs::path rel = fs::relative(p, fs::current_path(ec), ec);
  if (!ec && !rel.empty() && !rel.string().starts_with("..")) return rel.string().find('/') == std::string::npos ? "./" + rel.string() : rel.string();
  return p.string();
}

}  // namespace

int run_chaos(const chaos_options& o) {
  AEGIS_ASSERT(o.shard_k >= 1 && o.shard_k <= o.shard_n, "shard K/N has 1 <= K <= N");
  AEGIS_ASSERT(o.budget_ns > 0, "a chaos run has a budget");
  chaos_runner r{o};
  return r.run();
}

int merge_chaos(const std::vector<std::string>& dirs, const std::string& out_dir) {
  std::string error;
  auto merged = merge_reports(dirs, &error);
  if (!merged) {
    std::cerr << "aegis-sim chaos --merge: " << error << "\n";
    return error.find("overlap") != std::string::npos ? 1 : 64;
  }
  std::filesystem::create_directories(out_dir);
  write_report(*merged, out_dir);
  const nlohmann::json j = merged->to_json();
  std::cout << fmt::format("merged {} report(s) into {}: {} seeds, {} failing, {:.0f} seeds/min/core, rare states {}/{}\n",
                           dirs.size(), out_dir, merged->outcomes.size(), merged->failed_count(),
                           j.at("seeds_per_minute_per_core").get<double>(),
                           j.at("rare_state_coverage").at("covered").get<std::size_t>(),
                           j.at("rare_state_coverage").at("total").get<std::size_t>());
  for (const failure_record& f : merged->failures) std::cout << fmt::format("  seed {} [{}] replay: {}\n", f.seed, f.kind, f.replay);
  return merged->failed_count() == 0 ? 0 : 1;
}

CLI::App* add_chaos_subcommand(CLI::App& app, chaos_cli_args& a) {
  CLI::App* c = app.add_subcommand("chaos", "swarm seeds on a wall-clock budget: progress, shrinking, report (docs/CHAOS.md)");
  c->add_option("--budget", a.budget, "wall-clock budget, e.g. 60s, 10m (required unless --merge)");
  c->add_option("--jobs", a.jobs, "parallel worlds, one forked process each (default: one per core)");
  c->add_option("--shard", a.shard, "K/N: run only the K-th of N disjoint slices of the seed space");
  c->add_option("--seed-base", a.seed_base, "first seed (decimal, 0x-hex or a git commit); default: random, printed");
  c->add_option("--seed-count", a.seed_count, "size of the seed space across all shards (default: unbounded)");
  c->add_option("--out", a.out, "report directory (summary.json, junit.xml, seeds.jsonl, failures/)");
  c->add_option("--max-failures", a.max_failures, "stop starting seeds after this many failures");
  c->add_option("--sim-duration", a.sim_duration,
                fmt::format("simulated workload per seed (default: {})", format_duration(chaos_default_length_ns)));
  c->add_option("--shrink-budget", a.shrink_budget, "wall time to shrink each failing seed");
  c->add_option("--seed-timeout", a.seed_timeout, "wall time after which one seed counts as a hang");
  std::vector<std::string> names;
  for (const auto& m : aegis::mutants) names.emplace_back(m.name);
  for (const auto& m : aegis::bridge_mutants) names.emplace_back(m.name);
  c->add_option("--mutant", a.mutant,
                "run every seed with this deliberately broken variant (docs/FAULTS.md); a bridge mutant runs every "
                "seed with --bridge python")
      ->check(CLI::IsMember(names));
  c->add_option("--python-share", a.python_share,
                "share of seeds that run the real bridge's BridgeCore (--bridge python), 0..1 (default 0.125)")
      ->check(CLI::Range(0.0, 1.0));
  c->add_option("--bench-results", a.bench_results, "append the seeds/min/core figure to this bench-results.json");
  c->add_option("--progress", a.progress, "auto|bar|lines|none")->check(CLI::IsMember({"auto", "bar", "lines", "none"}));
  c->add_option("--merge", a.merge, "merge these shard report directories into --out instead of running");
  return c;
}

int run_chaos_command(const chaos_cli_args& a, const char* argv0) {
  if (!a.merge.empty()) return merge_chaos(a.merge, a.out);
  auto usage = [](const std::string& why) {
    std::cerr << "aegis-sim chaos: " << why << "\n";
    return 64;
  };
  chaos_options o;
  if (a.budget.empty()) return usage("--budget is required (or --merge DIR...)");
  const auto budget = parse_duration(a.budget);
  if (!budget || *budget <= 0) return usage("--budget: not a positive duration: " + a.budget);
  o.budget_ns = *budget;
  const auto shard = parse_shard(a.shard);
  if (!shard) return usage("--shard: expected K/N with 1 <= K <= N, got " + a.shard);
  o.shard_k = shard->first;
  o.shard_n = shard->second;
  if (!a.seed_base.empty()) {
    o.seed_base = parse_seed(a.seed_base);
    if (!o.seed_base) return usage("--seed-base: not a seed: " + a.seed_base);
  }
  if (a.seed_count != 0) o.seed_count = a.seed_count;
  o.jobs = a.jobs;
  o.out_dir = a.out;
  if (a.max_failures == 0) return usage("--max-failures: must be at least 1");
  o.max_failures = a.max_failures;
  // A zero seed length or seed timeout is a mistake (every seed empty, or
  // every seed a "hang"), not a request; a zero shrink budget stops shrinking
  // after its first step.
  for (auto [text, target, flag, zero_ok] :
       {std::tuple{&a.sim_duration, &o.sim_duration_ns, "--sim-duration", false},
        std::tuple{&a.shrink_budget, &o.shrink_budget_ns, "--shrink-budget", true},
        std::tuple{&a.seed_timeout, &o.seed_timeout_ns, "--seed-timeout", false}}) {
    if (text->empty()) continue;
    const auto d = parse_duration(*text);
    if (!d) return usage(fmt::format("{}: not a duration: {}", flag, *text));
    if (*d == 0 && !zero_ok) return usage(fmt::format("{}: must be positive, got {}", flag, *text));
    *target = *d;
  }
  {
    // The report directory is made (and proven writable) now: a run that
    // cannot write its report must not spend its budget first.
    std::error_code ec;
    std::filesystem::create_directories(a.out, ec);
    const std::string why = ec ? ec.message() : aegis::why_unwritable((std::filesystem::path(a.out) / "summary.json").string());
    if (!why.empty()) return usage(fmt::format("--out: cannot write reports to {}: {}", a.out, why));
  }
  if (!a.bench_results.empty()) {
    if (const std::string why = aegis::why_unwritable(a.bench_results); !why.empty()) {
      return usage(fmt::format("--bench-results: cannot write {}: {}", a.bench_results, why));
    }
  }
  o.mutant = a.mutant;
  o.python_share = a.python_share;
  o.bench_results = a.bench_results;
  o.progress = a.progress;
  o.self_exe = self_path(argv0);
  return run_chaos(o);
}

}  // namespace aegis::sim
