// Proves the production offloader (offloader<zmq_env>) keeps the protocol's
// promises against an in-process fake bridge: a thread with its own ZeroMQ
// context and real PULL/PUSH sockets over ipc in a fresh temp directory, whose
// behaviour each test scripts (answer, stay silent, answer twice, send
// garbage, restart under a new incarnation). Every test waits on a condition
// with a deadline that fails it, never on a sleep, and checks the fate
// callback ran exactly once per accepted transaction and the accounting
// identity holds.
#include "aegis/os_offloader.hpp"
#include "aegis/test_bridge.hpp"

#include <fiu-control.h>
#include <fiu.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

namespace aegis {
namespace {

using namespace std::chrono_literals;

constexpr std::uint64_t test_epoch = 0xE0C4'0000'0000'0001ULL;

// Polls `pred` until it holds or `timeout` passes; the caller asserts the result.
bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 5000ms) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

struct temp_dir {
  std::filesystem::path path;
  temp_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "aegis-offloader-XXXXXX").string();
    path = ::mkdtemp(tmpl.data());
  }
  ~temp_dir() { std::filesystem::remove_all(path); }
  std::string endpoint(const char* name) const { return "ipc://" + (path / name).string(); }
};

// The shared scripted bridge (fixtures/aegis/test_bridge.hpp), as every test
// here runs it: a heartbeat every 100 ms, as a real bridge sends one (a peer
// that falls silent looks dead to the core), verdicts scored 0.25 with
// decision 1. `on_txn` runs on the peer's thread for every valid TXN frame
// and may call answer()/send() there.
using fake_bridge = testing::test_bridge;

testing::test_bridge_options bridge_at(const temp_dir& dir, std::uint64_t incarnation,
                                       std::vector<std::vector<std::byte>> first = {}) {
  return {.endpoint_dir = dir.path,
          .incarnation = incarnation,
          .hello_status = hello_record{0, 100, 0, 0, 0},
          .heartbeat_period = 100ms,
          .poll_period = 5ms,
          .first_frames = std::move(first),
          .score = 0.25f,
          .decision = 1};
}

const fake_bridge::handler answer_all = fake_bridge::answer_every_frame;

txn make_txn(std::uint64_t id) {
  txn t;
  t.txn_id = id;
  t.amount_minor = static_cast<std::int64_t>(id * 100);
  t.merchant_id = id % 7;
  t.card_fp = id * 31;
  t.currency = {'E', 'U', 'R'};
  t.mcc = 5411;
  return t;
}

// The system under test plus a ledger of fates by txn id.
struct harness {
  temp_dir dir;
  zmq_env env;
  std::mutex mu;
  std::map<std::uint64_t, int> fates_by_id;  // txn id -> number of callbacks
  std::map<std::uint64_t, fate> last_fate;
  std::atomic<std::uint64_t> callbacks{0};
  std::unique_ptr<os_offloader> off;

  explicit harness(std::function<void(offloader_config&)> tweak = {}) {
    offloader_config cfg;
    cfg.offload_endpoint = dir.endpoint("offload.sock");
    cfg.verdict_endpoint = dir.endpoint("verdicts.sock");
    cfg.epoch = test_epoch;
    cfg.ring_capacity = 1024;
    if (tweak) tweak(cfg);
    off = std::make_unique<os_offloader>(env, cfg, [this](const txn& t, std::uint64_t seq, fate f, const verdict* v, ns_t) {
      std::lock_guard lock(mu);
      ++fates_by_id[t.txn_id];
      last_fate[t.txn_id] = f;
      EXPECT_EQ(f == fate::verdict, v != nullptr);
      if (v != nullptr) {
        EXPECT_EQ(v->seq, seq);
        EXPECT_EQ(v->txn_id, t.txn_id);
        EXPECT_EQ(v->score, 0.25f);
      }
      ++callbacks;
    });
    off->start();
  }
  ~harness() { off->stop(); }

