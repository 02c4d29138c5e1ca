// Chaos reports; see chaos_report.hpp.
#include "sim/chaos_report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>

#include "aegis/assert.hpp"
#include "aegis/coverage.hpp"

namespace aegis::sim {

namespace {

const char* const failure_kinds[] = {"correctness", "liveness", "crash", "hang", "load"};

nlohmann::json outcome_json(const seed_outcome& o) {
  return {{"seed", o.seed},
          {"mode", o.mode},
          {"scheduler", o.scheduler},
          {"exit_code", o.exit_code},
          {"kind", o.kind},
          {"failure", o.failure},
          {"trace_hash", fmt::format("{:016x}", o.trace_hash)},
          {"events", o.events},
          {"virtual_ns", o.virtual_ns},
          {"wall_s", o.wall_s},
          {"offered", o.offered},
          {"verdicts", o.verdicts},
          {"bridge", o.bridge},
          {"swarm", o.swarm},
          {"rare_states", o.rare_states},
          {"reproduce", o.reproduce},
          {"run_line", o.run_line},
          {"resent", o.resent},
          {"resent_allowed", o.resent_allowed},
          {"deaths", o.deaths},
          {"recovered_after_ns", o.recovered_after_ns},
          {"recovery_bound_ns", o.recovery_bound_ns},
          {"goodput_ratio", o.goodput_ratio},
          {"load_ratio", o.load_ratio}};
}

seed_outcome outcome_from(const nlohmann::json& j) {
  seed_outcome o;
  o.seed = j.at("seed").get<std::uint64_t>();
  o.mode = j.at("mode").get<std::string>();
  o.scheduler = j.at("scheduler").get<std::string>();
  o.exit_code = j.at("exit_code").get<int>();
  o.kind = j.at("kind").get<std::string>();
  o.failure = j.at("failure").get<std::string>();
  o.trace_hash = std::stoull(j.at("trace_hash").get<std::string>(), nullptr, 16);
  o.events = j.at("events").get<std::uint64_t>();
  o.virtual_ns = j.at("virtual_ns").get<std::uint64_t>();
  o.wall_s = j.at("wall_s").get<double>();
  o.offered = j.at("offered").get<std::uint64_t>();
  o.verdicts = j.at("verdicts").get<std::uint64_t>();
  o.bridge = j.value("bridge", "model");
  o.swarm = j.at("swarm").get<std::vector<std::string>>();
  o.rare_states = j.at("rare_states").get<std::vector<std::string>>();
  o.reproduce = j.at("reproduce").get<std::string>();
  o.run_line = j.value("run_line", "");
  o.resent = j.value("resent", std::uint64_t{0});
  o.resent_allowed = j.value("resent_allowed", std::uint64_t{0});
  o.deaths = j.value("deaths", std::uint64_t{0});
  o.recovered_after_ns = j.value("recovered_after_ns", std::int64_t{-1});
  o.recovery_bound_ns = j.value("recovery_bound_ns", std::int64_t{-1});
  o.goodput_ratio = j.value("goodput_ratio", -1.0);
  o.load_ratio = j.value("load_ratio", 0.0);
  return o;
}

nlohmann::json failure_json(const failure_record& f) {
  return {{"seed", f.seed},
          {"kind", f.kind},
          {"exit_code", f.exit_code},
          {"failure", f.failure},
          {"original", f.original},
          {"replay", f.replay},
          {"run_line", f.run_line},
          {"schedule", f.schedule},
          {"trace_hash", fmt::format("{:016x}", f.trace_hash)},
          {"shrink_attempts", f.shrink_attempts},
          {"shrink_steps", f.shrink_steps},
          {"shrink_s", f.shrink_s},
          {"dir", f.dir}};
}

failure_record failure_from(const nlohmann::json& j) {
  failure_record f;
  f.seed = j.at("seed").get<std::uint64_t>();
  f.kind = j.at("kind").get<std::string>();
  f.exit_code = j.at("exit_code").get<int>();
  f.failure = j.at("failure").get<std::string>();
  f.original = j.at("original").get<std::string>();
  f.replay = j.at("replay").get<std::string>();
  f.run_line = j.value("run_line", "");
  f.schedule = j.at("schedule").get<std::string>();
  f.trace_hash = std::stoull(j.at("trace_hash").get<std::string>(), nullptr, 16);
  f.shrink_attempts = j.at("shrink_attempts").get<std::uint32_t>();
  f.shrink_steps = j.at("shrink_steps").get<std::uint32_t>();
  f.shrink_s = j.at("shrink_s").get<double>();
  f.dir = j.at("dir").get<std::string>();
  return f;
}

double per_minute(double n, double seconds) { return seconds > 0 ? n * 60.0 / seconds : 0.0; }

}  // namespace

std::size_t chaos_summary::failed_count() const {
  return static_cast<std::size_t>(std::count_if(outcomes.begin(), outcomes.end(), [](const seed_outcome& o) { return o.kind != "pass"; }));
}

nlohmann::json chaos_summary::to_json() const {
  std::uint64_t events = 0, virtual_ns = 0, offered = 0, verdicts = 0;
  double run_wall_s = 0;
  std::map<std::string, std::uint64_t> modes, schedulers, bridges, kinds_enabled, rare;
  bridges["model"] = 0;
  bridges["python"] = 0;
  nlohmann::json by_kind = nlohmann::json::object();
  for (const char* k : failure_kinds) by_kind[k] = 0;
  std::vector<std::uint64_t> seeds;
  seeds.reserve(outcomes.size());
  // Liveness under load, over every seed: resends against their bounds,
  // recovery time against its bound, goodput after recovery.
  std::uint64_t resent = 0, resent_allowed = 0, deaths = 0, recovery_checked = 0, overloaded = 0;
  double worst_amplification = 0, worst_recovery_share = 0, worst_goodput = -1;
  std::vector<std::int64_t> recovered;
  for (const seed_outcome& o : outcomes) {
    seeds.push_back(o.seed);
    events += o.events;
    virtual_ns += o.virtual_ns;
    offered += o.offered;
    verdicts += o.verdicts;
    run_wall_s += o.wall_s;
    ++modes[o.mode];
    ++schedulers[o.scheduler];
    ++bridges[o.bridge];
    for (const auto& k : o.swarm) ++kinds_enabled[k];
    for (const auto& r : o.rare_states) ++rare[r];
    if (o.kind != "pass") by_kind[o.kind] = by_kind.value(o.kind, 0) + 1;
    resent += o.resent;
    resent_allowed += o.resent_allowed;
    deaths += o.deaths;
    if (o.load_ratio > 1.0) ++overloaded;
    if (o.resent_allowed > 0) {
      worst_amplification = std::max(worst_amplification, static_cast<double>(o.resent) / static_cast<double>(o.resent_allowed));
    }
    if (o.recovery_bound_ns > 0) {
      ++recovery_checked;
      if (o.recovered_after_ns >= 0) {
        recovered.push_back(o.recovered_after_ns);
        worst_recovery_share = std::max(worst_recovery_share, static_cast<double>(o.recovered_after_ns) / static_cast<double>(o.recovery_bound_ns));
      }
    }
    if (o.goodput_ratio >= 0) worst_goodput = worst_goodput < 0 ? o.goodput_ratio : std::min(worst_goodput, o.goodput_ratio);
  }
  std::sort(recovered.begin(), recovered.end());
  const auto recovered_pct = [&recovered](std::size_t pct) -> double {
    if (recovered.empty()) return 0.0;
    return static_cast<double>(recovered[std::min(recovered.size() - 1, recovered.size() * pct / 100)]) / 1e9;
  };
  std::sort(seeds.begin(), seeds.end());
  nlohmann::json states = nlohmann::json::object();
  std::vector<std::string> missing;
  std::size_t covered = 0;
  for (const coverage_point& st : coverage_points) {
    const std::string name{st.name};
    const std::uint64_t n = rare.count(name) ? rare.at(name) : 0;
    states[name] = n;
    if (n > 0) ++covered;
    else missing.push_back(name);
  }
  const double cores = core_seconds > 0 ? core_seconds : wall_s * jobs;
  nlohmann::json fails = nlohmann::json::array();
  for (const failure_record& f : failures) fails.push_back(failure_json(f));
  const std::size_t failed = failed_count();
  return {
      {"tool", "aegis-sim chaos"},
      {"shard", shard},
      {"seed_base", seed_base},
      {"jobs", jobs},
      {"budget_s", budget_s},
      {"wall_s", wall_s},
      {"core_seconds", cores},
      {"mutant", mutant},
      {"default_seed_length", default_length},
      {"default_seed_length_note", "simulated workload per seed; faults until 3/4 of it, then heal and converge"},
      {"seeds_run", outcomes.size()},
      {"seeds_passed", outcomes.size() - failed},
      {"seeds_failed", failed},
      {"failures_by_kind", by_kind},
      {"seeds_per_minute", per_minute(static_cast<double>(outcomes.size()), wall_s)},
      {"seeds_per_minute_per_core", per_minute(static_cast<double>(outcomes.size()), cores)},
      {"simulated_events", events},
      {"simulated_events_per_second", run_wall_s > 0 ? static_cast<double>(events) / run_wall_s : 0.0},
      {"simulated_seconds", static_cast<double>(virtual_ns) / 1e9},
      {"time_compression", run_wall_s > 0 ? static_cast<double>(virtual_ns) / 1e9 / run_wall_s : 0.0},
      {"transactions_offered", offered},
      {"transactions_verdicted", verdicts},
      {"load",
       {{"records_resent", resent},
        {"records_resent_allowed", resent_allowed},
        {"amplification", resent_allowed > 0 ? static_cast<double>(resent) / static_cast<double>(resent_allowed) : 0.0},
        {"worst_seed_amplification", worst_amplification},
        {"bridge_deaths", deaths},
        {"seeds_overloaded", overloaded},
        {"seeds_recovery_checked", recovery_checked},
        {"recovery_s_p50", recovered_pct(50)},
        {"recovery_s_p99", recovered_pct(99)},
        {"worst_recovery_share_of_bound", worst_recovery_share},
        {"worst_goodput_after_recovery", worst_goodput}}},
      {"modes", modes},
      {"schedulers", schedulers},
      {"bridges", bridges},
      {"python_share", python_share},
      {"swarm_kinds_enabled", kinds_enabled},
      {"rare_state_coverage",
       {{"covered", covered}, {"total", coverage_points.size()}, {"seeds_per_state", states}, {"missing", missing}}},
      {"failures", fails},
      {"merged_from", merged_from},
      {"seeds", seeds},
  };
}

std::optional<chaos_summary> chaos_summary::from_json(const nlohmann::json& j, std::string* error) {
  try {
    chaos_summary s;
    s.shard = j.at("shard").get<std::string>();
    s.seed_base = j.at("seed_base").get<std::uint64_t>();
    s.default_length = j.at("default_seed_length").get<std::string>();
    s.budget_s = j.at("budget_s").get<double>();
    s.jobs = j.at("jobs").get<std::uint32_t>();
    s.wall_s = j.at("wall_s").get<double>();
    s.core_seconds = j.at("core_seconds").get<double>();
    s.mutant = j.at("mutant").get<std::string>();
    s.python_share = j.value("python_share", 0.0);
    for (const auto& f : j.at("failures")) s.failures.push_back(failure_from(f));
    s.merged_from = j.at("merged_from").get<std::vector<std::string>>();
    return s;
  } catch (const std::exception& e) {
    if (error != nullptr) *error = e.what();
    return std::nullopt;
  }
}

std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // XML 1.0 forbids most control characters even escaped: drop them.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t' && c != '\r') break;
        out += c;
    }
  }
  return out;
}

