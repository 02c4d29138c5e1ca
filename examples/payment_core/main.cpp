// payment_core: the smallest complete embedding of the Aegis offload path in
// a payment core, built against the installed package (find_package(Aegis 1)).
//
// Usage (a bridge serves the same two endpoints; docs/EMBEDDING.md):
//   payment_core --offload ipc:///run/aegis/offload.sock --verdicts ipc:///run/aegis/verdicts.sock
//                [--count 100000] [--producers 2] [--mode block|drop] [--rate 20000]
//                [--ring-capacity 65536] [--metrics-port 9464]
//                [--retransmit-timeout-ms 200] [--drain-timeout-ms 30000]
//
// What it shows, in the order a core does it:
//   1. scheduling set before any thread exists (every thread inherits it);
//   2. one zmq_env and one os_offloader, configured, with the fate callback;
//   3. producer threads calling offload() and deciding a refusal on the spot;
//   4. the fate callback applying verdicts on the pump thread, and nothing more;
//   5. the Prometheus exporter fed from the offloader's counters;
//   6. shutdown: producers joined, drain(), stop(), then the checks.
//
// Every offered transaction must end with exactly one fate: either offload()
// refused it (dropped), or the callback ran once for it (verdict, expired or
// abandoned). The example counts fates per transaction id and checks that at
// the end. Its last line is `summary key=value ...`; it exits 0 when every
// transaction had exactly one fate and the offloader's counters agree, 1 when
// not, 2 on a usage error, 3 when it cannot start. SIGINT or SIGTERM end the
// run early, through the same shutdown.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <aegis/metrics.hpp>
#include <aegis/os_offloader.hpp>
#include <aegis/sched.hpp>

namespace {

using aegis::ns_t;

constexpr int exit_ok = 0;
constexpr int exit_fates_wrong = 1;
constexpr int exit_usage = 2;
constexpr int exit_startup = 3;

constexpr const char* usage =
    "usage: payment_core --offload EP --verdicts EP [--count N] [--producers N] [--mode block|drop]\n"
    "                    [--rate TXN_PER_S] [--ring-capacity N] [--metrics-port P]\n"
    "                    [--retransmit-timeout-ms MS] [--drain-timeout-ms MS]\n";

struct options {
  std::string offload_endpoint;
  std::string verdict_endpoint;
  std::uint64_t count = 100'000;
  unsigned producers = 2;
  aegis::admission mode = aegis::admission::block;
  double rate = 0;  // Transactions per second, all producers together; 0 = as fast as admitted.
  std::size_t ring_capacity = 65536;
  std::optional<int> metrics_port;
  ns_t retransmit_timeout_ns = 200'000'000;
  ns_t drain_timeout_ns = 30'000'000'000;
};

template <class T>
bool parse_number(std::string_view s, T& out) {
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && end == s.data() + s.size();
}

std::optional<options> parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; i += 2) {
    const std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::fputs(usage, stdout);
      std::exit(exit_ok);
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "payment_core: %s needs a value\n%s", argv[i], usage);
      return std::nullopt;
    }
    const std::string_view value = argv[i + 1];
    std::uint64_t ms = 0;
    int port = 0;
    bool ok = true;
    if (flag == "--offload") {
      o.offload_endpoint = value;
    } else if (flag == "--verdicts") {
      o.verdict_endpoint = value;
    } else if (flag == "--count") {
      ok = parse_number(value, o.count) && o.count >= 1 && o.count <= 100'000'000;
    } else if (flag == "--producers") {
      ok = parse_number(value, o.producers) && o.producers >= 1 && o.producers <= 64;
    } else if (flag == "--mode") {
      ok = value == "block" || value == "drop";
      o.mode = value == "drop" ? aegis::admission::drop : aegis::admission::block;
    } else if (flag == "--rate") {
      ok = parse_number(value, o.rate) && o.rate >= 0;
    } else if (flag == "--ring-capacity") {
      ok = parse_number(value, o.ring_capacity) && o.ring_capacity >= 2 && std::has_single_bit(o.ring_capacity);
    } else if (flag == "--metrics-port") {
      ok = parse_number(value, port) && port >= 0 && port <= 65535;
      o.metrics_port = port;
    } else if (flag == "--retransmit-timeout-ms") {
      ok = parse_number(value, ms) && ms >= 1 && ms <= 3'600'000;
      o.retransmit_timeout_ns = static_cast<ns_t>(ms) * 1'000'000;
    } else if (flag == "--drain-timeout-ms") {
      ok = parse_number(value, ms) && ms <= 3'600'000;
      o.drain_timeout_ns = static_cast<ns_t>(ms) * 1'000'000;
    } else {
      std::fprintf(stderr, "payment_core: unknown flag %s\n%s", argv[i], usage);
      return std::nullopt;
    }
    if (!ok) {
      std::fprintf(stderr, "payment_core: bad value for %s: '%s'\n%s", argv[i], argv[i + 1], usage);
      return std::nullopt;
    }
  }
  if (o.offload_endpoint.empty() || o.verdict_endpoint.empty()) {
    std::fprintf(stderr, "payment_core: --offload and --verdicts are required\n%s", usage);
    return std::nullopt;
  }
  return o;
}

