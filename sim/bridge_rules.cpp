// The bridge model's frame rules; see bridge_rules.hpp.
#include "sim/bridge_rules.hpp"

#include <algorithm>
#include <bit>

namespace aegis::sim {

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

bridge_rules::bridge_rules(std::uint64_t incarnation, ns_t heartbeat_ns, std::uint32_t poison_ppm)
    : incarnation_(incarnation), heartbeat_ns_(heartbeat_ns), poison_ppm_(poison_ppm), seen_(dedupe_slots, 0) {
  AEGIS_ASSERT(incarnation != 0, "an incarnation is never 0");
  AEGIS_ASSERT(heartbeat_ns > 0, "a heartbeat interval is positive");
  static_assert(std::has_single_bit(dedupe_slots), "the dedupe table is indexed by the seq's low bits");
}

void bridge_rules::set_offload_up(bool up) noexcept {
  offload_up_ = up;
  if (up) next_hello_ns_ = 0;
  AEGIS_ASSERT(!up || next_hello_ns_ == 0, "a connection that came up makes a HELLO due at once");
}

bool bridge_rules::tick(ns_t now_ns) noexcept {
  if (now_ns < next_hello_ns_) return false;
  next_hello_ns_ = now_ns + heartbeat_ns_;
  AEGIS_ASSERT(next_hello_ns_ > now_ns, "the next HELLO is in the future");
  if (!offload_up_) return false;
  return true;
}

std::vector<std::byte> bridge_rules::hello() const {
  const hello_record status{last_epoch_ == seen_epoch_ ? read_serial_ : 0,
                            static_cast<std::uint32_t>(heartbeat_ns_ / 1'000'000), 0, answered_, duplicates_};
  return encode_hello_frame(last_epoch_, incarnation_, status);
}

void bridge_rules::begin_wakeup() noexcept {
  records_.clear();
  frames_.clear();
  done_frames_ = 0;
  first_ = 0;
}

const char* bridge_rules::decode_into(std::span<const std::byte> bytes, decoded_frame& frame,
                                      std::vector<txn_record>& records) {
  frame = decode_frame(bytes);
  if (!frame.ok()) return to_string(frame.reject);
  if (frame.header.type != frame_type::txn) return "unexpected_type";
  for (std::size_t i = 0; i < frame.header.count; ++i) records.push_back(frame.txn_at(i));
  return nullptr;
}

const char* bridge_rules::decode_next(std::span<const std::byte> bytes) {
  AEGIS_ASSERT(done_frames_ == 0, "frames are received before any of the wake-up is answered");
  first_ = records_.size();
  const char* why = decode_into(bytes, frame_, records_);
  AEGIS_ASSERT(why == nullptr || records_.size() == first_, "a bad frame adds no records");
  return why;
}

std::span<const txn_record> bridge_rules::last_received() const noexcept {
  return std::span<const txn_record>(records_).subspan(first_);
}

std::uint64_t bridge_rules::admit() {
  AEGIS_ASSERT(frame_.ok() && frame_.header.type == frame_type::txn, "admit() follows an accepted TXN frame");
  const std::uint64_t epoch = frame_.header.epoch;
  last_epoch_ = epoch;
  if (epoch != seen_epoch_) {
    // A new core: its seqs start again, so the table is forgotten.
    std::fill(seen_.begin(), seen_.end(), 0);
    seen_epoch_ = epoch;
    read_serial_ = 0;
    ++generation_;
  }
  // Skip what this incarnation already read in this epoch: its answer
  // is on the way (frames between live processes are not lost).
  std::uint64_t skipped = 0;
  std::size_t kept = first_;
  for (std::size_t i = first_; i < records_.size(); ++i) {
    std::uint64_t& slot = seen_[records_[i].seq & (dedupe_slots - 1)];
    if (slot == records_[i].seq) {
      ++skipped;
      continue;
    }
    slot = records_[i].seq;
    records_[kept++] = records_[i];
  }
  records_.resize(kept);
  duplicates_ += skipped;
  frames_.push_back({epoch, frame_.header.incarnation, kept, generation_});  // A TXN frame's serial.
  first_ = records_.size();
  return skipped;
}

void bridge_rules::complete_frames(std::size_t upto) noexcept {
  for (; done_frames_ < frames_.size() && frames_[done_frames_].end <= upto; ++done_frames_) {
    // As BridgeCore, which answers one epoch's run of frames at a time: a
    // frame read before a later frame of the wake-up changed the epoch
    // counts in the epoch it belonged to, which that change forgot (A, B,
    // A in one wake-up: the first A frame's serial is not the second A's).
    const frame_run& f = frames_[done_frames_];
    if (f.generation == generation_) read_serial_ = std::max(read_serial_, f.serial);
  }
}

std::span<const std::byte> bridge_rules::encode_verdicts(frame_writer& writer, std::uint64_t epoch,
                                                         std::span<const txn_record> records) const {
  // The same bytes as encode_verdict_frame, built in a reusable buffer.
  writer.begin(frame_type::verdict, epoch, incarnation_);
  writer.reserve_records(records.size());
  for (const txn_record& r : records) writer.add_verdict(verdict_for(r, poison_ppm_));
  return writer.finish();
}

verdict_record bridge_rules::score(const txn_record& r) {
  const std::uint64_t h = xxh64_of_u64(r.t.txn_id, 0x5eed);
  const std::uint32_t milli = static_cast<std::uint32_t>(h % 1000);
  verdict_record v;
  v.seq = r.seq;
  v.txn_id = r.t.txn_id;
  v.score = static_cast<float>(milli) / 1000.0f;
  v.decision = milli >= 950 ? 2 : milli >= 800 ? 1 : 0;
  return v;
}

verdict_record bridge_rules::verdict_for(const txn_record& r, std::uint32_t poison_ppm) {
  if (!poisoned(r.t.txn_id, poison_ppm)) return score(r);
  verdict_record v;
  v.seq = r.seq;
  v.txn_id = r.t.txn_id;
  v.score = 0.0f;
  v.decision = unscored_decision;
  v.flags = verdict_flag_unscored;
  return v;
}

bool bridge_rules::poisoned(std::uint64_t txn_id, std::uint32_t poison_ppm) noexcept {
  if (poison_ppm == 0) return false;
  return xxh64_of_u64(txn_id, 0x9015) % 1'000'000 < poison_ppm;
}

}  // namespace aegis::sim
