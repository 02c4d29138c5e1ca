// The open-loop latency floor of the end-to-end benchmark: raw libzmq, same
// pacing, same process layout, no protocol and no Python.
//
// Usage:
//   e2e_openloop --dir /tmp/aegis-ol --rate 50000 --duration 5 [--pace-quantum-us 250]
//                [--sched-slice-us 100] [--realtime-priority N] [--pin 0,1]
//   -> one JSON object on stdout: {"p50_us": ..., "p99_us": ..., "offered_per_s": ..., ...}
//
// What it is the floor of: aegis-core's open-loop latency rows
// (scripts/bench_e2e.py). It forks an echo process and then paces payments
// exactly as aegis-core's producer does (src/core/main.cpp): 64-byte records
// due every 1/rate s, at most one timed sleep per pace quantum, what fell due
// meanwhile sent back to back in frames of at most 1024 records, each stamped
// with its intended time; latency = receipt of the echoed record - intended
// time, so a late sleep counts. The echo process (its own libzmq context, as
// the bridge has) connects a PULL and a PUSH to the two ipc endpoints this
// side binds, and returns every frame as it arrives. So the round trip has
// the offload path's hops minus the ring and pump, the Python bridge, the
// protocol and the model: seven thread wake-ups per burst where aegis-core
// into the bridge has eight. Both processes take the same scheduling as core
// and bridge (EEVDF slice, 1 us timer slack, optional SCHED_FIFO, optional
// one CPU each), so the two rows differ in what the offload path adds, not
// in how the machine was asked to run it.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "aegis/sched.hpp"
#include "bench_support.hpp"

