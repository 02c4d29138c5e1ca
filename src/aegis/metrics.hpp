// Metrics: an offload→verdict latency histogram cheap enough for the pump
// thread, and a Prometheus exporter (prometheus-cpp) that publishes the
// offloader's counters.
//
// Usage:
//   aegis::latency_histogram lat;                  // one writer (the pump's fate callback)
//   lat.record(verdict_ns - intended_ns);
//   lat.percentile_ns(0.99);                       // any thread
//
//   aegis::metrics_exporter m{"127.0.0.1:9464"};  // binds; port 0 picks one
//   m.update(off.counters(), lat);                // periodically, from any one thread
//
// Why not observe straight into a prometheus::Histogram: at millions of
// verdicts per second a per-observation mutex-free-but-CAS update of a
// double sum plus a bucket search costs the pump too much. The pump records
// into relaxed single-writer counters here; the exporter folds the deltas
// into the Prometheus histogram with ObserveMultiple a few times a second.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "aegis/env.hpp"
#include "aegis/offloader.hpp"

namespace prometheus {
class Registry;
class Exposer;
class Counter;
class Gauge;
class Histogram;
}  // namespace prometheus

namespace aegis {

/// Log-linear histogram of nanosecond values: 32 sub-buckets per power of two
/// (relative error under 3.2%). `record` has one writer; reads are lock-free
/// from any thread and each bucket is exact when loaded.
class latency_histogram {
 public:
  /// Sub-buckets per power of two, as bits.
  static constexpr int sub_bits = 5;
  /// Number of buckets: values up to 2^63.
  static constexpr std::size_t bucket_count = (64 - sub_bits + 1) << sub_bits;

  /// Records one value (negative values count as 0). Single writer.
  void record(ns_t value_ns) noexcept {
    const auto v = static_cast<std::uint64_t>(value_ns < 0 ? 0 : value_ns);
    bump(buckets_[index_of(v)]);
    bump(count_);
    sum_ns_.store(sum_ns_.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
    if (v > max_ns_.load(std::memory_order_relaxed)) max_ns_.store(v, std::memory_order_relaxed);
  }

  /// Bucket of a value.
  static constexpr std::size_t index_of(std::uint64_t v) noexcept {
    if (v < (1u << sub_bits)) return static_cast<std::size_t>(v);
    const int e = 63 - __builtin_clzll(v);
    const std::uint64_t sub = (v >> (e - sub_bits)) & ((1u << sub_bits) - 1);
    return (static_cast<std::size_t>(e - sub_bits + 1) << sub_bits) + sub;
  }
  /// Smallest value in bucket `i`.
  static constexpr std::uint64_t lower_bound_of(std::size_t i) noexcept {
    if (i < (1u << sub_bits)) return i;
    const int e = static_cast<int>(i >> sub_bits) + sub_bits - 1;
    const std::uint64_t sub = i & ((1u << sub_bits) - 1);
    return ((std::uint64_t{1} << sub_bits) + sub) << (e - sub_bits);
  }
  /// Largest value in bucket `i`.
  static constexpr std::uint64_t upper_bound_of(std::size_t i) noexcept {
    return i + 1 < bucket_count ? lower_bound_of(i + 1) - 1 : ~std::uint64_t{0};
  }

  /// Values recorded.
  std::uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }
  /// Sum of recorded values.
  std::uint64_t sum_ns() const noexcept { return sum_ns_.load(std::memory_order_relaxed); }
  /// Largest recorded value (0 when empty).
  std::uint64_t max_ns() const noexcept { return max_ns_.load(std::memory_order_relaxed); }
  /// Count in bucket `i`.
  std::uint64_t bucket(std::size_t i) const noexcept { return buckets_[i].load(std::memory_order_relaxed); }
  /// The value at quantile q in [0, 1]: the upper edge of the bucket holding
  /// it, capped at the maximum, so it never under-reports. 0 when empty.
  std::uint64_t percentile_ns(double q) const noexcept;

 private:
  static void bump(std::atomic<std::uint64_t>& c) noexcept {
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  std::array<std::atomic<std::uint64_t>, bucket_count> buckets_{};
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_ns_{0};
  std::atomic<std::uint64_t> max_ns_{0};
};

/// Publishes offloader counters at http://ADDRESS/metrics. Metric names are
/// a contract (docs/SUMMARY.md lists them). Not thread-safe:
/// call `update` from one thread.
class metrics_exporter {
 public:
  /// Binds `bind_address` ("127.0.0.1:PORT"; port 0 picks a free one). Throws on failure.
  explicit metrics_exporter(const std::string& bind_address);
  ~metrics_exporter();
  metrics_exporter(const metrics_exporter&) = delete;
  metrics_exporter& operator=(const metrics_exporter&) = delete;

  /// The port actually listened on.
  int port() const;
  /// Brings every metric up to `c` and folds new latency samples in.
  void update(const offloader_counters& c, const latency_histogram& latency);
  /// Histogram bucket upper bounds of aegis_offload_to_verdict_seconds.
  static const std::vector<double>& latency_buckets_seconds();

 private:
  struct counter_state {
    prometheus::Counter* metric = nullptr;
    std::uint64_t last = 0;
  };
  void advance(counter_state& s, std::uint64_t now_value);

  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  counter_state offered_, accepted_, verdicts_, expired_, retransmits_, duplicates_, incarnations_, abandoned_, unscored_,
      timer_rewinds_;
  counter_state dropped_ring_full_, dropped_timeout_, dropped_closed_;
  std::array<counter_state, reject_reason_count> rejected_;
  prometheus::Gauge* ring_depth_ = nullptr;
  prometheus::Gauge* in_flight_ = nullptr;
  prometheus::Gauge* outstanding_ = nullptr;
  prometheus::Gauge* window_ = nullptr;
  prometheus::Gauge* srtt_ = nullptr;
  prometheus::Histogram* latency_ = nullptr;
  std::vector<std::uint64_t> latency_seen_;  // Per fine bucket, counts already folded in.
  std::uint64_t latency_sum_seen_ns_ = 0;
};

}  // namespace aegis
