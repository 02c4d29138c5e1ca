// The simulated bridge process; see bridge_model.hpp.
#include "sim/bridge_model.hpp"

#include <xxhash.h>

#include <algorithm>

namespace aegis::sim {

bridge_model::bridge_model(sim::world& w, network& net, bridge_model_config config)
    : world_(w), net_(net), config_(std::move(config)), process_(w.add_process("bridge")),
      env_(std::make_unique<sim_env>(w, net, process_)), rng_(w.stream("bridge")) {
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
  last_epoch_ = 0;
  ++stats_.starts;
  world_.record_for(process_, event_kind::start, process_, static_cast<std::int64_t>(inc), "bridge.start");
  env_->spawn("bridge-loop", [this, inc] { loop(inc); });
}

void bridge_model::crash() {
  if (!world_.alive(process_)) return;
  ++stats_.crashes;
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
  r.frame = decode_frame(bytes);
  if (!r.frame.ok()) {
    r.reason = to_string(r.frame.reject);
    return r;
  }
  if (r.frame.header.type != frame_type::txn) {
    r.reason = "unexpected_type";
    return r;
  }
  r.ok = true;
  r.records.reserve(r.frame.header.count);
  for (std::size_t i = 0; i < r.frame.header.count; ++i) r.records.push_back(r.frame.txn_at(i));
  return r;
}

verdict_record bridge_model::score(const txn_record& r) {
  const std::uint64_t h = XXH64(&r.t.txn_id, sizeof r.t.txn_id, 0x5eed);
  const std::uint32_t milli = static_cast<std::uint32_t>(h % 1000);
  verdict_record v;
  v.seq = r.seq;
  v.txn_id = r.t.txn_id;
  v.score = static_cast<float>(milli) / 1000.0f;
  v.decision = milli >= 950 ? 2 : milli >= 800 ? 1 : 0;
  return v;
}

ns_t bridge_model::scoring_delay(std::size_t frames, std::size_t records) {
  ns_t d = config_.score_batch_ns + static_cast<ns_t>(records) * config_.score_record_ns;
  d += rng_.range(0, d / 4 + 1);  // Jitter: GC pauses, cache misses.
  (void)frames;
  if (world_.now_ns() < slow_until_ns_) d *= slow_factor_;
  return d;
}

bool bridge_model::send_verdicts(sim_env::socket& push, std::uint64_t epoch, std::uint64_t incarnation,
                                 std::span<const txn_record> records) {
  std::vector<verdict_record> verdicts;
  verdicts.reserve(records.size());
  for (const txn_record& r : records) verdicts.push_back(score(r));
  const std::vector<std::byte> raw = encode_verdict_frame(epoch, incarnation, verdicts);
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
  world_.record(event_kind::verdict_sent, records.empty() ? 0 : records.front().seq,
                static_cast<std::int64_t>(records.size()));
  return true;
}

void bridge_model::loop(std::uint64_t incarnation) {
  socket_options pull_opts;
  pull_opts.recv_hwm = config_.recv_hwm;
  pull_opts.max_msg_bytes = static_cast<std::int64_t>(max_frame_bytes);
  pull_opts.reconnect_ivl_ms = config_.reconnect_ivl_ms;
  socket_options push_opts;
  push_opts.send_hwm = config_.send_hwm;
  push_opts.reconnect_ivl_ms = config_.reconnect_ivl_ms;
  sim_env::socket pull = env_->make_socket(socket_kind::pull, pull_opts);
  sim_env::socket push = env_->make_socket(socket_kind::push, push_opts);
  sim_env::doorbell stop_bell = env_->make_doorbell();  // The self-pipe: nobody rings it in simulation.
  pull.connect(config_.offload_endpoint);
  push.connect(config_.verdict_endpoint);

  auto send_hello = [&] {
    const std::vector<std::byte> raw = encode_hello_frame(last_epoch_, incarnation);
    if (push.send(raw) == send_result::ok) {
      ++stats_.hellos_sent;
      world_.record(event_kind::hello, 0, static_cast<std::int64_t>(incarnation));
    } else {
      ++stats_.hellos_dropped;
    }
  };

  send_hello();
  ns_t next_hello = env_->now_ns() + config_.heartbeat_ns;
  std::vector<std::byte> buf;
  for (;;) {
    const wake_reason why = env_->wait(pull, stop_bell, next_hello);
    if (why == wake_reason::readable) {
      // Take what is queued, never wait to fill a batch.
      std::vector<std::pair<std::uint64_t, std::vector<txn_record>>> frames;  // (epoch, records)
      std::size_t records = 0;
      for (std::size_t i = 0; i < config_.batch_max; ++i) {
        if (pull.recv(buf) != recv_result::ok) break;
        ++stats_.frames_received;
        decode_result d = decode(buf);
        if (!d.ok) {
          ++stats_.bad_frames;
          continue;
        }
        last_epoch_ = d.frame.header.epoch;
        world_.record(event_kind::batch_received, d.records.empty() ? 0 : d.records.front().seq,
                      static_cast<std::int64_t>(d.records.size()));
        if (observer_) observer_(incarnation, d.records);
        records += d.records.size();
        frames.emplace_back(d.frame.header.epoch, std::move(d.records));
      }
      if (!frames.empty()) {
        stats_.records_scored += records;
        // Scoring happens between receiving and sending: a crash in this
        // window loses verdicts the core must recover by resending.
        scoring_ = true;
        env_->sleep_until_ns(env_->now_ns() + scoring_delay(frames.size(), records));
        scoring_ = false;
        for (const auto& [epoch, recs] : frames) send_verdicts(push, epoch, incarnation, recs);
      }
    }
    const ns_t now = env_->now_ns();
    if (now >= next_hello) {
      send_hello();
      next_hello = now + config_.heartbeat_ns;
    }
  }
}

}  // namespace aegis::sim