namespace {

using ns_t = std::int64_t;
constexpr std::size_t record_bytes = 64;     // a TXN record (docs/PROTOCOL.md)
constexpr std::size_t records_per_frame = 1024;  // aegis-core's --batch-max limit
constexpr int echo_silence_ms = 10'000;      // no frame for this long: the echo is gone

ns_t now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<ns_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

void sleep_until_ns(ns_t t) {
  const timespec ts{static_cast<time_t>(t / 1'000'000'000), static_cast<long>(t % 1'000'000'000)};
  while (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

void pin_process(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (::sched_setaffinity(0, sizeof set, &set) != 0) {
    throw std::runtime_error("cannot pin to CPU " + std::to_string(cpu) + ": " + std::strerror(errno));
  }
}

/// The echo process: returns every frame until an empty one arrives.
int run_echo(const std::string& offload_ep, const std::string& verdict_ep, std::optional<int> cpu) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the measuring side
  ::prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL);
  if (cpu) pin_process(*cpu);
  zmq::context_t ctx{1};
  zmq::socket_t in{ctx, zmq::socket_type::pull};
  zmq::socket_t out{ctx, zmq::socket_type::push};
  for (zmq::socket_t* s : {&in, &out}) {
    s->set(zmq::sockopt::linger, 0);
    s->set(zmq::sockopt::reconnect_ivl, 10);  // the measuring side binds after the fork
  }
  in.connect(offload_ep);
  out.connect(verdict_ep);
  zmq::message_t msg;
  for (;;) {
    if (!in.recv(msg, zmq::recv_flags::none)) continue;
    if (msg.size() == 0) return 0;
    out.send(msg, zmq::send_flags::none);
  }
}

struct options {
  std::string dir;
  double rate = 0;
  double duration_s = 5.0;
  long pace_quantum_us = 250;
  long sched_slice_us = 100;
  int realtime_priority = 0;
  std::optional<std::pair<int, int>> pin;
};

/// Paces `n` records as aegis-core's producer does and sends them on `out`;
/// returns when the last one was sent.
ns_t produce(zmq::socket_t& out, std::uint64_t n, ns_t start_ns, ns_t period_ns, ns_t quantum_ns) {
  std::vector<std::uint8_t> frame;
  frame.reserve(records_per_frame * record_bytes);
  auto send_frame = [&] {
    if (!frame.empty()) out.send(zmq::buffer(frame), zmq::send_flags::none);
    frame.clear();
  };
  ns_t now = now_ns();
  ns_t last_wake = 0;
  for (std::uint64_t id = 1; id <= n; ++id) {
    const ns_t due = start_ns + static_cast<ns_t>(id - 1) * period_ns;
    if (due > now) {
      now = now_ns();
      if (due > now) {
        send_frame();  // the burst is complete
        const ns_t wake = std::max(due, last_wake + quantum_ns);
        sleep_until_ns(wake);
        now = last_wake = wake;
      }
    }
    std::uint8_t record[record_bytes]{};
    std::memcpy(record, &due, sizeof due);
    frame.insert(frame.end(), record, record + record_bytes);
    if (frame.size() == records_per_frame * record_bytes) send_frame();
  }
  send_frame();
  return now_ns();
}

nlohmann::json run(const options& o) {
  if (const std::string err = aegis::apply_scheduling({.slice_ns = o.sched_slice_us * 1000, .fifo_priority = o.realtime_priority});
      !err.empty()) {
    throw std::runtime_error(err);
  }
  const std::string offload_ep = "ipc://" + o.dir + "/ol-offload.sock";
  const std::string verdict_ep = "ipc://" + o.dir + "/ol-verdicts.sock";
  std::cout.flush();
  const pid_t echo = ::fork();
  if (echo < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (echo == 0) {
    try {
      std::_Exit(run_echo(offload_ep, verdict_ep, o.pin ? std::optional<int>(o.pin->second) : std::nullopt));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "e2e_openloop echo: %s\n", e.what());
      std::_Exit(1);
    }
  }
  struct reaper {  // kills the echo if this side fails before ending it
    pid_t pid;
    ~reaper() {
      if (pid <= 0) return;
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  } reap{echo};

  ::prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL);
  if (o.pin) pin_process(o.pin->first);
  zmq::context_t ctx{1};
  zmq::socket_t out{ctx, zmq::socket_type::push};
  zmq::socket_t in{ctx, zmq::socket_type::pull};
  out.set(zmq::sockopt::linger, 0);
  in.set(zmq::sockopt::linger, 0);
  in.set(zmq::sockopt::rcvtimeo, echo_silence_ms);
  out.bind(offload_ep);
  in.bind(verdict_ep);

  // Handshake: a bound PUSH holds the probe until the echo connects.
  const ns_t probe = 0;
  out.set(zmq::sockopt::sndtimeo, echo_silence_ms);
  const bool probed = out.send(zmq::buffer(&probe, sizeof probe), zmq::send_flags::none).has_value();
  out.set(zmq::sockopt::sndtimeo, -1);
  zmq::message_t msg;
  if (!probed || !in.recv(msg, zmq::recv_flags::none)) {
    throw std::runtime_error("the echo process did not answer within " + std::to_string(echo_silence_ms / 1000) + " s");
  }

  const auto n = static_cast<std::uint64_t>(o.rate * o.duration_s);
  if (n == 0) throw std::runtime_error("--rate x --duration is less than one payment");
  const auto period_ns = static_cast<ns_t>(1e9 / o.rate);
  std::vector<double> latency_ns;
  latency_ns.reserve(n);
  std::uint64_t frames = 0;
  const ns_t start_ns = now_ns();
  // The PUSH belongs to the producer thread from here on; the PULL to this
  // one. A failure from here on exits at once: the producer may be blocked
  // sending to a dead echo, and the echo dies with this process.
  ns_t produced_ns = start_ns;  // written by the producer, read after join()
  std::thread producer([&] { produced_ns = produce(out, n, start_ns, period_ns, o.pace_quantum_us * 1000); });
  auto fail = [&](const std::string& why) {
    std::fprintf(stderr, "e2e_openloop: %s (after %zu of %llu records)\n", why.c_str(), latency_ns.size(),
                 static_cast<unsigned long long>(n));
    ::kill(echo, SIGKILL);
    std::_Exit(1);
  };
  while (latency_ns.size() < n) {
    if (!in.recv(msg, zmq::recv_flags::none)) fail("no echo for " + std::to_string(echo_silence_ms / 1000) + " s");
    const ns_t t = now_ns();
    if (msg.size() % record_bytes != 0 || msg.size() == 0) fail("the echo returned a torn frame");
    ++frames;
    for (std::size_t off = 0; off < msg.size(); off += record_bytes) {
      ns_t due = 0;
      std::memcpy(&due, static_cast<const std::uint8_t*>(msg.data()) + off, sizeof due);
      latency_ns.push_back(static_cast<double>(t - due));
    }
  }
  producer.join();
  out.send(zmq::message_t{}, zmq::send_flags::none);  // ends the echo
  int status = 0;
  ::waitpid(echo, &status, 0);
  reap.pid = -1;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw std::runtime_error("the echo process failed");

  // Like aegis-core's summary: payments over the time the producer took to
  // send them (behind schedule, this falls below --rate).
  const double produce_s = static_cast<double>(produced_ns - start_ns) / 1e9;
  nlohmann::json j;
  j["rate"] = o.rate;
  j["records"] = n;
  j["frames"] = frames;
  j["records_per_frame"] = static_cast<double>(n) / static_cast<double>(frames);
  j["produce_s"] = produce_s;
  j["offered_per_s"] = produce_s > 0 ? static_cast<double>(n) / produce_s : 0.0;
  j["pace_quantum_us"] = o.pace_quantum_us;
  j["p50_us"] = aegis::bench::percentile(latency_ns, 0.50) / 1000.0;
  j["p99_us"] = aegis::bench::percentile(latency_ns, 0.99) / 1000.0;
  j["p999_us"] = aegis::bench::percentile(latency_ns, 0.999) / 1000.0;
  j["max_us"] = *std::max_element(latency_ns.begin(), latency_ns.end()) / 1000.0;
  return j;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Open-loop raw libzmq round trip to an echo process, paced like aegis-core (the latency rows' floor)"};
  options o;
  std::string pin = "none";
  app.add_option("--dir", o.dir, "Existing directory for the two ipc socket files")->required()->check(CLI::ExistingDirectory);
  app.add_option("--rate", o.rate, "Payments per second")->required()->check(CLI::PositiveNumber);
  app.add_option("--duration", o.duration_s, "Seconds of schedule")->check(CLI::PositiveNumber);
  app.add_option("--pace-quantum-us", o.pace_quantum_us, "Least time between timed sleeps (aegis-core --pace-quantum)")
      ->check(CLI::Range(0L, 1'000'000L));
  app.add_option("--sched-slice-us", o.sched_slice_us, "EEVDF slice both processes ask for (aegis-core --sched-slice); 0 = kernel default")
      ->check(CLI::Range(0L, 100'000L));
  app.add_option("--realtime-priority", o.realtime_priority, "SCHED_FIFO priority for both processes; 0 = off")
      ->check(CLI::Range(0, 99));
  app.add_option("--pin", pin, "CORE_CPU,ECHO_CPU: one CPU each, or none");
  CLI11_PARSE(app, argc, argv);
  if (o.sched_slice_us != 0 && o.sched_slice_us < 100) {
    std::cerr << "e2e_openloop: --sched-slice-us must be 0 or 100..100000\n";
    return 2;
  }
  if (pin != "none") {
    int a = -1;
    int b = -1;
    char tail = 0;
    if (std::sscanf(pin.c_str(), "%d,%d%c", &a, &b, &tail) != 2 || a < 0 || b < 0 || a == b) {
      std::cerr << "e2e_openloop: --pin: expected two different CPUs like 0,1, or none; got '" << pin << "'\n";
      return 2;
    }
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (::sched_getaffinity(0, sizeof allowed, &allowed) != 0 || a >= CPU_SETSIZE || b >= CPU_SETSIZE ||
        !CPU_ISSET(a, &allowed) || !CPU_ISSET(b, &allowed)) {
      std::cerr << "e2e_openloop: --pin " << pin << ": this process may not run on both CPUs\n";
      return 2;
    }
    o.pin = std::make_pair(a, b);
  }
  try {
    std::cout << run(o).dump() << '\n';
  } catch (const std::exception& e) {
    std::cerr << "e2e_openloop: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
