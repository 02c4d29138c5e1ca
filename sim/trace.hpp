// The record of a simulated run: every event, folded into an XXH64 hash, and
// optionally kept for a Chrome trace-event JSON file (opens in Perfetto).
//
// Usage:
//   aegis::sim::trace t{/*keep_events=*/true};
//   t.record({.time_ns = 5, .process = 0, .fiber = 1, .kind = event_kind::send, .seq = 7});
//   std::uint64_t h = t.hash();                        // printed as trace_hash=
//   t.write_chrome_json(out, process_names, fiber_names);
//
// The hash covers the numeric fields only (never pointers or wall time), so
// it is identical across builds, optimisation levels and runs of one seed.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include <xxhash.h>

#include "aegis/env.hpp"

namespace aegis::sim {

/// What happened. The numeric values are part of the trace hash: append only.
enum class event_kind : std::uint32_t {
  slice = 1,        ///< A fiber ran from `time_ns` for `detail` ns (one scheduler step).
  timer = 2,        ///< A timer fired (seq: timer sequence number).
  spawn = 3,        ///< A fiber was created (seq: fiber id).
  exit = 4,         ///< A fiber finished.
  block = 5,        ///< A fiber blocked (detail: deadline or -1).
  wake = 6,         ///< A fiber became runnable (seq: fiber id).
  send = 7,         ///< A message was queued (seq: pipe id, detail: bytes).
  send_blocked = 8, ///< A send returned would_block.
  recv = 9,         ///< A message was received (seq: pipe id, detail: bytes).
  lost = 10,        ///< A message was discarded (seq: pipe id, detail: count).
  connect = 11,     ///< A pipe was attached (seq: pipe id).
  disconnect = 12,  ///< A pipe died (seq: pipe id).
  fault = 13,       ///< A fault fired (name set; detail: site-specific).
  kill = 14,        ///< A process died (seq: process id).
  start = 15,       ///< A process (re)started (seq: process id, detail: incarnation).
  stall = 16,       ///< A process froze (detail: until ns).
  resume = 17,      ///< A process thawed.
  offload = 18,     ///< The workload offered a txn (seq: txn id, detail: offload_status).
  fate = 19,        ///< A txn reached its terminal state (seq: txn id, detail: fate).
  verdict_sent = 20,///< The bridge model sent a verdict frame (seq: first seq, detail: count).
  batch_received = 21, ///< The bridge model received a TXN frame (seq: first seq, detail: count).
  hello = 22,       ///< The bridge model sent a HELLO (detail: incarnation).
  failure = 23,     ///< An invariant or liveness check failed (name: reason).
  phase = 24,       ///< A run phase began (name: phase).
  mark = 25,        ///< Free-form marker for tests and tools (name, detail).
};

/// Short name of an event kind, for trace files and failure messages.
const char* to_string(event_kind k) noexcept;

/// One recorded event. `name` must point to storage that outlives the trace
/// (a string literal, or a string interned with `trace::intern`).
struct event {
  ns_t time_ns = 0;             ///< Virtual time.
  std::uint32_t process = 0;    ///< Process id (0 = the world itself).
  std::uint32_t fiber = 0;      ///< Fiber id + 1 (0 = scheduler context).
  event_kind kind = event_kind::mark;
  std::uint64_t seq = 0;        ///< Kind-specific number (txn id, pipe id, ...).
  std::int64_t detail = 0;      ///< Kind-specific value.
  const char* name = nullptr;   ///< Optional label; hashed by content.
};

/// Records events into a running XXH64 and optionally keeps them.
class trace {
 public:
  /// `keep_events` keeps every event for `write_chrome_json` (memory grows with the run).
  explicit trace(bool keep_events);
  ~trace();
  trace(const trace&) = delete;
  trace& operator=(const trace&) = delete;

  /// Adds one event to the hash (and the kept list).
  void record(const event& e) {
    ++count_;
    last_ = e;
    std::array<std::uint64_t, 5> words{static_cast<std::uint64_t>(e.time_ns),
                                       (static_cast<std::uint64_t>(e.process) << 32) | e.fiber,
                                       static_cast<std::uint64_t>(e.kind), e.seq,
                                       static_cast<std::uint64_t>(e.detail)};
    if (e.name != nullptr) words[4] ^= XXH64(e.name, __builtin_strlen(e.name), 0);
    if (buffered_ + words.size() > buffer_.size()) flush();
    for (std::uint64_t w : words) buffer_[buffered_++] = w;
    if (keep_) events_.push_back(e);
  }

  /// The XXH64 of every event so far.
  std::uint64_t hash();
  /// The most recent event (the one that broke an invariant, when checked after each).
  const event& last() const noexcept { return last_; }
  /// Number of events recorded.
  std::uint64_t count() const noexcept { return count_; }
  /// Kept events (empty unless keep_events).
  const std::vector<event>& events() const noexcept { return events_; }
  /// Whether events are kept.
  bool keeps_events() const noexcept { return keep_; }
  /// Copies `s` into storage owned by the trace and returns a stable pointer.
  const char* intern(std::string s);

  /// Writes Chrome trace-event JSON: process and thread names as metadata,
  /// fiber slices as complete ("X") events, faults and failures as global
  /// instant events, everything else as thread-scoped instant events.
  void write_chrome_json(std::ostream& out, const std::vector<std::string>& process_names,
                         const std::vector<std::pair<std::uint32_t, std::string>>& fiber_names) const;

 private:
  void flush();
  bool keep_;
  std::uint64_t count_ = 0;
  event last_{};
  XXH64_state_t* state_;
  std::array<std::uint64_t, 512> buffer_{};
  std::size_t buffered_ = 0;
  std::vector<event> events_;
  std::vector<std::unique_ptr<std::string>> interned_;
};

/// `trace_hash=` spelling: 16 lower-case hex digits.
std::string hash_hex(std::uint64_t h);

}  // namespace aegis::sim
