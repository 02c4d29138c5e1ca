// Hot-path cost of offload(): the production offloader (zmq_env, real pump,
// real ipc sockets) with a draining in-process peer that verdicts every
// transaction, against two peers timed the same way in the same run.
//
// Usage:
//   offload_bench --dir /tmp/aegis-ob --samples 200000 --reps 3 --json build/release/bench-results.json
//
// What is timed: one call, from the producer's side, with the ring never
// full (paced bursts; the peer drains far faster). Each sample is one call
// between two lfence'd rdtsc reads (bench_support.hpp); the timer's own
// overhead (~10-20 ns) is included in every variant alike.
//
// The peers, and why:
//   - zmq_send_64B: what a producer pays if it sends each record itself,
//     zmq_send(ZMQ_DONTWAIT) of the same 64-byte TXN record on a PUSH socket
//     drained by a PULL thread. This is the design the ring replaces, so it is
//     the row's peer.
//   - ring_try_push: the bare multi-producer ring (same entry type) with a
//     consumer that naps 50 us when empty (as the pump does), for context: the difference is what the
//     offloader adds on top of the ring (a clock read, a fence and a load).
// Rows: offload_hot_path / offload_p50_ns and offload_p99_ns (peer zmq_send).
// Reps alternate ours / zmq_send / ring; each reported value is the median
// over reps of that rep's percentile.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <zmq.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "aegis/bench_results.hpp"
#include "aegis/os_offloader.hpp"
#include "aegis/protocol.hpp"
#include "aegis/ring_buffer.hpp"
#include "aegis/test_bridge.hpp"
#include "bench_support.hpp"

