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
//
// The vectors are a few chosen cases. The differential property
// (BridgeDifferential) feeds the same arbitrary frame sequences to the
// model's rules and to BridgeCore itself, in the embedded interpreter
// (sim/python/aegis_sim_differential.py): fresh records, duplicates within
// and across wake-ups, gaps in seqs, resends mixed with new records, three
// core epochs interleaved, malformed frames of every kind the decoder
// checks, frames of the wrong type, and the passing of time. It requires
// the same bytes after the same regrouping, and the same counters. Seqs
// stay below the model's dedupe table (the other stated difference).
// Replay a failure with the RC_PARAMS="reproduce=..." line rapidcheck prints.
#include <gtest/gtest.h>
#include <pybind11/embed.h>
#include <pybind11/stl.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <array>
#include <cstring>
#include <filesystem>
#include <optional>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sim/bridge_rules.hpp"
#include "sim/python_bridge.hpp"

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

// A frame the model sent, with the run of TXN frames it answers: BridgeCore
// answers one epoch's consecutive TXN frames (a run) at a time.
struct sent_frame {
  bytes raw;
  std::size_t run = 0;  // Runs counted from 1 within a wake-up; 0: a HELLO.
};

// BridgeCore's grouping of the model's frames: the VERDICT frames of one run
// become one stream of records, cut into frames of max_records.
std::vector<bytes> regroup(const std::vector<sent_frame>& frames, std::uint64_t incarnation) {
  std::vector<bytes> out;
  std::vector<verdict_record> pending;
  std::uint64_t pending_epoch = 0;
  std::size_t pending_run = 0;
  auto flush = [&] {
    for (std::size_t lo = 0; lo < pending.size(); lo += max_records) {
      const std::size_t n = std::min(max_records, pending.size() - lo);
      out.push_back(encode_verdict_frame(pending_epoch, incarnation, std::span(pending).subspan(lo, n)));
    }
    pending.clear();
  };
  for (const sent_frame& s : frames) {
    const decoded_frame f = decode_frame(s.raw);
    EXPECT_TRUE(f.ok()) << "the model sent a frame its own decoder rejects";
    if (f.header.type != frame_type::verdict) {
      flush();
      out.push_back(s.raw);
      continue;
    }
    EXPECT_EQ(f.header.incarnation, incarnation);
    if (!pending.empty() && s.run != pending_run) flush();
    pending_epoch = f.header.epoch;
    pending_run = s.run;
    for (std::size_t i = 0; i < f.header.count; ++i) pending.push_back(f.verdict_at(i));
  }
  flush();
  return out;
}

