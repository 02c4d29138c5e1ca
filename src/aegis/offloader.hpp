// Offloader: the reliable offload path from the payment core to the bridge.
//
// Usage:
//   aegis::zmq_env env;
//   aegis::offloader_config cfg;
//   cfg.offload_endpoint = "ipc:///run/aegis/offload.sock";
//   cfg.verdict_endpoint = "ipc:///run/aegis/verdicts.sock";
//   cfg.epoch = random_nonzero();
//   aegis::os_offloader off{env, cfg, [](const aegis::txn& t, std::uint64_t seq, aegis::fate f,
//                                        const aegis::verdict* v, aegis::ns_t offload_ns) { ... }};
//   off.start();
//   if (off.offload(t) != aegis::offload_status::accepted) count_drop();   // any producer thread
//   off.flush();                                // optional, after a burst: a napping pump sends it now
//   ...
//   off.close_admission();                      // shutdown: wakes producers blocked on a full ring
//   off.drain(env.now_ns() + 30'000'000'000);   // producers stopped (joined) first
//   off.stop();                                 // no fate callback runs after this returns
//
// docs/EMBEDDING.md is the user's guide: threads, the callback's rules,
// block versus drop, shutdown order, metrics.
//
// How it is reliable. ZeroMQ never acknowledges and drops what it had queued
// for a bridge that dies, so the verdict is the acknowledgement: every
// accepted transaction stays in the ring (seq = ring position + 1) until it
// is terminal (verdicted, or expired when a TTL is set) and every entry before
// it is too; only then is it released. One pump thread (spawned through the
// environment) owns everything after admission:
//
//   loop:
//     receive VERDICT/HELLO frames; apply the core rules of docs/PROTOCOL.md
//     pull newly published entries from the ring (the ring's read cursor only
//       ever moves forward: it marks "seen by the pump"; resends use the
//       pump's own send cursor over [release, read), so no ring rewind)
//     expire live entries older than ttl_ns
//     release the contiguous terminal prefix (frees ring space for producers)
//     new incarnation (after the first), or no progress of the oldest
//       unverdicted sent entry for retransmit_timeout: move the send cursor
//       back to the first live entry, so every unverdicted entry is resent in
//       seq order
//     send frames of up to batch_max live entries; a send that would block or
//       fails keeps the cursor where it was, so nothing is skipped
//     idle: env.wait(verdict socket, doorbell, next timer)
//
// Producers ring the doorbell only when the pump announced it is about to
// sleep (a Dekker pair of fences), so the hot path is a ring push, a fence
// and a load. Batches form from what is queued; the pump never waits to fill
// one.
//
// Everything the pump does to the world goes through Env (clock, threads,
// parking, sockets, fault sites), so the simulator (sim/) runs this exact
// code in virtual time. Nothing here names a thread, a clock or ZeroMQ.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "aegis/assert.hpp"
#include "aegis/env.hpp"
#include "aegis/fault.hpp"
#include "aegis/mutant.hpp"
#include "aegis/protocol.hpp"
#include "aegis/ring_buffer.hpp"
#include "aegis/socket_layer.hpp"
#include "aegis/sometimes.hpp"

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

template <class Env, class Producers = multi_producer>
class offloader {
  using u64_atomic = typename Env::template atomic<std::uint64_t>;
  using u32_atomic = typename Env::template atomic<std::uint32_t>;
  using socket_t = typename Env::socket;
  using doorbell_t = typename Env::doorbell;
  using thread_t = decltype(std::declval<Env&>().spawn(std::string_view{}, std::function<void()>{}));
  using ring_t = ring_buffer<offload_entry, Env, Producers>;

 public:
  /// How long a "pump.slow" fault stalls one pump iteration.
  static constexpr ns_t slow_iteration_ns = 20'000'000;
  /// Longest idle sleep; bounds the cost of a missed wake-up to this.
  static constexpr ns_t idle_wait_ns = 100'000'000;
  /// First and largest back-off after a send that would block or failed.
  static constexpr ns_t send_backoff_min_ns = 1'000'000;
  static constexpr ns_t send_backoff_max_ns = 16'000'000;
  /// Idle naps in a row before the pump sleeps deeply (doorbell armed).
  static constexpr int naps_before_deep_sleep = 20;
  /// Frames sent or received per pump iteration before looking at the rest.
  static constexpr int frames_per_iteration = 16;
  /// Incarnations remembered to tell a superseded one from a new one.
  static constexpr std::size_t remembered_incarnations = 32;
  /// Expired seq ranges remembered to tell a late verdict from a duplicate.
  static constexpr std::size_t remembered_expired_ranges = 4096;
  /// A bridge is presumed dead after this many of its heartbeat intervals without a frame from it.
  static constexpr ns_t heartbeats_to_dead = 3;
  /// Heartbeat interval assumed until a HELLO states one.
  static constexpr ns_t default_heartbeat_ns = 200'000'000;
  /// Longest backed-off timer.
  static constexpr ns_t timer_max_ns = 60'000'000'000;
  /// "No serial limit" for a resend pass.
  static constexpr std::uint64_t no_serial = ~std::uint64_t{0};
  /// Flow-control window at the start (records); slow start doubles it per round trip.
  static constexpr std::uint64_t initial_window = 64;

  /// Binds both sockets (throws std::system_error on failure, std::invalid_argument on bad config).
  offloader(Env& env, offloader_config cfg, fate_callback on_fate)
      : env_(env),
        cfg_(checked(std::move(cfg))),
        on_fate_(std::move(on_fate)),
        ring_(env, cfg_.ring_capacity, cfg_.mode),
        offload_sock_(env.make_socket(socket_kind::push, cfg_.offload_socket)),
        verdict_sock_(env.make_socket(socket_kind::pull, cfg_.verdict_socket)),
        bell_(env.make_doorbell()),
        stop_(env, 0),
        sleeping_(env, 0),
        drain_waiting_(env, 0),
        progress_word_(env, 0),
        verdicts_(env, 0),
        expired_(env, 0),
        abandoned_(env, 0),
        unscored_(env, 0),
        silence_rewinds_(env, 0),
        window_gauge_(env, 0),
        srtt_gauge_(env, 0),
        late_verdicts_(env, 0),
        duplicate_verdicts_(env, 0),
        unknown_seq_(env, 0),
        stale_incarnation_(env, 0),
        retransmits_(env, 0),
        retransmit_rounds_(env, 0),
        bridge_incarnations_(env, 0),
        hellos_(env, 0),
        frames_sent_(env, 0),
        frames_received_(env, 0),
        send_stalls_(env, 0),
        recv_failures_(env, 0),
        alloc_failures_(env, 0),
        outstanding_(env, 0),
        rejected_(make_atomics(env, std::make_index_sequence<reject_reason_count>{})) {
    AEGIS_ASSERT(static_cast<bool>(on_fate_), "a fate callback is required: every accepted txn reports its fate");
    offload_sock_.bind(cfg_.offload_endpoint);
    verdict_sock_.bind(cfg_.verdict_endpoint);
  }

