// ring_bench: aegis::ring_buffer side by side with boost::lockfree::spsc_queue
// and moodycamel::ReaderWriterQueue, in one process, same conditions.
//
// Usage:
//   build/release/bench/ring_bench                      # 5 repetitions, table only
//   build/release/bench/ring_bench --json build/release/bench-results.json
//   build/release/bench/ring_bench --reps 7 --quick     # smaller runs, for a smoke check
//
// Method. Producer and consumer threads are pinned to two different CPUs.
// Each repetition runs every measurement for the three queues in turn
// (ours, boost, moodycamel, ours, boost, moodycamel, ...), so drift in the VM
// (a noisy neighbour, a vCPU moved) hits all three alike; the table reports
// the median over repetitions. Every queue has the same capacity, copies the
// same item in, and is consumed in place through its own batch API where it
// has one (our read()+release(), boost consume_all(), moodycamel peek()+pop()).
// Items are `uint64_t` and a 256-byte record.
//
// Measures:
//   throughput        items/s through one producer and one consumer, producer
//                     retrying try_push when full (higher is better)
//   pingpong_rtt      round trip of one item over two queues, A->B->A (p50, p99)
//   try_push          cost of one non-blocking try_push on a ring that is not
//                     full, with the consumer draining concurrently (p50, p99)
// Latencies are timed with lfence-ordered rdtsc calibrated against
// steady_clock; the printed timer overhead is included in every latency.
//
// Our ring runs in drop mode with its counters on, as in production.
#include <CLI/CLI.hpp>
#include <boost/lockfree/spsc_queue.hpp>
#include <fmt/core.h>
#include <readerwriterqueue/readerwriterqueue.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "aegis/bench_results.hpp"
#include "aegis/env.hpp"
#include "aegis/ring_buffer.hpp"
#include "bench_support.hpp"

namespace {
using aegis::bench::tsc_timer;

/// A 256-byte payload record, the size of a serialised transaction.
struct record256 {
  std::uint64_t seq = 0;
  std::array<std::byte, 248> payload{};
};
static_assert(sizeof(record256) == 256);

std::uint64_t seq_of(std::uint64_t v) { return v; }
std::uint64_t seq_of(const record256& r) { return r.seq; }
template <class T>
T make_item(std::uint64_t seq) {
  if constexpr (std::is_same_v<T, std::uint64_t>) {
    return seq;
  } else {
    T r;
    r.seq = seq;
    r.payload[0] = std::byte(seq);
    return r;
  }
}

/// Every consumer drains all that is available per call, as boost's
/// consume_all() does, so no queue is held back by a batch limit.
constexpr std::size_t max_batch = std::numeric_limits<std::size_t>::max();

// ----------------------------------------------------------------- adapters
// Each adapter exposes try_push(const T&) -> bool and consume(fn) -> count,
// where consume hands each available entry (up to max_batch) to fn in place.

template <class T, std::size_t Capacity>
struct ours_queue {
  static constexpr const char* name = "aegis::ring_buffer";
  aegis::os_env env;
  aegis::ring_buffer<T, aegis::os_env> ring{env, Capacity, aegis::admission::drop};

  bool try_push(const T& v) { return ring.try_push(v) == aegis::push_status::accepted; }
  template <class F>
  std::size_t consume(F&& fn) {
    const std::size_t n = ring.read(max_batch, [&](std::uint64_t, T& v) { fn(v); });
    if (n != 0) ring.release(ring.read_position());
    return n;
  }
};

template <class T, std::size_t Capacity>
struct boost_queue {
  static constexpr const char* name = "boost::lockfree::spsc_queue";
  // Compile-time capacity: boost's faster variant. It holds Capacity - 1 items.
  boost::lockfree::spsc_queue<T, boost::lockfree::capacity<Capacity>> q;

