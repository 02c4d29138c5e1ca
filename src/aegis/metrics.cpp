// Latency histogram percentiles and the prometheus-cpp exporter.
#include "aegis/metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <cmath>

#include "aegis/assert.hpp"

namespace aegis {

std::uint64_t latency_histogram::percentile_ns(double q) const noexcept {
  const std::uint64_t n = count();
  if (n == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  // Rank of the q-quantile, 1-based: the smallest value with at least q*n at or below it.
  const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(n))));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < bucket_count; ++i) {
    seen += bucket(i);
    if (seen >= rank) return std::min(upper_bound_of(i), max_ns());
  }
  return max_ns();  // Buckets were loaded while the writer ran ahead of `count`.
}

const std::vector<double>& metrics_exporter::latency_buckets_seconds() {
  static const std::vector<double> b{1e-5,  2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2,
                                     2.5e-2, 5e-2,  0.1,  0.25, 0.5,    1.0,  2.5,  5.0,    10.0};
  return b;
}

namespace {
prometheus::Counter* counter(prometheus::Registry& r, const char* name, const char* help,
                             const std::map<std::string, std::string>& labels = {}) {
  return &prometheus::BuildCounter().Name(name).Help(help).Register(r).Add(labels);
}
}  // namespace

metrics_exporter::metrics_exporter(const std::string& bind_address)
    : registry_(std::make_shared<prometheus::Registry>()),
      exposer_(std::make_unique<prometheus::Exposer>(bind_address)),
      latency_seen_(latency_histogram::bucket_count, 0) {
  auto& r = *registry_;
  offered_.metric = counter(r, "aegis_offered_total", "Transactions offered to the offloader");
  accepted_.metric = counter(r, "aegis_accepted_total", "Transactions admitted to the ring");
  auto& dropped = prometheus::BuildCounter().Name("aegis_dropped_total").Help("Transactions not admitted, by reason").Register(r);
  dropped_ring_full_.metric = &dropped.Add({{"reason", "ring_full"}});
  dropped_timeout_.metric = &dropped.Add({{"reason", "timeout"}});
  dropped_closed_.metric = &dropped.Add({{"reason", "closed"}});
  verdicts_.metric = counter(r, "aegis_verdicts_total", "Transactions verdicted by the bridge");
  expired_.metric = counter(r, "aegis_expired_total", "Transactions whose TTL passed before a verdict");
  abandoned_.metric = counter(r, "aegis_abandoned_total", "Transactions sent max_sends times without a verdict");
  unscored_.metric = counter(r, "aegis_unscored_verdicts_total", "Verdicts the bridge flagged unscored (its model failed)");
  retransmits_.metric = counter(r, "aegis_retransmits_total", "TXN records sent again");
  timer_rewinds_.metric = counter(r, "aegis_retransmit_rounds_total", "Resends caused by a timer (bridge silence or the safety timer)");
  duplicates_.metric = counter(r, "aegis_duplicate_verdicts_total", "Verdicts for already-terminal transactions");
  auto& rejected =
      prometheus::BuildCounter().Name("aegis_rejected_frames_total").Help("Frames or records rejected, by reason").Register(r);
  for (auto reason : all_reject_reasons) {
    rejected_[static_cast<std::size_t>(reason)].metric = &rejected.Add({{"reason", to_string(reason)}});
  }
  incarnations_.metric = counter(r, "aegis_bridge_incarnations_total", "Distinct bridge incarnations seen");
  ring_depth_ = &prometheus::BuildGauge().Name("aegis_ring_depth").Help("Entries held in the ring (admitted, not released)").Register(r).Add({});
  in_flight_ = &prometheus::BuildGauge().Name("aegis_in_flight").Help("Accepted transactions without a terminal state").Register(r).Add({});
  outstanding_ = &prometheus::BuildGauge().Name("aegis_outstanding").Help("Transactions sent and not yet terminal").Register(r).Add({});
  window_ = &prometheus::BuildGauge().Name("aegis_send_window").Help("Flow-control window, records").Register(r).Add({});
  srtt_ = &prometheus::BuildGauge().Name("aegis_verdict_srtt_seconds").Help("Smoothed send-to-verdict latency").Register(r).Add({});
  latency_ = &prometheus::BuildHistogram()
                  .Name("aegis_offload_to_verdict_seconds")
                  .Help("Intended send time to verdict, seconds")
                  .Register(r)
                  .Add({}, prometheus::Histogram::BucketBoundaries(latency_buckets_seconds()));
  exposer_->RegisterCollectable(registry_);
}

metrics_exporter::~metrics_exporter() = default;

int metrics_exporter::port() const {
  const auto ports = exposer_->GetListeningPorts();
  AEGIS_ASSERT(!ports.empty(), "an exposer listens on a port once constructed");
  return ports.front();
}

void metrics_exporter::advance(counter_state& s, std::uint64_t now_value) {
  // Counters only go up; a lower value would be a bug upstream, not a reset.
  if (now_value > s.last) {
    s.metric->Increment(static_cast<double>(now_value - s.last));
    s.last = now_value;
  }
}

void metrics_exporter::update(const offloader_counters& c, const latency_histogram& latency) {
  advance(offered_, c.offered);
  advance(accepted_, c.accepted);
  advance(dropped_ring_full_, c.dropped_ring_full);
  advance(dropped_timeout_, c.dropped_timeout);
  advance(dropped_closed_, c.dropped_closed);
  advance(verdicts_, c.verdicts);
  advance(expired_, c.expired);
  advance(retransmits_, c.retransmits);
  advance(abandoned_, c.abandoned);
  advance(unscored_, c.unscored_verdicts);
  advance(timer_rewinds_, c.retransmit_rounds);
  advance(duplicates_, c.duplicate_verdicts);
  advance(incarnations_, c.bridge_incarnations);
  for (std::size_t i = 0; i < reject_reason_count; ++i) advance(rejected_[i], c.rejected_frames[i]);
  ring_depth_->Set(static_cast<double>(c.ring_depth));
  in_flight_->Set(static_cast<double>(c.in_flight));
  outstanding_->Set(static_cast<double>(c.outstanding));
  window_->Set(static_cast<double>(c.window));
  srtt_->Set(static_cast<double>(c.srtt_ns) / 1e9);

  // Fold new latency samples into the coarse Prometheus buckets, placing each
  // fine bucket by its midpoint.
  const auto& bounds = latency_buckets_seconds();
  std::vector<double> increments(bounds.size() + 1, 0.0);
  bool any = false;
  for (std::size_t i = 0; i < latency_histogram::bucket_count; ++i) {
    const std::uint64_t n = latency.bucket(i);
    if (n <= latency_seen_[i]) continue;
    const double mid_s = (static_cast<double>(latency_histogram::lower_bound_of(i)) +
                          static_cast<double>(latency_histogram::upper_bound_of(i) == ~std::uint64_t{0}
                                                  ? latency_histogram::lower_bound_of(i)
                                                  : latency_histogram::upper_bound_of(i))) /
                         2e9;
    const auto at = static_cast<std::size_t>(std::lower_bound(bounds.begin(), bounds.end(), mid_s) - bounds.begin());
    increments[at] += static_cast<double>(n - latency_seen_[i]);
    latency_seen_[i] = n;
    any = true;
  }
  if (any) {
    const std::uint64_t sum = latency.sum_ns();
    latency_->ObserveMultiple(increments, static_cast<double>(sum - std::min(sum, latency_sum_seen_ns_)) / 1e9);
    latency_sum_seen_ns_ = sum;
  }
}

}  // namespace aegis
