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
// it is too; only then is it released. The rules (docs/PROTOCOL.md, "Core
// rules") live in aegis::offload_state, a state machine without I/O; one
// pump thread (spawned through the environment) owns it and everything
// after admission, and only moves bytes and sleeps:
//
//   loop:
//     receive VERDICT/HELLO frames            -> state.on_frame
//     pull newly published entries            -> state.on_published (the ring's
//       read cursor only moves forward; resends use the state's own send
//       cursor over [release, read), so no ring rewind)
//     expiry, release, loss-recovery timers   -> state.on_tick
//     send the frames the state builds        -> state.build_frame, frame_sent
//       (a send that would block or fails keeps the cursor: nothing skipped)
//     idle: env.wait(verdict socket, doorbell, state.next_deadline)
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
#include "aegis/offload_state.hpp"
#include "aegis/offload_types.hpp"
#include "aegis/protocol.hpp"
#include "aegis/ring_buffer.hpp"
#include "aegis/socket_layer.hpp"
#include "aegis/sometimes.hpp"

namespace aegis {

template <class Env, class Producers = multi_producer>
class offloader {
  using u64_atomic = typename Env::template atomic<std::uint64_t>;
  using u32_atomic = typename Env::template atomic<std::uint32_t>;
  using socket_t = typename Env::socket;
  using doorbell_t = typename Env::doorbell;
  using thread_t = decltype(std::declval<Env&>().spawn(std::string_view{}, std::function<void()>{}));
  using ring_t = ring_buffer<offload_entry, Env, Producers>;
  using state_t = offload_state<ring_t>;

 public:
  /// How long a "pump.slow" fault stalls one pump iteration.
  static constexpr ns_t slow_iteration_ns = 20'000'000;
  /// Longest idle sleep; bounds the cost of a missed wake-up to this.
  static constexpr ns_t idle_wait_ns = 100'000'000;
  /// Idle naps in a row before the pump sleeps deeply (doorbell armed).
  static constexpr int naps_before_deep_sleep = 20;
  /// Frames sent or received per pump iteration before looking at the rest.
  static constexpr int frames_per_iteration = 16;

