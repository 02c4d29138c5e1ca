// A C++ model of the Python bridge (src/aegis_bridge/bridge.py) as a simulated
// process: same protocol codec as the core (src/aegis/protocol.hpp), same loop
// shape, so the offloader meets in simulation the peer users run.
//
// Usage:
//   aegis::sim::bridge_model bridge{world, net, {.offload_endpoint = "ipc://sim/offload",
//                                                .verdict_endpoint = "ipc://sim/verdicts"}};
//   bridge.start();                      // a fresh incarnation; HELLO once the offload channel connects
//   bridge.crash();                      // every fiber and queue of the process gone
//   bridge.start();                      // restart: a new incarnation
//   bridge.stall(until_ns);              // SIGSTOP-like freeze
//   bridge.slow(10, until_ns);           // scoring 10x slower until then
//
// The loop, as bridge.py's Bridge.run:
//   once the offload connection is up (a socket monitor, as bridge.py's),
//   HELLO(last epoch seen, incarnation, status: read serial, heartbeat,
//   answered, duplicates); every heartbeat while it stays up another HELLO
//   (dropped if the pipe is full), none while it is down; wait for TXN frames until the next heartbeat; take every
//   queued frame (up to batch_max) without waiting to fill a batch; decode,
//   count bad ones and skip them; skip records this incarnation already read
//   in this core epoch (a resend: its answer is on the way); score the rest
//   (the world's service time: a per-batch and a per-record cost with a
//   heavy tail); answer each TXN frame's new records with one VERDICT frame,
//   same order and epoch, a poisoned record `unscored` with the fail-safe
//   decision; a verdict send that would block waits for room (polls every
//   millisecond) as the Python bridge waits on POLLOUT.
//
// What it does with the bytes (decoding, dedupe, epochs, read_serial, the
// VERDICT and HELLO frames) is sim/bridge_rules.hpp, a piece with no world or
// time that sim/bridge_vectors_test.cpp checks against the Python bridge's
// BridgeCore on fixtures/bridge_vectors/; that header lists the intended
// differences (one VERDICT frame per TXN frame's share of a chunk, a smaller
// dedupe table, scoring without calling a model).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "aegis/protocol.hpp"
#include "sim/bridge_rules.hpp"
#include "sim/network.hpp"
#include "sim/sim_env.hpp"
#include "sim/world.hpp"

namespace aegis::sim {

/// How the modelled bridge behaves; BridgeConfig's defaults.
struct bridge_model_config {
  std::string offload_endpoint;           ///< Where the core's PUSH binds.
  std::string verdict_endpoint;           ///< Where the core's PULL binds.
  std::string name = "bridge";            ///< Process name and random stream (a second bridge needs its own).
  std::size_t batch_max = 64;             ///< Frames taken per wake-up at most.
  ns_t heartbeat_ns = 200'000'000;        ///< HELLO interval.
  int recv_hwm = 1000;                    ///< PULL RCVHWM.
  int send_hwm = 1000;                    ///< PUSH SNDHWM.
  int reconnect_ivl_ms = 50;              ///< ZMQ_RECONNECT_IVL.
  ns_t score_batch_ns = 40'000;           ///< Scoring cost per batch (numpy call overhead).
  ns_t score_record_ns = 400;             ///< Scoring cost per record (the shipped model; scenarios draw 200 ns-1 ms).
  /// Model time per model call, as the real bridge's score_chunk_s: a
  /// wake-up's records are scored in chunks of about this much, each
  /// chunk's verdicts sent as soon as it is scored, heartbeats between.
  ns_t score_chunk_ns = 20'000'000;
  std::uint32_t poison_ppm = 0;           ///< Share of transactions the model fails on (by txn id), ppm.
  ns_t send_poll_ns = 1'000'000;          ///< Retry interval of a verdict send at the HWM.
  /// Run the real bridge's BridgeCore (sim/python_bridge.hpp) instead of
  /// the C++ frame rules: `aegis-sim --bridge python`.
  bool python = false;
  /// A mutant of the Python bridge (aegis::bridge_mutants) to switch on; "" = none.
  std::string python_mutant;
};

/// Counters of the modelled bridge, summed over incarnations.
struct bridge_model_stats {
  std::uint64_t starts = 0;               ///< Incarnations started.
  std::uint64_t crashes = 0;              ///< Crashes.
  std::uint64_t hellos_sent = 0;          ///< HELLOs queued.
  std::uint64_t hellos_dropped = 0;       ///< HELLOs that found the pipe full.
  std::uint64_t frames_received = 0;      ///< Frames received (valid or not).
  std::uint64_t bad_frames = 0;           ///< Frames rejected by the decoder or of a wrong type.
  std::uint64_t records_scored = 0;       ///< TXN records scored.
  std::uint64_t verdict_frames_sent = 0;  ///< VERDICT frames queued.
  std::uint64_t send_waits = 0;           ///< Verdict sends that had to wait for room.
  std::uint64_t model_errors = 0;         ///< Batches on which the model failed on some record.
  std::uint64_t duplicates_skipped = 0;   ///< TXN records skipped: this incarnation had read them already.
};

class bridge_model {
 public:
  /// Called for every valid TXN frame a live incarnation receives:
  /// (incarnation, the frame's core epoch, records). Properties check
  /// per-incarnation, per-epoch order with it.
  using batch_observer =
      std::function<void(std::uint64_t incarnation, std::uint64_t epoch, std::span<const txn_record> records)>;