  bool try_push(const T& v) { return q.push(v); }
  template <class F>
  std::size_t consume(F&& fn) {
    return q.consume_all([&](const T& v) { fn(const_cast<T&>(v)); });
  }
};

template <class T, std::size_t Capacity>
struct moodycamel_queue {
  static constexpr const char* name = "moodycamel::ReaderWriterQueue";
  moodycamel::ReaderWriterQueue<T> q{Capacity};

  // try_enqueue never allocates, so the queue stays bounded like the others.
  bool try_push(const T& v) { return q.try_enqueue(v); }
  template <class F>
  std::size_t consume(F&& fn) {
    std::size_t n = 0;
    while (n < max_batch) {
      T* p = q.peek();
      if (p == nullptr) break;
      fn(*p);
      q.pop();
      ++n;
    }
    return n;
  }
};

// ----------------------------------------------------------------- harness

struct bench_config {
  int reps = 5;
  bool quick = false;
  std::string json_path;
  std::string items = "all";  ///< "u64", "record256" or "all".
  int producer_cpu = -1;
  int consumer_cpu = -1;
  bool spin = true;  ///< Pinned on two CPUs: waiting loops may spin.
};

void relax(const bench_config& cfg) {
  if (cfg.spin) {
    aegis::os_env{}.spin_pause();
  } else {
    std::this_thread::yield();
  }
}

void pin(int cpu) {
  if (cpu >= 0 && !aegis::bench::pin_this_thread(cpu)) {
    std::fprintf(stderr, "ring_bench: cannot pin to CPU %d\n", cpu);
  }
}

/// Starts producer and consumer on their CPUs and releases them together.
void run_pair(const bench_config& cfg, const std::function<void()>& producer, const std::function<void()>& consumer) {
  std::atomic<int> ready{0};
  auto start = [&](int cpu, const std::function<void()>& body) {
    return std::thread([&, cpu] {
      pin(cpu);
      ready.fetch_add(1);
      while (ready.load() < 2) relax(cfg);
      body();
    });
  };
  std::thread c = start(cfg.consumer_cpu, consumer);
  std::thread p = start(cfg.producer_cpu, producer);
  p.join();
  c.join();
}

[[noreturn]] void order_failure(const char* queue, std::uint64_t got, std::uint64_t want) {
  std::fprintf(stderr, "ring_bench: %s delivered seq %llu, expected %llu\n", queue, (unsigned long long)got,
               (unsigned long long)want);
  std::exit(3);
}

/// Items per second through one producer and one consumer.
template <class Q, class T>
double measure_throughput(const bench_config& cfg, std::uint64_t items) {
  auto q = std::make_unique<Q>();
  std::chrono::steady_clock::time_point t0, t1;
  run_pair(
      cfg,
      [&] {
        t0 = std::chrono::steady_clock::now();
        for (std::uint64_t i = 0; i < items; ++i) {
          const T item = make_item<T>(i);
          while (!q->try_push(item)) relax(cfg);
        }
      },
      [&] {
        std::uint64_t want = 0;
        while (want < items) {
          const std::size_t n = q->consume([&](T& v) {
            if (seq_of(v) != want) order_failure(Q::name, seq_of(v), want);
            ++want;
          });
          if (n == 0) relax(cfg);
        }
        t1 = std::chrono::steady_clock::now();
      });
  return static_cast<double>(items) / std::chrono::duration<double>(t1 - t0).count();
}

/// Round-trip samples in ns: A pushes to B over one queue, B echoes back over another.
template <class Q, class T>
std::vector<double> measure_pingpong(const bench_config& cfg, const tsc_timer& timer, std::uint64_t rounds) {
  auto ab = std::make_unique<Q>();
  auto ba = std::make_unique<Q>();
  constexpr std::uint64_t warmup = 1'000;
  std::vector<double> samples;
  samples.reserve(rounds);
  run_pair(
      cfg,
      [&] {
        for (std::uint64_t i = 0; i < warmup + rounds; ++i) {
          const T item = make_item<T>(i);
          const std::uint64_t t0 = timer.ticks();
          while (!ab->try_push(item)) relax(cfg);
          std::uint64_t echoed = ~0ull;
          while (ba->consume([&](T& v) { echoed = seq_of(v); }) == 0) relax(cfg);
          const std::uint64_t t1 = timer.ticks();
          if (echoed != i) order_failure(Q::name, echoed, i);
          if (i >= warmup) samples.push_back(timer.to_ns(t1 - t0));
        }
      },
      [&] {
        T local{};
        for (std::uint64_t i = 0; i < warmup + rounds; ++i) {
          while (ab->consume([&](T& v) { local = v; }) == 0) relax(cfg);
          while (!ba->try_push(local)) relax(cfg);
        }
      });
  return samples;
}

/// Cost in ns of each successful try_push into a ring that is not full, while
/// the consumer drains on the other CPU. Full attempts are retried, not sampled.
template <class Q, class T>
std::vector<double> measure_try_push(const bench_config& cfg, const tsc_timer& timer, std::uint64_t items) {
  auto q = std::make_unique<Q>();
  std::vector<double> samples;
  samples.reserve(items);
  run_pair(
      cfg,
      [&] {
        for (std::uint64_t i = 0; i < items; ++i) {
          const T item = make_item<T>(i);
          for (;;) {
            const std::uint64_t t0 = timer.ticks();
            const bool ok = q->try_push(item);
            const std::uint64_t t1 = timer.ticks();
            if (ok) {
              samples.push_back(timer.to_ns(t1 - t0));
              break;
            }
            relax(cfg);
          }
        }
      },
      [&] {
        std::uint64_t got = 0;
        while (got < items) {
          const std::size_t n = q->consume([&](T&) {});
          got += n;
          if (n == 0) relax(cfg);
        }
      });
  return samples;
}

// ----------------------------------------------------------------- collection

/// Per-repetition values of one metric for one queue.
using series = std::map<std::string, std::vector<double>>;  // queue name -> values

struct metric_spec {
  std::string metric;
  std::string unit;
  aegis::bench::better direction;
};

struct item_results {
  std::string name;                     // e.g. "ring_buffer/u64"
  std::map<std::string, series> by_metric;  // metric -> queue -> per-rep values
};

/// One repetition for item type T. Each measurement runs for ours, boost
/// and moodycamel back to back before the next measurement starts, so the
/// three values a per-repetition ratio compares are taken seconds apart, not
/// a whole repetition apart: on a VM whose vCPUs the host moves between
/// cores, the cost of a cache-line transfer (and with it every queue's
/// throughput) can change several-fold from one minute to the next.
template <class T, std::size_t Capacity>
void run_repetition(const bench_config& cfg, const tsc_timer& timer, item_results& out) {
  using Ours = ours_queue<T, Capacity>;
  using Boost = boost_queue<T, Capacity>;
  using Moody = moodycamel_queue<T, Capacity>;
  const std::uint64_t div = cfg.quick ? 10 : 1;
  const std::uint64_t tp_items = (std::is_same_v<T, std::uint64_t> ? 20'000'000 : 4'000'000) / div;
  const std::uint64_t pp_rounds = 100'000 / div;
  const std::uint64_t tpush_items = 1'000'000 / div;
  auto& tp = out.by_metric["throughput"];
  tp[Ours::name].push_back(measure_throughput<Ours, T>(cfg, tp_items));
  tp[Boost::name].push_back(measure_throughput<Boost, T>(cfg, tp_items));
  tp[Moody::name].push_back(measure_throughput<Moody, T>(cfg, tp_items));
  const auto pingpong = [&](const std::string& q, std::vector<double> rtt) {
    out.by_metric["pingpong_rtt_p50"][q].push_back(aegis::bench::percentile(rtt, 0.50));
    out.by_metric["pingpong_rtt_p99"][q].push_back(aegis::bench::percentile(rtt, 0.99));
  };
  pingpong(Ours::name, measure_pingpong<Ours, T>(cfg, timer, pp_rounds));
  pingpong(Boost::name, measure_pingpong<Boost, T>(cfg, timer, pp_rounds));
  pingpong(Moody::name, measure_pingpong<Moody, T>(cfg, timer, pp_rounds));
  const auto try_push = [&](const std::string& q, std::vector<double> ns) {
    out.by_metric["try_push_p50"][q].push_back(aegis::bench::percentile(ns, 0.50));
    out.by_metric["try_push_p99"][q].push_back(aegis::bench::percentile(ns, 0.99));
  };
  try_push(Ours::name, measure_try_push<Ours, T>(cfg, timer, tpush_items));
  try_push(Boost::name, measure_try_push<Boost, T>(cfg, timer, tpush_items));
  try_push(Moody::name, measure_try_push<Moody, T>(cfg, timer, tpush_items));
}

/// Median over repetitions of ours / peer within each repetition. Robust to
/// the machine drifting between repetitions, which the ratio of the two
/// medians is not.
double paired_ratio(const std::vector<double>& ours, const std::vector<double>& peer) {
  std::vector<double> r;
  for (std::size_t i = 0; i < ours.size() && i < peer.size(); ++i) {
    if (peer[i] != 0) r.push_back(ours[i] / peer[i]);
  }
  return r.empty() ? 0.0 : aegis::bench::median(r);
}

const std::vector<metric_spec>& metric_specs() {
  using aegis::bench::better;
  static const std::vector<metric_spec> specs{
      {"throughput", "ops/s", better::higher},  {"pingpong_rtt_p50", "ns", better::lower},
      {"pingpong_rtt_p99", "ns", better::lower}, {"try_push_p50", "ns", better::lower},
      {"try_push_p99", "ns", better::lower},
  };
  return specs;
}

std::string human(double v, const std::string& unit) {
  if (unit == "ops/s") return fmt::format("{:.1f} M/s", v / 1e6);
  return fmt::format("{:.0f} ns", v);
}

}  // namespace

