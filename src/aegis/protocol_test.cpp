// Proves the protocol v2 codec: every record type round-trips field for
// field; the bytes match golden vectors built independently from
// docs/PROTOCOL.md with Python's struct and xxhash (so C++ and the Python
// bridge agree on every offset and on the checksum); and every malformed case
// the document lists is rejected with its own reason, including random
// corruption, without reading outside the input.
#include "aegis/protocol.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <random>
#include <set>
#include <string>

namespace aegis {
namespace {

std::vector<std::byte> from_hex(std::string_view hex) {
  std::vector<std::byte> out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<std::byte>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

txn sample_txn(std::uint64_t id) {
  txn t;
  t.txn_id = id;
  t.amount_minor = -250;
  t.timestamp_ns = 123456789;
  t.merchant_id = 77;
  t.card_fp = 0xabcdef;
  t.currency = {'E', 'U', 'R'};
  t.channel = 1;
  t.mcc = 5411;
  return t;
}

// Golden vectors: produced by
//   struct.pack('<IBBHQQ', magic, 2, type, count, epoch, inc_or_serial) + pack('<Q', xxh64(header24 + body)) + body
// with the records packed as '<QQqqQQ3sBIq' (TXN), '<QQfBBH' (VERDICT) and '<QIIQQ' (HELLO).
constexpr std::string_view golden_verdict =
    "414547530203010088776655443322119900000000000000467da4da1feb5d9807000000000000002a000000000000000000803e02000000";
constexpr std::string_view golden_unscored_verdict =
    "414547530203010088776655443322119900000000000000852bf4059ce1c2fd08000000000000002b000000000000000000000001010000";
constexpr std::string_view golden_hello =
    "414547530202010088776655443322119900000000000000cdac9ca3ac6ad1170c00000000000000c800000000000000b80b000000000000"
    "0700000000000000";
constexpr std::string_view golden_txn =
    "4145475302010100887766554433221101000000000000004b6ca5fbf0a0ea0d0500000000000000e90300000000000006ffffffffffffff"
    "15cd5b07000000004d00000000000000efcdab00000000004555520123150000b168de3a00000000";

TEST(Protocol, TxnFrameMatchesGoldenBytesFromTheDocument) {
  txn_record r{5, sample_txn(1001), 987654321};
  const auto bytes = encode_txn_frame(0x1122334455667788ULL, std::span(&r, 1));
  EXPECT_EQ(bytes, from_hex(golden_txn));
}

TEST(Protocol, VerdictFrameMatchesGoldenBytesFromTheDocument) {
  verdict_record v{7, 42, 0.25f, 2};
  const auto bytes = encode_verdict_frame(0x1122334455667788ULL, 0x99, std::span(&v, 1));
  EXPECT_EQ(bytes, from_hex(golden_verdict));
  verdict_record u{8, 43, 0.0f, 1, verdict_flag_unscored};
  EXPECT_EQ(encode_verdict_frame(0x1122334455667788ULL, 0x99, std::span(&u, 1)), from_hex(golden_unscored_verdict));
}

TEST(Protocol, HelloFrameMatchesGoldenBytesFromTheDocument) {
  const auto bytes = encode_hello_frame(0x1122334455667788ULL, 0x99, hello_record{12, 200, 0, 3000, 7});
  EXPECT_EQ(bytes, from_hex(golden_hello));
  const auto f = decode_frame(bytes);
  ASSERT_TRUE(f.ok()) << to_string(f.reject);
  const hello_record h = f.hello();
  EXPECT_EQ(h.read_serial, 12u);
  EXPECT_EQ(h.heartbeat_ms, 200u);
  EXPECT_EQ(h.records_answered, 3000u);
  EXPECT_EQ(h.duplicates_skipped, 7u);
}

TEST(Protocol, VerdictRecordChecksRejectEveryOutOfRangeField) {
  const auto nan = std::numeric_limits<float>::quiet_NaN();
  const auto inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(check_verdict_record({1, 1, 0.5f, 1}), std::nullopt);
  EXPECT_EQ(check_verdict_record({1, 1, 0.0f, 1, verdict_flag_unscored}), std::nullopt);
  EXPECT_EQ(check_verdict_record({1, 1, 1.0f, 2}), std::nullopt);
  EXPECT_EQ(check_verdict_record({1, 1, nan, 0}), reject_reason::bad_score);
  EXPECT_EQ(check_verdict_record({1, 1, inf, 0}), reject_reason::bad_score);
  EXPECT_EQ(check_verdict_record({1, 1, -0.1f, 0}), reject_reason::bad_score);
  EXPECT_EQ(check_verdict_record({1, 1, 1.5f, 0}), reject_reason::bad_score);
  EXPECT_EQ(check_verdict_record({1, 1, 0.3f, 1, verdict_flag_unscored}), reject_reason::bad_score);
  EXPECT_EQ(check_verdict_record({1, 1, 0.5f, 3}), reject_reason::bad_decision);
  EXPECT_EQ(check_verdict_record({1, 1, 0.5f, 255}), reject_reason::bad_decision);
  EXPECT_EQ(check_verdict_record({1, 1, 0.5f, 1, 0x02}), reject_reason::bad_reserved);
  EXPECT_EQ(check_verdict_record({1, 1, 0.5f, 1, 0, 1}), reject_reason::bad_reserved);
}

TEST(Protocol, TxnRoundTripKeepsEveryField) {
  std::vector<txn_record> recs;
  for (std::uint64_t i = 0; i < max_records; ++i) recs.push_back({i + 1, sample_txn(1000 + i), static_cast<ns_t>(i * 3)});
  const auto bytes = encode_txn_frame(99, recs);
  ASSERT_EQ(bytes.size(), max_frame_bytes);
  const auto f = decode_frame(bytes);
  ASSERT_TRUE(f.ok()) << to_string(f.reject);
  EXPECT_EQ(f.header.type, frame_type::txn);
  EXPECT_EQ(f.header.epoch, 99u);
  EXPECT_EQ(f.header.incarnation, 1u) << "a TXN frame's serial";
  ASSERT_EQ(f.header.count, max_records);
  for (std::size_t i = 0; i < recs.size(); ++i) {
    const auto r = f.txn_at(i);
    EXPECT_EQ(r.seq, recs[i].seq);
    EXPECT_EQ(r.t.txn_id, recs[i].t.txn_id);
    EXPECT_EQ(r.t.amount_minor, recs[i].t.amount_minor);
    EXPECT_EQ(r.t.timestamp_ns, recs[i].t.timestamp_ns);
    EXPECT_EQ(r.t.merchant_id, recs[i].t.merchant_id);
    EXPECT_EQ(r.t.card_fp, recs[i].t.card_fp);
    EXPECT_EQ(r.t.currency, recs[i].t.currency);
    EXPECT_EQ(r.t.channel, recs[i].t.channel);
    EXPECT_EQ(r.t.mcc, recs[i].t.mcc);
    EXPECT_EQ(r.offload_ns, recs[i].offload_ns);
  }
}

TEST(Protocol, VerdictAndHelloRoundTrip) {
  std::vector<verdict_record> vs{{1, 10, 0.5f, 0}, {2, 20, 1.0f, 2}, {3, 30, 0.0f, 1}};
  // The bytes outlive the decoded view (decoded_frame::records points into them; ASan caught a temporary).
  const auto bytes = encode_verdict_frame(5, 6, vs);
  const auto f = decode_frame(bytes);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f.header.type, frame_type::verdict);
  EXPECT_EQ(f.header.incarnation, 6u);
  ASSERT_EQ(f.header.count, 3);
  for (std::size_t i = 0; i < vs.size(); ++i) {
    EXPECT_EQ(f.verdict_at(i).seq, vs[i].seq);
    EXPECT_EQ(f.verdict_at(i).txn_id, vs[i].txn_id);
    EXPECT_EQ(f.verdict_at(i).score, vs[i].score);
    EXPECT_EQ(f.verdict_at(i).decision, vs[i].decision);
  }
  const auto hello_bytes = encode_hello_frame(5, 77);
  const auto h = decode_frame(hello_bytes);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h.header.type, frame_type::hello);
  EXPECT_EQ(h.header.count, 1);
  EXPECT_EQ(h.header.epoch, 5u);
  EXPECT_EQ(h.header.incarnation, 77u);
}

TEST(Protocol, WriterReusesItsBufferAcrossFramesOfDifferentTypes) {
  frame_writer w;
  w.begin(frame_type::txn, 1, 0);
  w.reserve_records(4);
  for (int i = 0; i < 4; ++i) w.add_txn(i + 1, sample_txn(i), 0);
  EXPECT_TRUE(decode_frame(w.finish()).ok());
  w.begin(frame_type::verdict, 1, 2);
  w.reserve_records(2);
  w.add_verdict({1, 0, 0.1f, 0});
  const auto f = decode_frame(w.finish());
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f.header.count, 1);
  EXPECT_EQ(f.records.size(), verdict_record_bytes);
}

