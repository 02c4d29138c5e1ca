// The judgement and the summaries of a run; see summary.hpp.
#include "core/summary.hpp"

#include <fmt/core.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <system_error>

#include "aegis/assert.hpp"
#include "aegis/sched.hpp"

namespace aegis::core {

namespace {
namespace fs = std::filesystem;
using ls = ledger_state;

double us(std::uint64_t ns) { return static_cast<double>(ns) / 1000.0; }

// The ledger, counted per id, agrees with every counter the offloader kept.
bool ledger_agrees(const ledger_tally& tally, const offloader_counters& c) {
  return tally[ls::verdict] == c.verdicts && tally[ls::expired] == c.expired && tally[ls::abandoned] == c.abandoned &&
         tally[ls::dropped_ring_full] == c.dropped_ring_full && tally[ls::dropped_timeout] == c.dropped_timeout &&
         tally[ls::dropped_closed] == c.dropped_closed && tally[ls::in_flight] == c.in_flight && tally.conflicts == 0;
}

std::uint64_t rejected_total(const offloader_counters& c) {
  std::uint64_t n = 0;
  for (auto v : c.rejected_frames) n += v;
  return n;
}
}  // namespace

judgement judge(const run_facts& facts) {
  AEGIS_ASSERT(facts.drain.drained_ns >= facts.load.produced_ns, "the drain follows production");
  AEGIS_ASSERT(facts.load.produced_ns >= facts.load.start_ns, "production ends after it starts");
  const offloader_counters& c = facts.counters;
  judgement j;
  j.lost = facts.tally[ls::in_flight];
  j.identity_ok = c.identity_holds() && ledger_agrees(facts.tally, c);
  const ns_t start_ns = facts.load.start_ns;
  const ns_t last_fate = facts.last_fate_ns;
  const double active_s = static_cast<double>((last_fate > start_ns ? last_fate : facts.drain.drained_ns) - start_ns) / 1e9;
  j.throughput_per_s = active_s > 0 ? static_cast<double>(c.verdicts) / active_s : 0.0;
  if (!j.identity_ok) j.exit_code = exit_identity;
  else if (facts.cfg.mode == admission::block && j.lost > 0) j.exit_code = exit_lost;
  else if (!facts.drain.drained) j.exit_code = exit_undrained;
  // The exit code means what docs/SUMMARY.md says, in that order.
  AEGIS_ASSERT(j.identity_ok || j.exit_code == exit_identity, "a broken identity always exits 4");
  AEGIS_ASSERT(j.exit_code != exit_ok || facts.drain.drained, "exit 0 only after a finished drain");
  AEGIS_ASSERT(!j.identity_ok || j.lost == c.in_flight, "with the identity holding, lost ids are the ones in flight");
  return j;
}

nlohmann::json summary_json(const run_facts& facts, const judgement& verdict) {
  const options& o = facts.o;
  const offloader_counters& c = facts.counters;
  const latency_histogram& latency = facts.latency;
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
  j["lost"] = verdict.lost;
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
  j["throughput_per_s"] = verdict.throughput_per_s;
  j["epoch"] = facts.cfg.epoch;
  j["generated"] = facts.load.generated;
  j["drained"] = facts.drain.drained;
  j["identity_ok"] = verdict.identity_ok;
  j["ledger_conflicts"] = facts.tally.conflicts;
  j["stopped_by_signal"] = facts.stopped_by_signal;
  j["produce_s"] = static_cast<double>(facts.load.produced_ns - facts.load.start_ns) / 1e9;
  j["latency_warmup_s"] = static_cast<double>(o.warmup_ns) / 1e9;
  j["drain_s"] = static_cast<double>(facts.drain.drained_ns - facts.load.produced_ns) / 1e9;
  j["exit_code"] = verdict.exit_code;
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
                 {"send_window", facts.cfg.send_window},
                 {"pump_nap_ns", o.pump_nap_ns},
                 {"pace_quantum_ns", o.pace_quantum_ns},
                 {"scheduling", aegis::describe_scheduling()},
                 {"seed", o.seed},
                 {"high_risk_share", o.high_risk_share},
                 {"endpoint_dir", facts.endpoint_dir.string()}};
  AEGIS_ASSERT(j["exit_code"] == verdict.exit_code, "the JSON reports the exit code the process returns");
  AEGIS_ASSERT(j["rejected_frames"].size() == aegis::reject_reason_count, "every reject reason has a key");
  return j;
}

void print_summary(const run_facts& facts, const judgement& j) {
  const offloader_counters& c = facts.counters;
  const latency_histogram& latency = facts.latency;
  AEGIS_ASSERT(j.exit_code >= exit_ok, "exit codes are not negative");
  AEGIS_ASSERT(!facts.o.mode.empty(), "the summary names the mode");
  fmt::print(
      "aegis-core summary ({} mode)\n"
      "  offered {}  accepted {}  dropped {} (ring_full {}, timeout {}, closed {})\n"
      "  verdicts {} (unscored {})  expired {}  abandoned {}  in_flight {}  lost {}\n"
      "  duplicates {}  late {}  unknown_seq {}  stale_incarnation {}  rejected {}\n"
      "  retransmits {} ({} rounds)  bridge_incarnations {}\n"
      "  latency us: p50 {:.1f}  p99 {:.1f}  p999 {:.1f}  max {:.1f}\n"
      "  throughput {:.0f} verdicts/s   drained {}   identity {}   exit {}\n",
      facts.o.mode, c.offered, c.accepted, c.dropped(), c.dropped_ring_full, c.dropped_timeout, c.dropped_closed,
      c.verdicts, c.unscored_verdicts, c.expired, c.abandoned, c.in_flight, j.lost, c.duplicate_verdicts,
      c.late_verdicts, c.unknown_seq, c.stale_incarnation, rejected_total(c), c.retransmits, c.retransmit_rounds,
      c.bridge_incarnations, us(latency.percentile_ns(0.5)), us(latency.percentile_ns(0.99)),
      us(latency.percentile_ns(0.999)), us(latency.max_ns()), j.throughput_per_s, facts.drain.drained ? "yes" : "NO",
      j.identity_ok ? "ok" : "BROKEN", j.exit_code);
  std::fflush(stdout);
}

int write_summary_json(const std::string& path, const nlohmann::json& summary, int exit_code) {
  AEGIS_ASSERT(summary.is_object(), "the summary is one JSON object");
  AEGIS_ASSERT(exit_code >= exit_ok, "exit codes are not negative");
  if (path.empty()) return exit_code;
  std::string why;
  const std::string tmp = path + ".tmp";
  {
    errno = 0;
    std::ofstream f(tmp);
    f << summary.dump(2) << "\n";
    f.flush();
    if (!f) why = std::strerror(errno != 0 ? errno : EIO);
  }
  std::error_code ec;
  if (why.empty()) fs::rename(tmp, path, ec);  // Readers never see a half-written summary.
  if (ec) why = ec.message();
  if (why.empty()) return exit_code;
  // The summary is the result of the run: never lose it. One line, then the JSON.
  fmt::print(stderr, "aegis-core: cannot write --summary-json {}: {}; summary follows on stderr\n{}\n", path, why,
             summary.dump());
  return exit_code == exit_ok ? exit_summary : exit_code;
}

}  // namespace aegis::core
