// Checked runs; see checked_run.hpp.
#include "sim/checked_run.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <unordered_map>

#include "sim/schedule.hpp"

namespace aegis::sim {

namespace {

/// What the observers saw, per transaction id (ids are dense from 1).
struct observed {
  enum : std::uint8_t { none, accepted, dropped };
  std::vector<std::uint8_t> offload;   // By id: none / accepted / dropped.
  std::vector<std::uint8_t> fates;     // By id: fates seen (verdict or expired).
  std::vector<std::uint8_t> verdicts;  // By id: verdict fates seen.
  std::uint64_t offered = 0, accepted_n = 0, dropped_n = 0, verdict_n = 0, expired_n = 0;
  std::string order_failure;           // First per-incarnation order violation.

  // Offload order, per bridge incarnation: the seqs an incarnation receives
  // form strictly increasing runs. A run may only start below the previous
  // seq when the core rewound, and a rewind resends from the oldest
  // unreleased entry, so the new run starts at or below the oldest seq
  // without a fate (every seq below it has one; `terminal_prefix` tracks them).
  // Seqs start again with each core epoch (a core restart), so all of this is per epoch.
  struct epoch_seqs {
    std::vector<std::uint8_t> terminal_by_seq;  // By seq: has a fate.
    std::uint64_t terminal_prefix = 0;          // Seqs 1..terminal_prefix all have fates.
  };
  std::map<std::uint64_t, epoch_seqs> by_epoch;
  std::uint64_t current_epoch = 0;
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::uint64_t> last_seq;  // By (incarnation, epoch): last seq received.

  void seq_terminal(std::uint64_t seq) {
    epoch_seqs& e = by_epoch[current_epoch];
    if (e.terminal_by_seq.size() <= seq) e.terminal_by_seq.resize(seq + 1024, 0);
    e.terminal_by_seq[seq] = 1;
    while (e.terminal_prefix + 1 < e.terminal_by_seq.size() && e.terminal_by_seq[e.terminal_prefix + 1] != 0) ++e.terminal_prefix;
  }

