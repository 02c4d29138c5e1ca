// Trace recording, hashing and Chrome trace-event output; see trace.hpp.
#include "sim/trace.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <memory>

#include "aegis/assert.hpp"

namespace aegis::sim {

const char* to_string(event_kind k) noexcept {
  switch (k) {
    case event_kind::slice: return "slice";
    case event_kind::timer: return "timer";
    case event_kind::spawn: return "spawn";
    case event_kind::exit: return "exit";
    case event_kind::block: return "block";
    case event_kind::wake: return "wake";
    case event_kind::send: return "send";
    case event_kind::send_blocked: return "send_blocked";
    case event_kind::recv: return "recv";
    case event_kind::lost: return "lost";
    case event_kind::connect: return "connect";
    case event_kind::disconnect: return "disconnect";
    case event_kind::fault: return "fault";
    case event_kind::kill: return "kill";
    case event_kind::start: return "start";
    case event_kind::stall: return "stall";
    case event_kind::resume: return "resume";
    case event_kind::offload: return "offload";
    case event_kind::fate: return "fate";
    case event_kind::verdict_sent: return "verdict_sent";
    case event_kind::batch_received: return "batch_received";
    case event_kind::hello: return "hello";
    case event_kind::failure: return "failure";
    case event_kind::phase: return "phase";
    case event_kind::mark: return "mark";
  }
  return "?";
}

trace::trace(bool keep_events) : keep_(keep_events), state_(XXH64_createState()) {
  AEGIS_ASSERT(state_ != nullptr, "XXH64 state allocation");
  XXH64_reset(state_, 0);
}

trace::~trace() { XXH64_freeState(state_); }

void trace::flush() {
  if (buffered_ == 0) return;
  XXH64_update(state_, buffer_.data(), buffered_ * sizeof(std::uint64_t));
  buffered_ = 0;
}

std::uint64_t trace::hash() {
  flush();
  return XXH64_digest(state_);
}

const char* trace::intern(std::string s) {
  interned_.push_back(std::make_unique<std::string>(std::move(s)));
  return interned_.back()->c_str();
}

std::string hash_hex(std::uint64_t h) { return fmt::format("{:016x}", h); }

void trace::write_chrome_json(std::ostream& out, const std::vector<std::string>& process_names,
                              const std::vector<std::pair<std::uint32_t, std::string>>& fiber_names) const {
  // Written by hand, one event per line, so a long run streams without
  // building one giant DOM; strings go through nlohmann::json for escaping.
  auto ts = [](ns_t ns) { return fmt::format("{}.{:03}", ns / 1000, ns % 1000); };
  auto str = [](const std::string& s) { return nlohmann::json(s).dump(); };
  out << "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n";
  bool first = true;
  auto sep = [&] {
    if (!first) out << ",\n";
    first = false;
  };
  for (std::size_t p = 0; p < process_names.size(); ++p) {
    sep();
    out << fmt::format(R"({{"ph":"M","name":"process_name","pid":{},"tid":0,"args":{{"name":{}}}}})", p,
                       str(process_names[p]));
  }
  for (const auto& [tid, name] : fiber_names) {
    sep();
    // tid 0 is the scheduler context of each process; fibers are id + 1.
    out << fmt::format(R"({{"ph":"M","name":"thread_name","pid":{},"tid":{},"args":{{"name":{}}}}})",
                       tid >> 24, tid & 0xffffff, str(name));
  }
  for (const event& e : events_) {
    sep();
    const std::string name = e.name != nullptr ? std::string(e.name) : std::string(to_string(e.kind));
    if (e.kind == event_kind::slice) {
      out << fmt::format(R"({{"ph":"X","name":"run","pid":{},"tid":{},"ts":{},"dur":{}}})", e.process, e.fiber,
                         ts(e.time_ns), ts(e.detail > 0 ? e.detail : 1));
    } else if (e.kind == event_kind::fault || e.kind == event_kind::failure || e.kind == event_kind::kill ||
               e.kind == event_kind::start || e.kind == event_kind::stall || e.kind == event_kind::resume ||
               e.kind == event_kind::phase) {
      out << fmt::format(
          R"({{"ph":"i","s":"g","name":{},"cat":"{}","pid":{},"tid":{},"ts":{},"args":{{"seq":{},"detail":{}}}}})",
          str(std::string(to_string(e.kind)) + ":" + name), to_string(e.kind), e.process, e.fiber, ts(e.time_ns), e.seq,
          e.detail);
    } else {
      out << fmt::format(
          R"({{"ph":"i","s":"t","name":{},"cat":"{}","pid":{},"tid":{},"ts":{},"args":{{"seq":{},"detail":{}}}}})",
          str(name), to_string(e.kind), e.process, e.fiber, ts(e.time_ns), e.seq, e.detail);
    }
  }
  out << "\n]}\n";
}

}  // namespace aegis::sim
