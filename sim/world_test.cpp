// Proves the world's core contracts: a run is a pure function of its seed
// (same seed, same trace hash; other seed, other hash), a deadlock is reported
// as such, killing a process unwinds exactly its fibers, a stall freezes a
// process, crashing a process abandons exactly its fibers (no unwinding), the
// bridge model's first HELLO waits for its offload connection as bridge.py's
// does, and the production ring buffer keeps its contract when its atomics
// are yield points under both scheduling strategies. Under ASan and TSan it
// also proves the sanitizers follow every fiber switch (sim/fiber_sanitizer.hpp).
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "aegis/protocol.hpp"
#include "aegis/ring_buffer.hpp"
#include "sim/bridge_model.hpp"
#include "sim/sim_env.hpp"
#include "sim/world.hpp"

namespace aegis::sim {
namespace {

std::uint64_t toy_run(std::uint64_t seed, schedule_strategy strategy = schedule_strategy::random) {
  world_options o;
  o.strategy = strategy;
  o.pct_steps_estimate = 10'000;
  world w{seed, o};
  network net{w, {}};
  auto p = w.add_process("core");
  sim_env env{w, net, p};
  sim_env::atomic<std::uint64_t> counter{env, 0};
  for (int i = 0; i < 3; ++i) {
    env.spawn("worker", [&, i] {
      prng r = w.stream("worker" + std::to_string(i));
      for (int k = 0; k < 50; ++k) {
        counter.fetch_add(1);
        if (r.chance(1, 4)) env.sleep_until_ns(env.now_ns() + r.range(1, 1000));
      }
    });
  }
  run_result res = w.run();
  EXPECT_EQ(res.outcome, run_outcome::finished) << res.reason;
  EXPECT_EQ(counter.peek(), 150u);
  return w.trace().hash();
}

TEST(World, SameSeedSameHashOtherSeedOtherHash) {
  for (auto s : {schedule_strategy::random, schedule_strategy::pct}) {
    EXPECT_EQ(toy_run(42, s), toy_run(42, s));
    EXPECT_NE(toy_run(42, s), toy_run(43, s));
  }
}

TEST(World, DeadlockIsDetected) {
  world w{7, {}};
  network net{w, {}};
  auto p = w.add_process("core");
  sim_env env{w, net, p};
  sim_env::atomic<std::uint32_t> a{env, 0}, b{env, 0};
  env.spawn("left", [&] { env.park(a, 0, no_deadline); });
  env.spawn("right", [&] { env.park(b, 0, no_deadline); });
  run_result r = w.run();
  EXPECT_EQ(r.outcome, run_outcome::deadlock);
  EXPECT_NE(r.reason.find("core/left"), std::string::npos) << r.reason;
  EXPECT_NE(r.reason.find("core/right"), std::string::npos) << r.reason;
}

TEST(World, ParkTimesOutAndUnparkWakes) {
  world w{8, {}};
  network net{w, {}};
  auto p = w.add_process("core");
  sim_env env{w, net, p};
  sim_env::atomic<std::uint32_t> word{env, 0};
  bool timed_out = false, woken = false;
  env.spawn("timeout", [&] { timed_out = !env.park(word, 0, 1'000'000); });
  env.spawn("waiter", [&] {
    while (word.load() == 0) woken = env.park(word, 0, no_deadline);
  });
  env.spawn("waker", [&] {
    env.sleep_until_ns(5'000'000);
    word.store(1);
    env.unpark_all(word);
  });
  EXPECT_EQ(w.run().outcome, run_outcome::finished);
  EXPECT_TRUE(timed_out);
  EXPECT_TRUE(woken);
  EXPECT_GE(w.now_ns(), 5'000'000);
}

TEST(World, KillUnwindsOnlyThatProcess) {
  world w{9, {}};
  network net{w, {}};
  auto core = w.add_process("core");
  auto bridge = w.add_process("bridge");
  sim_env core_env{w, net, core}, bridge_env{w, net, bridge};
  int destroyed = 0;
  bool core_done = false;
  struct guard {
    int* n;
    ~guard() { ++*n; }
  };
  for (int i = 0; i < 2; ++i) {
    bridge_env.spawn("loop", [&] {
      guard g{&destroyed};
      for (;;) bridge_env.sleep_until_ns(bridge_env.now_ns() + 1000);
    });
  }
  core_env.spawn("main", [&] {
    core_env.sleep_until_ns(1'000'000);
    w.kill(bridge);
    core_done = true;
  });
  EXPECT_EQ(w.run().outcome, run_outcome::finished);
  EXPECT_EQ(destroyed, 2);
  EXPECT_TRUE(core_done);
  EXPECT_FALSE(w.alive(bridge));
}

TEST(World, CrashAbandonsOnlyThatProcess) {
  world w{3, {}};
  network net{w, {}};
  auto victim = w.add_process("core");
  auto other = w.add_process("bridge");
  sim_env victim_env{w, net, victim};
  sim_env other_env{w, net, other};
  int destroyed = 0;
  struct guard {
    int* n;
    ~guard() { ++*n; }
  };
  int victim_steps = 0, other_steps = 0;
  victim_env.spawn("victim", [&] {
    guard g{&destroyed};  // Never destroyed: a crash runs nothing of the process.
    for (;;) {
      ++victim_steps;
      victim_env.sleep_until_ns(victim_env.now_ns() + 1'000'000);
    }
  });
  other_env.spawn("other", [&] {
    for (int i = 0; i < 50; ++i) {
      ++other_steps;
      other_env.sleep_until_ns(other_env.now_ns() + 1'000'000);
    }
  });
  w.at(10'500'000, [&] { w.crash(victim); });
  const run_result r = w.run();
  EXPECT_EQ(r.outcome, run_outcome::finished) << r.reason;
  EXPECT_FALSE(w.alive(victim));
  EXPECT_EQ(destroyed, 0) << "a crashed process runs no destructor";
  EXPECT_EQ(victim_steps, 11);
  EXPECT_EQ(other_steps, 50) << "the other process runs on";
}

// bridge.py sends a HELLO ("send to me") only while its offload connection is
// up, and at once when it comes up. The model does the same: started long
// before any core binds, it sends none; the first frame a core then receives
// on the verdict channel is a HELLO, and heartbeats follow.
TEST(BridgeModel, FirstHelloWaitsForTheOffloadConnection) {
  world w{11, {}};
  network net{w, {}};
  bridge_model bridge{w, net, {.offload_endpoint = "ipc://sim/offload", .verdict_endpoint = "ipc://sim/verdicts"}};
  auto core = w.add_process("core");
  sim_env env{w, net, core};
  std::vector<frame_type> got;
  std::uint64_t hellos_before_core = UINT64_MAX;
  bridge.start();
  env.spawn("core", [&] {
    env.sleep_until_ns(1'000'000'000);  // Five heartbeats with no core.
    hellos_before_core = bridge.stats().hellos_sent + bridge.stats().hellos_dropped;
    auto verdicts = env.make_socket(socket_kind::pull, socket_options{});
    verdicts.bind("ipc://sim/verdicts");
    auto offload = env.make_socket(socket_kind::push, socket_options{});
    offload.bind("ipc://sim/offload");
    auto bell = env.make_doorbell();
    std::vector<std::byte> buf;
    const ns_t deadline = env.now_ns() + 500'000'000;
    while (env.now_ns() < deadline) {
      if (verdicts.recv(buf) == recv_result::ok) {
        const decoded_frame f = decode_frame(buf);
        ASSERT_TRUE(f.ok());
        got.push_back(f.header.type);
      } else {
        (void)env.wait(verdicts, bell, deadline);
      }
    }
    bridge.crash();
  });
  const run_result r = w.run();
  ASSERT_EQ(r.outcome, run_outcome::finished) << r.reason;
  EXPECT_EQ(hellos_before_core, 0u) << "no HELLO before the offload connection exists";
  ASSERT_FALSE(got.empty()) << "a HELLO once the offload connection exists";
  EXPECT_EQ(got.front(), frame_type::hello);
  EXPECT_GE(std::count(got.begin(), got.end(), frame_type::hello), 3) << "then one every heartbeat (200 ms)";
}

TEST(World, StallFreezesAProcess) {
  world w{10, {}};
  network net{w, {}};
  auto core = w.add_process("core");
  auto bridge = w.add_process("bridge");
  sim_env core_env{w, net, core}, bridge_env{w, net, bridge};
  std::vector<ns_t> ticks;
  bridge_env.spawn("ticker", [&] {
    for (int i = 0; i < 20; ++i) {
      ticks.push_back(bridge_env.now_ns());
      bridge_env.sleep_until_ns(bridge_env.now_ns() + 1'000'000);
    }
  });
  core_env.spawn("staller", [&] {
    core_env.sleep_until_ns(5'500'000);
    w.stall(bridge, 15'000'000);
  });
  EXPECT_EQ(w.run().outcome, run_outcome::finished);
  for (ns_t t : ticks) EXPECT_FALSE(t > 5'500'000 && t < 15'000'000) << t;
}

TEST(World, FaultSitesUseTwoLevelRandomness) {
  auto fired = [](std::uint64_t seed) {
    world w{seed, {}};
    w.configure_fault_default({500'000, 100'000});
    std::uint64_t n = 0;
    for (int i = 0; i < 1000; ++i) n += w.fault_fires("a") + 2 * w.fault_fires("b");
    return std::make_pair(n, w.fault_stats());
  };
  auto [n1, s1] = fired(1);
  auto [n2, s2] = fired(1);
  EXPECT_EQ(n1, n2);
  ASSERT_EQ(s1.size(), 2u);
  for (const auto& [name, st] : s1) {
    EXPECT_EQ(st.queries, 1000u);
    if (!st.active) EXPECT_EQ(st.fired, 0u);
    if (st.active) EXPECT_GT(st.fired, 50u);
  }
  // Across seeds, both activated and dormant sites occur.
  std::set<bool> seen;
  for (std::uint64_t s = 0; s < 20; ++s) seen.insert(fired(s).second[0].second.active);
  EXPECT_EQ(seen.size(), 2u);
}

/// The production multi-producer ring, block mode, tiny capacity: every value
/// pushed is read exactly once and each producer's values come in order.
void ring_run(std::uint64_t seed, schedule_strategy strategy) {
  world_options o;
  o.strategy = strategy;
  o.pct_steps_estimate = 200'000;
  o.max_steps = 50'000'000;
  world w{seed, o};
  network net{w, {}};
  auto p = w.add_process("core");
  sim_env env{w, net, p};
  ring_buffer<std::uint64_t, sim_env, multi_producer> ring{env, 4, admission::block};
  constexpr int producers = 3, per_producer = 200;
  std::map<std::uint64_t, std::uint64_t> last;  // producer -> last value seen
  std::uint64_t got = 0;
  for (int i = 0; i < producers; ++i) {
    env.spawn("producer", [&, i] {
      for (std::uint64_t k = 1; k <= per_producer; ++k) {
        ASSERT_EQ(ring.push((static_cast<std::uint64_t>(i) << 32) | k), push_status::accepted);
      }
    });
  }
  env.spawn("consumer", [&] {
    while (got < producers * per_producer) {
      ring.wait_readable(no_deadline);
      ring.read(3, [&](std::uint64_t, std::uint64_t& v) {
        const std::uint64_t prod = v >> 32, k = v & 0xffffffff;
        ASSERT_EQ(k, last[prod] + 1) << "producer " << prod << " out of order";
        last[prod] = k;
        ++got;
      });
      ring.release(ring.read_position());
    }
  });
  run_result r = w.run();
  ASSERT_EQ(r.outcome, run_outcome::finished) << r.reason;
  EXPECT_EQ(got, static_cast<std::uint64_t>(producers * per_producer));
  const ring_counters c = ring.counters();
  EXPECT_EQ(c.offered, c.accepted);
  EXPECT_EQ(c.unreleased, 0u);
}

TEST(World, RingBufferUnderRandomScheduler) {
  for (std::uint64_t s = 0; s < 10; ++s) ring_run(s, schedule_strategy::random);
}

TEST(World, RingBufferUnderPct) {
  for (std::uint64_t s = 0; s < 10; ++s) ring_run(s, schedule_strategy::pct);
}

TEST(World, KillBeforeTheFirstSliceRunsNoCodeAndFreesTheBody) {
  // A fiber killed before it ever ran is released without a jump onto its
  // stack (world::unwind_fiber): its body never runs, what the body owns is
  // freed with the world, and the rest of the run goes on.
  auto owned = std::make_shared<int>(7);
  bool ran = false, other_done = false;
  {
    world w{12, {}};
    network net{w, {}};
    auto victim = w.add_process("victim");
    auto other = w.add_process("other");
    sim_env victim_env{w, net, victim}, other_env{w, net, other};
    victim_env.spawn("never", [&ran, owned] { ran = *owned == 7; });
    other_env.spawn("main", [&] {
      other_env.sleep_until_ns(1'000);
      other_done = true;
    });
    w.at(0, [&] { w.kill(victim); });  // Timers due now fire before any fiber runs.
    EXPECT_EQ(w.run().outcome, run_outcome::finished);
    EXPECT_FALSE(w.alive(victim));
  }
  EXPECT_FALSE(ran);
  EXPECT_TRUE(other_done);
  EXPECT_EQ(owned.use_count(), 1) << "the killed fiber's body was destroyed with the world";
}

#if defined(AEGIS_SIM_ASAN_FIBERS)
// ASan's name for the kind of memory a local of the caller lives in: "stack"
// only when ASan knows which stack the code runs on. Without the switch
// annotations a fiber's locals are "heap-invalid", and an exception thrown in
// a fiber makes ASan warn "ignoring requested __asan_handle_no_return"
// (both seen with a bare Boost.Context fiber before world.cpp was annotated).
__attribute__((noinline)) std::string asan_kind_of_a_local() {
  volatile char buf[32];
  buf[0] = 1;
  char name[64];
  void* region = nullptr;
  std::size_t size = 0;
  return __asan_locate_address(const_cast<char*>(&buf[0]), name, sizeof name, &region, &size);
}
#endif

TEST(World, SanitizersFollowEveryFiberSwitch) {
  if (!detail::asan_fibers && !detail::tsan_fibers) GTEST_SKIP() << "built without ASan or TSan";
  // What each side sees, recorded on first entry, after every resume, after a
  // throw, in a killer after the unwind, and in the scheduler between slices.
  std::vector<std::string> asan_kinds;
  std::set<void*> tsan_fibers_seen;
  void* tsan_scheduler = nullptr;
  auto observe = [&] {
#if defined(AEGIS_SIM_ASAN_FIBERS)
    asan_kinds.push_back(asan_kind_of_a_local());
#endif
#if defined(AEGIS_SIM_TSAN_FIBERS)
    tsan_fibers_seen.insert(__tsan_get_current_fiber());
#endif
  };
#if defined(AEGIS_SIM_TSAN_FIBERS)
  tsan_scheduler = __tsan_get_current_fiber();
#endif
  int unwound = 0;
  struct guard {
    int* n;
    ~guard() { ++*n; }
  };
  {
    world w{13, {}};
    network net{w, {}};
    auto worker = w.add_process("worker");
    auto victim = w.add_process("victim");
    sim_env worker_env{w, net, worker}, victim_env{w, net, victim};
    for (int i = 0; i < 3; ++i) {
      victim_env.spawn("loop", [&] {
        guard g{&unwound};
        for (;;) {
          observe();
          victim_env.sleep_until_ns(victim_env.now_ns() + 100);
        }
      });
    }
    for (int i = 0; i < 2; ++i) {
      worker_env.spawn("work", [&] {
        for (int k = 0; k < 20; ++k) {
          observe();
          try {
            throw std::runtime_error("caught in the fiber");
          } catch (const std::runtime_error&) {
            observe();
          }
          worker_env.sleep_until_ns(worker_env.now_ns() + 50);
        }
      });
    }
    worker_env.spawn("killer", [&] {
      worker_env.sleep_until_ns(2'000);
      w.kill(victim);  // Unwinds three fibers from this fiber's stack.
      observe();
    });
    EXPECT_EQ(w.run({}, [&] { observe(); }).outcome, run_outcome::finished);
  }
  EXPECT_EQ(unwound, 3);
#if defined(AEGIS_SIM_ASAN_FIBERS)
  ASSERT_GT(asan_kinds.size(), 100u);
  for (const auto& k : asan_kinds) EXPECT_EQ(k, "stack");
#endif
#if defined(AEGIS_SIM_TSAN_FIBERS)
  EXPECT_EQ(__tsan_get_current_fiber(), tsan_scheduler) << "the scheduler is back on its own TSan context";
  // The scheduler plus six fibers, each on its own context.
  EXPECT_EQ(tsan_fibers_seen.size(), 7u);
  EXPECT_TRUE(tsan_fibers_seen.contains(tsan_scheduler));
#endif
  (void)tsan_scheduler;
}

}  // namespace
}  // namespace aegis::sim
