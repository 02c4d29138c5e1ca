// Rows of `bench-results.json`: every benchmark binary (bench/), and
// `aegis-sim bench` / `aegis-sim chaos --bench-results` (sim/), append their
// comparisons with a peer to the same JSON array in the build directory.
// It lives in tools/ (target aegis_bench_results) so that the benchmarks and
// the simulator share it without either including the other.
//
// Usage:
//   aegis::bench::result_row row{.name = "ring_buffer/u64", .metric = "throughput",
//                                .unit = "ops/s", .ours = 9.1e7, .peer = "boost::lockfree::spsc_queue",
//                                .peer_value = 4.2e7, .better = aegis::bench::better::higher};
//   aegis::bench::append_results("build/release/bench-results.json", {row});
//
// `ratio` is always ours / peer_value; `better` says which way is good, so a
// reader checks `ratio >= 1` for `higher` and `ratio <= 1` for `lower`.
// `make bench` deletes the file first, so it holds one run's rows.
#pragma once

#include <nlohmann/json.hpp>

#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace aegis::bench {

/// Which direction of a metric is an improvement.
enum class better { higher, lower };

/// One comparison of our value with a peer's, both medians of alternating runs.
struct result_row {
  std::string name;        ///< What was measured, e.g. "ring_buffer/u64".
  std::string metric;      ///< e.g. "throughput", "pingpong_rtt_p50", "try_push_p99".
  std::string unit;        ///< e.g. "ops/s", "ns".
  double ours = 0;         ///< Our median.
  std::string peer;        ///< The peer's name, e.g. "boost::lockfree::spsc_queue".
  double peer_value = 0;   ///< The peer's median in the same run.
  better direction = better::higher;  ///< Serialised as `better`.
  /// Median of per-repetition ours / peer, when the benchmark pairs its
  /// repetitions (0: not paired, ratio() is ours / peer_value).
  double paired = 0;

  /// The paired ratio if there is one, else ours / peer_value (0 when the peer measured 0).
  double ratio() const noexcept {
    if (paired != 0) return paired;
    return peer_value != 0 ? ours / peer_value : 0.0;
  }
};

/// The row as the JSON object the file holds.
inline nlohmann::json to_json(const result_row& r) {
  nlohmann::json j{{"name", r.name},       {"metric", r.metric}, {"unit", r.unit},
                   {"ours", r.ours},       {"peer", r.peer},     {"peer_value", r.peer_value},
                   {"ratio", r.ratio()},   {"better", r.direction == better::higher ? "higher" : "lower"}};
  if (r.paired != 0) j["ratio_of_medians"] = r.peer_value != 0 ? r.ours / r.peer_value : 0.0;
  return j;
}

/// Appends `rows` to the JSON array at `path`, creating the file if needed.
/// Throws if the file exists but does not hold a JSON array, rather than
/// silently discarding another benchmark's rows.
inline void append_results(const std::string& path, const std::vector<result_row>& rows) {
  nlohmann::json all = nlohmann::json::array();
  if (std::ifstream in{path}; in.good() && in.peek() != std::ifstream::traits_type::eof()) {
    all = nlohmann::json::parse(in);
    if (!all.is_array()) throw std::runtime_error(path + " does not hold a JSON array");
  }
  for (const auto& r : rows) all.push_back(to_json(r));
  std::ofstream out{path, std::ios::trunc};
  if (!out) throw std::runtime_error("cannot write " + path);
  out << all.dump(2) << '\n';
}

}  // namespace aegis::bench
