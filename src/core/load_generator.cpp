// The load generator; see load_generator.hpp.
#include "core/load_generator.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <latch>
#include <thread>
#include <vector>

#include "aegis/assert.hpp"

namespace aegis::core {

namespace {

// Benchmarks: without this, a bridge that connects up to one reconnect
// interval after our bind makes the first transactions wait for it, and
// that start-up wait lands in the latency percentiles and the throughput.
void await_first_hello(os_offloader& off, const stop_signals& stop) {
  while (off.counters().hellos == 0 && !stop.requested()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  AEGIS_ASSERT(off.counters().hellos > 0 || stop.requested(), "the wait ends with a HELLO or a stop signal");
}

// The schedule every producer follows, fixed before `go` opens.
struct schedule {
  ns_t period_ns = 0;                ///< 0 = flat out.
  ns_t start_ns = 0;                 ///< Payment 1 is due here.
  ns_t end_ns = aegis::no_deadline;  ///< No payment is due at or after this.
};

// One producer's loop. Open-loop pacing that costs little at 1M/s: the clock
// is read only when the schedule looks ahead of the last reading (a read
// costs ~60 ns here). Behind schedule, payments go out back to back with
// their intended times, so lateness shows up as latency. Flat out, the
// payment time is refreshed every 16 payments.
void produce(zmq_env& env, os_offloader& off, const payment_stream& stream, ledger& ledger, const options& o,
             const stop_signals& stop, const schedule& plan, std::atomic<std::uint64_t>& next_id,
             std::atomic<std::uint64_t>& generated) {
  ns_t now = env.now_ns();
  ns_t last_wake = 0;
  std::uint64_t made = 0;
  for (;;) {
    if (stop.requested()) return;
    const std::uint64_t id = next_id.fetch_add(1, std::memory_order_relaxed) + 1;
    if (o.count && id > *o.count) return;
    ns_t due = now;
    if (plan.period_ns > 0) {
      due = plan.start_ns + static_cast<ns_t>(id - 1) * plan.period_ns;
      if (due >= plan.end_ns) return;
      if (due > now) {
        now = env.now_ns();
        if (due > now) {
          // Sleeps are at least --pace-quantum apart; what fell due
          // meanwhile goes out on waking, back to back, still stamped
          // with its intended time (so the wait counts as latency). On
          // this class of VM a timed sleep costs ~20 us of CPU and
          // overshoots by ~50 us, and one per payment at 50k/s took half
          // a core from the pipeline being measured.
          const ns_t wake = std::max(due, aegis::deadline_after(last_wake, o.pace_quantum_ns));
          // The burst is complete: let a napping pump send it now.
          off.flush();
          env.sleep_until_ns(wake);
          now = last_wake = wake;
        }
      }
    } else {
      if (++made % 16 == 0) now = due = env.now_ns();
      if (due >= plan.end_ns) return;
    }
    AEGIS_DEBUG_ASSERT(id >= 1, "ids start at 1");
    AEGIS_DEBUG_ASSERT(due < plan.end_ns, "no payment is due at or after the end of the schedule");
    generated.fetch_add(1, std::memory_order_relaxed);
    const aegis::txn t = stream.make(id, due);
    if (!stream.high_risk(t)) continue;
    ledger.offered(id);
    const auto st = off.offload(t);
    if (st != aegis::offload_status::accepted) ledger.dropped(id, st);
  }
}

}  // namespace

load_result generate_load(zmq_env& env, os_offloader& off, const payment_stream& stream, fate_log& fates,
                          const options& o, const stop_signals& stop) {
  AEGIS_ASSERT(o.producers >= 1, "at least one producer");
  AEGIS_ASSERT(o.rate >= 0, "the rate is not negative (0 = flat out)");
  if (o.start_after_hello) await_first_hello(off, stop);

  std::atomic<std::uint64_t> next_id{0};
  std::atomic<std::uint64_t> generated{0};
  // The schedule starts once every producer runs: starting a thread takes
  // milliseconds here now and then, and payments due meanwhile would show
  // that as latency. `plan` is written before `go` opens.
  schedule plan;
  plan.period_ns = o.rate > 0 ? static_cast<ns_t>(1e9 / o.rate) : 0;
  std::latch ready(o.producers);
  std::latch go(1);
  std::vector<std::thread> producers;
  for (unsigned p = 0; p < o.producers; ++p) {
    // env.spawn names the thread and gives it 1 us timer slack, as the pump
    // gets: the default 50 us would make every paced sleep 50 us late.
    producers.push_back(env.spawn("aegis-producer", [&] {
      ready.count_down();
      go.wait();
      produce(env, off, stream, fates.ledger, o, stop, plan, next_id, generated);
    }));
  }
  ready.wait();
  load_result r;
  r.start_ns = plan.start_ns = env.now_ns();
  if (o.warmup_ns > 0) fates.start_latency_at(aegis::deadline_after(r.start_ns, o.warmup_ns));
  if (o.duration_ns) plan.end_ns = aegis::deadline_after(r.start_ns, *o.duration_ns);
  go.count_down();
  for (auto& t : producers) t.join();
  r.produced_ns = env.now_ns();
  // Ids claimed but not generated (the id that ended a producer's loop) are never offered.
  r.max_id = next_id.load();
  r.generated = generated.load();
  AEGIS_ASSERT(r.produced_ns >= r.start_ns, "production ends after it starts");
  AEGIS_ASSERT(r.generated <= r.max_id, "every payment made had a claimed id");
  AEGIS_ASSERT(!o.count || r.generated <= *o.count, "--count bounds the payments made");
  return r;
}

}  // namespace aegis::core