std::string junit_xml(const chaos_summary& s) {
  const nlohmann::json j = s.to_json();
  const std::size_t failed = s.failures.size();
  std::string x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  x += fmt::format("<testsuites name=\"aegis-sim chaos\" tests=\"{}\" failures=\"{}\" time=\"{:.3f}\">\n", failed + 1, failed,
                   s.wall_s);
  x += fmt::format("  <testsuite name=\"aegis-sim chaos shard {}\" tests=\"{}\" failures=\"{}\" time=\"{:.3f}\">\n",
                   xml_escape(s.shard), failed + 1, failed, s.wall_s);
  for (const failure_record& f : s.failures) {
    x += fmt::format("    <testcase classname=\"chaos.{}\" name=\"seed {}\" time=\"{:.3f}\">\n", xml_escape(f.kind), f.seed,
                     f.shrink_s);
    x += fmt::format("      <failure type=\"{}\" message=\"{}\">{}</failure>\n", xml_escape(f.kind),
                     xml_escape(f.failure.substr(0, f.failure.find('\n'))),
                     xml_escape(fmt::format("{}\n\nreplay (minimal case):\n{}\n\nminimal schedule: {}\nfirst run:\n{}\n"
                                            "failure directory: {}\n",
                                            f.failure, f.replay, f.schedule, f.original, f.dir)));
    x += "    </testcase>\n";
  }
  const auto& cov = j.at("rare_state_coverage");
  x += fmt::format("    <testcase classname=\"chaos\" name=\"summary\" time=\"{:.3f}\">\n", s.wall_s);
  x += fmt::format("      <system-out>{}</system-out>\n",
                   xml_escape(fmt::format("seeds_run={} seeds_failed={} seeds_per_minute={:.1f} seeds_per_minute_per_core={:.1f} "
                                          "simulated_events_per_second={:.0f} rare_states={}/{} default_seed_length={}",
                                          j.at("seeds_run").get<std::size_t>(), j.at("seeds_failed").get<std::size_t>(),
                                          j.at("seeds_per_minute").get<double>(),
                                          j.at("seeds_per_minute_per_core").get<double>(),
                                          j.at("simulated_events_per_second").get<double>(),
                                          cov.at("covered").get<std::size_t>(), cov.at("total").get<std::size_t>(),
                                          s.default_length)));
  x += "    </testcase>\n  </testsuite>\n</testsuites>\n";
  return x;
}

