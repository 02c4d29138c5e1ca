// Proves the C++ decoder reads the shared protocol vectors
// (fixtures/protocol/*.json, packed independently from docs/PROTOCOL.md with
// Python's struct and xxhash) exactly as the document says: every valid frame
// decodes to the listed header and record fields, every rejected frame is
// rejected with the listed reason, and re-encoding a valid frame's records
// gives back the same bytes; and the core's VERDICT record checks
// (check_verdict_record) name the reason verdict_checks.json lists. The Python bridge and the simulator's bridge
// model run the same vectors, so all decoders agree byte for byte.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "aegis/protocol.hpp"

namespace aegis {
namespace {

std::vector<std::byte> from_hex(const std::string& hex) {
  std::vector<std::byte> out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<std::byte>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

nlohmann::json load(const char* name) {
  std::ifstream f(std::string(AEGIS_PROTOCOL_VECTORS_DIR) + "/" + name);
  EXPECT_TRUE(f.good()) << "missing vector file " << name;
  return nlohmann::json::parse(f);
}

const char* type_name(frame_type t) {
  switch (t) {
    case frame_type::txn: return "txn";
    case frame_type::hello: return "hello";
    case frame_type::verdict: return "verdict";
  }
  return "?";
}

void check_vector(const nlohmann::json& v) {
  SCOPED_TRACE(v.at("name").get<std::string>());
  const auto bytes = from_hex(v.at("hex").get<std::string>());
  const auto& expect = v.at("expect");
  const decoded_frame f = decode_frame(bytes);
  ASSERT_EQ(f.ok(), expect.at("valid").get<bool>()) << (f.ok() ? "accepted" : to_string(f.reject));
  if (!f.ok()) {
    EXPECT_EQ(to_string(f.reject), expect.at("reason").get<std::string>());
    return;
  }
  EXPECT_EQ(type_name(f.header.type), expect.at("type").get<std::string>());
  EXPECT_EQ(f.header.count, expect.at("count").get<std::uint64_t>());
  EXPECT_EQ(f.header.epoch, expect.at("epoch").get<std::uint64_t>());
  // TXN frames carry the core's frame serial where the others carry the bridge's incarnation.
  EXPECT_EQ(f.header.incarnation, expect.at(f.header.type == frame_type::txn ? "serial" : "incarnation").get<std::uint64_t>());
  EXPECT_EQ(frame_checksum(bytes), expect.at("checksum").get<std::uint64_t>());
  const auto& records = expect.at("records");
  ASSERT_EQ(records.size(), f.header.count);
  if (f.header.type == frame_type::txn) {
    std::vector<txn_record> decoded;
    for (std::size_t i = 0; i < records.size(); ++i) {
      const auto r = f.txn_at(i);
      const auto& e = records[i];
      EXPECT_EQ(r.seq, e.at("seq").get<std::uint64_t>());
      EXPECT_EQ(r.t.txn_id, e.at("txn_id").get<std::uint64_t>());
      EXPECT_EQ(r.t.amount_minor, e.at("amount_minor").get<std::int64_t>());
      EXPECT_EQ(r.t.timestamp_ns, e.at("timestamp_ns").get<std::int64_t>());
      EXPECT_EQ(r.t.merchant_id, e.at("merchant_id").get<std::uint64_t>());
      EXPECT_EQ(r.t.card_fp, e.at("card_fp").get<std::uint64_t>());
      EXPECT_EQ(std::string(r.t.currency.data(), 3), e.at("currency").get<std::string>());
      EXPECT_EQ(r.t.channel, e.at("channel").get<std::uint64_t>());
      EXPECT_EQ(r.t.mcc, e.at("mcc").get<std::uint64_t>());
      EXPECT_EQ(r.offload_ns, e.at("offload_ns").get<std::int64_t>());
      decoded.push_back(r);
    }
    EXPECT_EQ(encode_txn_frame(f.header.epoch, decoded, f.header.incarnation), bytes) << "re-encoding gives the same bytes";
  } else if (f.header.type == frame_type::verdict) {
    std::vector<verdict_record> decoded;
    for (std::size_t i = 0; i < records.size(); ++i) {
      const auto r = f.verdict_at(i);
      const auto& e = records[i];
      EXPECT_EQ(r.seq, e.at("seq").get<std::uint64_t>());
      EXPECT_EQ(r.txn_id, e.at("txn_id").get<std::uint64_t>());
      std::uint32_t bits = 0;
      std::memcpy(&bits, &r.score, 4);
      if (e.contains("score_bits")) {
        const auto& sb = e.at("score_bits");
        const std::uint64_t want = sb.is_string() ? std::stoull(sb.get<std::string>(), nullptr, 16) : sb.get<std::uint64_t>();
        EXPECT_EQ(bits, want);
      }
      EXPECT_EQ(r.decision, e.at("decision").get<std::uint64_t>());
      if (e.contains("flags")) EXPECT_EQ(r.flags, e.at("flags").get<std::uint64_t>());
      if (e.contains("reserved")) EXPECT_EQ(r.reserved, e.at("reserved").get<std::uint64_t>());
      decoded.push_back(r);
    }
    // Flags and reserved bytes are decoded as they are, so re-encoding is exact.
    EXPECT_EQ(encode_verdict_frame(f.header.epoch, f.header.incarnation, decoded), bytes);
    // The core's record checks, where the vector states what they must say.
    if (expect.contains("record_reject")) {
      ASSERT_EQ(decoded.size(), 1u);
      const auto why = check_verdict_record(decoded[0]);
      const auto& want = expect.at("record_reject");
      if (want.is_null()) {
        EXPECT_EQ(why, std::nullopt) << "rejected as " << to_string(*why);
      } else {
        ASSERT_TRUE(why.has_value()) << "applied, but the vector says " << want.get<std::string>();
        EXPECT_EQ(to_string(*why), want.get<std::string>());
      }
    }
  } else {
    const hello_record h = f.hello();
    const auto& e = records[0];
    EXPECT_EQ(h.read_serial, e.at("read_serial").get<std::uint64_t>());
    EXPECT_EQ(h.heartbeat_ms, e.at("heartbeat_ms").get<std::uint64_t>());
    EXPECT_EQ(h.reserved, e.at("reserved").get<std::uint64_t>());
    EXPECT_EQ(h.records_answered, e.at("records_answered").get<std::uint64_t>());
    EXPECT_EQ(h.duplicates_skipped, e.at("duplicates_skipped").get<std::uint64_t>());
    EXPECT_EQ(encode_hello_frame(f.header.epoch, f.header.incarnation, h), bytes);
  }
}

class ProtocolVectors : public ::testing::TestWithParam<const char*> {};

TEST_P(ProtocolVectors, DecoderAgreesWithEveryVector) {
  const auto doc = load(GetParam());
  EXPECT_EQ(doc.at("protocol_version").get<int>(), protocol_version);
  ASSERT_FALSE(doc.at("vectors").empty());
  for (const auto& v : doc.at("vectors")) check_vector(v);
}

INSTANTIATE_TEST_SUITE_P(Files, ProtocolVectors,
                         ::testing::Values("valid.json", "rejected.json", "limits.json", "verdict_checks.json"));

}  // namespace
}  // namespace aegis
