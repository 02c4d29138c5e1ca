// The offload path's public types: what a caller configures, what it gets
// back from offload(), the verdict and fate its callback receives, and the
// counters it can read. The state machine (aegis/offload_state.hpp) and the
// offloader (aegis/offloader.hpp) share them.
//
// Usage:
//   aegis::offloader_config cfg;
//   cfg.mode = aegis::admission::drop;
//   cfg.ttl_ns = 500'000'000;
//   aegis::fate_callback cb = [](const aegis::txn& t, std::uint64_t seq, aegis::fate f,
//                                const aegis::verdict* v, aegis::ns_t offload_ns) { ... };
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>

#include "aegis/env.hpp"
#include "aegis/protocol.hpp"
#include "aegis/ring_buffer.hpp"
#include "aegis/socket_layer.hpp"

namespace aegis {

/// A verdict as delivered to the fate callback.
struct verdict {
  std::uint64_t seq = 0;          ///< The transaction's seq.
  std::uint64_t txn_id = 0;       ///< The transaction's id (already cross-checked).
  float score = 0;                ///< Fraud probability in [0, 1].
  std::uint8_t decision = 0;      ///< 0 approve, 1 review, 2 decline.
  std::uint64_t incarnation = 0;  ///< The bridge incarnation that produced it.
  ns_t received_ns = 0;           ///< Env clock when the pump took its frame (one clock read per frame, not per record).
  bool unscored = false;          ///< The model failed on it: `decision` is the bridge's fail-safe, score 0.
};

/// Terminal state of an accepted transaction.
enum class fate : std::uint8_t {
  verdict,  ///< A verdict arrived.
  expired,  ///< The TTL passed first.
  abandoned,  ///< Sent max_sends times without a verdict (the bridges never answered it): the caller decides.
};

/// Outcome of `offload()`. Only `accepted` admitted the transaction.
enum class offload_status : std::uint8_t {
  accepted,           ///< In the ring; the fate callback will run exactly once for it.
  dropped_ring_full,  ///< Drop mode and the ring was full.
  dropped_timeout,    ///< Block mode and block_deadline_ns passed first.
  dropped_closed,     ///< The offloader is stopping (ring closed while full).
};

/// Name used in logs, the ledger and the summary JSON.
constexpr const char* to_string(offload_status s) noexcept {
  switch (s) {
    case offload_status::accepted: return "accepted";
    case offload_status::dropped_ring_full: return "dropped_ring_full";
    case offload_status::dropped_timeout: return "dropped_timeout";
    case offload_status::dropped_closed: return "dropped_closed";
  }
  return "?";
}

/// Everything an offloader is configured with.
struct offloader_config {
  admission mode = admission::block;         ///< Full ring: block (wait) or drop.
  std::size_t ring_capacity = 65536;         ///< Power of two.
  std::string offload_endpoint;              ///< Bound PUSH, e.g. "ipc://DIR/offload.sock".
  std::string verdict_endpoint;              ///< Bound PULL, e.g. "ipc://DIR/verdicts.sock".
  /// Floor of the adaptive safety timer: a transaction a live bridge holds
  /// and does not answer for max(this, SRTT + 4 RTTVAR, 2 dead-bridge
  /// intervals), doubling per expiry, is resent. Loss itself is recovered
  /// by a new incarnation or the bridge's silence (docs/PROTOCOL.md).
  ns_t retransmit_timeout_ns = 200'000'000;
  /// Flow control: the window of records sent and unverdicted shrinks while
  /// verdicts take longer than this and grows while they take less than
  /// half of it, so the backlog waits in the ring, not in the bridge's queue.
  ns_t target_latency_ns = 25'000'000;
  /// A transaction sent this many times without a verdict is `abandoned`.
  std::uint32_t max_sends = 10;
  ns_t ttl_ns = 0;                           ///< Expire unverdicted entries this old; 0 = never.
  ns_t block_deadline_ns = no_deadline;      ///< Relative wait limit of a block-mode offload().
  std::size_t batch_max = 1024;              ///< Most TXN records per frame, 1..max_records.
  /// Most records the send cursor may run ahead of the oldest unverdicted
  /// entry, >= batch_max. When the bridge falls behind, sending pauses here
  /// and the backlog waits in the ring, so the next frames go out full.
  std::size_t send_window = 8192;
  /// How long an idle pump naps without asking producers to ring the
  /// doorbell (their hot path then never makes a system call). Each nap is a
  /// timed wake-up; the batching interval at low rates. > 0.
  ns_t nap_ns = 50'000;
  std::uint64_t epoch = 0;                   ///< Non-zero; random per core start.
  socket_options offload_socket;             ///< PUSH options.
  socket_options verdict_socket;             ///< PULL options (max_msg_bytes -1 becomes max_frame_bytes).
};

/// Live counters. Each field is exact when loaded; fields are loaded one
/// after another (verdicts and expired before accepted). While producers run,
/// accepted may lag a just-verdicted entry (in_flight is then clamped at 0).
/// At quiescence (producers stopped):
/// offered = verdicts + expired + abandoned + dropped_ring_full + dropped_timeout + dropped_closed + in_flight.
struct offloader_counters {
  std::uint64_t offered = 0;             ///< offload() calls.
  std::uint64_t accepted = 0;            ///< Admitted to the ring.
  std::uint64_t dropped_ring_full = 0;   ///< Drop mode, ring full.
  std::uint64_t dropped_timeout = 0;     ///< Block mode, deadline passed.
  std::uint64_t dropped_closed = 0;      ///< Rejected while stopping.
  std::uint64_t verdicts = 0;            ///< Terminal by verdict (callback ran).
  std::uint64_t expired = 0;             ///< Terminal by TTL (callback ran).
  std::uint64_t abandoned = 0;           ///< Terminal after max_sends sends without a verdict (callback ran).
  std::uint64_t unscored_verdicts = 0;   ///< Verdicts flagged unscored (the model failed; counted in verdicts too).
  std::uint64_t silence_rewinds = 0;     ///< Resends because a bridge incarnation fell silent for 3 heartbeats.
  std::uint64_t window = 0;              ///< Flow-control window, records.
  std::uint64_t srtt_ns = 0;             ///< Smoothed verdict latency (send to verdict).
  std::uint64_t late_verdicts = 0;       ///< Verdicts for already-expired entries (ignored).
  std::uint64_t in_flight = 0;           ///< accepted - verdicts - expired - abandoned.
  std::uint64_t duplicate_verdicts = 0;  ///< Verdicts for already-verdicted or released seqs.
  std::uint64_t unknown_seq = 0;         ///< Verdicts for seq 0 or never-sent seqs.
  std::uint64_t stale_incarnation = 0;   ///< Verdict records from a superseded incarnation (applied as usual).
  std::uint64_t retransmits = 0;         ///< TXN records sent again (seq sent before).
  std::uint64_t retransmit_rounds = 0;   ///< Rewinds caused by a timer: silence or the safety timer.
  std::uint64_t bridge_incarnations = 0; ///< Distinct bridge incarnations seen.
  std::uint64_t hellos = 0;              ///< Valid HELLO frames received.
  std::uint64_t frames_sent = 0;         ///< TXN frames queued to the offload socket.
  std::uint64_t frames_received = 0;     ///< Frames received on the verdict socket (valid or not).
  std::uint64_t send_stalls = 0;         ///< Sends that would block or failed (frame kept, retried).
  std::uint64_t recv_failures = 0;       ///< Receives that failed (not would-block).
  std::uint64_t alloc_failures = 0;      ///< Pump buffer growths that failed (retried later).
  std::uint64_t ring_depth = 0;          ///< Entries occupying the ring (admitted, not released).
  std::uint64_t outstanding = 0;         ///< Records sent at least once and not yet known terminal (the span a resend covers at most).
  std::array<std::uint64_t, reject_reason_count> rejected_frames{};  ///< By reject_reason.