int main(int argc, char** argv) {
  bench_config cfg;
  CLI::App app{"aegis::ring_buffer vs boost::lockfree::spsc_queue vs moodycamel::ReaderWriterQueue"};
  app.add_option("--reps", cfg.reps, "repetitions of the alternating A B C sequence (>= 5 for a report)")
      ->check(CLI::Range(1, std::numeric_limits<int>::max()));
  app.add_flag("--quick", cfg.quick, "10x fewer items per run: a smoke check, not a measurement");
  app.add_option("--json", cfg.json_path, "append result rows to this JSON array file (bench-results.json)");
  app.add_option("--items", cfg.items, "item types to run")->check(CLI::IsMember({"all", "u64", "record256"}));
  CLI11_PARSE(app, argc, argv);

  const std::vector<int> cpus = aegis::bench::allowed_cpus();
  if (cpus.size() >= 2) {
    cfg.producer_cpu = cpus[0];
    cfg.consumer_cpu = cpus[1];
  } else {
    cfg.spin = false;  // One CPU: spinning would only steal the other side's time.
    std::fprintf(stderr, "ring_bench: fewer than 2 CPUs; threads not pinned, numbers not meaningful\n");
  }
  const tsc_timer timer;
  const double timer_overhead_ns = timer.overhead_ns();
  fmt::print("ring_bench: {} repetitions{}, producer on CPU {}, consumer on CPU {}, timer overhead {:.0f} ns\n", cfg.reps,
             cfg.quick ? " (quick)" : "", cfg.producer_cpu, cfg.consumer_cpu, timer_overhead_ns);
  std::fflush(stdout);

  item_results u64{"ring_buffer/u64", {}};
  item_results rec{"ring_buffer/record256", {}};
  for (int rep = 0; rep < cfg.reps; ++rep) {
    if (cfg.items != "record256") run_repetition<std::uint64_t, 4096>(cfg, timer, u64);
    if (cfg.items != "u64") run_repetition<record256, 1024>(cfg, timer, rec);
    fmt::print("  repetition {}/{} done\n", rep + 1, cfg.reps);
    std::fflush(stdout);
  }

  const std::string ours = ours_queue<std::uint64_t, 2>::name;
  const std::vector<std::string> peers{boost_queue<std::uint64_t, 2>::name, moodycamel_queue<std::uint64_t, 2>::name};
  std::vector<aegis::bench::result_row> rows;
  fmt::print("\nmedians of {} alternating runs; ratio = median over repetitions of ours / peer in that repetition\n", cfg.reps);
  fmt::print("{:<22} {:<17} {:>11} {:>11} {:>6} {:>11} {:>6}  {}\n", "name", "metric", "ours", "boost", "ratio",
             "moodycamel", "ratio", "better");
  std::vector<const item_results*> ran;
  if (cfg.items != "record256") ran.push_back(&u64);
  if (cfg.items != "u64") ran.push_back(&rec);
  for (const item_results* ir : ran) {
    for (const auto& spec : metric_specs()) {
      const series& s = ir->by_metric.at(spec.metric);
      const double ours_v = aegis::bench::median(s.at(ours));
      std::string line = fmt::format("{:<22} {:<17} {:>11}", ir->name, spec.metric, human(ours_v, spec.unit));
      for (const auto& peer : peers) {
        aegis::bench::result_row row{ir->name, spec.metric, spec.unit, ours_v, peer,
                                     aegis::bench::median(s.at(peer)), spec.direction,
                                     paired_ratio(s.at(ours), s.at(peer))};
        line += fmt::format(" {:>11} {:>6.2f}", human(row.peer_value, spec.unit), row.ratio());
        rows.push_back(row);
      }
      line += spec.direction == aegis::bench::better::higher ? "  higher" : "  lower";
      fmt::print("{}\n", line);
    }
  }

  // The targets, checked here (a benchmark checks them, not a test).
  const auto find = [&](const std::string& name, const std::string& metric, const std::string& peer) {
    for (const auto& r : rows) {
      if (r.name == name && r.metric == metric && r.peer == peer) return r;
    }
    return aegis::bench::result_row{};
  };
  fmt::print("\ntargets:\n");
  for (const item_results* ir : ran) {
    const auto tb = find(ir->name, "throughput", peers[0]);
    const auto tm = find(ir->name, "throughput", peers[1]);
    const auto pp = find(ir->name, "pingpong_rtt_p50", peers[0]);
    const auto tp = find(ir->name, "try_push_p99", peers[0]);
    const auto verdict = [](bool ok) { return ok ? "met" : "MISSED"; };
    fmt::print("  {:<22} throughput vs boost      {:>5.2f}x (>= 1.30)  {}\n", ir->name, tb.ratio(), verdict(tb.ratio() >= 1.3));
    fmt::print("  {:<22} throughput vs moodycamel {:>5.2f}x (>= 1.00)  {}\n", ir->name, tm.ratio(), verdict(tm.ratio() >= 1.0));
    fmt::print("  {:<22} ping-pong p50 vs boost   {:>5.2f}x (<= 1.00)  {}\n", ir->name, pp.ratio(), verdict(pp.ratio() <= 1.0));
    fmt::print("  {:<22} try_push p99             {:>5.0f} ns (< 1000)  {}\n", ir->name, tp.ours, verdict(tp.ours < 1000));
  }
  fmt::print("latencies include the timer's own {:.0f} ns\n", timer_overhead_ns);

  if (!cfg.json_path.empty()) {
    aegis::bench::append_results(cfg.json_path, rows);
    fmt::print("appended {} rows to {}\n", rows.size(), cfg.json_path);
  }
  return 0;
}
