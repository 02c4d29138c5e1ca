// The simulator's bridge model answers the shared bridge vectors as the
// Python bridge does.
//
// What it proves: fed the frames of fixtures/bridge_vectors/*.json (written
// by fixtures/bridge_vectors/generate.py from the Python bridge's
// BridgeCore), the model's frame rules (sim/bridge_rules.hpp, the code
// bridge_model.cpp runs) send byte-identical HELLO frames at the same times
// and byte-identical VERDICT records, in the same order, with the same
// epochs, and end with the same counters (read serial, duplicates skipped,
// records answered, bad frames, last epoch).
//
// How: each incarnation of a file gets a fresh bridge_rules, driven as
// bridge_model::loop drives it (one wake-up per "receive" event, scored as
// one chunk, as the vectors' fast model is). The one intended difference in
// the bytes, stated in bridge_rules.hpp, is the grouping of verdict records
// into frames: the model answers each TXN frame's share of a chunk with its
// own VERDICT frame, BridgeCore a run of one epoch's frames with frames of up
// to 1024 records. The test encodes exactly that: it merges the model's
// consecutive VERDICT frames of one epoch, splits them at 1024 records,
// re-encodes them, and then requires every frame to be byte-identical.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sim/bridge_rules.hpp"

namespace aegis::sim {
namespace {

using bytes = std::vector<std::byte>;

bytes from_hex(const std::string& hex) {
  AEGIS_ASSERT(hex.size() % 2 == 0, "hex comes in pairs of digits");
  bytes out(hex.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<std::byte>(std::stoul(hex.substr(2 * i, 2), nullptr, 16));
  }
  return out;
}

std::uint64_t from_hex_u64(const std::string& text) { return std::stoull(text, nullptr, 16); }

// BridgeCore's grouping of the model's frames: consecutive VERDICT frames of
// one epoch become one stream of records, cut into frames of max_records.
std::vector<bytes> regroup(const std::vector<bytes>& frames, std::uint64_t incarnation) {
  std::vector<bytes> out;
  std::vector<verdict_record> pending;
  std::uint64_t pending_epoch = 0;
  auto flush = [&] {
    for (std::size_t lo = 0; lo < pending.size(); lo += max_records) {
      const std::size_t n = std::min(max_records, pending.size() - lo);
      out.push_back(encode_verdict_frame(pending_epoch, incarnation, std::span(pending).subspan(lo, n)));
    }
    pending.clear();
  };
  for (const bytes& raw : frames) {
    const decoded_frame f = decode_frame(raw);
    EXPECT_TRUE(f.ok()) << "the model sent a frame its own decoder rejects";
    if (f.header.type != frame_type::verdict) {
      flush();
      out.push_back(raw);
      continue;
    }
    EXPECT_EQ(f.header.incarnation, incarnation);
    if (!pending.empty() && f.header.epoch != pending_epoch) flush();
    pending_epoch = f.header.epoch;
    for (std::size_t i = 0; i < f.header.count; ++i) pending.push_back(f.verdict_at(i));
  }
  flush();
  return out;
}

std::string describe(const bytes& raw) {
  const decoded_frame f = decode_frame(raw);
  if (!f.ok()) return "an invalid frame";
  std::string s = f.header.type == frame_type::hello ? "HELLO" : "VERDICT";
  s += " epoch " + std::to_string(f.header.epoch) + " count " + std::to_string(f.header.count);
  if (f.header.type == frame_type::hello) {
    const hello_record h = f.hello();
    s += " read_serial " + std::to_string(h.read_serial) + " answered " + std::to_string(h.records_answered) +
         " duplicates " + std::to_string(h.duplicates_skipped) + " heartbeat_ms " + std::to_string(h.heartbeat_ms);
  } else if (f.header.count > 0) {
    const verdict_record v = f.verdict_at(0);
    s += " first seq " + std::to_string(v.seq) + " score " + std::to_string(v.score) + " decision " +
         std::to_string(v.decision) + " flags " + std::to_string(v.flags);
  }
  return s;
}

void run_file(const std::filesystem::path& path) {
  SCOPED_TRACE(path.filename().string());
  std::ifstream in{path};
  ASSERT_TRUE(in) << "cannot read " << path;
  const nlohmann::json doc = nlohmann::json::parse(in);
  const auto heartbeat_ns = doc.at("config").at("heartbeat_ns").get<ns_t>();
  const auto poison_ppm = doc.at("config").at("poison_ppm").get<std::uint32_t>();
  ASSERT_EQ(doc.at("config").at("unscored_decision").get<int>(), bridge_rules::unscored_decision)
      << "the model's fail-safe decision is review only";
  for (const nlohmann::json& inc_doc : doc.at("incarnations")) {
    const std::uint64_t incarnation = from_hex_u64(inc_doc.at("incarnation").get<std::string>());
    SCOPED_TRACE("incarnation " + inc_doc.at("incarnation").get<std::string>());
    bridge_rules rules{incarnation, heartbeat_ns, poison_ppm};
    frame_writer writer;
    std::uint64_t bad_frames = 0;
    std::size_t event_index = 0;
    for (const nlohmann::json& event : inc_doc.at("events")) {
      SCOPED_TRACE("event " + std::to_string(event_index++));
      const auto now_ns = event.at("now_ns").get<ns_t>();
      if (event.contains("offload_up")) {
        rules.set_offload_up(event.at("offload_up").get<bool>());
        continue;
      }
      std::vector<bytes> sent;
      if (event.contains("tick")) {
        if (rules.tick(now_ns)) sent.push_back(rules.hello());
      } else {
        rules.begin_wakeup();
        for (const nlohmann::json& hex : event.at("receive")) {
          const bytes raw = from_hex(hex.get<std::string>());
          if (rules.decode_next(raw) != nullptr) {
            ++bad_frames;
            continue;
          }
          rules.admit();
        }
        rules.complete_frames(0);
        rules.answer(0, rules.records().size(), writer,
                     [&](std::span<const std::byte> raw, std::span<const txn_record>) {
                       sent.emplace_back(raw.begin(), raw.end());
                     });
        rules.complete_frames(rules.records().size());
        ASSERT_EQ(rules.done_frames(), rules.frames().size()) << "every frame of the wake-up was answered";
      }
      const std::vector<bytes> got = regroup(sent, incarnation);
      const nlohmann::json& want = event.at("out");
      ASSERT_EQ(got.size(), want.size()) << "frames sent";
      for (std::size_t i = 0; i < got.size(); ++i) {
        const bytes expected = from_hex(want[i].get<std::string>());
        EXPECT_EQ(got[i], expected) << "frame " << i << ": model " << describe(got[i]) << "; BridgeCore "
                                    << describe(expected);
      }
    }
    const nlohmann::json& final_doc = inc_doc.at("final");
    EXPECT_EQ(rules.read_serial(), final_doc.at("read_serial").get<std::uint64_t>());
    EXPECT_EQ(rules.duplicates(), final_doc.at("duplicates_skipped").get<std::uint64_t>());
    EXPECT_EQ(rules.answered(), final_doc.at("verdict_records_sent").get<std::uint64_t>());
    EXPECT_EQ(bad_frames, final_doc.at("bad_frames").get<std::uint64_t>());
    EXPECT_EQ(rules.last_epoch(), from_hex_u64(final_doc.at("epoch").get<std::string>()));
  }
}

TEST(BridgeVectors, TheModelAnswersEveryVectorAsBridgeCoreDoes) {
  const std::filesystem::path dir = std::filesystem::path(AEGIS_FIXTURES_DIR) / "bridge_vectors";
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".json") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  ASSERT_GE(files.size(), 9u) << "the vectors of fixtures/bridge_vectors/ are checked in";
  for (const auto& f : files) run_file(f);
}

}  // namespace
}  // namespace aegis::sim
