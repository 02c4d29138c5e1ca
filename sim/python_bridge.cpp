// The real bridge's BridgeCore in a simulated process; see python_bridge.hpp.
#include "sim/python_bridge.hpp"

#include <pybind11/embed.h>
#include <pybind11/stl.h>

#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "sim/bridge_model.hpp"

namespace py = pybind11;

namespace aegis::sim {

namespace {

// The glue module, imported once; never released (the interpreter outlives every world).
py::module_* glue = nullptr;

std::span<const std::byte> bytes_of(const py::handle& b) {
  char* data = nullptr;
  Py_ssize_t size = 0;
  AEGIS_ASSERT(PyBytes_AsStringAndSize(b.ptr(), &data, &size) == 0, "the bridge produces bytes");
  return {reinterpret_cast<const std::byte*>(data), static_cast<std::size_t>(size)};
}

}  // namespace

void python_bridge::start_interpreter() {
  if (glue != nullptr) return;
  // numpy's BLAS would start threads of its own: one, so nothing runs beside the world.
  ::setenv("OPENBLAS_NUM_THREADS", "1", 1);
  ::setenv("OMP_NUM_THREADS", "1", 1);
  ::setenv("MKL_NUM_THREADS", "1", 1);
  PyConfig config;
  PyConfig_InitIsolatedConfig(&config);  // No PYTHON* variables, no user site, no cwd on sys.path.
  config.use_hash_seed = 1;              // str and bytes hash alike in every run (set iteration order).
  config.hash_seed = 0;
  config.install_signal_handlers = 0;    // SIGINT stays aegis-sim's.
  config.write_bytecode = 0;             // Nothing written into the source tree.
  py::initialize_interpreter(&config, 0, nullptr, false);
  try {
    py::module_ sys = py::module_::import("sys");
    sys.attr("path").attr("insert")(0, AEGIS_BRIDGE_SOURCE_DIR);
    sys.attr("path").attr("insert")(0, AEGIS_SIM_PYTHON_DIR);
    glue = new py::module_(py::module_::import("aegis_sim_bridge"));
  } catch (const py::error_already_set& e) {
    throw std::runtime_error(std::string("--bridge python: cannot import the bridge (") + AEGIS_BRIDGE_SOURCE_DIR +
                             "): " + e.what());
  }
}

void python_bridge::reset_world() {
  if (glue != nullptr) glue->attr("reset")();
}

std::optional<python_bridge::model_verdict> python_bridge::expected_verdict(std::uint64_t txn_id) {
  AEGIS_ASSERT(glue != nullptr, "expected verdicts exist only with the python bridge");
  py::object v = glue->attr("expected_verdict")(txn_id);
  if (v.is_none()) return std::nullopt;
  auto t = v.cast<std::pair<double, int>>();
  return model_verdict{static_cast<float>(t.first), static_cast<std::uint8_t>(t.second)};
}

// bridge.py's Bridge.run with the world's sockets and clock around the real
// BridgeCore. The same socket options, HELLO rule, batch rule, send-wait
// rule and trace events as loop(); what differs is who decides what to
// send. The world's service time is slept after each chunk is scored (the
// chunk's verdicts leave after it, as in bridge.py) and reported to the
// core as the chunk's cost, so its chunk sizes follow the simulated model.
void bridge_model::python_loop(std::uint64_t incarnation) {
  python_bridge::start_interpreter();
  auto [pull, push, monitor_bell] = open_sockets();

  // Everything this incarnation holds lives in `core`: a crash unwinds this
  // fiber and the last reference goes with it.
  py::object core = glue->attr("new_core")(incarnation, config_.heartbeat_ns, config_.score_chunk_ns,
                                           config_.poison_ppm, config_.python_mutant);
  py::object step = glue->attr("step");
  py::object counters = glue->attr("counters");
  // Bound once: a name lookup per call is a measurable share of a wake-up.
  py::object core_tick = core.attr("tick");
  py::object core_receive = core.attr("receive");
  py::object core_note_cost = core.attr("note_cost");
  py::object core_set_offload_up = core.attr("set_offload_up");
  bool offload_up = false;
  auto send_hellos = [&](const py::handle& frames) {
    for (const py::handle raw : frames) {
      if (push.send(bytes_of(raw)) == send_result::ok) {
        ++stats_.hellos_sent;
        world_.record(event_kind::hello, 0, static_cast<std::int64_t>(incarnation));
      } else {
        ++stats_.hellos_dropped;
      }
    }
  };
  // As bridge.py: the monitor's news first (a HELLO is due at once when the
  // connection comes up, none leaves while it is down), then a due HELLO.
  auto tick = [&] {
    if (pull.connected() != offload_up) {
      offload_up = pull.connected();
      core_set_offload_up(offload_up);
    }
    send_hellos(core_tick(env_->now_ns()));
  };
  std::uint64_t bad_seen = 0, dups_seen = 0, errors_seen = 0;
  auto take_counters = [&] {
    const auto [bad, dups, errors] = counters(core).cast<std::tuple<std::uint64_t, std::uint64_t, std::uint64_t>>();
    AEGIS_ASSERT(bad >= bad_seen && dups >= dups_seen && errors >= errors_seen, "the bridge's counters only grow");
    stats_.bad_frames += bad - bad_seen;
    stats_.duplicates_skipped += dups - dups_seen;
    stats_.model_errors += errors - errors_seen;
    bad_seen = bad, dups_seen = dups, errors_seen = errors;
  };

  tick();
  std::vector<std::byte> buf;
  std::vector<txn_record> records;
  decoded_frame frame;
  for (;;) {
    const wake_reason why = env_->wait(pull, monitor_bell, core.attr("next_deadline_ns").cast<ns_t>());
    if (why == wake_reason::readable) {
      py::list raws;
      for (std::size_t i = 0; i < config_.batch_max; ++i) {
        if (pull.recv(buf) != recv_result::ok) break;
        ++stats_.frames_received;
        raws.append(py::bytes(reinterpret_cast<const char*>(buf.data()), buf.size()));
        // The trace and the properties' observer see the frames BridgeCore accepts.
        records.clear();  // decode_into appends.
        if (bridge_rules::decode_into(buf, frame, records) != nullptr) continue;
        world_.record(event_kind::batch_received, records.empty() ? 0 : records.front().seq,
                      static_cast<std::int64_t>(records.size()));
        if (observer_) observer_(incarnation, frame.header.epoch, records);
      }
      core_receive(raws, env_->now_ns());
      while (core.attr("busy").cast<bool>()) {
        const py::tuple out = step(core, env_->now_ns()).cast<py::tuple>();
        send_hellos(out[0]);
        const auto scored = out[2].cast<std::size_t>();
        if (scored > 0) {
          stats_.records_scored += scored;
          scoring_ = true;
          const ns_t cost = scoring_delay(scored);
          env_->sleep_until_ns(env_->now_ns() + cost);
          scoring_ = false;
          core_note_cost(scored, cost);
        }
        for (const py::handle raw : out[1]) {
          const std::span<const std::byte> bytes = bytes_of(raw);
          const decoded_frame v = decode_frame(bytes);
          AEGIS_ASSERT(v.ok() && v.header.type == frame_type::verdict, "BridgeCore sends valid VERDICT frames");
          const verdict_record first = v.verdict_at(0);
          send_verdict_frame(push, bytes, first.seq, v.header.count);
        }
      }
      take_counters();
    }
    tick();
  }
}

}  // namespace aegis::sim
