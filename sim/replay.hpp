// `aegis-sim replay`: reruns one written-down case (a schedule: seed, every
// parameter, fault plan, mutant) with the same property checks the property
// suite applied, and prints the same failure and trace hash.
//
// Usage:
//   aegis-sim replay --schedule '{"seed":7,"mode":"block","faults":"crash@200ms/50ms"}'
//   aegis-sim replay --schedule fixtures/corpus/block-crash-burst.json --trace run.json
//
// Exit codes are aegis-sim's: 0 pass, 1 correctness, 2 liveness, 3 crash.
#pragma once

#include <functional>
#include <string>

namespace CLI {
class App;
}

namespace aegis::sim {

/// Arguments of `aegis-sim replay`.
struct replay_args {
  std::string schedule;  ///< JSON text, or a file holding it.
  std::string trace;     ///< Chrome trace-event JSON output, when set.
};

/// Registers the subcommand on `app`; returns it (check `parsed()`).
CLI::App* add_replay_subcommand(CLI::App& app, replay_args& a);

/// Runs the replay. `on_start` receives the replay line before the run (the
/// CLI's abort handler prints it if an assertion fires).
int run_replay(const replay_args& a, const std::function<void(const std::string&)>& on_start);

}  // namespace aegis::sim
