// Protocol v2 codec. Offsets are those of docs/PROTOCOL.md.
#include "aegis/protocol.hpp"

#define XXH_STATIC_LINKING_ONLY  // a stack XXH64_state_t: no allocation per frame
#include <xxhash.h>

#include <algorithm>
#include <new>

#include "aegis/assert.hpp"

namespace aegis {

namespace {

// Header field offsets.
constexpr std::size_t off_magic = 0;
constexpr std::size_t off_version = 4;
constexpr std::size_t off_type = 5;
constexpr std::size_t off_count = 6;
constexpr std::size_t off_epoch = 8;
constexpr std::size_t off_incarnation = 16;
constexpr std::size_t off_checksum = 24;
static_assert(off_checksum + 8 == header_bytes, "the checksum is the last header field");

template <class T>
T load(const std::byte* p) noexcept {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <class T>
void store(std::byte* p, T v) noexcept {
  std::memcpy(p, &v, sizeof v);
}

bool known_type(std::uint8_t t) noexcept { return t >= 1 && t <= 3; }

decoded_frame rejected(reject_reason r) noexcept {
  decoded_frame f;
  f.valid = false;
  f.reject = r;
  return f;
}

}  // namespace

std::uint64_t frame_checksum(std::span<const std::byte> frame) noexcept {
  AEGIS_ASSERT(frame.size() >= header_bytes, "a checksum covers a whole header at least");
  XXH64_state_t state;
  XXH64_reset(&state, 0);
  XXH64_update(&state, frame.data(), off_checksum);
  XXH64_update(&state, frame.data() + header_bytes, frame.size() - header_bytes);
  return XXH64_digest(&state);
}

decoded_frame decode_frame(std::span<const std::byte> frame) noexcept {
  if (frame.size() < header_bytes) return rejected(reject_reason::truncated);
  if (frame.size() > max_frame_bytes) return rejected(reject_reason::oversized);
  const std::byte* p = frame.data();
  if (load<std::uint32_t>(p + off_magic) != protocol_magic) return rejected(reject_reason::bad_magic);
  const auto version = load<std::uint8_t>(p + off_version);
  if (version != protocol_version) return rejected(reject_reason::bad_version);
  const auto type_byte = load<std::uint8_t>(p + off_type);
  if (!known_type(type_byte)) return rejected(reject_reason::bad_type);
  const auto type = static_cast<frame_type>(type_byte);
  const auto count = load<std::uint16_t>(p + off_count);
  if (count > max_records) return rejected(reject_reason::bad_length);
  if (type == frame_type::hello && count != 1) return rejected(reject_reason::bad_length);
  if (frame.size() != header_bytes + count * record_bytes(type)) return rejected(reject_reason::bad_length);
  if (load<std::uint64_t>(p + off_checksum) != frame_checksum(frame)) return rejected(reject_reason::bad_checksum);

  decoded_frame f;
  f.valid = true;
  f.header.version = version;
  f.header.type = type;
  f.header.count = count;
  f.header.epoch = load<std::uint64_t>(p + off_epoch);
  f.header.incarnation = load<std::uint64_t>(p + off_incarnation);
  f.records = frame.subspan(header_bytes);
  AEGIS_ASSERT(f.records.size() == count * record_bytes(type), "a valid frame's records fill it exactly");
  return f;
}

txn_record decoded_frame::txn_at(std::size_t i) const noexcept {
  AEGIS_ASSERT(valid && header.type == frame_type::txn, "txn_at reads TXN frames only");
  AEGIS_ASSERT(i < header.count, "record index within the frame's count");
  const std::byte* p = records.data() + i * txn_record_bytes;
  txn_record r;
  r.seq = load<std::uint64_t>(p + 0);
  r.t.txn_id = load<std::uint64_t>(p + 8);
  r.t.amount_minor = load<std::int64_t>(p + 16);
  r.t.timestamp_ns = load<std::int64_t>(p + 24);
  r.t.merchant_id = load<std::uint64_t>(p + 32);
  r.t.card_fp = load<std::uint64_t>(p + 40);
  std::memcpy(r.t.currency.data(), p + 48, 3);
  r.t.channel = load<std::uint8_t>(p + 51);
  r.t.mcc = load<std::uint32_t>(p + 52);
  r.offload_ns = load<std::int64_t>(p + 56);
  return r;
}

verdict_record decoded_frame::verdict_at(std::size_t i) const noexcept {
  AEGIS_ASSERT(valid && header.type == frame_type::verdict, "verdict_at reads VERDICT frames only");
  AEGIS_ASSERT(i < header.count, "record index within the frame's count");
  const std::byte* p = records.data() + i * verdict_record_bytes;
  verdict_record v;
  v.seq = load<std::uint64_t>(p + 0);
  v.txn_id = load<std::uint64_t>(p + 8);
  v.score = load<float>(p + 16);
  v.decision = load<std::uint8_t>(p + 20);
  v.flags = load<std::uint8_t>(p + 21);
  v.reserved = load<std::uint16_t>(p + 22);
  return v;
}

hello_record decoded_frame::hello() const noexcept {
  AEGIS_ASSERT(valid && header.type == frame_type::hello && header.count == 1, "hello() reads a valid HELLO's one record");
  const std::byte* p = records.data();
  hello_record h;
  h.read_serial = load<std::uint64_t>(p + 0);
  h.heartbeat_ms = load<std::uint32_t>(p + 8);
  h.reserved = load<std::uint32_t>(p + 12);
  h.records_answered = load<std::uint64_t>(p + 16);
  h.duplicates_skipped = load<std::uint64_t>(p + 24);
  return h;
}

std::optional<reject_reason> check_verdict_record(const verdict_record& v) noexcept {
  // `!(x >= 0 && x <= 1)` is true for NaN as well.
  if (!(v.score >= 0.0f && v.score <= 1.0f)) return reject_reason::bad_score;
  if ((v.flags & verdict_flag_unscored) != 0 && v.score != 0.0f) return reject_reason::bad_score;
  if (v.decision > 2) return reject_reason::bad_decision;
  if ((v.flags & ~verdict_flag_unscored) != 0 || v.reserved != 0) return reject_reason::bad_reserved;
  return std::nullopt;
}

void frame_writer::begin(frame_type type, std::uint64_t epoch, std::uint64_t incarnation) {
  if (buf_.size() < header_bytes) buf_.resize(header_bytes);
  std::byte* p = buf_.data();
  store<std::uint32_t>(p + off_magic, protocol_magic);
  store<std::uint8_t>(p + off_version, protocol_version);
  store<std::uint8_t>(p + off_type, static_cast<std::uint8_t>(type));
  store<std::uint16_t>(p + off_count, 0);
  store<std::uint64_t>(p + off_epoch, epoch);
  store<std::uint64_t>(p + off_incarnation, incarnation);
  store<std::uint64_t>(p + off_checksum, 0);
  type_ = type;
  size_ = header_bytes;
  count_ = 0;
}

std::size_t frame_writer::capacity_records() const noexcept {
  const std::size_t rb = record_bytes(type_);
  if (rb == 0 || buf_.size() < header_bytes) return 0;
  return (buf_.size() - header_bytes) / rb;
}

void frame_writer::reserve_records(std::size_t n) {
  AEGIS_ASSERT(n <= max_records, "a frame never carries more than max_records");
  const std::size_t need = header_bytes + n * record_bytes(type_);
  // resize, not reserve: the encoder writes through data(), so the bytes must exist.
  if (buf_.size() < need) buf_.resize(need);
}

void frame_writer::add_txn(std::uint64_t seq, const txn& t, ns_t offload_ns) noexcept {
  AEGIS_ASSERT(type_ == frame_type::txn, "TXN records go in TXN frames");
  AEGIS_ASSERT(count_ < capacity_records() && count_ < max_records, "room was reserved for this record");
  std::byte* p = buf_.data() + size_;
  store<std::uint64_t>(p + 0, seq);
  store<std::uint64_t>(p + 8, t.txn_id);
  store<std::int64_t>(p + 16, t.amount_minor);
  store<std::int64_t>(p + 24, t.timestamp_ns);
  store<std::uint64_t>(p + 32, t.merchant_id);
  store<std::uint64_t>(p + 40, t.card_fp);
  std::memcpy(p + 48, t.currency.data(), 3);
  store<std::uint8_t>(p + 51, t.channel);
  store<std::uint32_t>(p + 52, t.mcc);
  store<std::int64_t>(p + 56, offload_ns);
  size_ += txn_record_bytes;
  ++count_;
}

void frame_writer::add_verdict(const verdict_record& v) noexcept {
  AEGIS_ASSERT(type_ == frame_type::verdict, "VERDICT records go in VERDICT frames");
  AEGIS_ASSERT(count_ < capacity_records() && count_ < max_records, "room was reserved for this record");
  std::byte* p = buf_.data() + size_;
  store<std::uint64_t>(p + 0, v.seq);
  store<std::uint64_t>(p + 8, v.txn_id);
  store<float>(p + 16, v.score);
  store<std::uint8_t>(p + 20, v.decision);
  store<std::uint8_t>(p + 21, v.flags);
  store<std::uint16_t>(p + 22, v.reserved);
  size_ += verdict_record_bytes;
  ++count_;
}

void frame_writer::add_hello(const hello_record& h) noexcept {
  AEGIS_ASSERT(type_ == frame_type::hello, "the status record goes in a HELLO frame");
  AEGIS_ASSERT(count_ == 0 && capacity_records() >= 1, "a HELLO carries exactly one status record, reserved first");
  std::byte* p = buf_.data() + size_;
  store<std::uint64_t>(p + 0, h.read_serial);
  store<std::uint32_t>(p + 8, h.heartbeat_ms);
  store<std::uint32_t>(p + 12, h.reserved);
  store<std::uint64_t>(p + 16, h.records_answered);
  store<std::uint64_t>(p + 24, h.duplicates_skipped);
  size_ += hello_record_bytes;
  ++count_;
}

std::span<const std::byte> frame_writer::finish() noexcept {
  AEGIS_ASSERT(size_ >= header_bytes, "begin() before finish()");
  AEGIS_ASSERT(size_ == header_bytes + count_ * record_bytes(type_), "the frame holds exactly count records");
  std::byte* p = buf_.data();
  store<std::uint16_t>(p + off_count, static_cast<std::uint16_t>(count_));
  const std::span<const std::byte> frame(buf_.data(), size_);
  store<std::uint64_t>(p + off_checksum, frame_checksum(frame));
  return frame;
}

std::vector<std::byte> encode_txn_frame(std::uint64_t epoch, std::span<const txn_record> records, std::uint64_t serial) {
  frame_writer w;
  w.begin(frame_type::txn, epoch, serial);
  w.reserve_records(records.size());
  for (const auto& r : records) w.add_txn(r.seq, r.t, r.offload_ns);
  const auto f = w.finish();
  return {f.begin(), f.end()};
}

std::vector<std::byte> encode_verdict_frame(std::uint64_t epoch, std::uint64_t incarnation,
                                            std::span<const verdict_record> records) {
  frame_writer w;
  w.begin(frame_type::verdict, epoch, incarnation);
  w.reserve_records(records.size());
  for (const auto& v : records) w.add_verdict(v);
  const auto f = w.finish();
  return {f.begin(), f.end()};
}

std::vector<std::byte> encode_hello_frame(std::uint64_t last_epoch, std::uint64_t incarnation, const hello_record& status) {
  frame_writer w;
  w.begin(frame_type::hello, last_epoch, incarnation);
  w.reserve_records(1);
  w.add_hello(status);
  const auto f = w.finish();
  return {f.begin(), f.end()};
}

}  // namespace aegis
