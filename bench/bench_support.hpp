// What every Aegis benchmark needs: a cheap cycle timer calibrated to
// nanoseconds, thread pinning, and medians/percentiles.
//
// Usage:
//   aegis::bench::tsc_timer timer;                 // calibrates once (~50 ms)
//   const auto t0 = timer.ticks();
//   work();
//   const double ns = timer.to_ns(timer.ticks() - t0);
//   aegis::bench::pin_this_thread(1);              // false if CPU 1 is not ours
//   double p99 = aegis::bench::percentile(samples, 0.99);
//
// Why a cycle counter: a single try_push costs a few nanoseconds, and
// steady_clock::now() through the vDSO costs 20-40 ns on these VMs, so the
// clock would hide the thing measured. `rdtsc` is ordered with `lfence` so
// the measured instructions cannot drift outside the interval. Falls back to
// steady_clock off x86.
#pragma once

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define AEGIS_BENCH_TSC 1
#endif

namespace aegis::bench {

/// A monotonic tick counter with a measured tick length.
class tsc_timer {
 public:
  /// Calibrates ticks against steady_clock over `calibration`.
  explicit tsc_timer(std::chrono::milliseconds calibration = std::chrono::milliseconds(50)) {
    const auto c0 = std::chrono::steady_clock::now();
    const std::uint64_t t0 = ticks();
    std::this_thread::sleep_for(calibration);
    const std::uint64_t t1 = ticks();
    const auto c1 = std::chrono::steady_clock::now();
    const double ns = std::chrono::duration<double, std::nano>(c1 - c0).count();
    ns_per_tick_ = ns / static_cast<double>(t1 - t0);
  }

  /// Current tick count, ordered against the surrounding instructions.
  static std::uint64_t ticks() noexcept {
#ifdef AEGIS_BENCH_TSC
    _mm_lfence();
    const std::uint64_t t = __rdtsc();
    _mm_lfence();
    return t;
#else
    return static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
#endif
  }

  /// Converts a tick difference to nanoseconds.
  double to_ns(std::uint64_t ticks_elapsed) const noexcept { return static_cast<double>(ticks_elapsed) * ns_per_tick_; }

  /// Median cost of an empty timed interval, in ns: the floor of every sample.
  double overhead_ns() const {
    std::vector<double> s(10'000);
    for (auto& x : s) {
      const std::uint64_t t0 = ticks();
      x = to_ns(ticks() - t0);
    }
    std::nth_element(s.begin(), s.begin() + s.size() / 2, s.end());
    return s[s.size() / 2];
  }

 private:
  double ns_per_tick_ = 1.0;
};

/// The CPUs this process may run on, in order.
inline std::vector<int> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  }
  return cpus;
}

/// Pins the calling thread to `cpu`. Returns false if that is not allowed.
inline bool pin_this_thread(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

/// The q-quantile (0 <= q <= 1) of `v` by nearest rank; reorders `v`.
inline double percentile(std::vector<double>& v, double q) {
  if (v.empty()) return 0.0;
  auto k = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  if (k >= v.size()) k = v.size() - 1;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

/// Median of `v` (copy, so the caller's order is kept).
inline double median(std::vector<double> v) { return percentile(v, 0.5); }

}  // namespace aegis::bench