  /// Creates the (not yet started) bridge process in `w`.
  bridge_model(sim::world& w, network& net, bridge_model_config config);

  /// Starts a new incarnation (reviving the process after a crash).
  void start();
  /// Kills the process: fibers unwound, sockets and their queues discarded.
  void crash();
  /// Freezes the process until `until_ns`.
  void stall(ns_t until_ns);
  /// Multiplies scoring time by `factor` until `until_ns`.
  void slow(std::uint32_t factor, ns_t until_ns);
  /// Ends slowness now (heal).
  void heal();

  /// True while the process is alive.
  bool alive() const { return world_.alive(process_); }
  /// The current (or last) incarnation; 0 before the first start.
  std::uint64_t incarnation() const noexcept { return incarnation_; }
  /// The simulated process.
  process_id process() const noexcept { return process_; }
  /// Counters.
  const bridge_model_stats& stats() const noexcept { return stats_; }
  /// Installs the observer of received batches.
  void observe(batch_observer o) { observer_ = std::move(o); }
  /// Installs a callback run just before each death of an incarnation (a
  /// crash fault or a death of its own), while the core still holds what
  /// the dying incarnation owed: the load checks read the outstanding count.
  void on_death(std::function<void()> f) { on_death_ = std::move(f); }

  /// The model's decoder path, used on every received frame: decodes `bytes`
  /// and returns the TXN records, or the reason the bridge would count the
  /// frame as bad ("unexpected_type" for a valid non-TXN frame). Exposed so
  /// the protocol vectors in fixtures/protocol/ run through exactly this path.
  struct decode_result {
    bool ok = false;                    ///< A TXN frame the bridge would score.
    std::string reason;                 ///< Why not.
    decoded_frame frame;                ///< The decoder's view.
    std::vector<txn_record> records;    ///< The records, when ok.
  };
  static decode_result decode(std::span<const std::byte> bytes);

  /// The verdict the model gives a record: a deterministic function of the
  /// transaction, so two runs of a seed score alike.
  static verdict_record score(const txn_record& r);

  /// The record the bridge answers: score() or, for a poisoned
  /// transaction, an `unscored` verdict with the fail-safe decision.
  static verdict_record verdict_for(const txn_record& r, std::uint32_t poison_ppm);

  /// The bridge's fail-safe decision for records the model failed on (review).
  static constexpr std::uint8_t unscored_decision = bridge_rules::unscored_decision;
  /// Slots of the per-epoch table of seqs read (a power of two; a ring
  /// larger than this can only make a resend look new: scored twice, never lost).
  static constexpr std::size_t dedupe_slots = bridge_rules::dedupe_slots;

  /// True when the model fails on this transaction (a poison record): a
  /// deterministic function of the txn id and the share.
  static bool poisoned(std::uint64_t txn_id, std::uint32_t poison_ppm) noexcept;

  /// Multiplier of one batch's scoring cost: median about 1.05, p99 3x,
  /// p99.9 10x (GC pauses, cache misses, a cold tree); mean
  /// model_cost_factor_mean. Drawn from the bridge's stream.
  ns_t cost_factor_permille();

 private:
  // The sockets of one incarnation, as bridge.py opens them: the offload
  // PULL with its connection monitor, and the verdict PUSH, both connected.
  struct sockets {
    sim_env::socket pull;
    sim_env::socket push;
    sim_env::doorbell monitor_bell;
  };
  sockets open_sockets();
  void loop(std::uint64_t incarnation);
  void python_loop(std::uint64_t incarnation);  // sim/python_bridge.cpp
  void send_verdict_frame(sim_env::socket& push, std::span<const std::byte> raw, std::uint64_t first_seq,
                          std::size_t records);
  ns_t scoring_delay(std::size_t records);
  std::size_t chunk_records() const noexcept;

  sim::world& world_;
  network& net_;
  bridge_model_config config_;
  process_id process_;
  std::unique_ptr<sim_env> env_;
  prng rng_;
  std::uint64_t incarnation_ = 0;
  bool scoring_ = false;              // Between receiving a batch and sending its verdicts.
  std::uint32_t slow_factor_ = 1;
  ns_t slow_until_ns_ = 0;
  bridge_model_stats stats_;
  batch_observer observer_;
  std::function<void()> on_death_;
};

}  // namespace aegis::sim