  void grow(std::uint64_t id) {
    if (offload.size() <= id) {
      offload.resize(id + 1024, none);
      fates.resize(id + 1024, 0);
      verdicts.resize(id + 1024, 0);
    }
  }
};

// Whether txn `id` died with its core (a restart), and how.
died_with died_of(const run_report& r, std::uint64_t id) {
  return id < r.txn_died.size() ? r.txn_died[id] : died_with::none;
}

std::string end_checks(const scenario& s, const run_report& r, const observed& o) {
  // Each core's counters, summed over its lives (one without restarts). A
  // core that died in the middle of a fate callback never bumped its
  // counter: for a dead core the callbacks' own count stands (the runner
  // checked, at its death, that its counters were at most that one behind).
  offloader_counters c = r.counters;
  if (r.epochs.size() > 1) {
    c = {};
    for (const core_epoch_report& e : r.epochs) {
      const bool dead = &e != &r.epochs.back();
      c.offered += e.counters.offered;
      c.verdicts += dead ? e.workload.verdicts : e.counters.verdicts;
      c.expired += dead ? e.workload.expired : e.counters.expired;
      c.dropped_ring_full += e.counters.dropped_ring_full;
      c.dropped_timeout += e.counters.dropped_timeout;
      c.dropped_closed += e.counters.dropped_closed;
    }
  }
  // What died with a core: accepted and not terminal (died_core), or in an
  // offload() call that never returned (those ids were never reported).
  // An offload() call in progress can even have had its transaction
  // accepted and answered before the core died (the caller never learnt):
  // those fates count, their offer was never reported.
  std::uint64_t died_core = 0, died_offload = 0, offload_fates = 0;
  for (std::size_t id = 0; id < r.txn_died.size(); ++id) {
    died_core += r.txn_died[id] == died_with::core ? 1 : 0;
    if (r.txn_died[id] == died_with::offload) {
      ++died_offload;
      offload_fates += o.fates[id];
    }
  }
  const std::uint64_t ids = o.offered + died_offload;
  if (!o.order_failure.empty()) return o.order_failure;
  if (*s.mode == admission::block) {
    if (o.dropped_n != 0) return fmt::format("block mode: offload() reported {} drops", o.dropped_n);
    if (o.expired_n != 0) return fmt::format("block mode: {} txns expired", o.expired_n);
    for (std::uint64_t id = 1; id <= ids; ++id) {
      const died_with d = died_of(r, id);
      if (d == died_with::offload) {
        if (o.offload[id] != observed::none) return fmt::format("block mode: txn {} died in offload() but was reported", id);
        if (o.fates[id] > 1) return fmt::format("block mode: txn {} got {} fates", id, o.fates[id]);
        continue;
      }
      if (o.offload[id] != observed::accepted) return fmt::format("block mode: txn {} was not accepted", id);
      const int want = d == died_with::core ? 0 : 1;
      if (o.verdicts[id] != want) {
        return fmt::format("block mode: txn {} got {} verdicts, not exactly {}{}", id, o.verdicts[id], want,
                           d == died_with::core ? " (it died with its core)" : "");
      }
    }
    if (c.verdicts != o.verdict_n || o.verdict_n + died_core != o.accepted_n + offload_fates) {
      return fmt::format("block mode: core counts {} verdicts, callbacks saw {}, {} accepted, {} died with their core",
                         c.verdicts, o.verdict_n, o.accepted_n, died_core);
    }
    return {};
  }
  // Drop mode: exact accounting by set, not only by count.
  if (o.offered + offload_fates != o.verdict_n + o.expired_n + o.dropped_n + died_core) {
    return fmt::format("drop mode: offered {} != verdicts {} + expired {} + dropped {} + died with their core {}",
                       o.offered, o.verdict_n, o.expired_n, o.dropped_n, died_core);
  }
  for (std::uint64_t id = 1; id <= ids; ++id) {
    const died_with d = died_of(r, id);
    if (d != died_with::none) {
      if (o.fates[id] > (d == died_with::offload ? 1 : 0)) {
        return fmt::format("drop mode: txn {} died with its core but has {} fate(s)", id, o.fates[id]);
      }
      if ((d == died_with::offload) != (o.offload[id] == observed::none)) {
        return fmt::format("drop mode: txn {} died with its core, offload() {}", id,
                           d == died_with::offload ? "returned" : "never returned");
      }
      continue;
    }
    const bool fate = o.fates[id] != 0;
    const bool reported_drop = o.offload[id] == observed::dropped;
    if (o.fates[id] > 1) return fmt::format("drop mode: txn {} got {} fates", id, o.fates[id]);
    if (fate == reported_drop) {
      return fmt::format("drop mode: txn {} {} a fate but offload() reported {}", id, fate ? "has" : "lacks",
                         reported_drop ? "a drop" : "it accepted");
    }
  }
  // The core counted the offers in progress at its death (offered, and
  // dropped or accepted); the callers never learnt the outcome.
  const bool offers_match = c.offered >= o.offered && c.offered <= o.offered + died_offload &&
                            c.dropped() >= o.dropped_n && c.dropped() <= o.dropped_n + died_offload;
  if (!offers_match || c.verdicts != o.verdict_n || c.expired != o.expired_n) {
    return fmt::format("drop mode: core counters (offered {} dropped {} verdicts {} expired {}) differ from the sets "
                       "(offered {} dropped {} verdicts {} expired {})",
                       c.offered, c.dropped(), c.verdicts, c.expired, o.offered, o.dropped_n, o.verdict_n, o.expired_n);
  }
  return {};
}

nlohmann::json to_json(const checked_result& r) {
  nlohmann::json j;
  j["exit_code"] = r.exit_code;
  j["failure"] = r.failure;
  j["trace_hash"] = r.trace_hash;
  j["events"] = r.events;
  j["accepted"] = r.accepted;
  j["verdicts"] = r.verdicts;
  j["dropped"] = r.dropped;
  j["coverage"] = r.coverage;
  j["summary"] = r.summary;
  j["load"] = {r.load.resent, r.load.resent_allowed, r.load.resent_in_steady, r.load.deaths, r.load.backlog_at_heal,
               r.load.recovery_bound_ns, r.load.recovered_after_ns, r.load.goodput_ratio};
  j["capacity"] = r.model_capacity_per_s;
  j["rate"] = r.rate_per_s;
  return j;
}

checked_result from_json(const nlohmann::json& j) {
  checked_result r;
  r.exit_code = j.at("exit_code").get<int>();
  r.failure = j.at("failure").get<std::string>();
  r.trace_hash = j.at("trace_hash").get<std::uint64_t>();
  r.events = j.at("events").get<std::uint64_t>();
  r.accepted = j.at("accepted").get<std::uint64_t>();
  r.verdicts = j.at("verdicts").get<std::uint64_t>();
  r.dropped = j.at("dropped").get<std::uint64_t>();
  r.coverage = j.at("coverage").get<std::vector<std::pair<std::string, std::uint64_t>>>();
  r.summary = j.at("summary").get<std::string>();
  const nlohmann::json& l = j.at("load");
  r.load = {l[0].get<std::uint64_t>(), l[1].get<std::uint64_t>(), l[2].get<std::uint64_t>(), l[3].get<std::uint64_t>(),
            l[4].get<std::uint64_t>(), l[5].get<ns_t>(), l[6].get<ns_t>(), l[7].get<double>()};
  r.model_capacity_per_s = j.at("capacity").get<std::uint64_t>();
  r.rate_per_s = j.at("rate").get<std::uint64_t>();
  return r;
}

std::string read_all(std::FILE* f) {
  std::string out;
  std::rewind(f);
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) out.append(buf, n);
  return out;
}

}  // namespace

