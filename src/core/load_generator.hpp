// aegis-core's load generator: producer threads that offload the high-risk
// share of a seeded payment stream, open-loop at --rate or flat out, for
// --count payments, for --duration, or until a stop signal.
//
// Usage:
//   const aegis::core::load_result r = aegis::core::generate_load(env, off, stream, fates, o, stop);
//   // r.max_id ids were claimed; r.start_ns..r.produced_ns is the production phase.
//
// Producers claim ids from one counter; id k is due at start + (k-1)/rate,
// and its timestamp is that *intended* time, so latency is measured from when
// a payment should have been sent (coordinated omission is not hidden).
#pragma once

#include <cstdint>

#include "aegis/os_offloader.hpp"
#include "core/cli.hpp"
#include "core/fate_log.hpp"
#include "core/payment_stream.hpp"
#include "core/stop_signals.hpp"

namespace aegis::core {

/// What the production phase did.
struct load_result {
  ns_t start_ns = 0;           ///< When the schedule started (every producer running).
  ns_t produced_ns = 0;        ///< When the last producer returned.
  std::uint64_t max_id = 0;    ///< Ids 1..max_id were claimed; the ledger covers them (the last may be unused).
  std::uint64_t generated = 0; ///< Payments made (high- and low-risk).
};

/// Waits for a bridge's first HELLO (--start-after-hello) or a stop signal,
/// then runs o.producers producers to the end of the load and joins them.
/// Offered ids are marked in `fates.ledger`; the warm-up window of
/// `fates` starts with the schedule.
load_result generate_load(zmq_env& env, os_offloader& off, const payment_stream& stream, fate_log& fates,
                          const options& o, const stop_signals& stop);

}  // namespace aegis::core
