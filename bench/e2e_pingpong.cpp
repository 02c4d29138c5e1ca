// The latency floor of the end-to-end benchmark: a raw libzmq ipc round trip.
//
// Usage:
//   e2e_pingpong --dir /tmp/aegis-pp --round-trips 20000 --reps 3
//   -> one JSON object on stdout: {"rtt_ns_p50": [...], "rtt_ns_p99": [...], ...} (one value per rep)
//
// What it proves: nothing the offload path does can be faster than one
// message there and one back over the same transport, so this p99 is the
// floor the offload -> verdict p99 rows are compared with. The topology is
// the product's: two PUSH/PULL pairs over ipc (the "core" binds both, the
// "bridge" connects both), 64-byte messages, one thread per side, blocking
// receives (no spinning: on 2 cores libzmq's I/O threads need the CPU too).
// Each round trip is timed on the pinging thread with steady_clock (the
// interval is tens of microseconds, so the clock's cost does not matter).
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
constexpr std::size_t message_bytes = 64;

/// One rep: `round_trips` timed round trips after `warmup` untimed ones; returns RTTs in ns.
std::vector<double> run_rep(const std::string& dir, int round_trips, int warmup) {
  zmq::context_t ctx{1};
  const std::string ping_ep = "ipc://" + dir + "/ping.sock";
  const std::string pong_ep = "ipc://" + dir + "/pong.sock";
  zmq::socket_t ping_push{ctx, zmq::socket_type::push};
  zmq::socket_t pong_pull{ctx, zmq::socket_type::pull};
  ping_push.set(zmq::sockopt::linger, 0);
  pong_pull.set(zmq::sockopt::linger, 0);
  ping_push.bind(ping_ep);
  pong_pull.bind(pong_ep);

  const int total = warmup + round_trips;
  std::thread echo([&ctx, &ping_ep, &pong_ep, total] {
    zmq::socket_t in{ctx, zmq::socket_type::pull};
    zmq::socket_t out{ctx, zmq::socket_type::push};
    in.set(zmq::sockopt::linger, 0);
    out.set(zmq::sockopt::linger, 0);
    in.connect(ping_ep);
    out.connect(pong_ep);
    zmq::message_t msg;
    for (int i = 0; i < total; ++i) {
      const auto got = in.recv(msg, zmq::recv_flags::none);
      if (!got || *got != message_bytes) throw std::runtime_error("echo: short receive");
      out.send(msg, zmq::send_flags::none);
    }
  });

  std::array<char, message_bytes> payload{};
  std::vector<double> rtt_ns;
  rtt_ns.reserve(static_cast<std::size_t>(round_trips));
  zmq::message_t reply;
  for (int i = 0; i < total; ++i) {
    std::memcpy(payload.data(), &i, sizeof i);
    const auto t0 = clock_type::now();
    ping_push.send(zmq::buffer(payload), zmq::send_flags::none);
    const auto got = pong_pull.recv(reply, zmq::recv_flags::none);
    const auto t1 = clock_type::now();
    if (!got || *got != message_bytes || std::memcmp(reply.data(), &i, sizeof i) != 0) {
      throw std::runtime_error("ping: the echo returned another message");
    }
    if (i >= warmup) rtt_ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
  }
  echo.join();
  return rtt_ns;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Raw libzmq ipc PUSH/PULL ping-pong round trip (the end-to-end latency floor)"};
  std::string dir;
  int round_trips = 20'000;
  int warmup = 1'000;
  int reps = 3;
  app.add_option("--dir", dir, "Directory for the two ipc socket files (must exist)")->required();
  app.add_option("--round-trips", round_trips, "Timed round trips per rep")->check(CLI::Range(1, std::numeric_limits<int>::max()));
  app.add_option("--warmup", warmup, "Untimed round trips first")->check(CLI::NonNegativeNumber);
  app.add_option("--reps", reps, "Repetitions")->check(CLI::Range(1, std::numeric_limits<int>::max()));
  CLI11_PARSE(app, argc, argv);

  nlohmann::json out;
  out["round_trips"] = round_trips;
  for (int r = 0; r < reps; ++r) {
    std::vector<double> rtt = run_rep(dir, round_trips, warmup);
    out["rtt_ns_p50"].push_back(aegis::bench::percentile(rtt, 0.50));
    out["rtt_ns_p99"].push_back(aegis::bench::percentile(rtt, 0.99));
    out["rtt_ns_p999"].push_back(aegis::bench::percentile(rtt, 0.999));
  }
  std::filesystem::remove(dir + "/ping.sock");
  std::filesystem::remove(dir + "/pong.sock");
  std::cout << out.dump() << '\n';
  return 0;
}
