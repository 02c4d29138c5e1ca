// The frame rules of the simulator's bridge model, with no world, time source
// or socket: what one bridge incarnation does with the bytes it receives and
// which bytes it answers. bridge_model.cpp runs them inside its simulated
// process; sim/bridge_vectors_test.cpp runs them on the shared vectors of
// fixtures/bridge_vectors/, which the Python bridge's BridgeCore produced.
//
// Usage:
//   bridge_rules rules{incarnation, 200'000'000, /*poison_ppm=*/0};
//   rules.set_offload_up(true);                           // the offload channel connected
//   if (rules.tick(now_ns)) send(rules.hello());          // a HELLO due now
//   rules.begin_wakeup();
//   for (bytes : received) if (rules.decode_next(bytes) == nullptr) rules.admit();
//   rules.complete_frames(0);
//   rules.answer(0, rules.records().size(), writer, [&](std::span<const std::byte> raw, ...) { send(raw); });
//
// The rules, as src/aegis_bridge/core.py's BridgeCore, with these intended
// differences (the vectors test checks exactly these and nothing else):
// - One VERDICT frame per TXN frame's share of a chunk; BridgeCore groups a
//   run of frames of one epoch into VERDICT frames of up to 1024 records.
//   The records, their order, their epochs and the incarnation are the same.
// - The table of seqs read has dedupe_slots (2^16) slots, BridgeCore's 2^20:
//   seqs 2^16 apart can make a resend look new here (scored twice, never lost).
// - Scoring is a pure function of the txn id (score()), and a poisoned
//   transaction is answered unscored at once; BridgeCore calls its model and
//   finds the failing records by bisection, with the same verdicts.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "aegis/assert.hpp"
#include "aegis/protocol.hpp"

namespace aegis::sim {

/// One bridge incarnation's frame rules: dedupe, epochs, read_serial, verdict and HELLO frames.
class bridge_rules {
 public:
  /// A TXN frame of the current wake-up: its epoch, its serial, and where its kept records end.
  struct frame_run {
    std::uint64_t epoch;   ///< The frame's epoch.
    std::uint64_t serial;  ///< The frame's serial.
    std::size_t end;       ///< Records of the wake-up up to and including this frame's kept ones.
    std::uint64_t generation;  ///< Epoch changes admitted before it: a later change forgets it.
  };

  /// Slots of the per-epoch table of seqs read (a power of two; a ring
  /// larger than this can only make a resend look new: scored twice, never lost).
  static constexpr std::size_t dedupe_slots = std::size_t{1} << 16;
  /// The bridge's fail-safe decision for records the model failed on (review).
  static constexpr std::uint8_t unscored_decision = 1;

  /// A fresh incarnation: nothing read, no epoch seen, a HELLO due at once.
  bridge_rules(std::uint64_t incarnation, ns_t heartbeat_ns, std::uint32_t poison_ppm);

  /// The offload channel's connection came up or went down (BridgeCore.set_offload_up):
  /// no HELLO while it is down; one due at once when it comes up.
  void set_offload_up(bool up) noexcept;
  /// True while the offload channel is connected.
  bool offload_up() const noexcept { return offload_up_; }
  /// True when a HELLO is due at `now_ns` and the offload channel is up
  /// (then, up or not, the next one is due a heartbeat later).
  bool tick(ns_t now_ns) noexcept;
  /// When the next HELLO is due.
  ns_t next_hello_ns() const noexcept { return next_hello_ns_; }
  /// The HELLO this incarnation sends now: last epoch seen, read serial, heartbeat, answered, duplicates.
  std::vector<std::byte> hello() const;

  /// Starts a wake-up: the previous one's records and frames are forgotten.
  void begin_wakeup() noexcept;
  /// Decodes one received frame. A TXN frame's records are appended and
  /// nullptr returned; otherwise the reason the frame is bad.
  const char* decode_next(std::span<const std::byte> bytes);
  /// The records of the frame decode_next just accepted, all of them (before admit()).
  std::span<const txn_record> last_received() const noexcept;
  /// The epoch of the frame decode_next just accepted.
  std::uint64_t last_epoch_received() const noexcept { return frame_.header.epoch; }
  /// Admits the frame decode_next just accepted: a new epoch forgets what
  /// was read; records already read in this epoch are dropped. Returns how many.
  std::uint64_t admit();
  /// The wake-up's records still to answer, frame after frame.
  std::span<const txn_record> records() const noexcept { return records_; }
  /// The wake-up's TXN frames, in order.
  std::span<const frame_run> frames() const noexcept { return frames_; }
  /// Frames whose kept records all lie below `upto` are read and answered:
  /// read_serial passes them (those of the epoch seen last).
  void complete_frames(std::size_t upto) noexcept;
  /// Frames of the wake-up completed so far.
  std::size_t done_frames() const noexcept { return done_frames_; }

