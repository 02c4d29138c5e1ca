// The peer's sender in the end-to-end throughput benchmark: raw libzmq PUSH,
// one 64-byte JSON message per transaction, as fast as the receiver takes them.
//
// Usage:
//   e2e_peer_push --endpoint ipc:///tmp/d/peer.sock --count 1000000
//   (bench/e2e_peer_pull.py has bound there first; it decodes and scores every message)
//
// Why C++: the comparison is about the receiving side (a per-message Python
// loop against our batched, acknowledged protocol), so the sender must never
// be the bottleneck. Messages are pre-encoded (a pool of distinct ones,
// cycled) and sent with blocking zmq_send, which waits at the high-water mark
// instead of spinning. After `count` messages it sends the 3-byte "END"
// every 10 ms until it is killed.
#include <CLI/CLI.hpp>
#include <zmq.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr std::size_t message_bytes = 64;
constexpr std::size_t pool_size = 4096;

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/// A JSON transaction padded with spaces to exactly 64 bytes (valid JSON):
/// {"i":id,"a":amount_minor,"c":"EUR","m":mcc,"n":channel,"h":hour}
std::array<char, message_bytes> make_message(std::uint64_t id) {
  static constexpr std::array<const char*, 4> currencies{"EUR", "USD", "GBP", "CHF"};
  static constexpr std::array<int, 8> mccs{5411, 5812, 5999, 4829, 7995, 5732, 4111, 6011};
  std::uint64_t r = splitmix64(id);
  const auto next = [&r] { return r = splitmix64(r); };
  std::array<char, message_bytes> m;
  m.fill(' ');
  const int n = std::snprintf(m.data(), m.size(), R"({"i":%llu,"a":%llu,"c":"%s","m":%d,"n":%d,"h":%d})",
                              static_cast<unsigned long long>(id % 100'000'000),
                              static_cast<unsigned long long>(100 + next() % 900'000), currencies[next() % 4],
                              mccs[next() % 8], static_cast<int>(next() % 3), static_cast<int>(next() % 24));
  if (n <= 0 || static_cast<std::size_t>(n) >= message_bytes) throw std::logic_error("message does not fit 64 bytes");
  m[static_cast<std::size_t>(n)] = ' ';  // snprintf's terminator becomes padding
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Raw libzmq PUSH of 64-byte JSON messages, one per transaction (end-to-end peer)"};
  std::string endpoint;
  std::uint64_t count = 1'000'000;
  app.add_option("--endpoint", endpoint, "The receiver's bound endpoint to connect to")->required();
  app.add_option("--count", count, "Messages to send before END")->check(CLI::Range(std::uint64_t{1}, std::numeric_limits<std::uint64_t>::max()));
  CLI11_PARSE(app, argc, argv);

  std::vector<std::array<char, message_bytes>> pool;
  pool.reserve(pool_size);
  for (std::uint64_t i = 0; i < pool_size; ++i) pool.push_back(make_message(i + 1));

  zmq::context_t ctx{1};
  zmq::socket_t push{ctx, zmq::socket_type::push};
  push.set(zmq::sockopt::linger, 0);
  push.connect(endpoint);
  for (std::uint64_t i = 0; i < count; ++i) {
    push.send(zmq::buffer(pool[i % pool_size]), zmq::send_flags::none);
  }
  // Then "END" every 10 ms until killed: with no acknowledgements, a sender
  // that exits right after its last send lost the tail of the stream here
  // (libzmq 4.3.4, ipc, even with ZMQ_LINGER -1), so it stays until the
  // receiver has reported and the driver stops it.
  for (;;) {
    (void)push.send(zmq::str_buffer("END"), zmq::send_flags::dontwait);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}