namespace {

using aegis::bench::percentile;
using aegis::bench::tsc_timer;

constexpr int burst = 32;
constexpr auto burst_gap = std::chrono::microseconds(100);
constexpr std::uint64_t peer_incarnation = 0xbe7c4be7c4be7c4bULL;

aegis::txn make_txn(std::uint64_t id) {
  aegis::txn t;
  t.txn_id = id;
  t.amount_minor = static_cast<std::int64_t>(100 + id % 90'000);
  t.timestamp_ns = static_cast<std::int64_t>(id);
  t.merchant_id = id % 50'000;
  t.card_fp = id * 0x9e3779b97f4a7c15ULL;
  t.currency = {'E', 'U', 'R'};
  t.channel = static_cast<std::uint8_t>(id % 3);
  t.mcc = 5411;
  return t;
}

/// Times `samples` calls of `op(i)`, in paced bursts so the ring never fills.
template <class Op>
std::vector<double> time_calls(const tsc_timer& timer, int samples, Op&& op) {
  std::vector<double> ns;
  ns.reserve(static_cast<std::size_t>(samples));
  for (int i = 0; i < samples; ++i) {
    const std::uint64_t t0 = tsc_timer::ticks();
    op(static_cast<std::uint64_t>(i) + 1);
    ns.push_back(timer.to_ns(tsc_timer::ticks() - t0));
    if ((i + 1) % burst == 0) std::this_thread::sleep_for(burst_gap);
  }
  return ns;
}

/// The in-process bridge (fixtures/aegis/test_bridge.hpp): one HELLO, then
/// one VERDICT frame per TXN frame answering every record. It polls every
/// 20 ms when idle, which only bounds how long stop() takes.
aegis::testing::test_bridge_options verdicting_peer(const std::string& dir) {
  aegis::testing::test_bridge_options o;
  o.endpoint_dir = dir;
  o.incarnation = peer_incarnation;
  o.poll_period = std::chrono::milliseconds(20);
  o.score = 0.01f;
  o.decision = 0;
  return o;
}

/// offload() of the production offloader with the verdicting peer.
std::vector<double> run_offload(const tsc_timer& timer, const std::string& dir, int samples) {
  aegis::zmq_env env;
  aegis::offloader_config cfg;
  cfg.offload_endpoint = "ipc://" + dir + "/offload.sock";
  cfg.verdict_endpoint = "ipc://" + dir + "/verdicts.sock";
  cfg.epoch = 0x0b0b0b0b0b0b0b0bULL;
  cfg.offload_socket.send_hwm = 4096;
  cfg.verdict_socket.recv_hwm = 4096;
  std::atomic<std::uint64_t> verdicts{0};
  aegis::os_offloader off{env, cfg, [&](const aegis::txn&, std::uint64_t, aegis::fate, const aegis::verdict*, aegis::ns_t) {
                            verdicts.fetch_add(1, std::memory_order_relaxed);
                          }};
  off.start();
  aegis::testing::test_bridge peer{verdicting_peer(dir), aegis::testing::test_bridge::answer_every_frame};
  // Wait for the peer's HELLO so the first samples are not taken while nobody drains.
  while (off.counters().hellos == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));

  std::uint64_t not_accepted = 0;
  auto ns = time_calls(timer, samples, [&](std::uint64_t id) {
    if (off.offload(make_txn(id)) != aegis::offload_status::accepted) ++not_accepted;
  });
  const bool drained = off.drain(env.now_ns() + 10'000'000'000LL);
  peer.stop();
  off.stop();
  // The peer counts what it could not decode; a core sends only valid TXN frames.
  if (peer.bad_frames() != 0) throw std::runtime_error(fmt::format("peer: {} bad TXN frames", peer.bad_frames()));
  if (not_accepted != 0 || !drained || verdicts.load() != static_cast<std::uint64_t>(samples)) {
    throw std::runtime_error(fmt::format("offload run invalid: not accepted {}, drained {}, verdicts {} of {}",
                                         not_accepted, drained, verdicts.load(), samples));
  }
  std::filesystem::remove(dir + "/offload.sock");
  std::filesystem::remove(dir + "/verdicts.sock");
  return ns;
}

/// zmq_send(DONTWAIT) of one 64-byte TXN record per call, drained by a PULL thread.
std::vector<double> run_zmq_send(const tsc_timer& timer, const std::string& dir, int samples) {
  zmq::context_t ctx{1};
  const std::string ep = "ipc://" + dir + "/raw.sock";
  zmq::socket_t push{ctx, zmq::socket_type::push};
  push.set(zmq::sockopt::linger, 0);
  push.set(zmq::sockopt::sndhwm, 4096);
  push.bind(ep);
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> received{0};
  std::thread drain([&] {
    zmq::socket_t pull{ctx, zmq::socket_type::pull};
    pull.set(zmq::sockopt::linger, 0);
    pull.connect(ep);
    zmq::message_t msg;
    while (!stop.load(std::memory_order_relaxed)) {
      zmq::pollitem_t item{pull.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, std::chrono::milliseconds(20)) == 0) continue;
      while (pull.recv(msg, zmq::recv_flags::dontwait)) received.fetch_add(1, std::memory_order_relaxed);
    }
  });
  // Connected once a first message gets through.
  std::array<std::byte, aegis::txn_record_bytes> rec{};
  while (received.load() == 0) {
    (void)push.send(zmq::buffer(rec), zmq::send_flags::dontwait);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::uint64_t would_block = 0;
  auto ns = time_calls(timer, samples, [&](std::uint64_t id) {
    const aegis::txn t = make_txn(id);
    std::memcpy(rec.data(), &id, sizeof id);
    std::memcpy(rec.data() + 8, &t.amount_minor, sizeof t.amount_minor);
    std::memcpy(rec.data() + 16, &t.timestamp_ns, sizeof t.timestamp_ns);
    if (!push.send(zmq::buffer(rec), zmq::send_flags::dontwait)) ++would_block;
  });
  stop.store(true);
  drain.join();
  std::filesystem::remove(dir + "/raw.sock");
  if (would_block != 0) fmt::print("  (zmq_send: {} sends would have blocked)\n", would_block);
  return ns;
}

/// try_push of the offloader's entry type into the bare multi-producer ring, drained by a consumer thread.
std::vector<double> run_ring(const tsc_timer& timer, int samples) {
  aegis::os_env env;
  aegis::ring_buffer<aegis::offload_entry, aegis::os_env> ring{env, 65536, aegis::admission::drop};
  std::atomic<bool> stop{false};
  std::thread consumer([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      std::uint64_t last = 0;
      const std::size_t n = ring.read(256, [&](std::uint64_t pos, aegis::offload_entry&) { last = pos; });
      // Nap like the pump does (no parking: a parked consumer would make the
      // producer pay a futex wake, which the offloader's pump never asks for).
      if (n > 0) ring.release(last + 1);
      else std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  });
  std::uint64_t full = 0;
  auto ns = time_calls(timer, samples, [&](std::uint64_t id) {
    if (ring.try_push(aegis::offload_entry{make_txn(id), static_cast<aegis::ns_t>(id), 0, 0, 0, aegis::offload_entry::state::live}) !=
        aegis::push_status::accepted) {
      ++full;
    }
  });
  stop.store(true);
  consumer.join();
  if (full != 0) fmt::print("  (ring: {} pushes found the ring full)\n", full);
  return ns;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"offload() hot path vs raw zmq_send and the bare ring"};
  std::string dir;
  std::string json_path;
  int samples = 200'000;
  int reps = 3;
  app.add_option("--dir", dir, "Directory for ipc socket files (must exist)")->required();
  app.add_option("--samples", samples, "Timed calls per variant per rep")->check(CLI::Range(1, std::numeric_limits<int>::max()));
  app.add_option("--reps", reps, "Repetitions (alternating variants)")->check(CLI::Range(1, std::numeric_limits<int>::max()));
  app.add_option("--json", json_path, "Append rows to this bench-results.json");
  CLI11_PARSE(app, argc, argv);

  const tsc_timer timer;
  fmt::print("offload_bench: {} samples x {} reps per variant, bursts of {} every {} us; timer overhead {:.0f} ns\n",
             samples, reps, burst, burst_gap.count(), timer.overhead_ns());
  std::vector<double> ours_p50, ours_p99, zmq_p50, zmq_p99, ring_p50, ring_p99;
  const auto tail = [](std::vector<double>& v) {
    return fmt::format("p90 {:.0f} p999 {:.0f}", percentile(v, 0.90), percentile(v, 0.999));
  };
  for (int r = 0; r < reps; ++r) {
    auto o = run_offload(timer, dir, samples);
    ours_p50.push_back(percentile(o, 0.50));
    ours_p99.push_back(percentile(o, 0.99));
    auto z = run_zmq_send(timer, dir, samples);
    zmq_p50.push_back(percentile(z, 0.50));
    zmq_p99.push_back(percentile(z, 0.99));
    auto g = run_ring(timer, samples);
    ring_p50.push_back(percentile(g, 0.50));
    ring_p99.push_back(percentile(g, 0.99));
    fmt::print("  rep {}: tails (ns): offload {} | zmq_send {} | ring {}\n", r + 1, tail(o), tail(z), tail(g));
    fmt::print("  rep {}: offload p50 {:.0f} p99 {:.0f} ns | zmq_send p50 {:.0f} p99 {:.0f} ns | ring try_push p50 {:.0f} p99 {:.0f} ns\n",
               r + 1, ours_p50.back(), ours_p99.back(), zmq_p50.back(), zmq_p99.back(), ring_p50.back(), ring_p99.back());
  }
  using aegis::bench::median;
  using aegis::bench::result_row;
  const auto lower = aegis::bench::better::lower;
  const std::vector<result_row> rows{
      {"offload_hot_path", "offload_p50", "ns", median(ours_p50), "zmq_send_64B_p50", median(zmq_p50), lower},
      {"offload_hot_path", "offload_p99", "ns", median(ours_p99), "zmq_send_64B_p99", median(zmq_p99), lower},
      {"offload_hot_path", "offload_p50_vs_ring", "ns", median(ours_p50), "ring_try_push_p50", median(ring_p50), lower},
      {"offload_hot_path", "offload_p99_vs_ring", "ns", median(ours_p99), "ring_try_push_p99", median(ring_p99), lower},
  };
  fmt::print("{:<18} {:<20} {:>10}  {:<20} {:>10}  {:>6}\n", "name", "metric", "ours", "peer", "peer", "ratio");
  for (const auto& r : rows) {
    fmt::print("{:<18} {:<20} {:>10.0f}  {:<20} {:>10.0f}  {:>6.2f}\n", r.name, r.metric, r.ours, r.peer, r.peer_value,
               r.ratio());
  }
  if (!json_path.empty()) aegis::bench::append_results(json_path, rows);
  return 0;
}