checked_result run_checked(const scenario& s, const std::string& trace_path) {
  observed o;
  run_options opt;
  opt.trace_path = trace_path;
  opt.on_offload = [&](std::uint64_t id, offload_status st) {
    o.grow(id);
    ++o.offered;
    if (st == offload_status::accepted) {
      o.offload[id] = observed::accepted;
      ++o.accepted_n;
    } else {
      o.offload[id] = observed::dropped;
      ++o.dropped_n;
    }
  };
  opt.on_fate = [&](std::uint64_t id, std::uint64_t seq, fate f, ns_t) {
    o.grow(id);
    o.seq_terminal(seq);
    ++o.fates[id];
    if (f == fate::verdict) {
      ++o.verdicts[id];
      ++o.verdict_n;
    } else {
      ++o.expired_n;
    }
  };
  // With a second bridge alongside (a `twin` fault) the core's PUSH deals
  // frames round-robin, so a resend run reaching one bridge may begin with
  // its second frame: only the order within a run is checked then.
  const bool shared = std::any_of(s.plan.events.begin(), s.plan.events.end(),
                                  [](const fault_event& e) { return e.kind == fault_kind::twin; });
  opt.on_core_start = [&](std::uint64_t epoch) { o.current_epoch = epoch; };
  opt.on_batch = [&, shared](std::uint64_t incarnation, std::uint64_t epoch, std::span<const txn_record> records) {
    if (!o.order_failure.empty() || records.empty()) return;
    auto [it, first_frame] = o.last_seq.try_emplace({incarnation, epoch}, 0);
    const std::uint64_t terminal_prefix = o.by_epoch[epoch].terminal_prefix;
    std::uint64_t last = it->second;
    for (std::size_t i = 0; i < records.size(); ++i) {
      const std::uint64_t seq = records[i].seq;
      if (i != 0 && seq <= last) {
        o.order_failure = fmt::format("incarnation {:x} received seq {} after seq {} in one frame: not in offload order",
                                      incarnation, seq, last);
        return;
      }
      if (i == 0 && !first_frame && !shared && seq <= last && seq > terminal_prefix + 1) {
        o.order_failure = fmt::format(
            "incarnation {:x} received seq {} after seq {}: a resend must start at the oldest seq without a "
            "verdict ({}), not skip it: not in offload order",
            incarnation, seq, last, terminal_prefix + 1);
        return;
      }
      last = seq;
    }
    it->second = last;
  };
  // An order violation fails the run at the event that showed it.
  opt.extra_invariant = [&]() -> std::string { return o.order_failure; };
  const run_report r = run_scenario(s, opt);

  checked_result out;
  out.exit_code = r.exit_code;
  out.failure = r.failure;
  if (out.exit_code == exit_pass) {
    o.grow(o.offered + r.txn_died.size());  // Ids that died in offload() were never reported.
    if (std::string why = end_checks(s, r, o); !why.empty()) {
      out.exit_code = exit_correctness;
      out.failure = "property: " + why;
    }
  }
  out.trace_hash = r.trace_hash;
  out.events = r.events;
  out.accepted = o.accepted_n;
  out.verdicts = o.verdict_n;
  out.dropped = o.dropped_n;
  out.coverage = r.coverage;
  out.summary = r.summary();
  out.load = r.load;
  out.model_capacity_per_s = static_cast<std::uint64_t>(s.model_capacity_per_s());
  out.rate_per_s = *s.rate_per_s;
  return out;
}

checked_result run_checked_isolated(const scenario& s) {
  std::FILE* result_file = std::tmpfile();
  std::FILE* err_file = std::tmpfile();
  AEGIS_ASSERT(result_file != nullptr && err_file != nullptr, "tmpfile() for the child's result");
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  AEGIS_ASSERT(pid >= 0, "fork() for an isolated run");
  if (pid == 0) {
    // Child: stderr (assertion messages) to a file the parent reads; the
    // result as JSON; _exit so no parent atexit handler or test runner runs.
    ::dup2(::fileno(err_file), 2);
    const std::string text = to_json(run_checked(s)).dump();
    std::fwrite(text.data(), 1, text.size(), result_file);
    std::fflush(result_file);
    ::_exit(0);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
  }
  checked_result r;
  const std::string text = read_all(result_file);
  const std::string err = read_all(err_file);
  std::fclose(result_file);
  std::fclose(err_file);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && !text.empty()) return from_json(nlohmann::json::parse(text));
  r.exit_code = exit_crash;
  r.failure = fmt::format("crash ({}): {}",
                          WIFSIGNALED(status) ? fmt::format("signal {}", WTERMSIG(status))
                                              : fmt::format("exit {}", WEXITSTATUS(status)),
                          err.empty() ? "no message" : err);
  while (!r.failure.empty() && r.failure.back() == '\n') r.failure.pop_back();
  r.summary = err;
  return r;
}

std::string describe_failure(const scenario& s, const checked_result& r) {
  return fmt::format(
      "FAILURE (exit {}): {}\n"
      "  schedule ({} items): {}\n"
      "  SEED={}\n"
      "  trace_hash={:016x}\n"
      "  replay: {}\n",
      r.exit_code, r.failure, schedule_length(s), s.plan.to_string(), s.seed, r.trace_hash, replay_command(s));
}

}  // namespace aegis::sim
