// libFuzzer target: the protocol v1 frame/record codec (src/aegis/protocol).
//
// What it proves, for every input:
//  1. decode_frame never crashes, never reads outside the input (ASan), and
//     rejects exactly by the documented first failing check for the cases a
//     length alone decides (truncated, oversized).
//  2. Decoding is the inverse of encoding on everything it accepts:
//     re-encoding a valid frame's header and records reproduces a frame that
//     decodes to the same fields; for TXN and HELLO frames the bytes are
//     identical (every byte is a field), for VERDICT frames they are identical
//     except the 3 reserved bytes, which the encoder zeroes.
//  3. The same input with its checksum fixed up (so the fuzzer gets past the
//     XXH64 check cheaply) is decided by the structural checks alone: it is
//     never rejected as bad_checksum.
//  4. Encoding is the inverse of decoding: records built from the input
//     bytes (FuzzedDataProvider) encode to a frame that decodes valid, with
//     exactly those records.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "aegis/assert.hpp"
#include "aegis/protocol.hpp"

namespace {

using namespace aegis;

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

bool same_txn(const txn_record& a, const txn_record& b) {
  return a.seq == b.seq && a.t.txn_id == b.t.txn_id && a.t.amount_minor == b.t.amount_minor &&
         a.t.timestamp_ns == b.t.timestamp_ns && a.t.merchant_id == b.t.merchant_id && a.t.card_fp == b.t.card_fp &&
         a.t.currency == b.t.currency && a.t.channel == b.t.channel && a.t.mcc == b.t.mcc &&
         a.offload_ns == b.offload_ns;
}

bool same_verdict(const verdict_record& a, const verdict_record& b) {
  return a.seq == b.seq && a.txn_id == b.txn_id && same_bits(a.score, b.score) && a.decision == b.decision &&
         a.flags == b.flags && a.reserved == b.reserved;
}

// Re-encodes a valid frame from its decoded fields.
std::vector<std::byte> reencode(const decoded_frame& f) {
  frame_writer w;
  w.begin(f.header.type, f.header.epoch, f.header.incarnation);
  w.reserve_records(f.header.count);
  for (std::size_t i = 0; i < f.header.count; ++i) {
    if (f.header.type == frame_type::txn) {
      const txn_record r = f.txn_at(i);
      w.add_txn(r.seq, r.t, r.offload_ns);
    } else if (f.header.type == frame_type::hello) {
      w.add_hello(f.hello());
    } else {
      w.add_verdict(f.verdict_at(i));
      // The core's record checks decide on any bytes without crashing.
      (void)check_verdict_record(f.verdict_at(i));
    }
  }
  const auto out = w.finish();
  return {out.begin(), out.end()};
}

void check_decode(std::span<const std::byte> in) {
  const decoded_frame f = decode_frame(in);
  if (in.size() < header_bytes) AEGIS_ASSERT(!f.ok() && f.reject == reject_reason::truncated, "short input is truncated");
  if (in.size() > max_frame_bytes) AEGIS_ASSERT(!f.ok() && f.reject == reject_reason::oversized, "long input is oversized");
  if (!f.ok()) {
    AEGIS_ASSERT(f.reject != reject_reason::wrong_epoch && f.reject != reject_reason::forged &&
                     f.reject != reject_reason::unexpected_type,
                 "decode_frame only names the reasons it decides");
    return;
  }
  AEGIS_ASSERT(f.header.version == protocol_version, "a valid frame has our version");
  AEGIS_ASSERT(f.header.count <= max_records, "a valid frame has at most max_records records");
  AEGIS_ASSERT(f.records.size() == f.header.count * record_bytes(f.header.type), "records fill the frame");
  AEGIS_ASSERT(f.records.data() == in.data() + header_bytes, "records view the input, after the header");

  const std::vector<std::byte> again = reencode(f);
  AEGIS_ASSERT(again.size() == in.size(), "re-encoding keeps the frame size");
  const decoded_frame g = decode_frame(again);
  AEGIS_ASSERT(g.ok(), "a re-encoded valid frame decodes");
  AEGIS_ASSERT(g.header.type == f.header.type && g.header.count == f.header.count &&
                   g.header.epoch == f.header.epoch && g.header.incarnation == f.header.incarnation,
               "decode(encode(decode(x))) keeps the header");
  for (std::size_t i = 0; i < f.header.count; ++i) {
    if (f.header.type == frame_type::txn) {
      AEGIS_ASSERT(same_txn(f.txn_at(i), g.txn_at(i)), "decode(encode(decode(x))) keeps every TXN record");
    } else if (f.header.type == frame_type::verdict) {
      AEGIS_ASSERT(same_verdict(f.verdict_at(i), g.verdict_at(i)), "decode(encode(decode(x))) keeps every VERDICT");
    }
  }
  // Every field is decoded, flags and reserved bytes included, so every
  // valid frame re-encodes byte for byte.
  AEGIS_ASSERT(std::memcmp(again.data(), in.data(), in.size()) == 0, "valid frames re-encode byte for byte");
}

// Encodes records drawn from the input, decodes them back.
void check_encode(FuzzedDataProvider& p) {
  const auto epoch = p.ConsumeIntegral<std::uint64_t>();
  const auto incarnation = p.ConsumeIntegral<std::uint64_t>();
  const auto n = p.ConsumeIntegralInRange<std::size_t>(0, 64);
  if (p.ConsumeBool()) {
    std::vector<txn_record> rs(n);
    for (txn_record& r : rs) {
      r.seq = p.ConsumeIntegral<std::uint64_t>();
      r.t.txn_id = p.ConsumeIntegral<std::uint64_t>();
      r.t.amount_minor = p.ConsumeIntegral<std::int64_t>();
      r.t.timestamp_ns = p.ConsumeIntegral<std::int64_t>();
      r.t.merchant_id = p.ConsumeIntegral<std::uint64_t>();
      r.t.card_fp = p.ConsumeIntegral<std::uint64_t>();
      for (char& c : r.t.currency) c = static_cast<char>(p.ConsumeIntegral<std::uint8_t>());
      r.t.channel = p.ConsumeIntegral<std::uint8_t>();
      r.t.mcc = p.ConsumeIntegral<std::uint32_t>();
      r.offload_ns = p.ConsumeIntegral<std::int64_t>();
    }
    const auto bytes = encode_txn_frame(epoch, rs);
    const decoded_frame f = decode_frame(bytes);
    AEGIS_ASSERT(f.ok() && f.header.type == frame_type::txn && f.header.count == n && f.header.epoch == epoch,
                 "an encoded TXN frame decodes with its header");
    for (std::size_t i = 0; i < n; ++i) AEGIS_ASSERT(same_txn(f.txn_at(i), rs[i]), "decode(encode(x)) == x for TXN");
  } else {
    std::vector<verdict_record> vs(n);
    for (verdict_record& v : vs) {
      v.seq = p.ConsumeIntegral<std::uint64_t>();
      v.txn_id = p.ConsumeIntegral<std::uint64_t>();
      const auto bits = p.ConsumeIntegral<std::uint32_t>();
      std::memcpy(&v.score, &bits, sizeof bits);  // Any bit pattern, NaNs included, travels unchanged.
      v.decision = p.ConsumeIntegral<std::uint8_t>();
      v.flags = p.ConsumeIntegral<std::uint8_t>();
      v.reserved = p.ConsumeIntegral<std::uint16_t>();
    }
    const auto bytes = encode_verdict_frame(epoch, incarnation, vs);
    const decoded_frame f = decode_frame(bytes);
    AEGIS_ASSERT(f.ok() && f.header.type == frame_type::verdict && f.header.count == n && f.header.epoch == epoch &&
                     f.header.incarnation == incarnation,
                 "an encoded VERDICT frame decodes with its header");
    for (std::size_t i = 0; i < n; ++i) {
      AEGIS_ASSERT(same_verdict(f.verdict_at(i), vs[i]), "decode(encode(x)) == x for VERDICT");
    }
  }
  hello_record status;
  status.read_serial = p.ConsumeIntegral<std::uint64_t>();
  status.heartbeat_ms = p.ConsumeIntegral<std::uint32_t>();
  status.reserved = p.ConsumeIntegral<std::uint32_t>();
  status.records_answered = p.ConsumeIntegral<std::uint64_t>();
  status.duplicates_skipped = p.ConsumeIntegral<std::uint64_t>();
  const auto hello = encode_hello_frame(epoch, incarnation, status);
  const decoded_frame h = decode_frame(hello);
  AEGIS_ASSERT(h.ok() && h.header.type == frame_type::hello && h.header.count == 1 && h.header.epoch == epoch &&
                   h.header.incarnation == incarnation,
               "an encoded HELLO decodes");
  const hello_record back = h.hello();
  AEGIS_ASSERT(back.read_serial == status.read_serial && back.heartbeat_ms == status.heartbeat_ms &&
                   back.reserved == status.reserved && back.records_answered == status.records_answered &&
                   back.duplicates_skipped == status.duplicates_skipped,
               "decode(encode(x)) == x for a HELLO's status record");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The input is copied into a buffer of exactly its size, so ASan catches a
  // read one byte past the frame.
  std::vector<std::byte> in(size);
  if (size != 0) std::memcpy(in.data(), data, size);
  check_decode(in);

  if (size >= header_bytes && size <= max_frame_bytes) {
    std::vector<std::byte> fixed = in;
    const std::uint64_t sum = frame_checksum(fixed);
    std::memcpy(fixed.data() + 24, &sum, sizeof sum);
    const decoded_frame f = decode_frame(fixed);
    AEGIS_ASSERT(f.ok() || f.reject != reject_reason::bad_checksum, "a fixed-up checksum is never bad_checksum");
    check_decode(fixed);
  }

  FuzzedDataProvider p(data, size);
  check_encode(p);
  return 0;
}