  /// Binds both sockets (throws std::system_error on failure, std::invalid_argument on bad config).
  offloader(Env& env, offloader_config cfg, fate_callback on_fate)
      : env_(env),
        cfg_(checked(std::move(cfg))),
        on_fate_(std::move(on_fate)),
        ring_(env, cfg_.ring_capacity, cfg_.mode),
        state_(offload_rules::of(cfg_), ring_),
        offload_sock_(env.make_socket(socket_kind::push, cfg_.offload_socket)),
        verdict_sock_(env.make_socket(socket_kind::pull, cfg_.verdict_socket)),
        bell_(env.make_doorbell()),
        stop_(env, 0),
        sleeping_(env, 0),
        drain_waiting_(env, 0),
        progress_word_(env, 0),
        counts_(make_atomics(env, std::make_index_sequence<offload_counter_count>{})),
        window_gauge_(env, 0),
        srtt_gauge_(env, 0),
        frames_received_(env, 0),
        send_stalls_(env, 0),
        recv_failures_(env, 0),
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
    c.verdicts = count(offload_counter::verdicts).load(std::memory_order_acquire);
    c.expired = count(offload_counter::expired).load(std::memory_order_acquire);
    c.abandoned = count(offload_counter::abandoned).load(std::memory_order_acquire);
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
    c.late_verdicts = count(offload_counter::late_verdicts).load(std::memory_order_relaxed);
    c.duplicate_verdicts = count(offload_counter::duplicate_verdicts).load(std::memory_order_relaxed);
    c.unknown_seq = count(offload_counter::unknown_seq).load(std::memory_order_relaxed);
    c.stale_incarnation = count(offload_counter::stale_incarnation).load(std::memory_order_relaxed);
    c.retransmits = count(offload_counter::retransmits).load(std::memory_order_relaxed);
    c.retransmit_rounds = count(offload_counter::retransmit_rounds).load(std::memory_order_relaxed);
    c.bridge_incarnations = count(offload_counter::bridge_incarnations).load(std::memory_order_relaxed);
    c.hellos = count(offload_counter::hellos).load(std::memory_order_relaxed);
    c.frames_sent = count(offload_counter::frames_sent).load(std::memory_order_relaxed);
    c.frames_received = frames_received_.load(std::memory_order_relaxed);
    c.send_stalls = send_stalls_.load(std::memory_order_relaxed);
    c.recv_failures = recv_failures_.load(std::memory_order_relaxed);
    c.alloc_failures = count(offload_counter::alloc_failures).load(std::memory_order_relaxed);
    c.outstanding = outstanding_.load(std::memory_order_relaxed);
    c.unscored_verdicts = count(offload_counter::unscored).load(std::memory_order_relaxed);
    c.silence_rewinds = count(offload_counter::silence_rewinds).load(std::memory_order_relaxed);
    c.window = window_gauge_.load(std::memory_order_relaxed);
    c.srtt_ns = srtt_gauge_.load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < reject_reason_count; ++i) c.rejected_frames[i] = rejected_[i].load(std::memory_order_relaxed);
    return c;
  }

  /// The ring's own counters (admissions, depth, unreleased entries); lock-free, any thread.
  ring_counters ring_stats() const noexcept { return ring_.counters(); }
  /// Producers waiting for space in a block-mode offload() right now.
  std::uint32_t blocked_producers() const noexcept { return ring_.blocked_producers(); }
  /// The configuration in force.
  const offloader_config& config() const noexcept { return cfg_; }

 private:
  // The state machine's effects, applied to this offloader's world in the
  // order the rules make them.
  struct effects {
    offloader& o;
    void fate(const offload_entry& e, std::uint64_t seq, aegis::fate f, const verdict* v) {
      o.on_fate_(e.t, seq, f, v, e.offload_ns);
    }
    void count(offload_counter c, std::uint64_t n) noexcept { bump(o.counts_[static_cast<std::size_t>(c)], n); }
    void rejected(reject_reason r, std::uint64_t n) noexcept { bump(o.rejected_[static_cast<std::size_t>(r)], n); }
    void reached([[maybe_unused]] const char* name) noexcept { AEGIS_SOMETIMES(o.env_, name); }
    bool fault_fires([[maybe_unused]] const char* name) noexcept { return AEGIS_FAULT(o.env_, name); }
    bool mutant([[maybe_unused]] std::string_view name) const noexcept { return AEGIS_MUTANT(o.env_, name); }
  };
  friend struct effects;

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

  const u64_atomic& count(offload_counter c) const noexcept { return counts_[static_cast<std::size_t>(c)]; }

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

  // The pump: moves bytes between the sockets, the ring and the state
  // machine, and sleeps when there is nothing to do. Every rule is the
  // state machine's.
  void pump() {
    effects out{*this};
    last_now_ = env_.now_ns();
    state_.start(last_now_);
    while (stop_.load(std::memory_order_acquire) == 0) {
      if (AEGIS_FAULT(env_, "pump.slow")) env_.sleep_until_ns(deadline_after(env_.now_ns(), slow_iteration_ns));
      const ns_t now = pump_now();
      const std::uint64_t terminal_before = state_.terminal_count();
      bool busy = receive(now, out);
      // Pulling alone is not work: new entries are sent below unless a
      // back-off or the send window holds them, and then spinning would not
      // help (the pump waits for the timer or for verdicts instead).
      pull_published();
      state_.on_tick(now, out);
      busy |= send_some(now, out);
      if (state_.terminal_count() != terminal_before) notify_progress();
      publish_gauges();
      if (busy) {
        idle_naps_ = 0;
        continue;
      }
      idle(now);
    }
  }

  bool receive(ns_t now, effects& out) {
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
      state_.on_frame(rx_, now, out);
    }
    return got;
  }

  void pull_published() {
    const std::size_t n = ring_.read(ring_.capacity(), [](std::uint64_t, offload_entry&) {});
    state_.on_published(n);
    AEGIS_ASSERT(state_.read_position() == ring_.read_position(), "the pump is the ring's only consumer");
  }

  bool send_some(ns_t now, effects& out) {
    bool sent_any = false;
    state_.begin_sends();
    for (int frames = 0; frames < frames_per_iteration; ++frames) {
      const build_result b = state_.build_frame(now, out);
      if (b == build_result::stop) break;
      if (b == build_result::skipped) continue;
      send_result r = send_result::ok;
      if (AEGIS_FAULT(env_, "transport.send")) {
        r = send_result::would_block;
      } else if (AEGIS_FAULT(env_, "transport.send_error")) {
        r = send_result::failed;
      } else {
        r = offload_sock_.send(state_.frame());
      }
      if (r != send_result::ok) {
        bump(send_stalls_);
        state_.frame_failed(now);
        break;
      }
      state_.frame_sent(now, out);
      sent_any = true;
    }
    return sent_any;
  }

  void notify_progress() noexcept {
    if (drain_waiting_.load(std::memory_order_relaxed) == 0) return;
    progress_word_.fetch_add(1, std::memory_order_release);
    env_.unpark_all(progress_word_);
  }

  // Two-level sleep. While work keeps arriving the pump naps briefly without
  // announcing it, so producers never pay for a doorbell system call at
  // steady rates (a nap costs the pump one timed poll; a doorbell costs the
  // producer a write(2) and often a preemption by the woken pump). After
  // `naps_before_deep_sleep` naps (`nap_ns` each) in a row found nothing, it announces a deep
  // sleep and producers ring the doorbell for the next transaction.
  void idle(ns_t now) {
    const ns_t deadline = std::min(deadline_after(now, idle_wait_ns), state_.next_deadline());
    if (deadline <= now) return;
    if (state_.window_full()) {
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

  // The gauges, stored only when they changed (a store is a scheduling
  // point in the simulator).
  void publish_gauges() noexcept {
    const std::uint64_t n = state_.outstanding_records();
    if (n != outstanding_seen_) {
      outstanding_seen_ = n;
      outstanding_.store(n, std::memory_order_relaxed);
    }
    if (state_.window() != window_seen_) {
      window_seen_ = state_.window();
      window_gauge_.store(window_seen_, std::memory_order_relaxed);
    }
    if (state_.srtt_ns() != srtt_seen_) {
      srtt_seen_ = state_.srtt_ns();
      srtt_gauge_.store(static_cast<std::uint64_t>(srtt_seen_), std::memory_order_relaxed);
    }
  }

  Env& env_;
  const offloader_config cfg_;
  const fate_callback on_fate_;
  ring_t ring_;
  state_t state_;  // Only the pump touches it.
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
  std::array<u64_atomic, offload_counter_count> counts_;  // The state machine's, by offload_counter.
  u64_atomic window_gauge_, srtt_gauge_, frames_received_, send_stalls_, recv_failures_, outstanding_;
  std::array<u64_atomic, reject_reason_count> rejected_;

  // Pump-private.
  ns_t last_now_ = 0;
  int idle_naps_ = 0;  // Idle naps in a row (reset by any work).
  std::uint64_t outstanding_seen_ = 0;
  std::uint64_t window_seen_ = 0;
  ns_t srtt_seen_ = 0;
  std::vector<std::byte> rx_;
};

}  // namespace aegis