  offloader(const offloader&) = delete;
  offloader& operator=(const offloader&) = delete;

  /// Stops the pump if it still runs.
  ~offloader() { stop(); }

  /// Admits `t` (any producer thread). Hot path: one ring push, a fence, one
  /// load; the doorbell's system call happens only when the pump sleeps.
  offload_status offload(const txn& t) {
    const ns_t now = env_.now_ns();
    const ns_t deadline = deadline_after(now, cfg_.block_deadline_ns);
    switch (ring_.push(offload_entry{t, now, 0, 0, 0, offload_entry::state::live}, deadline)) {
      case push_status::accepted:
        wake_pump();
        return offload_status::accepted;
      case push_status::dropped_full: return offload_status::dropped_ring_full;
      case push_status::timed_out: return offload_status::dropped_timeout;
      case push_status::closed: return offload_status::dropped_closed;
    }
    AEGIS_ASSERT(false, "push_status has four values");
    return offload_status::dropped_closed;
  }

  /// Optional, after a burst of offload() calls (any producer thread): if
  /// the pump is napping, wake it now instead of at the end of its nap, so
  /// the burst leaves at once. Costs one doorbell write(2) when the pump
  /// naps, nothing when it is busy. A hint, not a fence: a flush that races
  /// with the pump going to nap may be missed, and then the entries leave
  /// when the nap ends (`nap_ns`), as they do without flush().
  void flush() noexcept {
    if (napping_.load(std::memory_order_relaxed) && napping_.exchange(false, std::memory_order_relaxed)) bell_.ring();
  }

  /// Spawns the pump ("aegis-pump") through the environment. Call once.
  void start() {
    AEGIS_ASSERT(!pump_thread_.has_value(), "start() is called once");
    pump_thread_.emplace(env_.spawn("aegis-pump", [this] { pump(); }));
  }

  /// Waits (parking through Env) until in_flight == 0 or `deadline_ns`
  /// (absolute, env clock). Producers must have stopped. True when drained.
  bool drain(ns_t deadline_ns) {
    drain_waiting_.store(1, std::memory_order_seq_cst);
    bool drained = false;
    for (;;) {
      const std::uint32_t seen = progress_word_.load(std::memory_order_acquire);
      if (counters().in_flight == 0) {
        drained = true;
        break;
      }
      const ns_t now = env_.now_ns();
      if (now >= deadline_ns) break;
      // Bounded park: the pump's notification is not fenced against our check.
      env_.park(progress_word_, seen, std::min(deadline_ns, deadline_after(now, 10'000'000)));
    }
    drain_waiting_.store(0, std::memory_order_relaxed);
    return drained;
  }

  /// Starts a shutdown without stopping the pump (any thread): producers
  /// blocked in a block-mode offload() return `dropped_closed` now, and later
  /// offers that find the ring full return it instead of waiting. Offers
  /// that find space are still accepted, so stop producers with a flag of
  /// your own first. The pump keeps sending and applying verdicts, so
  /// drain() still collects what is in flight. Idempotent.
  void close_admission() noexcept { ring_.close(); }

  /// Stops and joins the pump; closes the ring so blocked producers return
  /// `dropped_closed`. Entries still in flight stay counted as in_flight.
  /// Idempotent.
  void stop() {
    stop_.store(1, std::memory_order_seq_cst);
    ring_.close();
    bell_.ring();
    if (pump_thread_.has_value()) {
      pump_thread_->join();
      pump_thread_.reset();
    }
  }