// Writes a header field without fixing the checksum, then recomputes the
// checksum so that only the intended check can fail.
std::vector<std::byte> with_byte(std::vector<std::byte> f, std::size_t at, std::uint8_t value, bool fix_checksum = true) {
  f[at] = static_cast<std::byte>(value);
  if (fix_checksum && f.size() >= header_bytes) {
    const std::uint64_t c = frame_checksum(f);
    std::memcpy(f.data() + 24, &c, 8);
  }
  return f;
}

std::vector<std::byte> valid_verdict_frame(std::size_t n = 2) {
  std::vector<verdict_record> vs;
  for (std::size_t i = 0; i < n; ++i) vs.push_back({i + 1, i + 100, 0.5f, 1});
  return encode_verdict_frame(3, 4, vs);
}

reject_reason reason_of(std::span<const std::byte> f) {
  const auto d = decode_frame(f);
  EXPECT_FALSE(d.ok());
  return d.reject;
}

TEST(Protocol, RejectsTruncatedFrames) {
  const auto f = valid_verdict_frame();
  EXPECT_EQ(reason_of(std::span(f).first(0)), reject_reason::truncated);
  EXPECT_EQ(reason_of(std::span(f).first(header_bytes - 1)), reject_reason::truncated);
  // A whole header but a cut record is a length mismatch, not truncation.
  EXPECT_EQ(reason_of(std::span(f).first(f.size() - 1)), reject_reason::bad_length);
}