  /// Builds the VERDICT frame answering `records` of `epoch` in `writer`.
  std::span<const std::byte> encode_verdicts(frame_writer& writer, std::uint64_t epoch,
                                             std::span<const txn_record> records) const;

  /// Answers records [lo, hi) of the wake-up: for each TXN frame's share,
  /// builds its VERDICT frame and calls emit(frame bytes, share); then
  /// counts them answered and completes the frames they finish.
  template <class Emit>
  void answer(std::size_t lo, std::size_t hi, frame_writer& writer, Emit&& emit) {
    AEGIS_ASSERT(lo <= hi && hi <= records_.size(), "a chunk lies within the wake-up's records");
    std::size_t at = lo;
    for (std::size_t f = done_frames_; f < frames_.size() && at < hi; ++f) {
      const std::size_t end = std::min(frames_[f].end, hi);
      if (end > at) {
        const std::span<const txn_record> share = std::span<const txn_record>(records_).subspan(at, end - at);
        emit(encode_verdicts(writer, frames_[f].epoch, share), share);
        at = end;
      }
    }
    AEGIS_ASSERT(at == hi, "every record of the chunk was answered");
    answered_ += hi - lo;
    complete_frames(hi);
  }

  /// The highest TXN serial of the last epoch read and answered in full.
  std::uint64_t read_serial() const noexcept { return read_serial_; }
  /// Records skipped as already read (this incarnation).
  std::uint64_t duplicates() const noexcept { return duplicates_; }
  /// Verdict records answered (this incarnation).
  std::uint64_t answered() const noexcept { return answered_; }
  /// The last core epoch seen (0: none).
  std::uint64_t last_epoch() const noexcept { return last_epoch_; }

  /// The verdict the model gives a record: a deterministic function of the
  /// transaction, so two runs of a seed score alike.
  static verdict_record score(const txn_record& r);
  /// The record the bridge answers: score() or, for a poisoned
  /// transaction, an `unscored` verdict with the fail-safe decision.
  static verdict_record verdict_for(const txn_record& r, std::uint32_t poison_ppm);
  /// True when the model fails on this transaction (a poison record): a
  /// deterministic function of the txn id and the share.
  static bool poisoned(std::uint64_t txn_id, std::uint32_t poison_ppm) noexcept;
  /// Decodes `bytes`: appends the records of a TXN frame to `records` and
  /// returns nullptr, or returns why the frame is bad ("unexpected_type" for
  /// a valid non-TXN frame). Allocates only while `records` grows.
  static const char* decode_into(std::span<const std::byte> bytes, decoded_frame& frame,
                                 std::vector<txn_record>& records);

 private:
  std::uint64_t incarnation_;
  ns_t heartbeat_ns_;
  std::uint32_t poison_ppm_;
  ns_t next_hello_ns_ = 0;
  bool offload_up_ = false;  // A HELLO says "send to me": none before the offload channel connects.
  std::vector<std::uint64_t> seen_;  // Seqs read in seen_epoch_, by slot.
  std::uint64_t seen_epoch_ = 0;
  std::uint64_t generation_ = 0;     // Epoch changes admitted so far.
  std::uint64_t last_epoch_ = 0;
  std::uint64_t read_serial_ = 0;
  std::uint64_t answered_ = 0;
  std::uint64_t duplicates_ = 0;
  std::vector<txn_record> records_;  // This wake-up's records, frame after frame.
  std::vector<frame_run> frames_;    // This wake-up's TXN frames, in order.
  std::size_t done_frames_ = 0;
  std::size_t first_ = 0;            // Where the records of the frame decode_next accepted begin.
  decoded_frame frame_;
};

}  // namespace aegis::sim
