// A scenario: everything one simulated run depends on besides the code. The
// seed derives whatever is not given; the result prints back as the exact
// command line that reproduces the run, and the fault plan prints and parses
// as a string so a property test can generate, shrink and replay it.
//
// Usage:
//   aegis::sim::scenario s;
//   s.seed = 42;
//   s.fault_spec = "default";
//   aegis::sim::scenario d = aegis::sim::derive(s);      // every parameter fixed
//   std::string cmd = d.reproduce_command();             // "aegis-sim run --seed 42 --mode block ..."
//   auto plan = aegis::sim::parse_fault_plan("crash@2s/300ms;stall@5s/800ms;heal@22s");
//
// Fault plan syntax (items separated by ';', times from the run's start):
//   crash@T/RESTART         bridge dies at T, restarts RESTART later
//   stall@T/DUR             bridge frozen (SIGSTOP-like) during DUR
//   slow@T/DUR/FACTOR       bridge scoring FACTOR times slower during DUR
//   clog.offload@T/DUR/EXTRA  every offload message delayed by EXTRA during DUR
//   clog.verdict@T/DUR/EXTRA  same on the verdict channel
//   clock@T/DUR             the core's clock stands still during DUR
//   twin@T/DUR              a second bridge process runs alongside during DUR
//                           (a rolling restart's overlap), then dies
//   restart@T/DOWN          the core process dies at T (its ring and every
//                           accepted, not yet terminal transaction with it)
//                           and a new core process with a new epoch starts
//                           DOWN later; the bridge lives on
//   site:NAME/ACT/RATE      fault site NAME active with ACT ppm, firing at RATE ppm
//   heal@T                  from T on: no faults, bridge alive and fast
// `none` is the empty plan; `default` asks the seed for one (see derive()).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "aegis/env.hpp"
#include "aegis/ring_buffer.hpp"
#include "sim/world.hpp"

namespace aegis::sim {

/// Which bridge a run simulates: the C++ model (sim/bridge_model.hpp) or
/// the real bridge's BridgeCore in the embedded interpreter (sim/python_bridge.hpp).
enum class bridge_kind : std::uint8_t { model, python };
const char* to_string(bridge_kind b) noexcept;
/// "model" or "python"; nullopt otherwise.
std::optional<bridge_kind> parse_bridge_kind(std::string_view text) noexcept;

/// Kinds of timed fault events.
enum class fault_kind : std::uint8_t { crash, stall, slow, clog_offload, clog_verdict, clock, twin, restart };
const char* to_string(fault_kind k) noexcept;

/// One timed fault.
struct fault_event {
  fault_kind kind = fault_kind::crash;  ///< What happens.
  ns_t at_ns = 0;                       ///< When, from the run's start.
  ns_t duration_ns = 0;                 ///< crash, restart: restart delay; others: how long it lasts.
  std::int64_t arg = 0;                 ///< slow: factor; clog: extra delay ns.
  bool operator==(const fault_event&) const = default;
};

/// A fault site's two-level randomness for a run.
struct fault_site_setting {
  std::string name;            ///< Site name, e.g. "transport.send".
  std::uint32_t activation_ppm = 0;  ///< Chance it is active this run.
  std::uint32_t rate_ppm = 0;        ///< Chance an active site fires per query.
  bool operator==(const fault_site_setting&) const = default;
};

/// A fault plan: timed events, site settings and the heal time.
struct fault_plan {
  std::vector<fault_event> events;         ///< Sorted by at_ns.
  std::vector<fault_site_setting> sites;   ///< Fault sites switched on.
  std::optional<ns_t> heal_at_ns;          ///< Heal time; unset = the run's heal default.
  bool operator==(const fault_plan&) const = default;
  /// The plan in the syntax above ("none" when empty).
  std::string to_string() const;
};

/// Parses a plan; nullopt (and `error` set) when malformed.
std::optional<fault_plan> parse_fault_plan(std::string_view text, std::string* error = nullptr);

/// Every parameter of a run. Unset optionals are derived from the seed.
struct scenario {
  std::uint64_t seed = 0;                     ///< The one seed.
  std::optional<admission> mode;              ///< block or drop.
  ns_t sim_duration_ns = 10'000'000'000;      ///< Workload duration (faults before heal, then healthy load).
  std::optional<std::uint32_t> producers;     ///< Producer fibers.
  std::optional<std::size_t> ring_capacity;   ///< Ring slots (power of two).
  std::optional<std::uint64_t> rate_per_s;    ///< Offered transactions per simulated second.
  std::optional<std::uint32_t> burst_factor;  ///< Rate multiplier during bursts (1 = none).
  schedule_strategy strategy = schedule_strategy::random;  ///< Scheduler.
  std::uint32_t pct_depth = 3;                ///< PCT d.
  std::optional<std::uint32_t> preempt_ppm;   ///< random: preemption chance per yield point.
  std::string fault_spec = "default";         ///< none | default | a plan.
  std::optional<ns_t> ttl_ns;                 ///< Offloader TTL (0 = never expire).
  std::optional<ns_t> retransmit_ns;          ///< Offloader retransmit timeout.
  std::optional<std::size_t> batch_max;       ///< Offloader batch size.
  ns_t converge_ns = 10'000'000'000;          ///< After the workload: all accepted terminal within this.
  std::optional<ns_t> model_record_ns;        ///< Bridge model: scoring cost per record (the world's service time).
  std::optional<ns_t> model_batch_ns;         ///< Bridge model: scoring cost per batch (call overhead).
  std::optional<std::uint32_t> poison_ppm;    ///< Share of transactions the model fails on, in ppm (0 = none).
  std::string mutant;                         ///< Mutant switched on (faults/aegis/mutant.hpp); empty = none.
  /// The bridge: the C++ model, or the real Python BridgeCore (sim/python_bridge.hpp).
  bridge_kind bridge = bridge_kind::model;

  /// The fault plan resolved from fault_spec (after derive()).
  fault_plan plan;

  /// The bridge model's nominal capacity in records per second: full
  /// batches (as many records as the core may have outstanding, at most
  /// 64 frames of batch_max), at the mean of the heavy-tailed cost.
  double model_capacity_per_s() const;

  /// `aegis-sim run ...` with every parameter, so the run replays exactly.
  std::string reproduce_command() const;
  /// Every derived parameter as `name=value` lines, for the start of a run.
  std::string describe() const;
};

/// The first parameter set (on the command line or in a schedule) that no
/// run can use, as "<schedule field> (<flag>) <requirement>"; empty if none.
/// Checked before a run so that bad input is a usage error, never a
/// simulated crash or liveness failure that looks like a bug found.
std::string invalid_parameter(const scenario& s);

/// Fills every unset parameter from the seed and resolves the fault plan.
/// Throws std::invalid_argument for an unparsable fault spec.
scenario derive(scenario s);

/// Mean of the model's heavy-tailed cost multiplier (bridge_model::cost_factor).
inline constexpr double model_cost_factor_mean = 1.08;

/// Model time per model call of the simulated bridge (the real bridge's
/// score_chunk_s): a slow model's records are scored this much at a time.
inline constexpr ns_t model_chunk_ns = 20'000'000;

/// The fault plan `default` gives for a seed and duration.
fault_plan default_fault_plan(std::uint64_t seed, ns_t duration_ns);

}  // namespace aegis::sim
