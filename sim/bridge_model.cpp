// The simulated bridge process; see bridge_model.hpp.
#include "sim/bridge_model.hpp"

#include <algorithm>
#include <bit>

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
  last_epoch_ = 0;
  ++stats_.starts;
  world_.record_for(process_, event_kind::start, process_, static_cast<std::int64_t>(inc), "bridge.start");
  env_->spawn("bridge-loop", [this, inc] { loop(inc); });
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

const char* bridge_model::decode_into(std::span<const std::byte> bytes, decoded_frame& frame,
                                      std::vector<txn_record>& records) {
  frame = decode_frame(bytes);
  if (!frame.ok()) return to_string(frame.reject);
  if (frame.header.type != frame_type::txn) return "unexpected_type";
  for (std::size_t i = 0; i < frame.header.count; ++i) records.push_back(frame.txn_at(i));
  return nullptr;
}

bridge_model::decode_result bridge_model::decode(std::span<const std::byte> bytes) {
  decode_result r;
  if (const char* why = decode_into(bytes, r.frame, r.records); why != nullptr) {
    r.reason = why;
    return r;
  }
  r.ok = true;
  return r;
}

namespace {
constexpr std::uint64_t rotl64(std::uint64_t x, int r) noexcept { return (x << r) | (x >> (64 - r)); }

// XXH64 (seed `seed`) of the 8 little-endian bytes of `v`: the library's
// algorithm written out for this one length (sim_seed_test compares it with
// the library). score() runs twice per transaction, and the library's
// general entry point cost more than the hash itself.
constexpr std::uint64_t xxh64_of_u64(std::uint64_t v, std::uint64_t seed) noexcept {
  constexpr std::uint64_t p1 = 0x9E3779B185EBCA87ULL, p2 = 0xC2B2AE3D27D4EB4FULL, p3 = 0x165667B19E3779F9ULL,
                          p4 = 0x85EBCA77C2B2AE63ULL, p5 = 0x27D4EB2F165667C5ULL;
  std::uint64_t h = seed + p5 + 8;
  h ^= rotl64(v * p2, 31) * p1;  // XXH64_round(0, v)
  h = rotl64(h, 27) * p1 + p4;
  h ^= h >> 33;  // Avalanche.
  h *= p2;
  h ^= h >> 29;
  h *= p3;
  h ^= h >> 32;
  return h;
}
static_assert(std::endian::native == std::endian::little, "the txn id's bytes are hashed little-endian, as XXH64 reads them");
}  // namespace

verdict_record bridge_model::score(const txn_record& r) {
  const std::uint64_t h = xxh64_of_u64(r.t.txn_id, 0x5eed);
  const std::uint32_t milli = static_cast<std::uint32_t>(h % 1000);
  verdict_record v;
  v.seq = r.seq;
  v.txn_id = r.t.txn_id;
  v.score = static_cast<float>(milli) / 1000.0f;
  v.decision = milli >= 950 ? 2 : milli >= 800 ? 1 : 0;
  return v;
}

verdict_record bridge_model::verdict_for(const txn_record& r, std::uint32_t poison_ppm) {
  if (!poisoned(r.t.txn_id, poison_ppm)) return score(r);
  verdict_record v;
  v.seq = r.seq;
  v.txn_id = r.t.txn_id;
  v.score = 0.0f;
  v.decision = unscored_decision;
  v.flags = verdict_flag_unscored;
  return v;
}