// One wake-up of the model's rules, driven as bridge_model::loop drives them
// (one chunk): the frames it sends, each tagged with its run; `bad` counts
// the frames it refused.
std::vector<sent_frame> model_wakeup(bridge_rules& rules, frame_writer& writer, const std::vector<bytes>& received,
                                     std::uint64_t& bad) {
  rules.begin_wakeup();
  for (const bytes& raw : received) {
    if (rules.decode_next(raw) != nullptr) {
      ++bad;
      continue;
    }
    rules.admit();
  }
  // Run of each TXN frame: a new one wherever the epoch changes.
  std::vector<std::size_t> run_of;
  for (std::size_t f = 0; f < rules.frames().size(); ++f) {
    const bool same = f > 0 && rules.frames()[f].epoch == rules.frames()[f - 1].epoch;
    run_of.push_back(f == 0 ? 1 : run_of.back() + (same ? 0 : 1));
  }
  std::vector<sent_frame> sent;
  rules.complete_frames(0);
  const txn_record* base = rules.records().data();
  rules.answer(0, rules.records().size(), writer, [&](std::span<const std::byte> raw, std::span<const txn_record> share) {
    // The frame a share belongs to: the first whose records end at or after the share's end.
    const auto end = static_cast<std::size_t>(share.data() - base) + share.size();
    std::size_t f = 0;
    while (rules.frames()[f].end < end) ++f;
    sent.push_back({bytes(raw.begin(), raw.end()), run_of[f]});
  });
  rules.complete_frames(rules.records().size());
  EXPECT_EQ(rules.done_frames(), rules.frames().size()) << "every frame of the wake-up was answered";
  return sent;
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
      std::vector<sent_frame> sent;
      if (event.contains("tick")) {
        if (rules.tick(now_ns)) sent.push_back({rules.hello(), 0});
      } else {
        std::vector<bytes> received;
        for (const nlohmann::json& hex : event.at("receive")) received.push_back(from_hex(hex.get<std::string>()));
        sent = model_wakeup(rules, writer, received, bad_frames);
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

// ---------------------------------------------------------------- differential

namespace py = pybind11;

constexpr std::uint64_t epochs[] = {0x0A0A0A0A11112222ull, 0x0B0B0B0B33334444ull, 1};

bytes txn_frame(std::uint64_t epoch, std::uint64_t serial, const std::vector<std::uint64_t>& seqs) {
  std::vector<txn_record> recs(seqs.size());
  for (std::size_t i = 0; i < seqs.size(); ++i) {
    recs[i].seq = seqs[i];
    recs[i].t.txn_id = seqs[i] * 1'000'003 + (epoch & 0xFFFF);
    recs[i].t.amount_minor = static_cast<std::int64_t>(1000 + 37 * seqs[i]);
    recs[i].t.currency = {'E', 'U', 'R'};
  }
  return encode_txn_frame(epoch, recs, serial);
}

// One received frame: mostly TXN frames of generated epochs, serials and
// seqs (small ranges, so duplicates, gaps and resends are common), else a
// broken one: each way the decoder can refuse, or a frame of another type.
rc::Gen<bytes> gen_frame() {
  return rc::gen::exec([] {
    const std::uint64_t epoch = epochs[*rc::gen::inRange<std::size_t>(0, 3)];
    const auto serial = *rc::gen::inRange<std::uint64_t>(1, 30);
    const auto n = *rc::gen::inRange<std::size_t>(0, 12);
    std::vector<std::uint64_t> seqs(n);
    for (auto& q : seqs) q = *rc::gen::inRange<std::uint64_t>(0, 60);
    bytes f = txn_frame(epoch, serial, seqs);
    switch (*rc::gen::inRange(0, 16)) {
      case 0: f.resize(*rc::gen::inRange<std::size_t>(0, f.size())); break;              // truncated
      case 1: f[*rc::gen::inRange<std::size_t>(0, f.size())] ^= std::byte{0x40}; break;    // a flipped bit
      case 2: f.push_back(std::byte{0}); break;                                          // a trailing byte
      case 3: {
        const hello_record h{};
        f = encode_hello_frame(epoch, 77, h);                                            // wrong type
        break;
      }
      case 4: {
        std::vector<verdict_record> v(1);
        v[0].seq = 1;
        f = encode_verdict_frame(epoch, 77, v);                                          // wrong type
        break;
      }
      default: break;                                                                    // a good TXN frame
    }
    return f;
  });
}

struct event {
  ns_t now_ns = 0;
  std::optional<std::vector<bytes>> frames;  // nullopt: a tick
};

// Runs the model's rules as bridge_model::loop does (the vectors' driving).
std::pair<std::vector<std::vector<bytes>>, std::array<std::uint64_t, 5>> run_model(
    std::uint64_t incarnation, ns_t heartbeat_ns, std::uint32_t poison_ppm, const std::vector<event>& events) {
  bridge_rules rules{incarnation, heartbeat_ns, poison_ppm};
  rules.set_offload_up(true);  // As the BridgeCore side: the channel up from the start.
  frame_writer writer;
  std::uint64_t bad = 0;
  std::vector<std::vector<bytes>> outs;
  for (const event& e : events) {
    std::vector<sent_frame> sent;
    if (!e.frames) {
      if (rules.tick(e.now_ns)) sent.push_back({rules.hello(), 0});
    } else {
      sent = model_wakeup(rules, writer, *e.frames, bad);
    }
    outs.push_back(regroup(sent, incarnation));
  }
  return {outs, {rules.last_epoch(), rules.read_serial(), rules.duplicates(), rules.answered(), bad}};
}

py::module_& differential_module() {
  static py::module_* m = [] {
    python_bridge::start_interpreter();
    py::module_::import("sys").attr("path").attr("insert")(0, AEGIS_FIXTURES_DIR);
    return new py::module_(py::module_::import("aegis_sim_differential"));
  }();
  return *m;
}

// The events as lines: a tick, or each received frame (type, epoch, serial, seqs; or why it is bad).
std::string describe_events(const std::vector<event>& events) {
  std::string out = "events:";
  for (const event& e : events) {
    out += "\n  at " + std::to_string(e.now_ns) + " ns: ";
    if (!e.frames) {
      out += "tick";
      continue;
    }
    out += "wake-up";
    for (const bytes& raw : *e.frames) {
      const decoded_frame f = decode_frame(raw);
      if (!f.ok()) {
        out += "\n    bad frame (" + std::string(to_string(f.reject)) + ", " + std::to_string(raw.size()) + " bytes)";
      } else if (f.header.type != frame_type::txn) {
        out += std::string("\n    ") + (f.header.type == frame_type::hello ? "HELLO" : "VERDICT") + " frame";
      } else {
        out += "\n    TXN epoch " + std::to_string(f.header.epoch) + " serial " + std::to_string(f.header.incarnation) + " seqs";
        for (std::size_t i = 0; i < f.header.count; ++i) out += " " + std::to_string(f.txn_at(i).seq);
      }
    }
  }
  return out;
}

RC_GTEST_PROP(BridgeDifferential, TheModelAnswersArbitraryFramesAsBridgeCoreDoes, ()) {
  const auto incarnation = *rc::gen::inRange<std::uint64_t>(1, std::uint64_t{1} << 62);
  const ns_t heartbeat_ns = 200'000'000;
  const std::uint32_t poison_ppm = *rc::gen::element<std::uint32_t>(0, 0, 100'000);
  const auto count = *rc::gen::inRange<std::size_t>(1, 25);
  std::vector<event> events;
  ns_t now = 0;
  for (std::size_t i = 0; i < count; ++i) {
    now += *rc::gen::element<ns_t>(0, 1'000'000, 50'000'000, 199'999'999, 200'000'000);
    event e{now, std::nullopt};
    if (*rc::gen::inRange(0, 4) != 0) e.frames = *rc::gen::container<std::vector<bytes>>(*rc::gen::inRange<std::size_t>(1, 6), gen_frame());
    events.push_back(std::move(e));
  }
  const auto [model_outs, model_final] = run_model(incarnation, heartbeat_ns, poison_ppm, events);

  py::module_& core_side = differential_module();  // Starts the interpreter on first use.
  py::list py_events;
  for (const event& e : events) {
    py::object frames = py::none();
    if (e.frames) {
      py::list l;
      for (const bytes& b : *e.frames) l.append(py::bytes(reinterpret_cast<const char*>(b.data()), b.size()));
      frames = l;
    }
    py_events.append(py::make_tuple(e.now_ns, frames));
  }
  const py::tuple result = core_side.attr("answer")(incarnation, heartbeat_ns, poison_ppm, py_events);
  const auto core_outs = result[0].cast<std::vector<std::vector<std::string>>>();
  const auto core_final = result[1].cast<std::array<std::uint64_t, 5>>();

  RC_ASSERT(core_outs.size() == model_outs.size());
  for (std::size_t i = 0; i < events.size(); ++i) {
    std::vector<bytes> want;
    for (const std::string& raw : core_outs[i]) {
      const auto* p = reinterpret_cast<const std::byte*>(raw.data());
      want.emplace_back(p, p + raw.size());
    }
    if (model_outs[i] != want) {
      std::string why = "event " + std::to_string(i) + " at " + std::to_string(events[i].now_ns) + " ns (" +
                        (events[i].frames ? std::to_string(events[i].frames->size()) + " frames received" : "a tick") +
                        "):\n  model sent";
      for (const bytes& f : model_outs[i]) why += "\n    " + describe(f);
      why += "\n  BridgeCore sent";
      for (const bytes& f : want) why += "\n    " + describe(f);
      RC_FAIL(why + "\n" + describe_events(events));
    }
  }
  // (last epoch, read serial, duplicates skipped, records answered, bad frames)
  if (model_final != core_final) {
    const auto text = [](const std::array<std::uint64_t, 5>& f) {
      return "epoch " + std::to_string(f[0]) + " read_serial " + std::to_string(f[1]) + " duplicates " +
             std::to_string(f[2]) + " answered " + std::to_string(f[3]) + " bad " + std::to_string(f[4]);
    };
    RC_FAIL("final counters differ: model " + text(model_final) + "; BridgeCore " + text(core_final) + "\n" +
            describe_events(events));
  }
}

}  // namespace
}  // namespace aegis::sim
