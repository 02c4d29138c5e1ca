// Schedules as JSON; see schedule.hpp.
#include "sim/schedule.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "aegis/protocol.hpp"
#include "sim/seed.hpp"

namespace aegis::sim {

namespace {
using nlohmann::json;

ns_t duration_field(const json& j, const char* key) {
  const std::string text = j.at(key).get<std::string>();
  const auto d = parse_duration(text);
  if (!d) throw std::invalid_argument(fmt::format("schedule: '{}' is not a duration: {}", key, text));
  return *d;
}

// An unsigned integer field that fits T. nlohmann's get<T>() would convert a
// float (1e30) with undefined behaviour and wrap an oversized integer
// silently (both found by fuzz/fuzz_schedule), so the JSON type is checked.
template <class T>
T uint_field(const json& v, const char* key) {
  if (!v.is_number_unsigned()) throw std::invalid_argument(fmt::format("schedule: '{}' must be a non-negative integer", key));
  const auto n = v.get<std::uint64_t>();
  if (n > std::numeric_limits<T>::max()) throw std::invalid_argument(fmt::format("schedule: '{}' is too large: {}", key, n));
  return static_cast<T>(n);
}
}  // namespace

std::string schedule_json(const scenario& s) {
  AEGIS_ASSERT(s.mode.has_value() && s.plan.heal_at_ns.has_value(), "a schedule is written from a derived scenario");
  // Keys in a fixed order (ordered_json), so the text is stable and diffable.
  nlohmann::ordered_json j;
  j["seed"] = s.seed;
  j["mode"] = *s.mode == admission::block ? "block" : "drop";
  j["sim_duration"] = format_duration(s.sim_duration_ns);
  j["producers"] = *s.producers;
  j["ring_capacity"] = *s.ring_capacity;
  j["rate"] = *s.rate_per_s;
  j["burst"] = *s.burst_factor;
  j["scheduler"] = to_string(s.strategy);
  j["pct_depth"] = s.pct_depth;
  if (s.preempt_ppm) j["preempt_ppm"] = *s.preempt_ppm;
  j["ttl"] = format_duration(*s.ttl_ns);
  j["retransmit"] = format_duration(*s.retransmit_ns);
  j["batch_max"] = *s.batch_max;
  j["converge"] = format_duration(s.converge_ns);
  j["model_cost"] = format_duration(*s.model_record_ns);
  j["batch_cost"] = format_duration(*s.model_batch_ns);
  if (*s.poison_ppm != 0) j["poison_ppm"] = *s.poison_ppm;
  j["faults"] = s.plan.to_string();
  if (!s.mutant.empty()) j["mutant"] = s.mutant;
  if (s.bridge != bridge_kind::model) j["bridge"] = to_string(s.bridge);
  return j.dump();
}

scenario parse_schedule(std::string_view json_text) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::exception& e) {
    throw std::invalid_argument(fmt::format("schedule is not JSON: {}", e.what()));
  }
  if (!j.is_object() || !j.contains("seed")) throw std::invalid_argument("schedule: an object with a \"seed\" is required");
  // A misspelt field would otherwise be ignored and its value silently taken
  // from the seed: the replay would not be the run the file describes.
  // "note" and "expect" are the corpus entries' own (docs/CORPUS.md).
  static constexpr std::string_view known[] = {"seed",      "mode",        "sim_duration", "producers", "ring_capacity",
                                               "rate",      "burst",       "scheduler",    "pct_depth", "preempt_ppm",
                                               "ttl",       "retransmit",  "batch_max",    "converge",  "faults",
                                               "mutant",    "note",        "expect",       "model_cost", "batch_cost",
                                               "poison_ppm", "bridge"};
  for (const auto& [key, value] : j.items()) {
    if (std::find(std::begin(known), std::end(known), key) == std::end(known)) {
      throw std::invalid_argument(fmt::format("schedule: unknown field '{}'", key));
    }
  }
  scenario s;
  try {
    const json& seed = j.at("seed");
    if (seed.is_string()) {
      const auto v = parse_seed(seed.get<std::string>());
      if (!v) throw std::invalid_argument("schedule: bad seed");
      s.seed = *v;
    } else {
      s.seed = uint_field<std::uint64_t>(seed, "seed");
    }
    if (j.contains("mode")) {
      const std::string m = j["mode"].get<std::string>();
      if (m != "block" && m != "drop") throw std::invalid_argument("schedule: mode is block or drop");
      s.mode = m == "block" ? admission::block : admission::drop;
    }
    if (j.contains("sim_duration")) s.sim_duration_ns = duration_field(j, "sim_duration");
    if (j.contains("producers")) s.producers = uint_field<std::uint32_t>(j["producers"], "producers");
    if (j.contains("ring_capacity")) s.ring_capacity = uint_field<std::size_t>(j["ring_capacity"], "ring_capacity");
    if (j.contains("rate")) s.rate_per_s = uint_field<std::uint64_t>(j["rate"], "rate");
    if (j.contains("burst")) s.burst_factor = uint_field<std::uint32_t>(j["burst"], "burst");
    if (j.contains("scheduler")) {
      const auto st = parse_strategy(j["scheduler"].get<std::string>());
      if (!st) throw std::invalid_argument("schedule: scheduler is random or pct");
      s.strategy = *st;
    }
    if (j.contains("pct_depth")) s.pct_depth = uint_field<std::uint32_t>(j["pct_depth"], "pct_depth");
    if (j.contains("preempt_ppm")) s.preempt_ppm = uint_field<std::uint32_t>(j["preempt_ppm"], "preempt_ppm");
    if (j.contains("ttl")) s.ttl_ns = duration_field(j, "ttl");
    if (j.contains("retransmit")) s.retransmit_ns = duration_field(j, "retransmit");
    if (j.contains("batch_max")) s.batch_max = uint_field<std::size_t>(j["batch_max"], "batch_max");
    if (j.contains("converge")) s.converge_ns = duration_field(j, "converge");
    if (j.contains("model_cost")) s.model_record_ns = duration_field(j, "model_cost");
    if (j.contains("batch_cost")) s.model_batch_ns = duration_field(j, "batch_cost");
    if (j.contains("poison_ppm")) s.poison_ppm = uint_field<std::uint32_t>(j["poison_ppm"], "poison_ppm");
    if (j.contains("faults")) s.fault_spec = j["faults"].get<std::string>();
    if (j.contains("mutant")) s.mutant = j["mutant"].get<std::string>();
    if (j.contains("bridge")) {
      const auto b = parse_bridge_kind(j["bridge"].get<std::string>());
      if (!b) throw std::invalid_argument("schedule: bridge is model or python");
      s.bridge = *b;
    }
  } catch (const json::exception& e) {
    throw std::invalid_argument(fmt::format("schedule: {}", e.what()));
  }
  if (const std::string bad = invalid_parameter(s); !bad.empty()) throw std::invalid_argument("schedule: " + bad);
  return derive(std::move(s));
}

scenario load_schedule(const std::string& arg) {
  if (!arg.empty() && arg.front() == '{') return parse_schedule(arg);
  std::ifstream in{arg};
  if (!in) throw std::invalid_argument(fmt::format("schedule: cannot read file '{}'", arg));
  std::stringstream text;
  text << in.rdbuf();
  return parse_schedule(text.str());
}

std::string replay_command(const scenario& s) {
#if defined(AEGIS_SIM_PATH)
  const char* sim = AEGIS_SIM_PATH;
#else
  const char* sim = "aegis-sim";
#endif
  // Plans and JSON never contain a single quote, so one pair quotes it all.
  return fmt::format("{} replay --schedule '{}'", sim, schedule_json(s));
}

std::size_t schedule_length(const scenario& s) noexcept { return s.plan.events.size() + s.plan.sites.size(); }

}  // namespace aegis::sim
