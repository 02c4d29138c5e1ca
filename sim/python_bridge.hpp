// The real bridge inside the simulator (`aegis-sim --bridge python`): the
// Python BridgeCore (src/aegis_bridge/core.py) driven by a thin C++ shell,
// bridge_model::python_loop (sim/python_bridge.cpp), in place of the C++
// frame rules. The shell is bridge.py's loop with the world's sockets, clock
// and service time; BridgeCore does the decoding, dedupe, incarnations,
// epochs, chunking, scoring with the shipped model (through
// sim/python/aegis_sim_bridge.py) and verdict encoding.
//
// Usage:
//   python_bridge::start_interpreter();              // once per process; idempotent
//   python_bridge::reset_world();                    // a new world: forget the last one's verdicts
//   auto v = python_bridge::expected_verdict(txn_id); // what the model answered for it
//
// Determinism (docs/SIMULATOR.md, "The real bridge in the simulator"): the
// interpreter starts isolated from the environment (no PYTHON* variables, no
// user site) with hash seed 0, numpy's BLAS on one thread, and no signal
// handlers; BridgeCore reads no clock and starts no thread; the model's
// cost is the world's, never measured. The interpreter lives until the
// process exits: CPython and numpy do not survive a second initialisation.
#pragma once

#include <cstdint>
#include <optional>

namespace aegis::sim::python_bridge {

/// The model's answer for one transaction.
struct model_verdict {
  float score = 0.0f;          ///< As the model returned it.
  std::uint8_t decision = 0;   ///< As the model returned it.
};

/// Starts the embedded interpreter and imports the bridge (once; later calls
/// do nothing). Throws std::runtime_error, naming what is missing, when the
/// bridge or numpy cannot be imported.
void start_interpreter();

/// Forgets the expected verdicts of the previous world in this process.
void reset_world();

/// The score and decision the model gave `txn_id` in this world; nullopt if
/// it never scored it (a poisoned transaction is answered without a score).
std::optional<model_verdict> expected_verdict(std::uint64_t txn_id);

}  // namespace aegis::sim::python_bridge