void write_report(const chaos_summary& s, const std::string& dir) {
  namespace fs = std::filesystem;
  auto write = [&](const std::string& name, const std::string& text) {
    // Write then rename: a CI step reading the report never sees half a file.
    const fs::path final_path = fs::path(dir) / name;
    const fs::path tmp = final_path.string() + ".tmp";
    {
      std::ofstream out{tmp, std::ios::trunc};
      out << text;
      if (!out) throw std::runtime_error("cannot write " + tmp.string());
    }
    fs::rename(tmp, final_path);
  };
  std::string lines;
  for (const seed_outcome& o : s.outcomes) lines += outcome_json(o).dump() + "\n";
  write("seeds.jsonl", lines);
  write("summary.json", s.to_json().dump(2) + "\n");
  write("junit.xml", junit_xml(s));
}

std::optional<chaos_summary> merge_reports(const std::vector<std::string>& dirs, std::string* error) {
  namespace fs = std::filesystem;
  auto fail = [&](std::string why) -> std::optional<chaos_summary> {
    if (error != nullptr) *error = std::move(why);
    return std::nullopt;
  };
  if (dirs.empty()) return fail("nothing to merge");
  chaos_summary merged;
  std::set<std::uint64_t> seen;
  std::set<std::string> shards;
  double wall_max = 0;
  for (const std::string& dir : dirs) {
    std::ifstream in{fs::path(dir) / "summary.json"};
    if (!in) return fail(fmt::format("{}: no summary.json", dir));
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(in);
    } catch (const std::exception& e) {
      return fail(fmt::format("{}/summary.json: {}", dir, e.what()));
    }
    std::string why;
    auto part = chaos_summary::from_json(j, &why);
    if (!part) return fail(fmt::format("{}/summary.json: {}", dir, why));
    if (merged.merged_from.empty()) {
      merged.seed_base = part->seed_base;
      merged.default_length = part->default_length;
      merged.mutant = part->mutant;
      merged.jobs = part->jobs;
    } else if (part->seed_base != merged.seed_base) {
      return fail(fmt::format("{}: seed base {} differs from {}: not shards of one run", dir, part->seed_base, merged.seed_base));
    }
    if (!shards.insert(part->shard).second) return fail(fmt::format("{}: shard {} appears twice", dir, part->shard));
    std::ifstream seeds_in{fs::path(dir) / "seeds.jsonl"};
    if (!seeds_in) return fail(fmt::format("{}: no seeds.jsonl", dir));
    for (std::string line; std::getline(seeds_in, line);) {
      if (line.empty()) continue;
      seed_outcome o;
      try {
        o = outcome_from(nlohmann::json::parse(line));
      } catch (const std::exception& e) {
        return fail(fmt::format("{}/seeds.jsonl: {}", dir, e.what()));
      }
      if (!seen.insert(o.seed).second) return fail(fmt::format("seed {} was run by two shards (overlap)", o.seed));
      merged.outcomes.push_back(std::move(o));
    }
    for (failure_record f : part->failures) {
      f.dir = (fs::path(dir) / f.dir).string();
      merged.failures.push_back(std::move(f));
    }
    merged.budget_s = std::max(merged.budget_s, part->budget_s);
    merged.core_seconds += part->core_seconds;
    wall_max = std::max(wall_max, part->wall_s);
    merged.merged_from.push_back(dir + " (shard " + part->shard + ")");
  }
  // Shards run side by side: the merged wall time is the longest shard's.
  merged.wall_s = wall_max;
  merged.shard = fmt::format("merged {} shard(s)", dirs.size());
  AEGIS_ASSERT(seen.size() == merged.outcomes.size(), "every merged seed is distinct");
  return merged;
}

}  // namespace aegis::sim
