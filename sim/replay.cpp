// `aegis-sim replay`; see replay.hpp.
#include "sim/replay.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <iostream>
#include <stdexcept>

#include "aegis/writable.hpp"
#include "sim/checked_run.hpp"
#include "sim/schedule.hpp"

namespace aegis::sim {

CLI::App* add_replay_subcommand(CLI::App& app, replay_args& a) {
  CLI::App* cmd = app.add_subcommand("replay", "rerun one schedule (JSON text or file) with the property checks");
  cmd->add_option("--schedule", a.schedule, "the schedule: JSON text, or a file holding it")->required();
  cmd->add_option("--trace", a.trace, "write Chrome trace-event JSON (Perfetto) to this file");
  return cmd;
}

int run_replay(const replay_args& a, const std::function<void(const std::string&)>& on_start) {
  scenario s;
  try {
    s = load_schedule(a.schedule);
  } catch (const std::invalid_argument& e) {
    std::cerr << "aegis-sim replay: " << e.what() << "\n";
    return 64;
  }
  if (!a.trace.empty()) {
    if (const std::string why = aegis::why_unwritable(a.trace); !why.empty()) {
      std::cerr << "aegis-sim replay: --trace: cannot write " << a.trace << ": " << why << "\n";
      return 64;
    }
  }
  std::string line = replay_command(s);
  if (!a.trace.empty()) line += " --trace " + a.trace;
  if (on_start) on_start(line);
  std::cout << fmt::format("SEED={}\n", s.seed) << s.describe() << std::flush;
  // In this process, not forked: a crash is exit 3 through the abort handler,
  // with the same replay line.
  const checked_result r = run_checked(s, a.trace);
  std::cout << r.summary;
  std::string reached;
  for (const auto& [name, count] : r.coverage) reached += fmt::format(" {}={}", name, count);
  std::cout << "rare_states:" << (reached.empty() ? " none" : reached) << "\n";
  if (r.exit_code != exit_pass) {
    // The run's summary names runner failures; property failures are ours.
    if (r.failure.rfind("property: ", 0) == 0) std::cout << fmt::format("FAILURE ({}): {}\n", r.exit_code, r.failure);
    std::cout << describe_failure(s, r);
  }
  std::cout << fmt::format("replay_result exit={} trace_hash={:016x}\n", r.exit_code, r.trace_hash);
  return r.exit_code;
}

}  // namespace aegis::sim