  void offload_n(std::uint64_t first_id, std::uint64_t n) {
    for (std::uint64_t i = 0; i < n; ++i) ASSERT_EQ(off->offload(make_txn(first_id + i)), offload_status::accepted);
  }
  bool await_incarnations(std::uint64_t n) {
    return wait_until([&] { return off->counters().bridge_incarnations == n; });
  }
  bool drain(std::chrono::milliseconds within = 5000ms) {
    return off->drain(env.now_ns() + std::chrono::duration_cast<std::chrono::nanoseconds>(within).count());
  }
  // Every accepted id had exactly one callback, and the counters agree.
  void expect_exactly_once(std::uint64_t accepted) {
    std::lock_guard lock(mu);
    EXPECT_EQ(fates_by_id.size(), accepted);
    for (const auto& [id, n] : fates_by_id) EXPECT_EQ(n, 1) << "txn " << id << " had " << n << " fate callbacks";
    const auto c = off->counters();
    EXPECT_EQ(c.verdicts + c.expired, callbacks.load());
    EXPECT_TRUE(c.identity_holds());
  }
};

TEST(Offloader, EveryTransactionGetsExactlyOneVerdict) {
  harness h;
  fake_bridge bridge(bridge_at(h.dir, 11), answer_all);
  // Before its HELLO arrives the core cannot tell this bridge from a dead
  // one, and its HELLO would resend everything already sent: wait for it.
  ASSERT_TRUE(h.await_incarnations(1));
  h.offload_n(1, 5000);
  ASSERT_TRUE(h.drain());
  const auto c = h.off->counters();
  EXPECT_EQ(c.offered, 5000u);
  EXPECT_EQ(c.accepted, 5000u);
  EXPECT_EQ(c.verdicts, 5000u);
  EXPECT_EQ(c.in_flight, 0u);
  EXPECT_EQ(c.duplicate_verdicts, 0u);
  EXPECT_EQ(c.bridge_incarnations, 1u);
  EXPECT_TRUE(wait_until([&] { return h.off->counters().ring_depth == 0; })) << "terminal entries are released";
  h.expect_exactly_once(5000);
}

TEST(Offloader, DuplicateVerdictsAreCountedAndIgnored) {
  harness h;
  fake_bridge bridge(bridge_at(h.dir, 12), [](fake_bridge& b, const decoded_frame& f) {
    b.answer(f);
    b.answer(f);
  });
  ASSERT_TRUE(h.await_incarnations(1));
  h.offload_n(1, 300);
  ASSERT_TRUE(h.drain());
  ASSERT_TRUE(wait_until([&] { return h.off->counters().duplicate_verdicts == 300; }))
      << h.off->counters().duplicate_verdicts;
  EXPECT_EQ(h.off->counters().verdicts, 300u);
  h.expect_exactly_once(300);
}