TEST(Protocol, RejectsOversizedFrames) {
  std::vector<std::byte> big(max_frame_bytes + 1);
  EXPECT_EQ(reason_of(big), reject_reason::oversized);
}

TEST(Protocol, RejectsBadMagicVersionAndType) {
  const auto f = valid_verdict_frame();
  EXPECT_EQ(reason_of(with_byte(f, 0, 'X')), reject_reason::bad_magic);
  EXPECT_EQ(reason_of(with_byte(f, 4, 1)), reject_reason::bad_version) << "a version-1 frame";
  EXPECT_EQ(reason_of(with_byte(f, 4, 3)), reject_reason::bad_version);
  EXPECT_EQ(reason_of(with_byte(f, 4, 0)), reject_reason::bad_version);
  EXPECT_EQ(reason_of(with_byte(f, 5, 0)), reject_reason::bad_type);
  EXPECT_EQ(reason_of(with_byte(f, 5, 4)), reject_reason::bad_type);
  EXPECT_EQ(reason_of(with_byte(f, 5, 255)), reject_reason::bad_type);
}

TEST(Protocol, RejectsLengthsThatDisagreeWithTheCount) {
  const auto f = valid_verdict_frame(2);
  EXPECT_EQ(reason_of(with_byte(f, 6, 3)), reject_reason::bad_length);  // count 3, two records
  EXPECT_EQ(reason_of(with_byte(f, 6, 1)), reject_reason::bad_length);  // count 1, two records
  auto longer = f;
  longer.push_back(std::byte{0});
  EXPECT_EQ(reason_of(longer), reject_reason::bad_length);
  // A VERDICT frame type-switched to TXN no longer matches its length.
  EXPECT_EQ(reason_of(with_byte(f, 5, 1)), reject_reason::bad_length);
  // count > max_records even when the length matches it (1025 VERDICT records fit in max_frame_bytes).
  std::vector<std::byte> over(header_bytes + (max_records + 1) * verdict_record_bytes);
  const auto hdr = valid_verdict_frame(0);
  std::memcpy(over.data(), hdr.data(), header_bytes);
  const std::uint16_t c = max_records + 1;
  std::memcpy(over.data() + 6, &c, 2);
  const std::uint64_t sum = frame_checksum(over);
  std::memcpy(over.data() + 24, &sum, 8);
  EXPECT_EQ(reason_of(over), reject_reason::bad_length);
  // A HELLO carries exactly one status record: count 0 or 2 is a length error.
  EXPECT_EQ(reason_of(with_byte(encode_hello_frame(1, 2), 6, 0)), reject_reason::bad_length);
  EXPECT_EQ(reason_of(with_byte(encode_hello_frame(1, 2), 6, 2)), reject_reason::bad_length);
  const auto hello = encode_hello_frame(1, 2);
  EXPECT_EQ(reason_of(std::span(hello).first(header_bytes)), reject_reason::bad_length) << "a v1-sized HELLO";
}

TEST(Protocol, RejectsBadChecksums) {
  const auto f = valid_verdict_frame();
  EXPECT_EQ(reason_of(with_byte(f, header_bytes + 3, 0x5a, false)), reject_reason::bad_checksum);  // a record byte
  EXPECT_EQ(reason_of(with_byte(f, 10, 0x5a, false)), reject_reason::bad_checksum);  // the epoch
  EXPECT_EQ(reason_of(with_byte(f, 25, static_cast<std::uint8_t>(static_cast<int>(f[25]) ^ 1), false)),
            reject_reason::bad_checksum);  // the checksum itself
}

TEST(Protocol, NamesEveryReason) {
  std::set<std::string> names;
  for (auto r : all_reject_reasons) names.insert(to_string(r));
  EXPECT_EQ(names.size(), reject_reason_count);
  EXPECT_EQ(names.count("?"), 0u);
}

// Random corruption (bit flips, cuts, garbage) must be either rejected or,
// vanishingly rarely, still a self-consistent frame; never a crash or an
// out-of-bounds read (run under ASan to see the latter).
TEST(Protocol, RandomCorruptionNeverCrashes) {
  std::mt19937_64 rng(12345);
  const auto base = valid_verdict_frame(8);
  int rejected = 0;
  for (int i = 0; i < 20000; ++i) {
    auto f = base;
    switch (rng() % 3) {
      case 0: f[rng() % f.size()] ^= static_cast<std::byte>(1u << (rng() % 8)); break;
      case 1: f.resize(rng() % f.size()); break;
      default: for (auto& b : f) b = static_cast<std::byte>(rng()); break;
    }
    const auto d = decode_frame(f);
    if (!d.ok()) {
      ++rejected;
    } else {
      EXPECT_EQ(d.records.size(), d.header.count * record_bytes(d.header.type));
    }
  }
  EXPECT_EQ(rejected, 20000) << "no corruption of a checksummed frame should pass";
}

}  // namespace
}  // namespace aegis