  /// Counter snapshot; lock-free, callable from any thread.
  offloader_counters counters() const {
    offloader_counters c;
    c.verdicts = verdicts_.load(std::memory_order_acquire);
    c.expired = expired_.load(std::memory_order_acquire);
    c.abandoned = abandoned_.load(std::memory_order_acquire);
    const ring_counters rc = ring_.counters();
    c.offered = rc.offered;
    c.accepted = rc.accepted;
    c.dropped_ring_full = rc.dropped_full;
    c.dropped_timeout = rc.timed_out;
    c.dropped_closed = rc.closed;
    c.ring_depth = rc.unreleased;
    // The ring counts an admission just after publishing the entry, so the
    // pump can verdict an entry before its producer has counted it: while
    // producers run, terminal states may briefly outnumber admissions. Clamp;
    // the identity is exact once producers are quiet.
    const std::uint64_t done = c.verdicts + c.expired + c.abandoned;
    c.in_flight = c.accepted >= done ? c.accepted - done : 0;
    c.late_verdicts = late_verdicts_.load(std::memory_order_relaxed);
    c.duplicate_verdicts = duplicate_verdicts_.load(std::memory_order_relaxed);
    c.unknown_seq = unknown_seq_.load(std::memory_order_relaxed);
    c.stale_incarnation = stale_incarnation_.load(std::memory_order_relaxed);
    c.retransmits = retransmits_.load(std::memory_order_relaxed);
    c.retransmit_rounds = retransmit_rounds_.load(std::memory_order_relaxed);
    c.bridge_incarnations = bridge_incarnations_.load(std::memory_order_relaxed);
    c.hellos = hellos_.load(std::memory_order_relaxed);
    c.frames_sent = frames_sent_.load(std::memory_order_relaxed);
    c.frames_received = frames_received_.load(std::memory_order_relaxed);
    c.send_stalls = send_stalls_.load(std::memory_order_relaxed);
    c.recv_failures = recv_failures_.load(std::memory_order_relaxed);
    c.alloc_failures = alloc_failures_.load(std::memory_order_relaxed);
    c.outstanding = outstanding_.load(std::memory_order_relaxed);
    c.unscored_verdicts = unscored_.load(std::memory_order_relaxed);
    c.silence_rewinds = silence_rewinds_.load(std::memory_order_relaxed);
    c.window = window_gauge_.load(std::memory_order_relaxed);
    c.srtt_ns = srtt_gauge_.load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < reject_reason_count; ++i) c.rejected_frames[i] = rejected_[i].load(std::memory_order_relaxed);
    return c;
  }

  /// The ring (tests and simulator invariants; consumer calls are the pump's).
  auto& ring() noexcept { return ring_; }
  /// The configuration in force.
  const offloader_config& config() const noexcept { return cfg_; }

 private:
  using st = offload_entry::state;

  static offloader_config checked(offloader_config c) {
    if (c.epoch == 0) throw std::invalid_argument("offloader epoch must be non-zero");
    if (c.batch_max == 0 || c.batch_max > max_records) throw std::invalid_argument("batch_max must be in 1..1024");
    if (c.send_window < c.batch_max) throw std::invalid_argument("send_window must be at least batch_max");
    if (c.nap_ns <= 0) throw std::invalid_argument("nap_ns must be positive");
    if (c.retransmit_timeout_ns <= 0) throw std::invalid_argument("retransmit timeout must be positive");
    if (c.ttl_ns < 0) throw std::invalid_argument("ttl must be >= 0");
    if (c.target_latency_ns <= 0) throw std::invalid_argument("target latency must be positive");
    if (c.max_sends < 1) throw std::invalid_argument("max_sends must be at least 1");
    if (c.verdict_socket.max_msg_bytes < 0) c.verdict_socket.max_msg_bytes = static_cast<std::int64_t>(max_frame_bytes);
    return c;
  }

  template <std::size_t... I>
  static std::array<u64_atomic, sizeof...(I)> make_atomics(Env& env, std::index_sequence<I...>) {
    return {{u64_atomic(env, (static_cast<void>(I), std::uint64_t{0}))...}};
  }

  // Single writer (the pump): a load and a store, no read-modify-write.
  static void bump(u64_atomic& c, std::uint64_t n = 1) noexcept {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_release);
  }

  void wake_pump() noexcept {
    // Dekker pair with the pump's sleep: we published the entry, then look at
    // `sleeping_`; the pump announced sleep, then looks at the ring.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (sleeping_.load(std::memory_order_relaxed) != 0 && sleeping_.exchange(0, std::memory_order_relaxed) != 0) {
      bell_.ring();
    }
  }

  // The pump's view of time; the "clock.stall" fault freezes it for an iteration.
  ns_t pump_now() noexcept {
    if (AEGIS_FAULT(env_, "clock.stall")) return last_now_;
    const ns_t now = env_.now_ns();
    AEGIS_ASSERT(now >= last_now_, "the environment clock is monotonic");
    last_now_ = now;
    return now;
  }

  void pump() {
    last_now_ = env_.now_ns();
    last_progress_ns_ = last_now_;
    window_ = std::min<std::uint64_t>(cfg_.send_window, initial_window);
    while (stop_.load(std::memory_order_acquire) == 0) {
      if (AEGIS_FAULT(env_, "pump.slow")) env_.sleep_until_ns(deadline_after(env_.now_ns(), slow_iteration_ns));
      const ns_t now = pump_now();
      const std::uint64_t terminal_before = terminal_count_;
      bool busy = receive(now);
      // Pulling alone is not work: new entries are sent below unless a
      // back-off or the send window holds them, and then spinning would not
      // help (the pump waits for the timer or for verdicts instead).
      pull_published();
      if (cfg_.ttl_ns > 0) expire(now);
      release_terminal_prefix(now);
      maybe_retransmit(now);
      busy |= send_some(now);
      if (terminal_count_ != terminal_before) notify_progress();
      check_invariants();
      publish_outstanding();
      if (busy) {
        idle_naps_ = 0;
        continue;
      }
      idle(now);
    }
  }

  // ---------------------------------------------------------------- receive

  bool receive(ns_t now) {
    bool got = false;
    for (int i = 0; i < frames_per_iteration; ++i) {
      if (AEGIS_FAULT(env_, "transport.recv")) {
        bump(recv_failures_);
        break;
      }
      const recv_result r = verdict_sock_.recv(rx_);
      if (r == recv_result::would_block) break;
      if (r == recv_result::failed) {
        bump(recv_failures_);
        break;
      }
      got = true;
      bump(frames_received_);
      handle_frame(now);
    }
    return got;
  }

  void reject(reject_reason r, std::uint64_t n = 1) noexcept { bump(rejected_[static_cast<std::size_t>(r)], n); }

  void handle_frame(ns_t now) {
    const decoded_frame f = decode_frame(rx_);
    if (!f.ok()) return reject(f.reject);
    switch (f.header.type) {
      case frame_type::txn: return reject(reject_reason::unexpected_type);
      case frame_type::hello: {
        bump(hellos_);
        const hello_record h = f.hello();
        if (h.heartbeat_ms != 0) {
          dead_after_ns_ = heartbeats_to_dead * std::min<ns_t>(static_cast<ns_t>(h.heartbeat_ms) * 1'000'000, 10'000'000'000);
        }
        // HELLO's epoch is the last one the bridge saw: only its read
        // serial for our epoch means anything here.
        if (f.header.epoch == cfg_.epoch && h.read_serial > read_serial_) bridge_read(h.read_serial, now);
        if (f.header.incarnation != incarnation_ && !seen_incarnation(f.header.incarnation)) {
          new_incarnation(f.header.incarnation, now);
          if (pending_inc_ != 0) pending_hellos_ = 1;  // The announcing HELLO.
        } else if (f.header.incarnation == pending_inc_) {
          ++pending_hellos_;
          if (f.header.epoch == cfg_.epoch && h.read_serial != 0) {
            resolve_new_incarnation(h.read_serial + 1);
          } else if (pending_hellos_ >= 2 || now - pending_since_ns_ >= dead_after_ns_ / heartbeats_to_dead) {
            // A heartbeat and nothing read: nothing sent waits in its queue.
            // Its second HELLO is a heartbeat whenever the first arrived: the
            // first can be delivered late (when the connection completes), so
            // the next one may come a little under one interval after it.
            resolve_new_incarnation(no_serial);
          }
        }
        heard(f.header.incarnation, now);
        if (f.header.epoch == cfg_.epoch) bridge_read_own(f.header.incarnation, h.read_serial);
        return;
      }
      case frame_type::verdict: break;
    }
    if (f.header.epoch != cfg_.epoch) return reject(reject_reason::wrong_epoch);
    if (f.header.incarnation != incarnation_) {
      if (seen_incarnation(f.header.incarnation)) {
        // A superseded incarnation's verdicts are applied like any other: a
        // seq names one transaction within the epoch and the txn_id is
        // checked, so they are as good as the current bridge's. Ignoring
        // them lost liveness for good when a dead bridge's last frame was
        // read after its successor's HELLO: the dead one became current and
        // every verdict of the live one was dropped (chaos seed
        // 259246903472279). It also lets two bridges share the work.
        AEGIS_SOMETIMES(env_, "stale_incarnation_verdict_applied");
        bump(stale_incarnation_, f.header.count);
      } else {
        // A verdict frame from an incarnation never announced is its announcement.
        new_incarnation(f.header.incarnation, now);
      }
    }
    heard(f.header.incarnation, now);
    sampled_ = false;
    for (std::size_t i = 0; i < f.header.count; ++i) apply(f.verdict_at(i), f.header.incarnation, now);
  }

  // The rewind for a new incarnation: resend every unverdicted entry sent
  // in a frame below `below_serial` (the rest is in the new bridge's queue).
  // Never one sent after the incarnation was announced: that frame went to a
  // live pipe (the new bridge's, or a second bridge's), not to the dead one.
  // The rare exception, a dead pipe not yet torn down, is the safety timer's.
  void resolve_new_incarnation(std::uint64_t below_serial) noexcept {
    AEGIS_ASSERT(pending_inc_ != 0, "a new incarnation is pending");
    AEGIS_ASSERT(announced_serial_ <= serial_, "the announcement came at a serial already sent");
    pending_inc_ = 0;
    rewind_sends(pending_since_ns_);
    resend_below_serial_ = std::min(below_serial, announced_serial_ + 1);
    if (send_pos_ < sent_high_) AEGIS_SOMETIMES(env_, "rewind_after_restart");
    note_resend_span();
    send_blocked_until_ns_ = 0;
    send_backoff_ns_ = 0;
  }

  // A valid frame from a remembered incarnation: it is alive (again).
  void heard(std::uint64_t inc, ns_t now) noexcept {
    const std::size_t n = std::min(incarnations_seen_, remembered_incarnations);
    for (std::size_t i = 0; i < n; ++i) {
      if (incarnations_[i] != inc) continue;
      if (!inc_live_[i]) ++live_incarnations_;
      inc_live_[i] = true;
      inc_heard_ns_[i] = now;
      AEGIS_ASSERT(live_incarnations_ <= n, "no more live incarnations than remembered ones");
      return;
    }
  }

  // A HELLO says a bridge has read and answered every TXN frame up to
  // `serial`. If it had not yet read the frame holding the oldest
  // unverdicted transaction, it is working its way towards it: progress.
  void bridge_read(std::uint64_t serial, ns_t now) noexcept {
    AEGIS_ASSERT(serial > read_serial_, "read serials only grow");
    if (serial > serial_) return;  // Not a serial we sent: ignore rather than trust.
    if (first_live_ < sent_high_ && ring_.at(first_live_).serial > read_serial_) last_progress_ns_ = now;
    read_serial_ = serial;
  }

  // A HELLO of this epoch: incarnation `inc` has read and answered its pipe
  // up to frame `serial`. A bridge reads its pipe in serial order and sends
  // its verdicts ahead of the HELLO, so once every live incarnation has read
  // past a frame, an entry still unverdicted in it went to a pipe no live
  // incarnation holds: a bridge that died before it was ever announced (a
  // second bridge, or a first one the core never heard). Those entries, and
  // only those, are resent at once instead of at the safety timer. A frozen
  // or slow bridge has not read past its frames, so it is never resent to
  // this way; a resent entry gets a new serial, so it is resent again only
  // if every live bridge reads past that frame too (max_sends bounds it).
  void bridge_read_own(std::uint64_t inc, std::uint64_t serial) noexcept {
    const std::size_t n = std::min(incarnations_seen_, remembered_incarnations);
    std::uint64_t min_read = no_serial;
    for (std::size_t i = 0; i < n; ++i) {
      if (incarnations_[i] == inc && serial <= serial_) inc_read_serial_[i] = std::max(inc_read_serial_[i], serial);
      if (inc_live_[i]) min_read = std::min(min_read, inc_read_serial_[i]);
    }
    if (pending_inc_ != 0 || live_incarnations_ == 0 || min_read == 0 || !outstanding()) return;
    if (AEGIS_MUTANT(env_, "no_rewind")) return;
    AEGIS_ASSERT(min_read <= serial_, "no live incarnation read a frame never sent");
    // Verdicts of this receive pass may not be released yet: look past them.
    std::uint64_t p = first_live_;
    while (p < sent_high_ && (ring_.at(p).st != st::live || ring_.at(p).serial > min_read)) ++p;
    if (p == sent_high_) return;
    const bool pass_in_progress = send_pos_ < sent_high_;
    rewind_sends(0);  // Covers only frames every live bridge read: no silent bridge's.
    resend_below_serial_ = pass_in_progress ? std::max(resend_below_serial_, min_read + 1) : min_read + 1;
    note_resend_span();
    send_blocked_until_ns_ = 0;
  }

  // RFC 6298 over verdict latency (send to verdict, Karn: only records
  // sent once), and delay-based AIMD of the flow-control window.
  void latency_sample(ns_t sample, ns_t now) noexcept {
    AEGIS_ASSERT(sample >= 0, "a verdict arrives after its send");
    if (srtt_ns_ == 0) {
      srtt_ns_ = std::max<ns_t>(sample, 1);
      rttvar_ns_ = sample / 2;
    } else {
      const ns_t err = sample > srtt_ns_ ? sample - srtt_ns_ : srtt_ns_ - sample;
      rttvar_ns_ = (3 * rttvar_ns_ + err) / 4;
      srtt_ns_ = std::max<ns_t>((7 * srtt_ns_ + sample) / 8, 1);
    }
    // At most one change per round trip: the samples of one round all
    // report the same queue. Slow start doubles the window per round trip
    // until a sample exceeds the target; then it shrinks by a quarter per
    // round trip above the target and grows by one full frame per round
    // trip below half of it, while the window is what held sends back.
    if (now - last_window_change_ns_ < srtt_ns_) return;
    if (sample > cfg_.target_latency_ns) {
      slow_start_ = false;
      window_ = std::max<std::uint64_t>(1, window_ * 3 / 4);
      last_window_change_ns_ = now;
    } else if (sample < cfg_.target_latency_ns / 2 && window_limited_) {
      const std::uint64_t step = slow_start_ ? window_ : cfg_.batch_max;
      window_ = std::min<std::uint64_t>(cfg_.send_window, window_ + step);
      window_limited_ = false;
      last_window_change_ns_ = now;
    }
    AEGIS_ASSERT(window_ >= 1 && window_ <= cfg_.send_window, "the window stays within 1..send_window");
  }

  bool seen_incarnation(std::uint64_t inc) const noexcept {
    const std::size_t n = std::min(incarnations_seen_, remembered_incarnations);
    for (std::size_t i = 0; i < n; ++i) {
      if (incarnations_[i] == inc) return true;
    }
    return false;
  }

  void new_incarnation(std::uint64_t inc, ns_t now) {
    AEGIS_ASSERT(inc != incarnation_, "a new incarnation differs from the current one");
    const bool first = incarnations_seen_ == 0;
    const std::size_t slot = incarnations_seen_ % remembered_incarnations;
    if (incarnations_seen_ >= remembered_incarnations && inc_live_[slot]) --live_incarnations_;  // Forgotten.
    incarnations_[slot] = inc;
    inc_live_[slot] = false;  // heard() marks it live.
    inc_read_serial_[slot] = 0;
    ++incarnations_seen_;
    incarnation_ = inc;
    bump(bridge_incarnations_);
    // A new bridge process has none of what the old one held, but it may
    // already hold frames sent since it connected, before this HELLO. Its
    // next HELLO that read something of ours tells which (read_serial):
    // frames up to there were answered, so what is unverdicted at or below
    // it was the dead bridge's, and what is above it waits in the new
    // bridge's queue. The resend waits for that HELLO, or one heartbeat
    // (resolve_new_incarnation). The very first incarnation is the
    // exception: a bridge that was already running when the core started has
    // most likely received everything sent before its first heartbeat
    // arrived; if that data went to a bridge that died unannounced, the
    // oldest entry makes no progress and the safety timer resends it.
    if (!first && !AEGIS_MUTANT(env_, "no_rewind")) {
      pending_inc_ = inc;
      pending_since_ns_ = now;
      pending_hellos_ = 0;
      announced_serial_ = serial_;
    }
    send_blocked_until_ns_ = 0;
    send_backoff_ns_ = 0;
    last_progress_ns_ = now;
  }

  void apply(const verdict_record& v, std::uint64_t incarnation, ns_t now) {
    // A record whose fields are out of their ranges is never applied.
    if (const auto why = check_verdict_record(v)) {
      reject(*why);
      return;
    }
    if (v.seq == 0 || v.seq > sent_high_) {
      bump(unknown_seq_);
      return;
    }
    const std::uint64_t p = v.seq - 1;
    if (p < release_pos_) {
      const bool late = was_expired(p);
      if (late) AEGIS_SOMETIMES(env_, "ttl_expiry_racing_verdict");
      bump(late ? late_verdicts_ : duplicate_verdicts_);
      return;
    }
    AEGIS_ASSERT(p < read_pos_, "every sent position has been read from the ring");
    offload_entry& e = ring_.at(p);
    if (e.st == st::verdicted && !AEGIS_MUTANT(env_, "accept_duplicates")) {
      AEGIS_SOMETIMES(env_, "duplicate_verdict_ignored");
      bump(duplicate_verdicts_);
      return;
    }
    if (e.st == st::expired || e.st == st::abandoned) {
      if (e.st == st::expired) AEGIS_SOMETIMES(env_, "ttl_expiry_racing_verdict");
      bump(late_verdicts_);
      return;
    }
    if (e.t.txn_id != v.txn_id) {
      reject(reject_reason::forged);
      return;
    }
    e.st = st::verdicted;
    if (!sampled_ && e.sends == 1) {
      sampled_ = true;
      latency_sample(now - e.sent_ns, now);
    }
    const bool unscored = (v.flags & verdict_flag_unscored) != 0;
    if (unscored) bump(unscored_);
    const verdict out{v.seq, v.txn_id, v.score, v.decision, incarnation, now, unscored};
    on_fate_(e.t, v.seq, fate::verdict, &out, e.offload_ns);
    // Counted after the callback: drain() returning means every callback finished.
    bump(verdicts_);
    ++terminal_count_;
  }

  bool was_expired(std::uint64_t p) const noexcept {
    // Ranges are disjoint and sorted by start.
    auto it = std::upper_bound(expired_ranges_.begin(), expired_ranges_.end(), p,
                               [](std::uint64_t x, const std::pair<std::uint64_t, std::uint64_t>& r) { return x < r.first; });
    if (it == expired_ranges_.begin()) return false;
    --it;
    return p < it->second;
  }

  // ---------------------------------------------------------------- ring side

  std::size_t pull_published() {
    const std::size_t n = ring_.read(ring_.capacity(), [](std::uint64_t, offload_entry&) {});
    read_pos_ += n;
    AEGIS_ASSERT(read_pos_ == ring_.read_position(), "the pump is the ring's only consumer");
    return n;
  }

  void expire(ns_t now) {
    for (std::uint64_t p = first_live_; p < read_pos_; ++p) {
      offload_entry& e = ring_.at(p);
      if (e.st != st::live) continue;
      // Entries are admitted in nearly position order; stopping at the first
      // young one may expire a few later ones one iteration late, never early.
      if (now - e.offload_ns < cfg_.ttl_ns) break;
      e.st = st::expired;
      remember_expired(p);
      on_fate_(e.t, p + 1, fate::expired, nullptr, e.offload_ns);
      bump(expired_);
      ++terminal_count_;
    }
  }

  void remember_expired(std::uint64_t p) {
    try {
      if (!expired_ranges_.empty() && expired_ranges_.back().second == p) {
        expired_ranges_.back().second = p + 1;
        return;
      }
      if (!expired_ranges_.empty() && expired_ranges_.back().second > p) return;  // Out of order: rare, tolerated.
      if (AEGIS_FAULT(env_, "transport.alloc")) throw std::bad_alloc();
      expired_ranges_.emplace_back(p, p + 1);
      if (expired_ranges_.size() > remembered_expired_ranges) expired_ranges_.pop_front();
    } catch (const std::bad_alloc&) {
      // Only the late/duplicate distinction is lost for this seq.
      bump(alloc_failures_);
    }
  }

  // Progress is the oldest unverdicted entry reaching a terminal state: a
  // bridge that verdicts newer entries while an older frame was lost (a dead
  // pipe, an unannounced restart) is not making progress.
  void release_terminal_prefix(ns_t now) noexcept {
    const std::uint64_t before = first_live_;
    while (first_live_ < read_pos_ &&
           (ring_.at(first_live_).st != st::live || (AEGIS_MUTANT(env_, "release_on_send") && first_live_ < sent_high_))) {
      ++first_live_;
    }
    if (first_live_ != before) {
      last_progress_ns_ = now;
      safety_backoff_ = 0;
    }
    if (first_live_ > release_pos_) {
      ring_.release(first_live_);
      release_pos_ = first_live_;
    }
    if (send_pos_ < release_pos_) send_pos_ = release_pos_;
  }

  // ---------------------------------------------------------------- send side

  bool outstanding() const noexcept { return first_live_ < sent_high_; }

  // Flow control. The send cursor may run at most send_window records ahead
  // of the oldest unverdicted entry, and a frame goes out only if it fits
  // whole: with a backlog, frames are full (the per-frame costs of every
  // stage are paid once per batch_max records) and the backlog waits in the
  // ring instead of in socket queues. Without a backlog nothing waits: a
  // short queue is sent as it is. After a rewind the cursor is back at the
  // oldest unverdicted entry, so resends are never held back; a bridge that
  // stops answering is handled by the retransmit timeout as before.
  bool window_closed() const noexcept {
    const std::uint64_t ahead = send_pos_ - first_live_;
    const std::uint64_t next = std::min<std::uint64_t>(frame_cap(), read_pos_ - send_pos_);
    return ahead != 0 && ahead + next > window_;
  }

  // Records one frame may carry: batch_max, or less while the window is smaller.
  std::size_t frame_cap() const noexcept { return static_cast<std::size_t>(std::min<std::uint64_t>(cfg_.batch_max, window_)); }

  // Moves the send cursor back to the oldest unverdicted entry; the resend
  // covers every frame sent before `covered_until`.
  void rewind_sends(ns_t covered_until) noexcept {
    AEGIS_ASSERT(covered_until <= last_now_, "a rewind covers no frame sent after it");
    send_pos_ = first_live_ > release_pos_ ? first_live_ : release_pos_;
    covered_until_ns_ = std::max(covered_until_ns_, covered_until);
  }

  // Coverage only: a resend span that crosses the ring's wrap-around (slot
  // indices restart at 0 inside it). Compiles to nothing outside the simulator.
  void note_resend_span() noexcept {
    const std::uint64_t cap = ring_.capacity();
    if (send_pos_ < sent_high_ && send_pos_ / cap != (sent_high_ - 1) / cap) AEGIS_SOMETIMES(env_, "rewind_across_wrap");
  }

  // Loss recovery by timer, for what a new incarnation does not cover.
  // Over ipc:// a frame is lost only with the process that held it, so a
  // bridge that is heard from (HELLOs, verdicts) and reads new frames has
  // lost nothing, however slow it is, and is never resent to.
  // - Silence: a live incarnation not heard for its dead interval (3
  //   heartbeats) is presumed dead: it died with no successor yet (a second
  //   bridge alongside lives on), or it is frozen. What is outstanding is
  //   resent once; the incarnation counts as dead until it is heard again.
  // - Safety timer: the oldest sent transaction made no progress for
  //   max(retransmit_timeout, 2 dead intervals, SRTT + 4 RTTVAR) while the
  //   bridge is heard (a frame lost some other way, or a bridge that died
  //   unannounced before its successor became the first incarnation seen).
  //   Doubles per expiry until progress.
  ns_t safety_timeout() const noexcept {
    const ns_t base = std::max({cfg_.retransmit_timeout_ns, 2 * dead_after_ns_, srtt_ns_ + 4 * rttvar_ns_});
    return std::min(timer_max_ns, base << std::min(safety_backoff_, 16));
  }

  // The earliest time a live incarnation falls silent (no_deadline if none is live).
  ns_t next_silence_ns() const noexcept {
    if (live_incarnations_ == 0) return no_deadline;
    ns_t d = no_deadline;
    const std::size_t n = std::min(incarnations_seen_, remembered_incarnations);
    for (std::size_t i = 0; i < n; ++i) {
      if (inc_live_[i]) d = std::min(d, deadline_after(inc_heard_ns_[i], dead_after_ns_));
    }
    return d;
  }

  // Marks live incarnations silent for their dead interval as dead; true if
  // one died that may hold what no rewind since covered: a rewind covering
  // every frame sent until after it was last heard (its successor's
  // announcement, usually) already resent all it held. A rewind for a
  // second bridge's arrival covers only what was sent before that arrival,
  // so a bridge frozen since then still counts as holding its frames.
  bool incarnations_died(ns_t now) noexcept {
    if (live_incarnations_ == 0 || now < next_silence_ns()) return false;
    bool died = false;
    const std::size_t n = std::min(incarnations_seen_, remembered_incarnations);
    for (std::size_t i = 0; i < n; ++i) {
      if (inc_live_[i] && now - inc_heard_ns_[i] >= dead_after_ns_) {
        inc_live_[i] = false;
        --live_incarnations_;
        if (covered_until_ns_ <= inc_heard_ns_[i]) died = true;
      }
    }
    return died;
  }

  void maybe_retransmit(ns_t now) noexcept {
    // A new incarnation that gave no informative HELLO within two heartbeats
    // (it died too, or cannot reach us): resend everything.
    if (pending_inc_ != 0 && now - pending_since_ns_ >= 2 * dead_after_ns_ / heartbeats_to_dead) {
      resolve_new_incarnation(no_serial);
      last_progress_ns_ = now;
    }
    const bool died = incarnations_died(now);
    if (!outstanding()) return;
    if (AEGIS_MUTANT(env_, "ignore_retransmit_timeout")) return;
    if (died && !AEGIS_MUTANT(env_, "no_rewind")) {
      AEGIS_SOMETIMES(env_, "retransmit_timeout_fired");
      bump(silence_rewinds_);
    } else if (now - last_progress_ns_ >= safety_timeout()) {
      AEGIS_SOMETIMES(env_, "retransmit_timeout_fired");
      ++safety_backoff_;
    } else {
      return;
    }
    bump(retransmit_rounds_);
    pending_inc_ = 0;
    rewind_sends(now);
    resend_below_serial_ = no_serial;
    note_resend_span();
    send_blocked_until_ns_ = 0;
    last_progress_ns_ = now;
  }

  // Grows the frame buffer geometrically up to batch_max records. The
  // "transport.alloc" fault makes a growth fail as a real bad_alloc would.
  void grow_frame(std::size_t records) {
    if (writer_.capacity_records() >= records) return;
    if (AEGIS_FAULT(env_, "transport.alloc")) throw std::bad_alloc();
    writer_.reserve_records(std::min(cfg_.batch_max, std::max(records, 2 * writer_.capacity_records())));
  }

  // During a resend pass: a sent entry whose last frame waits in the new
  // bridge's queue, skipped by the pass (and neither re-encoded nor stamped).
  bool waits_in_new_bridge(std::uint64_t p, const offload_entry& e) const noexcept {
    return p < sent_high_ && e.serial >= resend_below_serial_;
  }

  bool send_some(ns_t now) {
    bool sent_any = false;
    window_full_ = false;
    for (int frames = 0; frames < frames_per_iteration && send_pos_ < read_pos_; ++frames) {
      if (now < send_blocked_until_ns_) break;
      if (window_closed()) {
        window_full_ = true;
        window_limited_ = true;
        break;
      }
      writer_.begin(frame_type::txn, cfg_.epoch, serial_ + 1);
      try {
        grow_frame(std::min<std::uint64_t>(frame_cap(), read_pos_ - send_pos_));
      } catch (const std::bad_alloc&) {
        bump(alloc_failures_);
        back_off(now);
        break;
      }
      std::uint64_t p = send_pos_;
      std::uint64_t resent = 0;
      const std::size_t room = std::min(frame_cap(), writer_.capacity_records());
      for (; p < read_pos_ && writer_.count() < room; ++p) {
        offload_entry& e = ring_.at(p);
        if (e.st != st::live) continue;
        if (waits_in_new_bridge(p, e)) continue;
        if (e.sends >= cfg_.max_sends) {
          abandon(p, e);
          continue;
        }
        writer_.add_txn(p + 1, e.t, e.offload_ns);
        if (p < sent_high_) ++resent;
      }
      if (writer_.count() == 0) {
        send_pos_ = p;  // Only terminal (or already held) entries: nothing to send for them.
        if (send_pos_ >= sent_high_) resend_below_serial_ = no_serial;
        continue;
      }
      send_result r = send_result::ok;
      if (AEGIS_FAULT(env_, "transport.send")) {
        r = send_result::would_block;
      } else if (AEGIS_FAULT(env_, "transport.send_error")) {
        r = send_result::failed;
      } else {
        r = offload_sock_.send(writer_.finish());
      }
      if (r != send_result::ok) {
        // The cursor stays: the same entries are encoded again next time.
        bump(send_stalls_);
        back_off(now);
        break;
      }
      // Progress is measured from the first send after a quiet period, not
      // from a verdict long ago.
      if (!outstanding()) last_progress_ns_ = now;
      ++serial_;
      // Stamp what the frame carries: the same test as the loop above (the
      // cursors it reads have not moved), so an entry skipped as waiting in
      // the new bridge's queue keeps its serial and its send count.
      std::uint64_t stamped = 0;
      for (std::uint64_t q = send_pos_; q < p; ++q) {
        offload_entry& e = ring_.at(q);
        if (e.st != st::live) continue;
        if (waits_in_new_bridge(q, e)) continue;
        AEGIS_DEBUG_ASSERT(e.sends < cfg_.max_sends, "an entry at max_sends was abandoned, not sent");
        ++stamped;
        e.sent_ns = now;
        e.serial = serial_;
        ++e.sends;
      }
      AEGIS_ASSERT(stamped == writer_.count(), "every record in the frame is stamped, and nothing else");
      send_pos_ = p;
      if (p > sent_high_) sent_high_ = p;
      if (send_pos_ >= sent_high_) resend_below_serial_ = no_serial;  // The resend pass is over.
      send_backoff_ns_ = 0;
      bump(frames_sent_);
      if (resent != 0) bump(retransmits_, resent);
      sent_any = true;
    }
    return sent_any;
  }

  // A transaction sent max_sends times without a verdict: no bridge will
  // answer it (it kills every bridge that reads it, or a bridge keeps
  // rejecting it). Its caller gets a terminal fate instead of a wait forever.
  void abandon(std::uint64_t p, offload_entry& e) {
    AEGIS_ASSERT(e.st == st::live && e.sends >= cfg_.max_sends, "only a live entry sent max_sends times is abandoned");
    e.st = st::abandoned;
    remember_expired(p);
    on_fate_(e.t, p + 1, fate::abandoned, nullptr, e.offload_ns);
    bump(abandoned_);
    ++terminal_count_;
  }

  void back_off(ns_t now) noexcept {
    send_backoff_ns_ = send_backoff_ns_ == 0 ? send_backoff_min_ns : std::min(2 * send_backoff_ns_, send_backoff_max_ns);
    send_blocked_until_ns_ = deadline_after(now, send_backoff_ns_);
  }

  // ---------------------------------------------------------------- idle

  void notify_progress() noexcept {
    if (drain_waiting_.load(std::memory_order_relaxed) == 0) return;
    progress_word_.fetch_add(1, std::memory_order_release);
    env_.unpark_all(progress_word_);
  }

  ns_t next_deadline(ns_t now) noexcept {
    ns_t d = deadline_after(now, idle_wait_ns);
    if (pending_inc_ != 0) d = std::min(d, deadline_after(pending_since_ns_, 2 * dead_after_ns_ / heartbeats_to_dead));
    if (outstanding()) {
      d = std::min(d, next_silence_ns());
      d = std::min(d, deadline_after(last_progress_ns_, safety_timeout()));
    }
    if (cfg_.ttl_ns > 0 && first_live_ < read_pos_) {
      d = std::min(d, deadline_after(ring_.at(first_live_).offload_ns, cfg_.ttl_ns));
    }
    if (send_pos_ < read_pos_ && !window_full_) d = std::min(d, send_blocked_until_ns_);
    return d;
  }

  // Two-level sleep. While work keeps arriving the pump naps briefly without
  // announcing it, so producers never pay for a doorbell system call at
  // steady rates (a nap costs the pump one timed poll; a doorbell costs the
  // producer a write(2) and often a preemption by the woken pump). After
  // `naps_before_deep_sleep` naps (`nap_ns` each) in a row found nothing, it announces a deep
  // sleep and producers ring the doorbell for the next transaction.
  void idle(ns_t now) {
    const ns_t deadline = next_deadline(now);
    if (deadline <= now) return;
    if (window_full_) {
      // Only verdicts (or a timer) can open the window: wait for them alone,
      // without asking producers to ring.
      env_.wait(verdict_sock_, bell_, deadline);
      return;
    }
    if (idle_naps_ < naps_before_deep_sleep) {
      ++idle_naps_;
      napping_.store(true, std::memory_order_relaxed);
      env_.wait(verdict_sock_, bell_, std::min(deadline, deadline_after(now, cfg_.nap_ns)));
      napping_.store(false, std::memory_order_relaxed);
      return;
    }
    sleeping_.store(1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (!ring_.has_readable() && stop_.load(std::memory_order_acquire) == 0) {
      env_.wait(verdict_sock_, bell_, deadline);
    }
    sleeping_.store(0, std::memory_order_relaxed);
  }

  // The outstanding gauge, stored only when it changed (a store is a
  // scheduling point in the simulator).
  void publish_outstanding() noexcept {
    const std::uint64_t n = sent_high_ > first_live_ ? sent_high_ - first_live_ : 0;
    if (n != outstanding_seen_) {
      outstanding_seen_ = n;
      outstanding_.store(n, std::memory_order_relaxed);
    }
    if (window_ != window_seen_) {
      window_seen_ = window_;
      window_gauge_.store(window_, std::memory_order_relaxed);
    }
    if (srtt_ns_ != srtt_seen_) {
      srtt_seen_ = srtt_ns_;
      srtt_gauge_.store(static_cast<std::uint64_t>(srtt_ns_), std::memory_order_relaxed);
    }
  }

  void check_invariants() const noexcept {
    AEGIS_ASSERT(release_pos_ <= first_live_ && first_live_ <= read_pos_, "release <= first live <= read");
    AEGIS_ASSERT(release_pos_ <= send_pos_ && send_pos_ <= read_pos_, "the send cursor stays among held entries");
    AEGIS_ASSERT(sent_high_ <= read_pos_, "only entries read from the ring are ever sent");
    AEGIS_ASSERT(window_ >= 1 && window_ <= cfg_.send_window, "the flow-control window stays within 1..send_window");
    AEGIS_ASSERT(read_serial_ <= serial_, "a bridge never reads a frame we did not send");
  }

  Env& env_;
  const offloader_config cfg_;
  const fate_callback on_fate_;
  ring_t ring_;
  socket_t offload_sock_;
  socket_t verdict_sock_;
  doorbell_t bell_;
  std::optional<thread_t> pump_thread_;

  u32_atomic stop_;
  u32_atomic sleeping_;       // 1 while the pump is (about to be) in env.wait.
  // True while the pump naps: flush()'s hint. A plain std::atomic on purpose:
  // nothing depends on it for correctness (a missed flush costs at most one
  // nap), so it is not a scheduling point in the simulator, whose traces it
  // leaves unchanged.
  std::atomic<bool> napping_{false};
  u32_atomic drain_waiting_;  // 1 while drain() waits: the pump then signals progress.
  u32_atomic progress_word_;  // Bumped and unparked on terminal progress.

  // Counters: written by the pump only, read by anyone.
  u64_atomic verdicts_, expired_, abandoned_, unscored_, silence_rewinds_, window_gauge_, srtt_gauge_, late_verdicts_, duplicate_verdicts_, unknown_seq_, stale_incarnation_,
      retransmits_, retransmit_rounds_, bridge_incarnations_, hellos_, frames_sent_, frames_received_,
      send_stalls_, recv_failures_, alloc_failures_, outstanding_;
  std::array<u64_atomic, reject_reason_count> rejected_;

  // Pump-private state. Positions: release_pos_ <= first_live_ <= read_pos_,
  // release_pos_ <= send_pos_ <= read_pos_, sent_high_ <= read_pos_.
  std::uint64_t read_pos_ = 0;     // Ring read cursor: entries below were seen by the pump.
  std::uint64_t release_pos_ = 0;  // Ring release cursor.
  std::uint64_t first_live_ = 0;   // First non-terminal entry at or after release (or read_pos_).
  std::uint64_t send_pos_ = 0;     // Next entry to (re)send.
  std::uint64_t sent_high_ = 0;    // Entries below were sent at least once.
  std::uint64_t terminal_count_ = 0;
  std::uint64_t outstanding_seen_ = 0;
  std::uint64_t window_seen_ = 0;
  ns_t srtt_seen_ = 0;
  std::uint64_t serial_ = 0;       // TXN frames sent in this epoch (the last frame's serial).
  std::uint64_t read_serial_ = 0;  // Highest serial a bridge said it has read and answered.
  // Per remembered incarnation (same slots as incarnations_): heard
  // lately, and when last. A live one silent for dead_after_ns_ is dead.
  std::array<ns_t, remembered_incarnations> inc_heard_ns_{};
  std::array<bool, remembered_incarnations> inc_live_{};
  std::array<std::uint64_t, remembered_incarnations> inc_read_serial_{};  // Its HELLOs' read_serial, this epoch.
  std::size_t live_incarnations_ = 0;
  ns_t covered_until_ns_ = 0;      // The last rewind resent what was sent before this time.
  std::uint64_t pending_inc_ = 0;  // A new incarnation whose resend waits for its informative HELLO.
  ns_t pending_since_ns_ = 0;
  std::uint64_t pending_hellos_ = 0;    // HELLOs received from the pending incarnation.
  std::uint64_t announced_serial_ = 0;  // serial_ when the pending incarnation was announced.
  // During a resend pass, entries last sent in a frame at or above this
  // serial are skipped (a new bridge holds them).
  std::uint64_t resend_below_serial_ = no_serial;
  ns_t dead_after_ns_ = heartbeats_to_dead * default_heartbeat_ns;
  int safety_backoff_ = 0;
  ns_t srtt_ns_ = 0;
  ns_t rttvar_ns_ = 0;
  std::uint64_t window_ = initial_window;
  bool slow_start_ = true;
  bool window_limited_ = false;  // The window held a send back since the last increase.
  ns_t last_window_change_ns_ = 0;
  bool sampled_ = false;         // This VERDICT frame gave its latency sample.
  std::uint64_t incarnation_ = 0;  // Current bridge incarnation (0 = none yet).
  std::array<std::uint64_t, remembered_incarnations> incarnations_{};
  std::size_t incarnations_seen_ = 0;
  std::deque<std::pair<std::uint64_t, std::uint64_t>> expired_ranges_;  // [first, last) positions.
  ns_t last_now_ = 0;
  ns_t last_progress_ns_ = 0;
  ns_t send_blocked_until_ns_ = 0;
  ns_t send_backoff_ns_ = 0;
  int idle_naps_ = 0;  // Idle naps in a row (reset by any work).
  bool window_full_ = false;  // The last send_some stopped at the send window.
  frame_writer writer_;
  std::vector<std::byte> rx_;
};

}  // namespace aegis