TEST(Offloader, VerdictsForUnknownSeqsAreCountedAndIgnored) {
  harness h;
  fake_bridge bridge(bridge_at(h.dir, 13), [](fake_bridge& b, const decoded_frame& f) {
    const std::vector<verdict_record> bogus{{0, 1, 0.5f, 0}, {1'000'000'000, 1, 0.5f, 0}};
    b.send(encode_verdict_frame(f.header.epoch, b.incarnation(), bogus));
    b.answer(f);
  });
  ASSERT_TRUE(h.await_incarnations(1));
  h.offload_n(1, 1);
  ASSERT_TRUE(h.drain());
  ASSERT_TRUE(wait_until([&] { return h.off->counters().unknown_seq == 2; }));
  h.expect_exactly_once(1);
}

TEST(Offloader, NewIncarnationResendsEveryUnverdictedTransactionInOrder) {
  harness h([](offloader_config& c) { c.retransmit_timeout_ns = 60'000'000'000; });  // only the restart may resend
  auto silent = std::make_unique<fake_bridge>(bridge_at(h.dir, 21));
  ASSERT_TRUE(h.await_incarnations(1));
  h.offload_n(1, 500);
  // Flow control sends only a window ahead of the oldest unverdicted
  // transaction; the silent bridge holds everything that was sent.
  std::uint64_t held = 0;
  ASSERT_TRUE(wait_until([&] {
    held = silent->records_received();
    return held > 0 && held == h.off->counters().outstanding;
  })) << silent->records_received();
  silent.reset();  // The first bridge dies holding every record sent.
  std::mutex mu;
  std::vector<std::uint64_t> seqs;
  fake_bridge second(bridge_at(h.dir, 22), [&](fake_bridge& b, const decoded_frame& f) {
    {
      std::lock_guard lock(mu);
      for (std::size_t i = 0; i < f.header.count; ++i) seqs.push_back(f.txn_at(i).seq);
    }
    b.answer(f);
  });
  ASSERT_TRUE(h.drain());
  const auto c = h.off->counters();
  EXPECT_EQ(c.verdicts, 500u);
  EXPECT_EQ(c.bridge_incarnations, 2u);
  EXPECT_EQ(c.retransmits, held) << "exactly what the dead bridge held is resent";
  EXPECT_EQ(c.retransmit_rounds, 0u);
  std::lock_guard lock(mu);
  ASSERT_EQ(seqs.size(), 500u);
  for (std::size_t i = 0; i < seqs.size(); ++i) EXPECT_EQ(seqs[i], i + 1) << "resent in seq order";
  h.expect_exactly_once(500);
}

// A resend pass skips what waits in the new bridge's queue; those entries
// were not sent again, so they must not count as sent again. With
// max_sends = 2, counting them abandoned the records the second bridge held
// when it died, though each had been sent once.
TEST(Offloader, EntriesSkippedByAResendDoNotCountAsSent) {
  harness h([](offloader_config& c) {
    c.retransmit_timeout_ns = 60'000'000'000;  // only the restarts may resend
    c.max_sends = 2;
  });
  auto first = std::make_unique<fake_bridge>(bridge_at(h.dir, 71));
  ASSERT_TRUE(h.await_incarnations(1));
  h.offload_n(1, 10);
  ASSERT_TRUE(wait_until([&] { return first->records_received() == 10; }));
  first.reset();  // Dies holding txns 1-10.
  auto second = std::make_unique<fake_bridge>(bridge_at(h.dir, 72));
  ASSERT_TRUE(h.await_incarnations(2));
  h.offload_n(11, 10);  // Sent after its announcement: into its queue.
  // Its second HELLO resolves the restart: 1-10 are resent, 11-20 skipped.
  ASSERT_TRUE(wait_until([&] { return second->records_received() == 20; })) << second->records_received();
  second.reset();  // Dies holding all 20: 1-10 sent twice, 11-20 once.
  fake_bridge third(bridge_at(h.dir, 73), answer_all);
  ASSERT_TRUE(h.drain());
  const auto c = h.off->counters();
  EXPECT_EQ(c.abandoned, 10u);
  EXPECT_EQ(c.verdicts, 10u);
  EXPECT_EQ(c.retransmits, 20u) << "1-10 to the second bridge, 11-20 to the third";
  std::lock_guard lock(h.mu);
  for (std::uint64_t id = 1; id <= 20; ++id) {
    EXPECT_EQ(h.fates_by_id[id], 1) << "txn " << id;
    EXPECT_EQ(h.last_fate[id], id <= 10 ? fate::abandoned : fate::verdict) << "txn " << id;
  }
}

TEST(Offloader, VerdictsFromASupersededIncarnationAreApplied) {
  harness h([](offloader_config& c) { c.retransmit_timeout_ns = 60'000'000'000; });
  // The peer announces 31, then 32 takes over; it answers every frame first as
  // 31 (superseded: seen, not current, applied) and then as 32 (duplicates).
  fake_bridge bridge(bridge_at(h.dir, 31, {encode_hello_frame(0, 32)}), [&](fake_bridge& b, const decoded_frame& f) {
    b.answer(f, 31);
    b.answer(f, 32);
  });
  ASSERT_TRUE(wait_until([&] { return h.off->counters().bridge_incarnations == 2; }));
  h.offload_n(1, 10);
  ASSERT_TRUE(h.drain());
  const auto c = h.off->counters();
  EXPECT_EQ(c.bridge_incarnations, 2u);
  EXPECT_EQ(c.verdicts, 10u);
  EXPECT_EQ(c.stale_incarnation, 10u);
  // drain() returns once every entry has its verdict (the 31 answers); the
  // 32 answers, duplicates now, may still be on their way.
  EXPECT_TRUE(wait_until([&] { return h.off->counters().duplicate_verdicts == 10; }))
      << h.off->counters().duplicate_verdicts;
  h.expect_exactly_once(10);
}

TEST(Offloader, NoProgressWithinTheRetransmitTimeoutResends) {
  harness h([](offloader_config& c) { c.retransmit_timeout_ns = 50'000'000; });
  std::atomic<int> frames{0};
  // The bridge loses the first frame it gets, as a dying pipe would.
  fake_bridge bridge(bridge_at(h.dir, 41), [&](fake_bridge& b, const decoded_frame& f) {
    if (frames++ > 0) b.answer(f);
  });
  ASSERT_TRUE(wait_until([&] { return h.off->counters().bridge_incarnations == 1; }));
  h.offload_n(1, 50);
  ASSERT_TRUE(h.drain());
  const auto c = h.off->counters();
  EXPECT_GE(c.retransmit_rounds, 1u);
  EXPECT_GE(c.retransmits, 1u);
  EXPECT_EQ(c.verdicts, 50u);
  h.expect_exactly_once(50);
}

TEST(Offloader, DropModeAccountsForEveryOffer) {
  harness h([](offloader_config& c) {
    c.mode = admission::drop;
    c.ring_capacity = 8;
  });
  // No bridge: nothing is verdicted, so exactly `capacity` are admitted.
  std::map<offload_status, int> by_status;
  for (std::uint64_t i = 1; i <= 100; ++i) ++by_status[h.off->offload(make_txn(i))];
  EXPECT_EQ(by_status[offload_status::accepted], 8);
  EXPECT_EQ(by_status[offload_status::dropped_ring_full], 92);
  auto c = h.off->counters();
  EXPECT_EQ(c.offered, 100u);
  EXPECT_EQ(c.dropped_ring_full, 92u);
  EXPECT_EQ(c.in_flight, 8u);
  EXPECT_TRUE(c.identity_holds());
  fake_bridge bridge(bridge_at(h.dir, 51), answer_all);
  ASSERT_TRUE(h.drain());
  c = h.off->counters();
  EXPECT_EQ(c.verdicts, 8u);
  EXPECT_EQ(c.offered, c.verdicts + c.expired + c.dropped() + c.in_flight);
  h.expect_exactly_once(8);
}

TEST(Offloader, BlockModeNeverDropsWithASmallRing) {
  harness h([](offloader_config& c) { c.ring_capacity = 4; });
  fake_bridge bridge(bridge_at(h.dir, 52), answer_all);
  std::thread producer([&] { h.offload_n(1, 2000); });
  producer.join();
  ASSERT_TRUE(h.drain());
  const auto c = h.off->counters();
  EXPECT_EQ(c.accepted, 2000u);
  EXPECT_EQ(c.dropped(), 0u);
  h.expect_exactly_once(2000);
}

TEST(Offloader, BlockDeadlineDropsWithReasonTimeout) {
  harness h([](offloader_config& c) {
    c.ring_capacity = 2;
    c.block_deadline_ns = 20'000'000;
  });
  h.offload_n(1, 2);
  EXPECT_EQ(h.off->offload(make_txn(3)), offload_status::dropped_timeout);
  EXPECT_EQ(h.off->counters().dropped_timeout, 1u);
  EXPECT_TRUE(h.off->counters().identity_holds());
}

// The shutdown a core runs while the bridge is away and the ring is full:
// close_admission() frees a producer blocked in offload() (dropped_closed),
// and the pump keeps running, so a bridge that comes back still verdicts what
// was accepted and drain() returns true.
TEST(Offloader, CloseAdmissionFreesBlockedProducersAndDrainStillCollects) {
  harness h([](offloader_config& c) { c.ring_capacity = 2; });
  h.offload_n(1, 2);
  std::atomic<int> blocked_result{-1};
  std::thread producer([&] { blocked_result = static_cast<int>(h.off->offload(make_txn(3))); });
  ASSERT_TRUE(wait_until([&] { return h.off->blocked_producers() == 1; })) << "the third offer waits for space";
  h.off->close_admission();
  producer.join();
  EXPECT_EQ(blocked_result.load(), static_cast<int>(offload_status::dropped_closed));
  fake_bridge bridge(bridge_at(h.dir, 53), answer_all);
  ASSERT_TRUE(h.drain()) << "the pump still sends and applies verdicts after close_admission()";
  const auto c = h.off->counters();
  EXPECT_EQ(c.verdicts, 2u);
  EXPECT_EQ(c.dropped_closed, 1u);
  EXPECT_EQ(c.offered, 3u);
  h.expect_exactly_once(2);
}

TEST(Offloader, TtlExpiresUnsentTransactionsWithoutABridge) {
  harness h([](offloader_config& c) {
    c.ttl_ns = 30'000'000;
    c.retransmit_timeout_ns = 60'000'000'000;
  });
  h.offload_n(1, 10);
  ASSERT_TRUE(h.drain()) << "expiry is terminal, so a drain finishes without a bridge";
  auto c = h.off->counters();
  EXPECT_EQ(c.expired, 10u);
  EXPECT_EQ(c.verdicts, 0u);
  {
    std::lock_guard lock(h.mu);
    for (const auto& [id, f] : h.last_fate) EXPECT_EQ(f, fate::expired);
  }
  h.expect_exactly_once(10);
  // A bridge that now answers seqs 1..10 (which it never got) is late, not new.
  std::vector<verdict_record> late;
  for (std::uint64_t i = 1; i <= 10; ++i) late.push_back({i, i, 0.25f, 0});
  fake_bridge bridge(bridge_at(h.dir, 61, {encode_verdict_frame(test_epoch, 61, late)}));
  // Nothing was ever sent (no bridge was connected), so these seqs are unknown.
  ASSERT_TRUE(wait_until([&] { return h.off->counters().unknown_seq == 10; })) << h.off->counters().unknown_seq;
}

TEST(Offloader, VerdictAfterExpiryIsLate) {
  harness h([](offloader_config& c) {
    c.ttl_ns = 50'000'000;
    c.retransmit_timeout_ns = 60'000'000'000;
  });
  std::mutex mu;
  std::vector<std::vector<std::byte>> held;
  fake_bridge bridge(bridge_at(h.dir, 62), [&](fake_bridge& b, const decoded_frame& f) {
    std::vector<verdict_record> vs;
    for (std::size_t i = 0; i < f.header.count; ++i) vs.push_back({f.txn_at(i).seq, f.txn_at(i).t.txn_id, 0.25f, 0});
    std::lock_guard lock(mu);
    held.push_back(encode_verdict_frame(f.header.epoch, b.incarnation(), vs));
  });
  ASSERT_TRUE(wait_until([&] { return h.off->counters().bridge_incarnations == 1; }));
  h.offload_n(1, 20);
  ASSERT_TRUE(wait_until([&] { return bridge.records_received() == 20; }));
  ASSERT_TRUE(h.drain());
  EXPECT_EQ(h.off->counters().expired, 20u);
  // Now deliver the held verdicts through a second connection of the same incarnation.
  std::vector<std::vector<std::byte>> frames;
  {
    std::lock_guard lock(mu);
    frames = held;
  }
  fake_bridge courier(bridge_at(h.dir, 62, frames));
  ASSERT_TRUE(wait_until([&] { return h.off->counters().late_verdicts == 20; })) << h.off->counters().late_verdicts;
  EXPECT_EQ(h.off->counters().verdicts, 0u);
  h.expect_exactly_once(20);
}

std::vector<std::byte> corrupt(std::vector<std::byte> f, std::size_t at, std::uint8_t v, bool fix) {
  f[at] = static_cast<std::byte>(v);
  if (fix) {
    const std::uint64_t c = frame_checksum(f);
    std::memcpy(f.data() + 24, &c, 8);
  }
  return f;
}

TEST(Offloader, MalformedAndForgedFramesAreRejectedByReason) {
  harness h([](offloader_config& c) { c.retransmit_timeout_ns = 60'000'000'000; });
  const std::vector<verdict_record> one{{1, 1, 0.5f, 0}};
  const auto good = encode_verdict_frame(test_epoch, 71, one);
  std::vector<std::vector<std::byte>> garbage{
      std::vector<std::byte>(5),                         // truncated
      corrupt(good, 0, 'x', true),                       // bad_magic
      corrupt(good, 4, 9, true),                         // bad_version
      corrupt(good, 5, 7, true),                         // bad_type
      corrupt(good, 6, 2, true),                         // bad_length
      corrupt(good, 40, 0xff, false),                    // bad_checksum
      encode_verdict_frame(test_epoch + 1, 71, one),     // wrong_epoch
      encode_txn_frame(test_epoch, {}),                  // unexpected_type
  };
  std::atomic<int> frames{0};
  std::atomic<std::uint64_t> forged_records{0};
  fake_bridge bridge(bridge_at(h.dir, 71, garbage), [&](fake_bridge& b, const decoded_frame& f) {
    if (frames++ == 0) {
      forged_records = f.header.count;
      b.answer(f, 0, 0xdead);  // forged: txn ids do not match
    }
    b.answer(f);
  });
  ASSERT_TRUE(wait_until([&] { return h.off->counters().frames_received >= 1 + garbage.size(); }));
  h.offload_n(1, 3);
  ASSERT_TRUE(h.drain());
  const auto c = h.off->counters();
  for (auto r : {reject_reason::truncated, reject_reason::bad_magic, reject_reason::bad_version, reject_reason::bad_type,
                 reject_reason::bad_length, reject_reason::bad_checksum, reject_reason::wrong_epoch,
                 reject_reason::unexpected_type}) {
    EXPECT_EQ(c.rejected(r), 1u) << to_string(r);
  }
  EXPECT_GE(forged_records.load(), 1u);
  EXPECT_EQ(c.rejected(reject_reason::forged), forged_records.load()) << "one per forged record";
  EXPECT_EQ(c.rejected(reject_reason::oversized), 0u);
  EXPECT_EQ(c.verdicts, 3u);
  h.expect_exactly_once(3);
}

TEST(Offloader, SendFaultKeepsTheBatchAndDeliversOnceHealed) {
  fiu_init(0);
  harness h;
  fake_bridge bridge(bridge_at(h.dir, 81), answer_all);
  ASSERT_TRUE(wait_until([&] { return h.off->counters().bridge_incarnations == 1; }));
  ASSERT_EQ(fiu_enable("transport.send", 1, nullptr, 0), 0);
  h.offload_n(1, 100);
  ASSERT_TRUE(wait_until([&] { return h.off->counters().send_stalls >= 2; }));
  EXPECT_EQ(bridge.records_received(), 0u);
  EXPECT_EQ(h.off->counters().in_flight, 100u);
  fiu_disable("transport.send");
  ASSERT_TRUE(h.drain());
  EXPECT_EQ(h.off->counters().verdicts, 100u);
  EXPECT_EQ(h.off->counters().retransmits, 0u) << "a batch that never left is not a resend";
  h.expect_exactly_once(100);
}

TEST(Offloader, AllocFaultLosesNothing) {
  fiu_init(0);
  harness h;
  fake_bridge bridge(bridge_at(h.dir, 82), answer_all);
  ASSERT_EQ(fiu_enable("transport.alloc", 1, nullptr, 0), 0);
  h.offload_n(1, 100);
  ASSERT_TRUE(wait_until([&] { return h.off->counters().alloc_failures >= 1; }));
  fiu_disable("transport.alloc");
  ASSERT_TRUE(h.drain());
  EXPECT_EQ(h.off->counters().verdicts, 100u);
  h.expect_exactly_once(100);
}

TEST(Offloader, FlushWakesANappingPump) {
  // An idle pump naps (here: as long as it may, its 100 ms idle wait) and a
  // producer rings the doorbell only when the pump sleeps deeply, so without
  // flush() a transaction offloaded to a napping pump leaves when the nap
  // ends, ~100 ms later. With flush() it leaves at once. flush() is a hint
  // that may race with the pump going to nap, so the test takes the median
  // of 9 rounds (one transaction each) against half the nap: a broken flush
  // puts every round near 100 ms, a working one near a millisecond.
  harness h([](offloader_config& c) {
    c.nap_ns = 30'000'000'000;
    c.retransmit_timeout_ns = 60'000'000'000;
  });
  fake_bridge bridge(bridge_at(h.dir, 17), answer_all);
  ASSERT_TRUE(h.await_incarnations(1));
  std::vector<double> ms;
  for (std::uint64_t id = 1; id <= 9; ++id) {
    // The previous round's verdict woke the pump; it naps again right after.
    ASSERT_TRUE(wait_until([&] { return h.callbacks.load() >= id - 1; }));
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_EQ(h.off->offload(make_txn(id)), offload_status::accepted);
    h.off->flush();
    ASSERT_TRUE(wait_until([&] { return bridge.records_received() >= id; }));
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  EXPECT_LT(ms[ms.size() / 2], 50.0) << "median ms from flush() to the bridge; the pump naps 100 ms";
  ASSERT_TRUE(wait_until([&] { return h.callbacks.load() >= 9; }));
  h.expect_exactly_once(9);
}

TEST(Offloader, SendWindowHoldsTheBacklogInTheRingAndThenSendsFullFrames) {
  // The bridge holds its verdicts until the test lets it answer. The core
  // may run at most send_window = 64 records ahead of the oldest unverdicted
  // one, so of 200 offloaded only 4 frames of 16 leave; once verdicts flow,
  // the backlog goes out in full frames and every transaction is verdicted.
  // The 200 are offloaded before any bridge connects (a bound PUSH with no
  // peer would block, so the pump holds them), so the backlog is whole when
  // the first frame leaves: no frame depends on how fast the producer was.
  harness h([](offloader_config& c) {
    c.batch_max = 16;
    c.send_window = 64;
    c.retransmit_timeout_ns = 60'000'000'000;  // No resend may blur the count.
  });
  std::atomic<bool> answering{false};
  std::vector<std::vector<std::byte>> held;  // Peer thread only.
  std::vector<std::uint16_t> counts;         // Peer thread only until it stops.
  auto encode_answer = [](const decoded_frame& f, std::uint64_t inc) {
    std::vector<verdict_record> vs;
    for (std::size_t i = 0; i < f.header.count; ++i) vs.push_back({f.txn_at(i).seq, f.txn_at(i).t.txn_id, 0.25f, 1});
    return encode_verdict_frame(f.header.epoch, inc, vs);
  };
  h.offload_n(1, 200);
  EXPECT_EQ(h.off->counters().frames_sent, 0u) << "no bridge yet: nothing can leave";
  fake_bridge bridge(
      bridge_at(h.dir, 91),
      [&](fake_bridge& b, const decoded_frame& f) {
        counts.push_back(f.header.count);
        auto v = encode_answer(f, b.incarnation());
        if (answering.load()) {
          b.send(v);
        } else {
          held.push_back(std::move(v));
        }
      },
      [&](fake_bridge& b) {
        if (!answering.load()) return;
        for (const auto& v : held) b.send(v);
        held.clear();
      });
  ASSERT_TRUE(h.await_incarnations(1));
  // The pump counts a frame after zmq_send returns, so the peer can hold the
  // frame before the counter moves: wait for both.
  ASSERT_TRUE(wait_until([&] { return bridge.records_received() >= 64 && h.off->counters().frames_sent >= 4; }));
  // Everything was offloaded before the bridge connected: without the window
  // all 200 would have left as soon as it did.
  EXPECT_EQ(bridge.records_received(), 64u);
  EXPECT_EQ(h.off->counters().frames_sent, 4u);
  EXPECT_EQ(h.off->counters().ring_depth, 200u) << "the backlog waits in the ring";
  answering = true;
  ASSERT_TRUE(h.drain());
  bridge.stop();
  EXPECT_EQ(h.off->counters().verdicts, 200u);
  EXPECT_EQ(h.off->counters().retransmits, 0u);
  ASSERT_EQ(counts.size(), 13u) << "200 records in frames of 16: 12 full, one of 8";
  for (std::size_t i = 0; i + 1 < counts.size(); ++i) EXPECT_EQ(counts[i], 16u) << "frame " << i;
  h.expect_exactly_once(200);
}

TEST(Offloader, RejectsBadConfiguration) {
  temp_dir dir;
  zmq_env env;
  offloader_config cfg;
  cfg.offload_endpoint = dir.endpoint("o.sock");
  cfg.verdict_endpoint = dir.endpoint("v.sock");
  auto cb = [](const txn&, std::uint64_t, fate, const verdict*, ns_t) {};
  EXPECT_THROW(os_offloader(env, cfg, cb), std::invalid_argument) << "epoch 0";
  cfg.epoch = 1;
  cfg.batch_max = 0;
  EXPECT_THROW(os_offloader(env, cfg, cb), std::invalid_argument);
  cfg.batch_max = 256;
  cfg.send_window = 255;
  EXPECT_THROW(os_offloader(env, cfg, cb), std::invalid_argument) << "a window smaller than one frame";
  cfg.send_window = 8192;
  cfg.ring_capacity = 1000;
  EXPECT_THROW(os_offloader(env, cfg, cb), std::invalid_argument) << "not a power of two";
}

}  // namespace
}  // namespace aegis
