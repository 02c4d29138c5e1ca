// What the offloader's fate callback records for the summary: every fate in
// the ledger, verdict latencies in the histogram, and when the last fate came.
//
// Usage:
//   aegis::core::fate_log fates{warmup_ns};
//   aegis::os_offloader off{env, cfg, [&](const txn& t, std::uint64_t, fate f, const verdict* v, ns_t) {
//     fates.record(t, f, v != nullptr ? v->received_ns : env.now_ns());
//   }};
//   fates.start_latency_at(aegis::deadline_after(start_ns, warmup_ns));  // once the schedule starts
//
// record() runs on the pump thread only (the histogram has one writer); the
// atomics are read by the producers and, after the drain, by the summary.
#pragma once

#include <atomic>

#include "aegis/assert.hpp"
#include "aegis/metrics.hpp"
#include "aegis/offloader.hpp"
#include "core/ledger.hpp"

namespace aegis::core {

/// The ledger and latency record of one run.
struct fate_log {
  /// `warmup_ns` > 0 keeps every latency out until start_latency_at() says when the schedule began.
  explicit fate_log(ns_t warmup_ns) : latency_from_ns(warmup_ns > 0 ? aegis::no_deadline : 0) {
    AEGIS_ASSERT(warmup_ns >= 0, "the latency warm-up is not negative");
  }

  /// Pump thread: records the terminal fate `f` of `t`, decided at `now_ns`
  /// (a verdict's arrival time, so no clock read per record).
  void record(const txn& t, fate f, ns_t now_ns) noexcept {
    AEGIS_DEBUG_ASSERT(t.txn_id >= 1, "ledger ids start at 1");
    ledger.terminal(t.txn_id, f);
    if (f == fate::verdict && t.timestamp_ns >= latency_from_ns.load(std::memory_order_relaxed)) {
      latency.record(now_ns - t.timestamp_ns);
    }
    last_fate_ns.store(now_ns, std::memory_order_relaxed);
  }

  /// Payments stamped before `from_ns` are verdicted and counted as usual but
  /// left out of the latency percentiles (--latency-warmup).
  void start_latency_at(ns_t from_ns) noexcept {
    AEGIS_ASSERT(from_ns >= 0, "latency starts at a time on the env's clock");
    latency_from_ns.store(from_ns);
  }

  core::ledger ledger;                    ///< Every offered id's fate.
  aegis::latency_histogram latency;       ///< Intended-time-to-verdict latencies (one writer: the pump).
  std::atomic<ns_t> last_fate_ns{0};      ///< When the last fate was recorded; 0 = none yet.
  std::atomic<ns_t> latency_from_ns;      ///< Timestamps before this are not in `latency`.
};

}  // namespace aegis::core