  /// Sum of the three drop reasons.
  std::uint64_t dropped() const noexcept { return dropped_ring_full + dropped_timeout + dropped_closed; }
  /// The accounting identity; exact at quiescence.
  bool identity_holds() const noexcept {
    return offered == verdicts + expired + abandoned + dropped() + in_flight &&
           accepted == verdicts + expired + abandoned + in_flight;
  }
  /// Rejected frames for one reason.
  std::uint64_t rejected(reject_reason r) const noexcept { return rejected_frames[static_cast<std::size_t>(r)]; }
};

/// Called on the pump thread exactly once per accepted transaction that
/// reaches a terminal state. `v` is null unless `f` is fate::verdict. Must not throw.
using fate_callback =
    std::function<void(const txn& t, std::uint64_t seq, fate f, const verdict* v, ns_t offload_ns)>;

/// One ring entry: the transaction plus what the pump needs to know about it.
struct offload_entry {
  /// Entry state; only the pump reads or writes it after admission.
  enum class state : std::uint8_t { live, verdicted, expired, abandoned };
  txn t;                      ///< The transaction.
  ns_t offload_ns = 0;        ///< Admission time (env clock).
  ns_t sent_ns = 0;           ///< When it was last sent (pump clock).
  std::uint64_t serial = 0;   ///< Serial of the TXN frame that last carried it.
  std::uint32_t sends = 0;    ///< Times sent.
  state st = state::live;     ///< Terminal once not live.
};

}  // namespace aegis
