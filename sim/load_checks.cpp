// Liveness under load; see load_checks.hpp.
#include "sim/load_checks.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "sim/seed.hpp"

namespace aegis::sim {

load_checks::load_checks(load_check_params p) : p_(p) {
  AEGIS_ASSERT(p_.capacity_per_s > 0 && p_.offered_per_s > 0, "load checks need a capacity and an offered rate");
  AEGIS_ASSERT(p_.heal_ns <= p_.workload_end_ns && p_.settle_ns > 0, "the heal comes before the workload ends");
  // Steady in-flight: what arrives during 100 ms plus four full batches'
  // service, plus two frames. A healthy pipeline holds far less; a stuck
  // one holds the whole ring or window.
  const double window_s = 0.1 + 4.0 * static_cast<double>(p_.batch_service_ns) / 1e9;
  steady_level_ = static_cast<std::uint64_t>(p_.offered_per_s * window_s) + 2 * p_.batch_max + 16;
  recovery_checked_ = p_.offered_peak_per_s <= 0.8 * p_.capacity_per_s;
  if (p_.sites_active) {
    // Fault sites act from the start until the heal: one episode for all of them.
    episodes_.push_back({p_.heal_ns + p_.settle_ns, 0});
    quiet_from_ns_ = p_.heal_ns + p_.settle_ns;
  }
}

void load_checks::fault(ns_t now_ns, ns_t end_ns, std::uint64_t outstanding, bool suspect) {
  AEGIS_ASSERT(end_ns >= now_ns, "a fault ends after it starts");
  if (suspect) episodes_.push_back({end_ns + p_.settle_ns, outstanding});
  quiet_from_ns_ = std::max(quiet_from_ns_, end_ns + p_.settle_ns);
}

void load_checks::death(std::uint64_t outstanding) {
  ++fig_.deaths;
  allowance_ += outstanding + p_.batch_max;
}

void load_checks::sample(ns_t now_ns, const offloader_counters& c, std::uint64_t attempts) {
  // Episodes: track the most outstanding while each can act; close the ended ones.
  for (auto it = episodes_.begin(); it != episodes_.end();) {
    it->max_outstanding = std::max(it->max_outstanding, c.outstanding);
    if (now_ns >= it->until_ns) {
      allowance_ += it->max_outstanding + p_.batch_max;
      it = episodes_.erase(it);
    } else {
      ++it;
    }
  }
  if (c.retransmits > last_resent_) {
    if (now_ns >= quiet_from_ns_) {
      fig_.resent_in_steady += c.retransmits - last_resent_;
      if (first_steady_resend_ns_ < 0) first_steady_resend_ns_ = now_ns;
    }
    last_resent_ = c.retransmits;
  }
  fig_.resent = c.retransmits;
  if (!heal_seen_ && now_ns >= p_.heal_ns) {
    heal_seen_ = true;
    fig_.backlog_at_heal = c.in_flight;
  }
  if (heal_seen_ && recovered_at_ns_ < 0 && c.in_flight <= steady_level_) {
    recovered_at_ns_ = now_ns;
    fig_.recovered_after_ns = now_ns - p_.heal_ns;
  }
  if (recovered_at_ns_ >= 0 && goodput_from_ns_ < 0 && now_ns >= p_.heal_ns + p_.detect_ns) {
    goodput_from_ns_ = now_ns;
    verdicts_at_recovery_ = c.verdicts;
    attempts_at_recovery_ = attempts;
  }
  if (now_ns <= p_.workload_end_ns) {
    verdicts_at_end_ = c.verdicts;
    attempts_at_end_ = attempts;
  }
}

std::string load_checks::finish(ns_t end_ns) {
  for (const episode& e : episodes_) allowance_ += e.max_outstanding + p_.batch_max;
  episodes_.clear();
  fig_.resent_allowed = allowance_ + p_.batch_max;
  if (fig_.resent_in_steady != 0) {
    return fmt::format(
        "steady state: {} records resent while no fault was active (first at {}; faults quiet from {}, "
        "settle {})",
        fig_.resent_in_steady, format_duration(first_steady_resend_ns_), format_duration(quiet_from_ns_),
        format_duration(p_.settle_ns));
  }
  if (fig_.resent > fig_.resent_allowed) {
    return fmt::format(
        "amplification: {} records resent, bound {} (outstanding at {} bridge deaths and during each fault, "
        "+ one batch of {} per fault)",
        fig_.resent, fig_.resent_allowed, fig_.deaths, p_.batch_max);
  }
  if (!recovery_checked_) return {};
  // Backlog at the heal drains at the spare capacity while the workload
  // runs, then at the full capacity.
  const double backlog = static_cast<double>(fig_.backlog_at_heal);
  const double spare = p_.capacity_per_s - p_.offered_per_s;
  const double load_left_s = static_cast<double>(p_.workload_end_ns - p_.heal_ns) / 1e9;
  const double drain_s = backlog <= spare * load_left_s ? backlog / spare
                                                        : load_left_s + (backlog - spare * load_left_s) / p_.capacity_per_s;
  fig_.recovery_bound_ns = static_cast<ns_t>(drain_s * 1e9) + p_.settle_ns;
  if (recovered_at_ns_ < 0 || fig_.recovered_after_ns > fig_.recovery_bound_ns) {
    return fmt::format(
        "recovery: in-flight did not return to its steady level ({}) within {} of the heal ({}; backlog at the heal "
        "{}, capacity {:.0f}/s, offered {:.0f}/s){}",
        steady_level_, format_duration(fig_.recovery_bound_ns), format_duration(p_.heal_ns), fig_.backlog_at_heal,
        p_.capacity_per_s, p_.offered_per_s,
        recovered_at_ns_ < 0 ? fmt::format(", not by the end at {}", format_duration(end_ns))
                             : fmt::format(", only after {}", format_duration(fig_.recovered_after_ns)));
  }
  // Goodput after recovery, while the workload still ran. Skipped when the
  // span is too short to mean anything, or when a drop-mode TTL is shorter
  // than the service itself (then expiry is the configured outcome).
  const ns_t span = goodput_from_ns_ < 0 ? 0 : p_.workload_end_ns - goodput_from_ns_;
  const bool ttl_below_service = p_.mode == admission::drop && p_.ttl_ns > 0 && p_.ttl_ns < 20 * p_.batch_service_ns + p_.settle_ns;
  const bool ring_holds_jitter = static_cast<double>(p_.ring_capacity) >= p_.offered_peak_per_s * 0.05;
  if (span >= 100'000'000 && !ttl_below_service && ring_holds_jitter && attempts_at_end_ > attempts_at_recovery_) {
    const double offered = static_cast<double>(attempts_at_end_ - attempts_at_recovery_);
    const double verdicts = static_cast<double>(verdicts_at_end_ - verdicts_at_recovery_);
    fig_.goodput_ratio = verdicts / offered;
    if (verdicts + static_cast<double>(steady_level_) < 0.95 * offered) {
      return fmt::format("goodput: {:.0f} verdicts for {:.0f} offered in the {} from {} ({:.1f} %, need 95 % "
                         "less a steady level of {})",
                         verdicts, offered, format_duration(span), format_duration(goodput_from_ns_),
                         100.0 * fig_.goodput_ratio, steady_level_);
    }
  }
  return {};
}

}  // namespace aegis::sim
