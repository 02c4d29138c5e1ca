// The simulated bridge process; see bridge_model.hpp.
#include "sim/bridge_model.hpp"

#include <algorithm>

namespace aegis::sim {

bridge_model::bridge_model(sim::world& w, network& net, bridge_model_config config)
    : world_(w), net_(net), config_(std::move(config)), process_(w.add_process(config_.name)),
      env_(std::make_unique<sim_env>(w, net, process_)), rng_(w.stream(config_.name)) {
  AEGIS_ASSERT(!config_.offload_endpoint.empty() && !config_.verdict_endpoint.empty(), "the bridge needs endpoints");
  AEGIS_ASSERT(config_.batch_max >= 1 && config_.heartbeat_ns > 0, "batch_max >= 1 and a positive heartbeat");
  // Not running until start(): the process exists (ids are stable) but is dead.
  world_.kill(process_);
}

void bridge_model::start() {
  if (!world_.alive(process_)) world_.revive(process_);
  std::uint64_t inc = 0;
  while (inc == 0 || inc == incarnation_) inc = rng_.next();
  incarnation_ = inc;
  ++stats_.starts;
  world_.record_for(process_, event_kind::start, process_, static_cast<std::int64_t>(inc), "bridge.start");
  if (config_.python) {
    env_->spawn("bridge-loop", [this, inc] { python_loop(inc); });
  } else {
    env_->spawn("bridge-loop", [this, inc] { loop(inc); });
  }
}

void bridge_model::crash() {
  if (!world_.alive(process_)) return;
  ++stats_.crashes;
  if (on_death_) on_death_();
  if (scoring_) world_.reached("bridge_crashed_between_scoring_and_verdict");
  scoring_ = false;
  world_.kill(process_);
}

void bridge_model::stall(ns_t until_ns) {
  if (world_.alive(process_)) world_.stall(process_, until_ns);
}

void bridge_model::slow(std::uint32_t factor, ns_t until_ns) {
  AEGIS_ASSERT(factor >= 1, "a slowdown factor is at least 1");
  slow_factor_ = factor;
  slow_until_ns_ = until_ns;
  world_.record_for(process_, event_kind::fault, factor, until_ns, "bridge.slow");
}

void bridge_model::heal() { slow_until_ns_ = 0; }

bridge_model::decode_result bridge_model::decode(std::span<const std::byte> bytes) {
  decode_result r;
  if (const char* why = bridge_rules::decode_into(bytes, r.frame, r.records); why != nullptr) {
    r.reason = why;
    return r;
  }
  r.ok = true;
  return r;
}

verdict_record bridge_model::score(const txn_record& r) { return bridge_rules::score(r); }

verdict_record bridge_model::verdict_for(const txn_record& r, std::uint32_t poison_ppm) {
  return bridge_rules::verdict_for(r, poison_ppm);
}

bool bridge_model::poisoned(std::uint64_t txn_id, std::uint32_t poison_ppm) noexcept {
  return bridge_rules::poisoned(txn_id, poison_ppm);
}

ns_t bridge_model::cost_factor_permille() {
  const std::uint64_t r = rng_.below(1000);
  if (r == 0) return 10'000;
  if (r <= 10) return 3'000;
  return 1'000 + rng_.range(0, 100);
}

ns_t bridge_model::scoring_delay(std::size_t records) {
  ns_t d = config_.score_batch_ns + static_cast<ns_t>(records) * config_.score_record_ns;
  const ns_t f = cost_factor_permille();
  d = d / 1000 * f + (d % 1000) * f / 1000;
  if (world_.now_ns() < slow_until_ns_) d *= slow_factor_;
  return d;
}

// Records per model call: about score_chunk_ns of model time at the cost
// seen now (the real bridge estimates it from its recent calls; a slowdown
// shrinks its chunks within a call or two).
std::size_t bridge_model::chunk_records() const noexcept {
  const ns_t factor = world_.now_ns() < slow_until_ns_ ? slow_factor_ : 1;
  const ns_t per_record = std::max<ns_t>(1, config_.score_record_ns * factor);
  return static_cast<std::size_t>(std::max<ns_t>(1, config_.score_chunk_ns / per_record));
}

void bridge_model::send_verdict_frame(sim_env::socket& push, std::span<const std::byte> raw,
                                      std::uint64_t first_seq, std::size_t records) {
  bool waited = false;
  for (;;) {
    const send_result s = push.send(raw);
    if (s == send_result::ok) break;
    AEGIS_ASSERT(s == send_result::would_block, "a simulated PUSH fails only by would_block while open");
    if (!waited) ++stats_.send_waits;
    waited = true;
    env_->sleep_until_ns(env_->now_ns() + config_.send_poll_ns);
  }
  ++stats_.verdict_frames_sent;
  world_.record(event_kind::verdict_sent, first_seq, static_cast<std::int64_t>(records));
}

bridge_model::sockets bridge_model::open_sockets() {
  socket_options pull_opts;
  pull_opts.recv_hwm = config_.recv_hwm;
  // No ZMQ_MAXMSGSIZE on the connecting offload PULL, as bridge.py: there an
  // oversized frame would end the connection for good (libzmq 4.3 does not
  // reconnect after a protocol error, and the network models that); the
  // decoder checks the length and counts the frame instead.
  pull_opts.reconnect_ivl_ms = config_.reconnect_ivl_ms;
  socket_options push_opts;
  push_opts.send_hwm = config_.send_hwm;
  push_opts.reconnect_ivl_ms = config_.reconnect_ivl_ms;
  sockets s{env_->make_socket(socket_kind::pull, pull_opts), env_->make_socket(socket_kind::push, push_opts), {}};
  // The offload socket's monitor, as bridge.py's: rung when the connection
  // comes up or goes down (bridge.py also polls a self-pipe for shutdown,
  // which nobody rings in simulation).
  s.monitor_bell = env_->make_doorbell();
  net_.monitor(s.pull.id(), s.monitor_bell.id());
  s.pull.connect(config_.offload_endpoint);
  s.push.connect(config_.verdict_endpoint);
  return s;
}

void bridge_model::loop(std::uint64_t incarnation) {
  auto [pull, push, monitor_bell] = open_sockets();

  // Per incarnation: which seqs were read in which core epoch, what was
  // answered, when the next HELLO is due (the frame rules, bridge_rules.hpp).
  bridge_rules rules{incarnation, config_.heartbeat_ns, config_.poison_ppm};
  auto send_hello = [&] {
    const std::vector<std::byte> raw = rules.hello();
    if (push.send(raw) == send_result::ok) {
      ++stats_.hellos_sent;
      world_.record(event_kind::hello, 0, static_cast<std::int64_t>(incarnation));
    } else {
      ++stats_.hellos_dropped;
    }
  };

  // Like bridge.py: a HELLO says "send to me", so the first goes out when
  // the offload connection comes up (the monitor), never before; and every
  // heartbeat while it stays up.
  std::vector<std::byte> buf;  // Reused across wake-ups (the loop allocates only while they grow).
  frame_writer verdict_writer;
  auto heartbeat_if_due = [&] {
    if (pull.connected() != rules.offload_up()) rules.set_offload_up(!rules.offload_up());
    if (rules.tick(env_->now_ns())) {
      AEGIS_ASSERT(pull.connected(), "a HELLO leaves only while the offload channel is connected");
      send_hello();
    }
  };
  heartbeat_if_due();
  for (;;) {
    const wake_reason why = env_->wait(pull, monitor_bell, rules.next_hello_ns());
    if (why == wake_reason::readable) {
      // Take what is queued, never wait to fill a batch.
      rules.begin_wakeup();
      for (std::size_t i = 0; i < config_.batch_max; ++i) {
        if (pull.recv(buf) != recv_result::ok) break;
        ++stats_.frames_received;
        if (rules.decode_next(buf) != nullptr) {
          ++stats_.bad_frames;
          continue;
        }
        const std::span<const txn_record> recs = rules.last_received();
        world_.record(event_kind::batch_received, recs.empty() ? 0 : recs.front().seq,
                      static_cast<std::int64_t>(recs.size()));
        if (observer_) observer_(incarnation, rules.last_epoch_received(), recs);
        // Records this incarnation already read in this epoch are skipped:
        // their answer is on the way (frames between live processes are not lost).
        stats_.duplicates_skipped += rules.admit();
      }
      // Score in chunks of about score_chunk_ns of model time. A chunk's
      // verdicts go out as soon as it is scored, a frame counts as read and
      // answered once every chunk up to its end is sent, and a heartbeat
      // due between chunks goes out there: a slow model never hides the
      // bridge for longer than one chunk.
      const std::span<const txn_record> records = rules.records();
      rules.complete_frames(0);  // Frames of duplicates only, at the front.
      for (std::size_t lo = 0; lo < records.size();) {
        const std::size_t hi = std::min(records.size(), lo + chunk_records());
        const std::span<const txn_record> part = records.subspan(lo, hi - lo);
        stats_.records_scored += part.size();
        // Scoring happens between receiving and sending: a crash in this
        // window loses verdicts the core must recover by resending.
        scoring_ = true;
        env_->sleep_until_ns(env_->now_ns() + scoring_delay(part.size()));
        scoring_ = false;
        const std::uint32_t poison = config_.poison_ppm;
        if (std::any_of(part.begin(), part.end(), [poison](const txn_record& r) { return poisoned(r.t.txn_id, poison); })) {
          // The model raised on this call: the bridge isolates the failing
          // records and answers them `unscored` with its fail-safe decision
          // (bridge_rules::verdict_for), the others as usual.
          ++stats_.model_errors;
        }
        // One VERDICT frame per TXN frame's share of the chunk.
        rules.answer(lo, hi, verdict_writer, [&](std::span<const std::byte> raw, std::span<const txn_record> share) {
          send_verdict_frame(push, raw, share.empty() ? 0 : share.front().seq, share.size());
        });
        lo = hi;
        if (lo < records.size()) heartbeat_if_due();
      }
      rules.complete_frames(records.size());
      AEGIS_ASSERT(rules.done_frames() == rules.frames().size(), "every frame of the wake-up was answered");
    }
    heartbeat_if_due();
  }
}

}  // namespace aegis::sim