// What the core does with each outcome. In a real core the authorisation
// continues here (approve, hold for review, decline, or decide without a
// score); this one counts, and keeps one fate counter per transaction id so
// the run can prove that every offered transaction ended exactly once.
class fate_book {
 public:
  explicit fate_book(std::uint64_t count) : fates_(count + 1) {}

  // Pump thread, from the fate callback: atomics only (no lock, no I/O, no
  // allocation), so the pump gets back to sending and receiving at once.
  void on_verdict(std::uint64_t id, const aegis::verdict& v, std::int64_t amount_minor) {
    mark(id);
    if (v.unscored) unscored_.fetch_add(1, std::memory_order_relaxed);  // The bridge's fail-safe decision.
    switch (v.decision) {
      case 0: approved_.fetch_add(1, std::memory_order_relaxed); break;
      case 1: review_.fetch_add(1, std::memory_order_relaxed); break;
      default:
        declined_.fetch_add(1, std::memory_order_relaxed);
        declined_minor_.fetch_add(amount_minor, std::memory_order_relaxed);
        break;
    }
  }
  // Pump thread: no verdict in time (TTL) or no bridge would answer it.
  // A real core decides these with its rules alone.
  void on_expired(std::uint64_t id) {
    mark(id);
    expired_.fetch_add(1, std::memory_order_relaxed);
  }
  void on_abandoned(std::uint64_t id) {
    mark(id);
    abandoned_.fetch_add(1, std::memory_order_relaxed);
  }

  // Producer threads: offload() refused it (drop mode with a full ring, or
  // shutting down). The callback never runs for it; the core decides now.
  void on_refused(std::uint64_t id) {
    mark(id);
    refused_.fetch_add(1, std::memory_order_relaxed);
  }

  struct tally {
    std::uint64_t approved = 0, review = 0, declined = 0, unscored = 0, expired = 0, abandoned = 0, refused = 0;
    std::int64_t declined_minor = 0;
    std::uint64_t missing = 0;     // Offered, no fate.
    std::uint64_t duplicated = 0;  // Offered, two or more fates.
    std::uint64_t stray = 0;       // Fates for ids never offered.
    std::uint64_t verdicts() const { return approved + review + declined; }
  };

  // After stop(): the pump has been joined, so every callback's writes are visible.
  tally count(std::uint64_t offered) const {
    tally t{approved_.load(), review_.load(), declined_.load(), unscored_.load(), expired_.load(),
            abandoned_.load(), refused_.load(), declined_minor_.load()};
    t.stray = stray_ids_.load();
    for (std::uint64_t id = 1; id < fates_.size(); ++id) {
      const std::uint32_t n = fates_[id].load(std::memory_order_relaxed);
      if (id > offered) {
        t.stray += n;
      } else {
        t.missing += n == 0;
        t.duplicated += n > 1;
      }
    }
    return t;
  }

