// Proves the command-line parsers accept exactly the documented spellings
// (decimal, 0x-hex, 40-hex commit hashes; durations with units) and reject
// everything else without throwing, and that fault plans print and parse
// back to the same value, so a reproduce line replays the same plan.
// Also runs the shared protocol vectors (fixtures/protocol/*.json) through the
// bridge model's decoder path, so the model cannot drift from the protocol.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include <xxhash.h>

#include "sim/bridge_model.hpp"
#include "sim/prng.hpp"
#include "sim/scenario.hpp"
#include "sim/seed.hpp"

namespace aegis::sim {
namespace {

TEST(Seed, AcceptsDecimalHexAndCommitHashes) {
  EXPECT_EQ(parse_seed("42"), 42u);
  EXPECT_EQ(parse_seed("0x2a"), 42u);
  EXPECT_EQ(parse_seed("0X2A"), 42u);
  EXPECT_EQ(parse_seed("18446744073709551615"), UINT64_MAX);
  EXPECT_EQ(parse_seed("0xffffffffffffffff"), UINT64_MAX);
  const auto a = parse_seed("9fceb02d0ae598e95dc970b74767f19372d61af8");
  const auto b = parse_seed("9FCEB02D0AE598E95DC970B74767F19372D61AF8");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a, b) << "a commit hash is case-insensitive";
  EXPECT_NE(a, parse_seed("9fceb02d0ae598e95dc970b74767f19372d61af9"));
}

TEST(Seed, RejectsEverythingElse) {
  for (const char* bad : {"", "-1", "18446744073709551616", "0x", "0x10000000000000000", "12a", " 1", "1 ",
                          "9fceb02d0ae598e95dc970b74767f19372d61afg", "0x-1", "+5"}) {
    EXPECT_FALSE(parse_seed(bad).has_value()) << bad;
  }
}

TEST(Duration, ParsesAndFormatsRoundTrip) {
  EXPECT_EQ(parse_duration("30s"), 30'000'000'000);
  EXPECT_EQ(parse_duration("250ms"), 250'000'000);
  EXPECT_EQ(parse_duration("7ns"), 7);
  EXPECT_EQ(parse_duration("2m"), 120'000'000'000);
  // A bare number has no unit and is refused (it once meant seconds here).
  for (const char* bad : {"", "30", "s", "1.5s", "-1s", "10x", "99999999999999999999s", "9999999999h"}) {
    EXPECT_FALSE(parse_duration(bad).has_value()) << bad;
  }
  for (ns_t v : {ns_t{0}, ns_t{1}, ns_t{1500}, ns_t{250'000'000}, ns_t{30'000'000'000}, ns_t{3'600'000'000'001}}) {
    EXPECT_EQ(parse_duration(format_duration(v)), v) << format_duration(v);
  }
}

TEST(FaultPlan, PrintsAndParsesBack) {
  for (std::uint64_t seed = 0; seed < 50; ++seed) {
    const fault_plan p = default_fault_plan(seed, 30'000'000'000);
    const auto q = parse_fault_plan(p.to_string());
    ASSERT_TRUE(q.has_value()) << p.to_string();
    EXPECT_EQ(*q, p) << p.to_string();
  }
  std::string error;
  EXPECT_FALSE(parse_fault_plan("crash@1s", &error).has_value());
  EXPECT_FALSE(error.empty());
  EXPECT_FALSE(parse_fault_plan("explode@1s/1s").has_value());
  EXPECT_FALSE(parse_fault_plan("slow@1s/1s/0").has_value());
  EXPECT_EQ(parse_fault_plan("none")->to_string(), "none");
}

TEST(Scenario, DerivationIsAFunctionOfTheSeedAndGivenValuesStick) {
  scenario s;
  s.seed = 99;
  const scenario a = derive(s), b = derive(s);
  EXPECT_EQ(a.reproduce_command(), b.reproduce_command());
  s.producers = 3;
  const scenario c = derive(s);
  EXPECT_EQ(*c.producers, 3u);
  EXPECT_EQ(*c.ring_capacity, *a.ring_capacity) << "giving one parameter does not shift the others";
  EXPECT_EQ(*c.rate_per_s, *a.rate_per_s);
}

// ------------------------------------------------------------ protocol vectors

std::vector<std::byte> from_hex(const std::string& hex) {
  std::vector<std::byte> out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<std::byte>(std::stoul(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

void run_vectors(const std::string& file) {
  std::ifstream in{std::string(AEGIS_FIXTURES_DIR) + "/protocol/" + file};
  ASSERT_TRUE(in.good()) << "missing fixtures/protocol/" << file;
  const nlohmann::json doc = nlohmann::json::parse(in);
  ASSERT_EQ(doc.at("protocol_version").get<int>(), protocol_version);
  std::size_t checked = 0;
  for (const auto& v : doc.at("vectors")) {
    SCOPED_TRACE(v.at("name").get<std::string>());
    const auto bytes = from_hex(v.at("hex").get<std::string>());
    const auto r = bridge_model::decode(bytes);
    const auto& expect = v.at("expect");
    if (!expect.at("valid").get<bool>()) {
      EXPECT_FALSE(r.ok);
      EXPECT_EQ(r.reason, expect.at("reason").get<std::string>());
    } else if (expect.at("type") == "txn") {
      ASSERT_TRUE(r.ok) << r.reason;
      EXPECT_EQ(r.frame.header.epoch, expect.at("epoch").get<std::uint64_t>());
      ASSERT_EQ(r.records.size(), expect.at("records").size());
      for (std::size_t i = 0; i < r.records.size(); ++i) {
        const auto& e = expect.at("records")[i];
        EXPECT_EQ(r.records[i].seq, e.at("seq").get<std::uint64_t>());
        EXPECT_EQ(r.records[i].t.txn_id, e.at("txn_id").get<std::uint64_t>());
        EXPECT_EQ(r.records[i].t.amount_minor, e.at("amount_minor").get<std::int64_t>());
        EXPECT_EQ(r.records[i].offload_ns, e.at("offload_ns").get<std::int64_t>());
        EXPECT_EQ(r.records[i].t.mcc, e.at("mcc").get<std::uint32_t>());
      }
    } else {
      // A valid HELLO or VERDICT reaching the bridge's PULL is counted as bad.
      EXPECT_FALSE(r.ok);
      EXPECT_EQ(r.reason, "unexpected_type");
    }
    ++checked;
  }
  EXPECT_GT(checked, 0u);
}

TEST(ProtocolVectors, ValidFramesThroughTheBridgeModel) { run_vectors("valid.json"); }
TEST(ProtocolVectors, RejectedFramesThroughTheBridgeModel) { run_vectors("rejected.json"); }
TEST(ProtocolVectors, LimitFramesThroughTheBridgeModel) { run_vectors("limits.json"); }

// The model's verdict is XXH64(txn id, seed 0x5eed) mod 1000, computed by a
// hand-written XXH64 for 8 bytes: it must agree with the library everywhere.
TEST(BridgeModel, ScoreIsTheLibraryXxh64OfTheTxnId) {
  prng r{99};
  for (int i = 0; i < 10'000; ++i) {
    txn_record rec{};
    rec.seq = static_cast<std::uint64_t>(i) + 1;
    rec.t.txn_id = i < 3 ? static_cast<std::uint64_t>(i) * UINT64_MAX / 2 : r.next();
    const std::uint64_t h = XXH64(&rec.t.txn_id, sizeof rec.t.txn_id, 0x5eed);
    const auto milli = static_cast<std::uint32_t>(h % 1000);
    const verdict_record v = bridge_model::score(rec);
    ASSERT_EQ(v.score, static_cast<float>(milli) / 1000.0f) << "txn " << rec.t.txn_id;
    ASSERT_EQ(v.decision, milli >= 950 ? 2 : milli >= 800 ? 1 : 0);
    ASSERT_EQ(v.seq, rec.seq);
    ASSERT_EQ(v.txn_id, rec.t.txn_id);
  }
}

}  // namespace
}  // namespace aegis::sim