bool bridge_model::poisoned(std::uint64_t txn_id, std::uint32_t poison_ppm) noexcept {
  if (poison_ppm == 0) return false;
  return xxh64_of_u64(txn_id, 0x9015) % 1'000'000 < poison_ppm;
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

bool bridge_model::send_verdicts(sim_env::socket& push, frame_writer& writer, std::uint64_t epoch,
                                 std::uint64_t incarnation, std::span<const txn_record> records) {
  // The same bytes as encode_verdict_frame, built in the loop's reusable buffer.
  writer.begin(frame_type::verdict, epoch, incarnation);
  writer.reserve_records(records.size());
  for (const txn_record& r : records) writer.add_verdict(verdict_for(r, config_.poison_ppm));
  const std::span<const std::byte> raw = writer.finish();
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

  // Per incarnation, per core epoch: which seqs were read (to skip a resend
  // of one already answered) and the highest TXN serial read and answered.
  std::vector<std::uint64_t> seen(dedupe_slots, 0);
  std::uint64_t seen_epoch = 0;
  std::uint64_t read_serial = 0;
  std::uint64_t answered = 0;
  std::uint64_t duplicates = 0;
  auto send_hello = [&] {
    const hello_record status{last_epoch_ == seen_epoch ? read_serial : 0,
                              static_cast<std::uint32_t>(config_.heartbeat_ns / 1'000'000), 0, answered, duplicates};
    const std::vector<std::byte> raw = encode_hello_frame(last_epoch_, incarnation, status);
    if (push.send(raw) == send_result::ok) {
      ++stats_.hellos_sent;
      world_.record(event_kind::hello, 0, static_cast<std::int64_t>(incarnation));
    } else {
      ++stats_.hellos_dropped;
    }
  };

  send_hello();
  ns_t next_hello = env_->now_ns() + config_.heartbeat_ns;
  // Reused across wake-ups (the loop allocates only while they grow).
  std::vector<std::byte> buf;
  std::vector<txn_record> records;                            // This wake-up's records, frame after frame.
  struct frame_run {
    std::uint64_t epoch;
    std::uint64_t serial;
    std::size_t end;  // Records of the wake-up up to and including this frame's kept ones.
  };
  std::vector<frame_run> frames;  // This wake-up's TXN frames, in order.
  decoded_frame frame;
  frame_writer verdict_writer;
  auto heartbeat_if_due = [&] {
    const ns_t now = env_->now_ns();
    if (now < next_hello) return;
    send_hello();
    next_hello = now + config_.heartbeat_ns;
  };
  for (;;) {
    const wake_reason why = env_->wait(pull, stop_bell, next_hello);
    if (why == wake_reason::readable) {
      // Take what is queued, never wait to fill a batch.
      records.clear();
      frames.clear();
      for (std::size_t i = 0; i < config_.batch_max; ++i) {
        if (pull.recv(buf) != recv_result::ok) break;
        ++stats_.frames_received;
        const std::size_t first = records.size();
        if (decode_into(buf, frame, records) != nullptr) {
          ++stats_.bad_frames;
          continue;
        }
        const std::span<const txn_record> recs = std::span<const txn_record>(records).subspan(first);
        last_epoch_ = frame.header.epoch;
        world_.record(event_kind::batch_received, recs.empty() ? 0 : recs.front().seq,
                      static_cast<std::int64_t>(recs.size()));
        if (observer_) observer_(incarnation, recs);
        if (frame.header.epoch != seen_epoch) {
          // A new core: its seqs start again, so the table is forgotten.
          std::fill(seen.begin(), seen.end(), 0);
          seen_epoch = frame.header.epoch;
          read_serial = 0;
        }
        // Skip what this incarnation already read in this epoch: its answer
        // is on the way (frames between live processes are not lost).
        std::size_t kept = first;
        for (std::size_t i = first; i < records.size(); ++i) {
          std::uint64_t& slot = seen[records[i].seq & (dedupe_slots - 1)];
          if (slot == records[i].seq) {
            ++duplicates;
            ++stats_.duplicates_skipped;
            continue;
          }
          slot = records[i].seq;
          records[kept++] = records[i];
        }
        records.resize(kept);
        frames.push_back({frame.header.epoch, frame.header.incarnation, kept});  // A TXN frame's serial.
      }
      // Score in chunks of about score_chunk_ns of model time. A chunk's
      // verdicts go out as soon as it is scored, a frame counts as read and
      // answered once every chunk up to its end is sent, and a heartbeat
      // due between chunks goes out there: a slow model never hides the
      // bridge for longer than one chunk.
      std::size_t done_frames = 0;
      auto complete_frames = [&](std::size_t upto) {
        for (; done_frames < frames.size() && frames[done_frames].end <= upto; ++done_frames) {
          if (frames[done_frames].epoch == seen_epoch) read_serial = std::max(read_serial, frames[done_frames].serial);
        }
      };
      complete_frames(0);  // Frames of duplicates only, at the front.
      for (std::size_t lo = 0; lo < records.size();) {
        const std::size_t hi = std::min(records.size(), lo + chunk_records());
        const std::span<const txn_record> part = std::span<const txn_record>(records).subspan(lo, hi - lo);
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
          // (send_verdicts), the others as usual.
          ++stats_.model_errors;
        }
        // One VERDICT frame per TXN frame's share of the chunk.
        std::size_t at = lo;
        for (std::size_t f = done_frames; f < frames.size() && at < hi; ++f) {
          const std::size_t end = std::min(frames[f].end, hi);
          if (end > at) {
            send_verdicts(push, verdict_writer, frames[f].epoch, incarnation, std::span<const txn_record>(records).subspan(at, end - at));
            at = end;
          }
        }
        AEGIS_ASSERT(at == hi, "every record of the chunk was answered");
        answered += part.size();
        complete_frames(hi);
        lo = hi;
        if (lo < records.size()) heartbeat_if_due();
      }
      complete_frames(records.size());
      AEGIS_ASSERT(done_frames == frames.size(), "every frame of the wake-up was answered");
    }
    heartbeat_if_due();
  }
}

}  // namespace aegis::sim