 private:
  void mark(std::uint64_t id) {
    if (id == 0 || id >= fates_.size()) {
      stray_ids_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    fates_[id].fetch_add(1, std::memory_order_relaxed);
  }

  std::vector<std::atomic<std::uint32_t>> fates_;  // By transaction id; [0] unused.
  std::atomic<std::uint64_t> approved_{0}, review_{0}, declined_{0}, unscored_{0}, expired_{0}, abandoned_{0},
      refused_{0}, stray_ids_{0};
  std::atomic<std::int64_t> declined_minor_{0};
};

// A synthetic card payment. Only txn_id matters to the offloader; the bridge's
// model scores the rest.
aegis::txn make_payment(std::uint64_t id, ns_t now_ns) {
  aegis::txn t;
  t.txn_id = id;
  t.amount_minor = 100 + static_cast<std::int64_t>(id * 7919 % 500'000);
  t.timestamp_ns = now_ns;
  t.merchant_id = 1 + id % 1000;
  t.card_fp = id * 0x9E3779B97F4A7C15ull;
  t.currency = {'E', 'U', 'R'};
  t.channel = static_cast<std::uint8_t>(id % 3);
  t.mcc = 5411;
  return t;
}

std::uint64_t random_epoch() {
  std::random_device rd;
  std::uint64_t e = 0;
  while (e == 0) e = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  return e;
}

int run(const options& o) {
  // 1. Before any thread exists (ZeroMQ's I/O thread and the pump are made
  //    below): every thread inherits the scheduling of the one that made it.
  if (const std::string err = aegis::apply_scheduling({.slice_ns = 100'000}); !err.empty()) {
    std::fprintf(stderr, "payment_core: warning: %s; running with the kernel's default\n", err.c_str());
  }

  // 2. The environment owns the ZeroMQ context: declared first, destroyed last.
  //    What the callback touches is declared before the offloader, so it
  //    outlives the pump.
  aegis::zmq_env env;
  aegis::offloader_config cfg;
  cfg.mode = o.mode;
  cfg.ring_capacity = o.ring_capacity;
  cfg.offload_endpoint = o.offload_endpoint;
  cfg.verdict_endpoint = o.verdict_endpoint;
  cfg.retransmit_timeout_ns = o.retransmit_timeout_ns;
  cfg.epoch = random_epoch();  // New per start: the bridge tells a restarted core from the old one.

  fate_book book(o.count);
  aegis::latency_histogram latency;  // One writer: the pump thread.
  std::optional<aegis::os_offloader> off;
  try {
    // The fate callback runs on the pump thread, once per accepted
    // transaction, and must not throw, block, or call back into the
    // offloader (offload, drain, stop): the pump is the only thread that
    // frees ring space and applies verdicts, so waiting on it from here
    // waits forever. `t` is valid only during the call.
    off.emplace(env, cfg,
                [&book, &latency](const aegis::txn& t, std::uint64_t /*seq*/, aegis::fate f, const aegis::verdict* v,
                                  ns_t offload_ns) noexcept {
                  switch (f) {
                    case aegis::fate::verdict:
                      latency.record(v->received_ns - offload_ns);
                      book.on_verdict(t.txn_id, *v, t.amount_minor);
                      break;
                    case aegis::fate::expired: book.on_expired(t.txn_id); break;
                    case aegis::fate::abandoned: book.on_abandoned(t.txn_id); break;
                  }
                });
  } catch (const std::exception& e) {  // Bad config (invalid_argument) or an endpoint that cannot bind.
    std::fprintf(stderr, "payment_core: cannot start the offloader: %s\n", e.what());
    return exit_startup;
  }

  // 3. Metrics: the exporter serves http://127.0.0.1:PORT/metrics; one thread
  //    copies the offloader's counters into it a few times a second.
  std::unique_ptr<aegis::metrics_exporter> exporter;
  if (o.metrics_port) {
    try {
      exporter = std::make_unique<aegis::metrics_exporter>("127.0.0.1:" + std::to_string(*o.metrics_port));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "payment_core: cannot serve metrics on port %d: %s\n", *o.metrics_port, e.what());
      return exit_startup;
    }
  }

  off->start();  // Spawns the pump thread ("aegis-pump").
  std::printf("ready offload=%s verdicts=%s metrics_port=%d pid=%d\n", cfg.offload_endpoint.c_str(),
              cfg.verdict_endpoint.c_str(), exporter ? exporter->port() : -1, static_cast<int>(::getpid()));
  std::fflush(stdout);

  std::atomic<bool> stop_requested{false};
  std::atomic<bool> finished{false};

  // SIGINT/SIGTERM are blocked in every thread (main blocked them before any
  // thread started) and taken here, so the shutdown runs in ordinary code.
  std::thread signal_watcher([&] {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    const timespec tick{0, 100'000'000};
    while (!finished.load()) {
      if (sigtimedwait(&set, nullptr, &tick) > 0) {
        stop_requested.store(true);
        off->close_admission();  // Producers blocked on a full ring return dropped_closed.
      }
    }
  });

  std::thread metrics_updater;
  if (exporter) {
    metrics_updater = std::thread([&] {
      while (!finished.load()) {
        exporter->update(off->counters(), latency);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    });
  }

  // 4. Producers: ids come from one counter; with --rate, id k is due at
  //    start + (k-1)/rate (an open-loop schedule shared by all producers).
  std::atomic<std::uint64_t> next_id{0};
  const ns_t start_ns = env.now_ns();
  std::vector<std::thread> producers;
  for (unsigned p = 0; p < o.producers; ++p) {
    producers.emplace_back([&] {
      for (;;) {
        if (stop_requested.load(std::memory_order_relaxed)) return;
        const std::uint64_t id = next_id.fetch_add(1, std::memory_order_relaxed) + 1;
        if (id > o.count) return;
        if (o.rate > 0) {
          const ns_t due = start_ns + static_cast<ns_t>(static_cast<double>(id - 1) * 1e9 / o.rate);
          if (due > env.now_ns()) {
            off->flush();  // A burst is complete: a napping pump sends it now.
            env.sleep_until_ns(due);
          }
        }
        const aegis::offload_status st = off->offload(make_payment(id, env.now_ns()));
        if (st != aegis::offload_status::accepted) book.on_refused(id);
      }
    });
  }

  // 5. Shutdown, in this order: producers stop (joined), the pump drains
  //    what is in flight, stop() joins the pump (no callback runs after it).
  for (std::thread& t : producers) t.join();
  const std::uint64_t offered = std::min(next_id.load(), o.count);
  const bool drained = off->drain(aegis::deadline_after(env.now_ns(), o.drain_timeout_ns));
  off->stop();
  finished.store(true);
  signal_watcher.join();
  if (metrics_updater.joinable()) metrics_updater.join();
  if (exporter) exporter->update(off->counters(), latency);

  // 6. Every offered transaction had exactly one fate, and the offloader agrees.
  const aegis::offloader_counters c = off->counters();
  const fate_book::tally t = book.count(offered);
  const bool exactly_once = t.missing == 0 && t.duplicated == 0 && t.stray == 0;
  const bool counters_agree = c.identity_holds() && c.offered == offered && c.verdicts == t.verdicts() &&
                              c.expired == t.expired && c.abandoned == t.abandoned && c.dropped() == t.refused &&
                              c.in_flight == t.missing;
  if (t.missing > 0) {
    // After stop() these will never get a callback; a real core decides
    // them now, without a score, from its own record of pending payments.
    std::fprintf(stderr, "payment_core: %llu transaction(s) got no fate before the drain deadline\n",
                 static_cast<unsigned long long>(t.missing));
  }
  std::printf(
      "summary mode=%s offered=%llu accepted=%llu verdicts=%llu approved=%llu review=%llu declined=%llu "
      "declined_minor=%lld unscored=%llu expired=%llu abandoned=%llu dropped=%llu missing=%llu duplicated=%llu stray=%llu "
      "bridge_incarnations=%llu retransmits=%llu latency_p99_us=%llu drained=%s counters_agree=%s exactly_once=%s\n",
      o.mode == aegis::admission::drop ? "drop" : "block", static_cast<unsigned long long>(offered),
      static_cast<unsigned long long>(c.accepted), static_cast<unsigned long long>(t.verdicts()),
      static_cast<unsigned long long>(t.approved), static_cast<unsigned long long>(t.review),
      static_cast<unsigned long long>(t.declined), static_cast<long long>(t.declined_minor),
      static_cast<unsigned long long>(t.unscored),
      static_cast<unsigned long long>(t.expired), static_cast<unsigned long long>(t.abandoned),
      static_cast<unsigned long long>(t.refused), static_cast<unsigned long long>(t.missing),
      static_cast<unsigned long long>(t.duplicated), static_cast<unsigned long long>(t.stray),
      static_cast<unsigned long long>(c.bridge_incarnations), static_cast<unsigned long long>(c.retransmits),
      static_cast<unsigned long long>(latency.percentile_ns(0.99) / 1000), drained ? "yes" : "no",
      counters_agree ? "yes" : "no", exactly_once ? "yes" : "no");
  std::fflush(stdout);
  return exactly_once && counters_agree ? exit_ok : exit_fates_wrong;
}

}  // namespace

int main(int argc, char** argv) {
  const std::optional<options> o = parse(argc, argv);
  if (!o) return exit_usage;
  // Before any thread starts, so every thread inherits the mask and only the
  // watcher in run() takes these signals.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  try {
    return run(*o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "payment_core: %s\n", e.what());
    return exit_startup;
  }
}
