// One scenario end to end; see runner.hpp.
#include "sim/runner.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <optional>

#include "aegis/mutant_catalogue.hpp"
#include "sim/python_bridge.hpp"
#include "sim/seed.hpp"
#include "sim/sim_env.hpp"

namespace aegis::sim {

namespace {

using sim_offloader = offloader<sim_env, multi_producer>;

/// Per-transaction bookkeeping of the workload, indexed by txn_id.
struct txn_state {
  enum : std::uint8_t { unknown, offering, accepted, dropped };
  std::uint8_t state = unknown;
  std::uint8_t fates = 0;
  std::uint16_t life = 0;  // Index of the core process (epoch) that was offered it.
};

const char* offload_endpoint = "ipc://sim/offload.sock";
const char* verdict_endpoint = "ipc://sim/verdicts.sock";

class run_state {
 public:
  run_state(const scenario& s, const run_options& o)
      : s_(s),
        o_(o),
        world_(s.seed, make_world_options(s, o)),
        net_(world_, make_network_options(s.seed)),
        core_(world_.add_process("core")),
        core_env_(world_, net_, core_),
        bridge_(world_, net_, make_bridge_config(s)),
        twin_(world_, net_, make_bridge_config(s, "bridge.twin")),
        load_(make_load_params(s)) {
    heal_at_ = *s_.plan.heal_at_ns;
    workload_end_ = s_.sim_duration_ns;
    converge_deadline_ = workload_end_ + s_.converge_ns;
    if (o_.on_batch) {
      bridge_.observe(o_.on_batch);
      twin_.observe(o_.on_batch);
    }
    twin_.on_death([this] { load_.death(off_ != nullptr ? off_->counters().outstanding : 0); });
    // Which VERDICT frames of an earlier core's epoch reach the current core:
    // the bridge's connecting PUSH keeps what it queued while no core was
    // bound and delivers it to the next one, which must reject exactly those
    // as wrong_epoch (and nothing else: the model bridge is honest).
    net_.observe_receive([this](process_id p, socket_id, std::span<const std::byte> bytes) { core_received(p, bytes); });
    bridge_.on_death([this] { load_.death(off_ != nullptr ? off_->counters().outstanding : 0); });
    world_.set_mutant(s_.mutant);
    if (s_.bridge == bridge_kind::python) {
      python_bridge::start_interpreter();
      python_bridge::reset_world();
    }
    // Room for the expected transactions up front (bursts and the exponential
    // tail included), so the per-txn tables do not reallocate and fault fresh
    // pages in during the run. Capped: a long run still grows on demand.
    const std::uint64_t expected = *s_.rate_per_s * static_cast<std::uint64_t>(s_.sim_duration_ns / 1'000'000) / 1000;
    const std::size_t reserve = static_cast<std::size_t>(std::min<std::uint64_t>(expected + expected / 4 + 1024, 1u << 24));
    txns_.reserve(reserve);
    died_.reserve(reserve);
    seq_used_.reserve(reserve / 64 + 1);
  }

  run_report run() {
    install_faults();
    prng boot = world_.stream("boot");
    const ns_t bridge_start = boot.range(0, 30) * 1'000'000;  // Before or after the core binds.
    world_.at(bridge_start, [this] {
      if (!bridge_.alive()) bridge_.start();
    });
    world_.spawn(core_, "core-main", [this] { core_main(); });
    if (o_.assert_at_ns >= 0) {
      world_.at(o_.assert_at_ns, [] { AEGIS_ASSERT(false, "self-test: a deliberate assertion (--self-test-assert-at)"); });
    }
    const run_result r = world_.run([this] { return main_done_; }, [this] { check(); });

    run_report rep;
    rep.outcome = r.outcome;
    rep.end_ns = r.end_ns;
    rep.steps = r.steps;
    rep.counters = final_counters_;
    rep.workload = totals();
    rep.epochs = epochs_;
    if (!epochs_.empty()) {
      epochs_.back().workload = counts_;
      rep.epochs.back().workload = counts_;
      rep.epochs.back().counters = final_counters_;
      rep.epochs.back().wrong_epoch_rejects = final_counters_.rejected(reject_reason::wrong_epoch);
    }
    if (epochs_.size() > 1) rep.txn_died = died_;
    rep.bridge = bridge_.stats();
    rep.network = net_.counters();
    rep.load = load_.figures();
    rep.load_steady_level = load_.steady_level();
    rep.fault_sites = world_.fault_stats();
    rep.coverage = world_.coverage();
    rep.pct_guarantee = world_.pct_guarantee();
    rep.preempt_ppm = world_.options().preempt_ppm;
    switch (r.outcome) {
      case run_outcome::finished:
        if (!liveness_failure_.empty()) {
          rep.exit_code = exit_liveness;
          rep.failure = liveness_failure_;
        } else if (!load_failure_.empty()) {
          rep.exit_code = exit_load;
          rep.failure = "liveness under load: " + load_failure_;
        }
        break;
      case run_outcome::failed:
        rep.exit_code = exit_correctness;
        rep.failure = r.reason + "\n  at event: " + world_.describe(world_.trace().last());
        break;
      case run_outcome::deadlock:
      case run_outcome::time_limit:
      case run_outcome::step_limit:
        rep.exit_code = exit_liveness;
        rep.failure = fmt::format("{}: {}", to_string(r.outcome), r.reason);
        break;
    }
    rep.events = world_.trace().count();
    rep.trace_hash = world_.trace().hash();
    if (!o_.trace_path.empty()) {
      std::ofstream out{o_.trace_path, std::ios::trunc};
      world_.write_chrome_json(out);
    }
    return rep;
  }

 private:
  static world_options make_world_options(const scenario& s, const run_options& o) {
    world_options w;
    w.strategy = s.strategy;
    w.pct_depth = s.pct_depth;
    if (s.preempt_ppm) w.preempt_ppm = *s.preempt_ppm;
    const std::uint64_t txns = *s.rate_per_s * static_cast<std::uint64_t>(s.sim_duration_ns / 1'000'000) / 1000;
    w.max_steps = o.max_steps != 0 ? o.max_steps : 50'000'000 + txns * 4'000;
    w.pct_steps_estimate = 1'000 + txns * 150;  // Measured: ~100-200 yield points per transaction.
    w.max_time_ns = s.sim_duration_ns + s.converge_ns + 1'000'000'000;
    w.keep_trace = !o.trace_path.empty();
    return w;
  }

  // How long a healed fault may still cause resends: the core's longest
  // backed-off retransmit timer, two bridge heartbeats and a reconnect.
  static ns_t settle_ns(const scenario& s) {
    return std::max<ns_t>(2'000'000'000, 4 * *s.retransmit_ns) + 2 * 200'000'000 + 100'000'000;
  }

  static bridge_model_config make_bridge_config(const scenario& s, const char* name = "bridge") {
    bridge_model_config b{offload_endpoint, verdict_endpoint};
    b.name = name;
    b.score_record_ns = *s.model_record_ns;
    b.score_batch_ns = *s.model_batch_ns;
    b.score_chunk_ns = model_chunk_ns;
    b.poison_ppm = *s.poison_ppm;
    b.python = s.bridge == bridge_kind::python;
    if (is_bridge_mutant(s.mutant)) b.python_mutant = s.mutant;
    return b;
  }

  static load_check_params make_load_params(const scenario& s) {
    load_check_params p;
    p.mode = *s.mode;
    p.capacity_per_s = s.model_capacity_per_s();
    p.offered_per_s = static_cast<double>(*s.rate_per_s);
    p.offered_peak_per_s = static_cast<double>(*s.rate_per_s) * static_cast<double>(*s.burst_factor);
    p.ring_capacity = *s.ring_capacity;
    p.heal_ns = std::min(*s.plan.heal_at_ns, s.sim_duration_ns);
    p.workload_end_ns = s.sim_duration_ns;
    p.settle_ns = settle_ns(s);
    p.detect_ns = 3 * 200'000'000 + 100'000'000;  // The core's dead interval for the model's 200 ms heartbeat, and a margin.
    p.batch_service_ns = *s.model_batch_ns + static_cast<ns_t>(*s.batch_max) * *s.model_record_ns;
    p.ttl_ns = *s.ttl_ns;
    p.batch_max = *s.batch_max;
    p.sites_active = !s.plan.sites.empty();
    return p;
  }

  static network_options make_network_options(std::uint64_t seed) {
    prng r = prng::derive(seed, "network.options");
    network_options n;
    n.latency_min_ns = r.range(2, 20) * 1'000;
    n.latency_max_ns = n.latency_min_ns + r.range(0, 200) * 1'000;
    n.spike_ppm = static_cast<std::uint32_t>(r.range(0, 5'000));
    n.spike_ns = r.range(1, 20) * 1'000'000;
    n.handshake_ns = r.range(50, 500) * 1'000;
    return n;
  }

  // ------------------------------------------------------------ faults

  void install_faults() {
    for (const fault_site_setting& site : s_.plan.sites) {
      world_.configure_fault_site(site.name, {site.activation_ppm, site.rate_ppm});
    }
    for (const fault_event& e : s_.plan.events) {
      if (e.at_ns >= heal_at_) continue;  // Nothing happens after the heal.
      const ns_t end = std::min(e.at_ns + e.duration_ns, heal_at_);
      switch (e.kind) {
        case fault_kind::crash:
          world_.at(e.at_ns, [this, e] {
            load_.fault(world_.now_ns(), world_.now_ns() + e.duration_ns, 0, false);
            if (off_ != nullptr && off_->ring_stats().unreleased == off_->config().ring_capacity) {
              world_.reached("bridge_crashed_while_ring_full");
            }
            bridge_.crash();
            world_.at(world_.now_ns() + e.duration_ns, [this] {
              if (!bridge_.alive() && world_.now_ns() < heal_at_) bridge_.start();
            });
          });
          break;
        case fault_kind::stall:
          world_.at(e.at_ns, [this, end] {
            load_.fault(world_.now_ns(), end, outstanding(), true);
            bridge_.stall(end);
            // Coverage: does the core's retransmit timeout fire while the bridge is frozen?
            stall_end_ = end;
            stall_rounds_ = off_ != nullptr ? off_->counters().retransmit_rounds : 0;
          });
          break;
        case fault_kind::slow:
          world_.at(e.at_ns, [this, end, e] {
            load_.fault(world_.now_ns(), end, outstanding(), true);
            bridge_.slow(static_cast<std::uint32_t>(e.arg), end);
          });
          break;
        case fault_kind::clog_offload:
        case fault_kind::clog_verdict:
          world_.at(e.at_ns, [this, end, e] {
            load_.fault(world_.now_ns(), end, outstanding(), true);
            const char* ep = e.kind == fault_kind::clog_offload ? offload_endpoint : verdict_endpoint;
            net_.clog(ep, e.arg, end);
            world_.record(event_kind::fault, 0, e.arg, e.kind == fault_kind::clog_offload ? "clog.offload" : "clog.verdict");
          });
          break;
        case fault_kind::twin:
          // A second bridge alongside the first: its HELLO is a new
          // incarnation (the core resends what is outstanding), both get
          // frames round-robin, and when it dies what it held is resent.
          world_.at(e.at_ns, [this, end] {
            if (twin_.alive()) return;
            load_.fault(world_.now_ns(), end, outstanding(), true);
            twin_.start();
            world_.at(end, [this] { twin_.crash(); });
          });
          break;
        case fault_kind::clock:
          world_.at(e.at_ns, [this, end] {
            load_.fault(world_.now_ns(), end, outstanding(), true);
            world_.stall_clock(core_, end);
          });
          break;
        case fault_kind::restart:
          // The core process dies (a crash: nothing of it runs again) and a
          // new one with a new epoch starts later; the bridge lives on.
          world_.at(e.at_ns, [this, e] {
            if (!world_.alive(core_) || main_done_) return;  // Already down.
            load_.fault(world_.now_ns(), world_.now_ns() + e.duration_ns, outstanding(), true);
            core_crash();
            world_.at(world_.now_ns() + e.duration_ns, [this] {
              if (!world_.alive(core_) && world_.now_ns() < heal_at_) core_start();
            });
          });
          break;
      }
    }
    world_.at(heal_at_, [this] {
      world_.record(event_kind::phase, 0, 0, "heal");
      world_.disable_fault_sites();
      bridge_.heal();
      twin_.crash();
      net_.clog(offload_endpoint, 0, 0);
      net_.clog(verdict_endpoint, 0, 0);
      if (!bridge_.alive()) bridge_.start();
      if (!world_.alive(core_)) core_start();
    });
  }

  // ------------------------------------------------------------ core restarts

  void core_start() {
    world_.revive(core_);
    world_.spawn(core_, "core-main", [this] { core_main(); });
  }

  // The core process dies now (scheduler context). What it owed is settled
  // first, exactly: every transaction it accepted has a fate from it or dies
  // with it, and its counters agree with the workload's own.
  void core_crash() {
    AEGIS_ASSERT(world_.alive(core_) && !main_done_, "a running core crashes");
    // A core restarted and crashed again before its first slice has no life
    // of its own yet: the books of the last life are settled once.
    if (epochs_.size() > settled_lives_) {
      settled_lives_ = epochs_.size();
      core_epoch_report& life = epochs_.back();
      const std::size_t index = epochs_.size() - 1;
      for (std::uint64_t id = life.first_txn_id; id <= next_txn_id_; ++id) {
        txn_state& ts = txns_[id];
        AEGIS_ASSERT(ts.life == index, "ids from first_txn_id on were offered by this life");
        if (ts.state == txn_state::accepted && ts.fates == 0) {
          died_[id] = died_with::core;
          ++life.died_with_core;
        } else if (ts.state == txn_state::offering) {
          died_[id] = died_with::offload;
          ++life.died_in_offload;
        }
      }
      AEGIS_ASSERT(life.died_in_offload == in_offload_, "every offload() in progress dies with the core");
      life.died_ns = world_.now_ns();
      life.workload = counts_;
      if (off_ != nullptr) {
        const offloader_counters c = off_->counters();
        life.counters = c;
        life.wrong_epoch_rejects = c.rejected(reject_reason::wrong_epoch);
        settle_dead_life(life, c);
        dead_retransmits_ += c.retransmits;
        dead_verdicts_ += c.verdicts;
      }
      totals_ += counts_;
      counts_ = {};
    }
    world_.record(event_kind::fault, epochs_.size(), 0, "core.crash");
    off_ = nullptr;
    world_.crash(core_);
    // Its producers died with it, inside offload() or not.
    in_offload_ = 0;
    producers_running_ = 0;
  }

  // A dead core's books, at its death: exact up to what was in progress (an
  // offload() call that had not returned, one fate callback whose counter
  // was not bumped yet, one received frame not yet judged).
  void settle_dead_life(const core_epoch_report& life, const offloader_counters& c) {
    auto fail = [&](std::string why) {
      world_.fail(fmt::format("core epoch {:x} at its death: {}", life.epoch, why));
    };
    if (c.abandoned != 0) return fail(fmt::format("{} txns abandoned", c.abandoned));
    // The pump bumps its counter right after the callback: it may have died in between.
    if (c.verdicts > counts_.verdicts || c.expired > counts_.expired ||
        c.verdicts + c.expired + 1 < counts_.verdicts + counts_.expired) {
      return fail(fmt::format("it counts {} verdicts and {} expired, its callbacks saw {} and {}", c.verdicts, c.expired,
                              counts_.verdicts, counts_.expired));
    }
    // in_flight = accepted - verdicts - expired: what it held and now dies
    // with it (plus a fate whose counter was not bumped, and offers in progress).
    const std::uint64_t in_progress = life.died_in_offload;
    if (c.in_flight < life.died_with_core || c.in_flight > life.died_with_core + in_progress + 1) {
      return fail(fmt::format("the core held {} txns, the workload counts {} accepted without a fate (+{} offers in "
                              "progress)",
                              c.in_flight, life.died_with_core, in_progress));
    }
    if (c.dropped() < counts_.dropped_ring_full + counts_.dropped_timeout + counts_.dropped_closed ||
        c.dropped() > counts_.dropped_ring_full + counts_.dropped_timeout + counts_.dropped_closed + in_progress) {
      return fail(fmt::format("the core dropped {}, producers saw {} drops (+{} offers in progress)", c.dropped(),
                              counts_.dropped_ring_full + counts_.dropped_timeout + counts_.dropped_closed, in_progress));
    }
    const std::uint64_t rejected = c.rejected(reject_reason::wrong_epoch);
    if (rejected > life.old_epoch_frames || rejected + 1 < life.old_epoch_frames) {
      return fail(fmt::format("{} wrong_epoch rejects for {} frames of earlier epochs delivered", rejected,
                              life.old_epoch_frames));
    }
  }

  // Every message a process receives (the network's observer): counts the
  // VERDICT frames of an earlier core's epoch that reach the current core.
  void core_received(process_id p, std::span<const std::byte> bytes) {
    if (p != core_ || epochs_.empty() || world_.failed()) return;
    const decoded_frame f = decode_frame(bytes);
    if (!f.ok() || f.header.type != frame_type::verdict) return;
    core_epoch_report& life = epochs_.back();
    if (f.header.epoch == life.epoch) return;
    const bool earlier = std::any_of(epochs_.begin(), epochs_.end() - 1,
                                     [&](const core_epoch_report& e) { return e.epoch == f.header.epoch; });
    if (!earlier) {
      return world_.fail(fmt::format("a VERDICT frame of epoch {:x} reached core epoch {:x}; no earlier core had it",
                                     f.header.epoch, life.epoch));
    }
    world_.reached("old_epoch_verdict_reached_new_core");
    ++life.old_epoch_frames;
  }

  workload_counts totals() const {
    workload_counts t = totals_;
    return t += counts_;
  }

  // The load checks judge the whole run: resends and verdicts summed over
  // the core's lives (each core's counters start at zero), gauges the
  // current core's.
  offloader_counters load_view(offloader_counters c) const {
    c.retransmits += dead_retransmits_;
    c.verdicts += dead_verdicts_;
    return c;
  }

  // ------------------------------------------------------------ core process

  void core_main() {
    offloader_config cfg;
    cfg.mode = *s_.mode;
    cfg.ring_capacity = *s_.ring_capacity;
    cfg.offload_endpoint = offload_endpoint;
    cfg.verdict_endpoint = verdict_endpoint;
    cfg.retransmit_timeout_ns = *s_.retransmit_ns;
    cfg.ttl_ns = *s_.ttl_ns;
    cfg.batch_max = *s_.batch_max;
    // A new core process: a new epoch, never one an earlier core had.
    if (!epoch_rng_) epoch_rng_.emplace(world_.stream("core.epoch"));
    std::uint64_t epoch = 0;
    while (epoch == 0 || std::any_of(epochs_.begin(), epochs_.end(), [&](const core_epoch_report& e) { return e.epoch == epoch; })) {
      epoch = epoch_rng_->next() | 1;
    }
    cfg.epoch = epoch;
    const auto life = static_cast<std::uint16_t>(epochs_.size());
    AEGIS_ASSERT(epochs_.size() < UINT16_MAX, "core lives fit the per-txn index");
    core_epoch_report report;
    report.epoch = epoch;
    report.started_ns = world_.now_ns();
    report.first_txn_id = next_txn_id_ + 1;
    epochs_.push_back(report);
    counts_ = {};
    std::fill(seq_used_.begin(), seq_used_.end(), 0);  // Seqs start again in a new epoch.
    if (life != 0) world_.record(event_kind::phase, life, static_cast<std::int64_t>(epoch & INT64_MAX), "core.restart");
    if (o_.on_core_start) o_.on_core_start(epoch);
    std::optional<sim_offloader> off;
    off.emplace(core_env_, cfg, [this, life](const txn& t, std::uint64_t seq, fate f, const verdict* v, ns_t offload_ns) {
      on_fate(life, t, seq, f, v, offload_ns);
    });
    off_ = &*off;
    off->start();

    std::vector<sim_env::thread> producers;
    for (std::uint32_t i = 0; i < *s_.producers; ++i) {
      producers.push_back(core_env_.spawn(fmt::format("producer-{}", i), [this, i, life] { producer(i, life); }));
    }
    core_env_.sleep_until_ns(workload_end_);
    world_.record(event_kind::phase, 0, 0, "converge");
    // Producers blocked on a full ring finish once space frees; bounded wait.
    while (producers_running_ > 0 && world_.now_ns() < converge_deadline_) {
      core_env_.sleep_until_ns(world_.now_ns() + 1'000'000);
    }
    if (producers_running_ > 0) {
      liveness_failure_ = fmt::format("{} producer(s) still blocked {} after the workload ended (no convergence)",
                                      producers_running_, format_duration(s_.converge_ns));
    } else {
      for (auto& p : producers) p.join();
      if (!off->drain(converge_deadline_)) {
        const offloader_counters c = off->counters();
        liveness_failure_ = fmt::format("no convergence: {} accepted txns still in flight {} after the workload ended "
                                        "(heal at {})",
                                        c.in_flight, format_duration(s_.converge_ns), format_duration(heal_at_));
      }
    }
    final_counters_ = off->counters();
    if (liveness_failure_.empty()) final_checks(final_counters_);
    if (liveness_failure_.empty() && !world_.failed()) load_failure_ = load_.finish(world_.now_ns());
    if (!liveness_failure_.empty()) {
      world_.record(event_kind::failure, 0, 0, "liveness");
      // Leave the offloader and producers where they are: the run is over.
      main_done_ = true;
      world_.yield_now();
      return;
    }
    off->stop();
    final_counters_ = off->counters();
    off_ = nullptr;
    off.reset();
    bridge_.on_death(nullptr);  // The run is judged: this crash only unwinds the bridge's fibers.
    twin_.on_death(nullptr);
    bridge_.crash();
    twin_.crash();
    main_done_ = true;
  }

  void producer(std::uint32_t index, std::uint16_t life) {
    ++producers_running_;
    prng r = world_.stream(life == 0 ? fmt::format("workload.producer.{}", index)
                                     : fmt::format("workload.core.{}.producer.{}", life, index));
    const ns_t mean_ns = static_cast<ns_t>(1'000'000'000ULL * *s_.producers / *s_.rate_per_s);
    const std::uint32_t burst = *s_.burst_factor;
    bool bursting = false;
    ns_t phase_end = 0;
    for (;;) {
      ns_t now = world_.now_ns();
      if (burst > 1 && now >= phase_end) {
        // Markov-modulated arrivals: bursts of mean 10 ms at `burst` times the
        // rate, about one fifth of the time.
        bursting = r.chance(1, 5);
        phase_end = now + r.exponential_ns(bursting ? 10'000'000 : 40'000'000) + 1;
      }
      const ns_t gap = r.exponential_ns(bursting ? mean_ns / burst : mean_ns);
      core_env_.sleep_until_ns(now + gap);
      now = world_.now_ns();
      if (now >= workload_end_) break;
      const std::uint64_t id = ++next_txn_id_;
      txn t;
      t.txn_id = id;
      t.amount_minor = r.range(1, 500'000);
      t.timestamp_ns = now;
      t.merchant_id = r.below(10'000);
      t.card_fp = r.next();
      t.currency = {'E', 'U', 'R'};
      t.channel = static_cast<std::uint8_t>(r.below(3));
      t.mcc = static_cast<std::uint32_t>(5000 + r.below(1000));
      if (txns_.size() <= id) txns_.resize(std::max<std::size_t>(id + 1, 2 * txns_.size()));
      if (died_.size() <= id) died_.resize(txns_.size(), died_with::none);
      txns_[id].state = txn_state::offering;
      txns_[id].life = life;
      ++in_offload_;
      const offload_status st = off_->offload(t);
      --in_offload_;
      world_.record(event_kind::offload, id, static_cast<std::int64_t>(st));
      if (o_.on_offload) o_.on_offload(id, st);
      ++counts_.offered;
      txn_state& ts = txns_[id];
      if (st == offload_status::accepted) {
        ++counts_.accepted;
        ts.state = txn_state::accepted;
        continue;
      }
      if (ts.fates != 0) world_.fail(fmt::format("txn {} got a fate but offload() reported {}", id, to_string(st)));
      ts.state = txn_state::dropped;
      switch (st) {
        case offload_status::dropped_ring_full: ++counts_.dropped_ring_full; break;
        case offload_status::dropped_timeout: ++counts_.dropped_timeout; break;
        case offload_status::dropped_closed: ++counts_.dropped_closed; break;
        case offload_status::accepted: break;
      }
    }
    --producers_running_;
  }

  void on_fate(std::uint16_t life, const txn& t, std::uint64_t seq, fate f, const verdict* v, ns_t) {
    const std::uint64_t id = t.txn_id;
    world_.record(event_kind::fate, id, static_cast<std::int64_t>(f));
    if (id == 0 || id >= txns_.size() || txns_[id].state == txn_state::unknown) {
      return world_.fail(fmt::format("fate for txn {} that was never offered (seq {})", id, seq));
    }
    txn_state& ts = txns_[id];
    // Fates never cross core lives: core epoch E gives fates only to what
    // epoch E accepted, whatever bridge incarnation answered.
    if (ts.life != life || life + 1u != epochs_.size()) {
      return world_.fail(fmt::format("core epoch {:x} gave a fate to txn {} (seq {}), which core epoch {:x} accepted",
                                     epochs_[life].epoch, id, seq, epochs_[ts.life].epoch));
    }
    if (ts.state == txn_state::dropped) return world_.fail(fmt::format("fate for txn {} that offload() dropped", id));
    if (ts.fates != 0) return world_.fail(fmt::format("second fate for txn {} (seq {}): exactly-once broken", id, seq));
    const std::size_t word = static_cast<std::size_t>(seq >> 6);
    const std::uint64_t bit = std::uint64_t{1} << (seq & 63);
    if (seq == 0 || seq > next_txn_id_ + 1 || (word < seq_used_.size() && (seq_used_[word] & bit) != 0)) {
      return world_.fail(fmt::format("txn {} reported with seq {} already used or impossible", id, seq));
    }
    if (seq_used_.size() <= word) seq_used_.resize(std::max(word + 1, 2 * seq_used_.size()), 0);
    seq_used_[word] |= bit;
    if (f == fate::verdict) {
      if (v == nullptr || v->txn_id != id || v->seq != seq) {
        return world_.fail(fmt::format("verdict for txn {} carries txn {} seq {}", id, v ? v->txn_id : 0, v ? v->seq : 0));
      }
      if (!verdict_is_the_models(t, seq, *v)) {
        return world_.fail(fmt::format("verdict for txn {} is not the bridge's verdict for it", id));
      }
      ++counts_.verdicts;
    } else if (f == fate::abandoned) {
      // The model bridge answers every record it reads: nothing should ever
      // be sent max_sends times without a verdict.
      return world_.fail(fmt::format("txn {} (seq {}) abandoned: sent {} times without a verdict", id, seq, 10));
    } else {
      if (*s_.ttl_ns == 0) return world_.fail(fmt::format("txn {} expired although no TTL is set", id));
      ++counts_.expired;
    }
    ts.fates = 1;
    if (o_.on_fate) o_.on_fate(id, seq, f, world_.now_ns());
  }

  // The verdict the bridge's model gives the transaction: the C++ model's
  // function of it, or what the shipped model answered the real bridge for
  // it; a poisoned transaction is `unscored` with the fail-safe decision.
  bool verdict_is_the_models(const txn& t, std::uint64_t seq, const verdict& v) const {
    if (s_.bridge == bridge_kind::model) {
      const verdict_record expect = bridge_model::verdict_for(txn_record{seq, t, 0}, *s_.poison_ppm);
      return v.score == expect.score && v.decision == expect.decision &&
             v.unscored == ((expect.flags & verdict_flag_unscored) != 0);
    }
    if (bridge_model::poisoned(t.txn_id, *s_.poison_ppm)) {
      return v.unscored && v.decision == bridge_model::unscored_decision;
    }
    const auto expect = python_bridge::expected_verdict(t.txn_id);
    return expect && !v.unscored && v.score == expect->score && v.decision == expect->decision;
  }

  // ------------------------------------------------------------ invariants

  void check() {
    if (off_ == nullptr || world_.failed()) return;
    // The core's counters and the workload's own change only while a fiber
    // runs (timer callbacks touch the bridge, the network and fault state,
    // never the offloader): when no yield point passed since the last check,
    // its result cannot differ, so only the caller's invariant runs again.
    // About half the events are timers.
    if (world_.steps() != checked_at_steps_) {
      checked_at_steps_ = world_.steps();
      check_core();
      if (world_.failed()) return;
    }
    if (off_ != nullptr) load_.sample(world_.now_ns(), load_view(off_->counters()), next_txn_id_);
    if (o_.extra_invariant) {
      if (std::string why = o_.extra_invariant(); !why.empty()) world_.fail(std::move(why));
    }
  }

  std::uint64_t outstanding() const { return off_ != nullptr ? off_->counters().outstanding : 0; }

  void check_core() {
    const offloader_counters c = off_->counters();  // Scheduler context: loads are not yield points.
    const ring_counters rc = off_->ring_stats();
    if (world_.now_ns() < stall_end_ && c.retransmit_rounds > stall_rounds_) {
      world_.reached("retransmit_timeout_during_stall");
      stall_end_ = 0;
    }
    auto fail = [&](std::string why) { world_.fail(std::move(why)); };
    if (rc.unreleased > off_->config().ring_capacity) return fail("ring holds more entries than its capacity");
    if (c.unknown_seq != 0) return fail(fmt::format("the core saw {} verdicts for unknown seqs", c.unknown_seq));
    for (reject_reason r : all_reject_reasons) {
      if (r == reject_reason::wrong_epoch) {
        // The one expected reject: a frame of an earlier core's epoch that
        // the bridge queued while no core was bound, delivered to this core.
        const std::uint64_t delivered = epochs_.back().old_epoch_frames;
        if (c.rejected(r) > delivered) {
          return fail(fmt::format("the core rejected {} frame(s) as wrong_epoch; {} frame(s) of earlier epochs reached it",
                                  c.rejected(r), delivered));
        }
        continue;
      }
      if (c.rejected(r) != 0) {
        // No bridge here is rogue: an honest bridge is never rejected, whichever it is.
        return fail(fmt::format("the core rejected {} frame(s) from the honest {} bridge as {}", c.rejected(r),
                                sim::to_string(s_.bridge), to_string(r)));
      }
    }
    if (in_offload_ == 0 && !c.identity_holds()) {
      return fail(fmt::format(
          "accounting identity broken: offered {} != verdicts {} + expired {} + abandoned {} + dropped {} + in_flight {}",
          c.offered, c.verdicts, c.expired, c.abandoned, c.dropped(), c.in_flight));
    }
    if (c.accepted < counts_.accepted || c.accepted > counts_.accepted + in_offload_) {
      return fail(fmt::format("core accepted {} but producers saw {} accepted (+{} in progress)", c.accepted,
                              counts_.accepted, in_offload_));
    }
    // The pump bumps its counter right after the callback: at most one behind.
    if (c.verdicts > counts_.verdicts || counts_.verdicts > c.verdicts + 1) {
      return fail(fmt::format("core counts {} verdicts, callbacks saw {}", c.verdicts, counts_.verdicts));
    }
    if (c.expired > counts_.expired || counts_.expired > c.expired + 1) {
      return fail(fmt::format("core counts {} expired, callbacks saw {}", c.expired, counts_.expired));
    }
    if (*s_.mode == admission::block && c.dropped() != 0) {
      return fail(fmt::format("block mode dropped {} txns (ring_full {}, timeout {}, closed {})", c.dropped(),
                              c.dropped_ring_full, c.dropped_timeout, c.dropped_closed));
    }
  }

  void final_checks(const offloader_counters& c) {
    auto fail = [&](std::string why) { world_.fail(std::move(why)); };
    if (c.in_flight != 0) return fail(fmt::format("{} txns in flight after drain", c.in_flight));
    if (!c.identity_holds()) return fail("accounting identity broken at the end");
    if (c.rejected(reject_reason::wrong_epoch) != epochs_.back().old_epoch_frames) {
      return fail(fmt::format("{} wrong_epoch rejects at the end for {} frames of earlier epochs delivered",
                              c.rejected(reject_reason::wrong_epoch), epochs_.back().old_epoch_frames));
    }
    if (c.offered != counts_.offered || c.accepted != counts_.accepted || c.verdicts != counts_.verdicts ||
        c.expired != counts_.expired || c.dropped_ring_full != counts_.dropped_ring_full ||
        c.dropped_timeout != counts_.dropped_timeout || c.dropped_closed != counts_.dropped_closed) {
      return fail("the core's counters differ from the workload's own accounting at the end");
    }
    for (std::uint64_t id = 1; id <= next_txn_id_; ++id) {
      const txn_state& ts = txns_[id];
      if (ts.state == txn_state::accepted && ts.fates != 1 && died_[id] == died_with::none) {
        return fail(fmt::format("accepted txn {} has no fate after convergence", id));
      }
    }
  }

  const scenario& s_;
  const run_options& o_;
  sim::world world_;
  network net_;
  process_id core_;
  sim_env core_env_;
  bridge_model bridge_;
  bridge_model twin_;  // A second bridge process, started only by a `twin` fault.
  load_checks load_;
  ns_t heal_at_ = 0;
  ns_t workload_end_ = 0;
  ns_t converge_deadline_ = 0;
  sim_offloader* off_ = nullptr;
  bool main_done_ = false;
  std::string liveness_failure_;
  std::string load_failure_;
  std::uint32_t producers_running_ = 0;
  ns_t stall_end_ = 0;               // Coverage of retransmits during a bridge stall.
  std::uint64_t stall_rounds_ = 0;
  std::uint64_t in_offload_ = 0;
  std::uint64_t checked_at_steps_ = UINT64_MAX;  // world steps at the last check of the core's state.
  std::uint64_t next_txn_id_ = 0;
  std::vector<txn_state> txns_;
  std::vector<std::uint64_t> seq_used_;  // Bit per seq of the current epoch: reported once (a bit, not an id: 64x less memory to fault in).
  workload_counts counts_;               // The current core life's.
  workload_counts totals_;               // Earlier core lives'.
  std::vector<core_epoch_report> epochs_;  // One per core life.
  std::vector<died_with> died_;          // By txn id.
  std::optional<prng> epoch_rng_;        // Draws each core's epoch.
  std::size_t settled_lives_ = 0;        // Core lives whose books were settled at their death.
  std::uint64_t dead_retransmits_ = 0;   // Earlier lives' counters, for the load checks.
  std::uint64_t dead_verdicts_ = 0;
  offloader_counters final_counters_;
};

}  // namespace

run_report run_scenario(const scenario& s, const run_options& options) {
  AEGIS_ASSERT(s.mode.has_value() && s.plan.heal_at_ns.has_value(), "run_scenario takes a derived scenario");
  run_state state{s, options};
  return state.run();
}

std::string run_report::summary() const {
  std::string out;
  out += fmt::format("outcome={} virtual_time={} steps={} events={}\n", to_string(outcome), format_duration(end_ns),
                     steps, events);
  const auto& c = counters;
  out += fmt::format(
      "offered={} accepted={} verdicts={} expired={} dropped_ring_full={} dropped_timeout={} dropped_closed={} "
      "in_flight={}\n",
      c.offered, c.accepted, c.verdicts, c.expired, c.dropped_ring_full, c.dropped_timeout, c.dropped_closed, c.in_flight);
  out += fmt::format("identity: offered {} = verdicts {} + expired {} + dropped {} + in_flight {} : {}\n", c.offered,
                     c.verdicts, c.expired, c.dropped(), c.in_flight, c.identity_holds() ? "holds" : "BROKEN");
  out += fmt::format(
      "core: retransmits={} retransmit_rounds={} silence_rewinds={} window={} srtt={} abandoned={} unscored={} "
      "duplicate_verdicts={} late_verdicts={} stale_incarnation={} "
      "unknown_seq={} bridge_incarnations={} frames_sent={} send_stalls={} alloc_failures={} recv_failures={}\n",
      c.retransmits, c.retransmit_rounds, c.silence_rewinds, c.window, format_duration(static_cast<ns_t>(c.srtt_ns)),
      c.abandoned, c.unscored_verdicts, c.duplicate_verdicts, c.late_verdicts, c.stale_incarnation, c.unknown_seq,
      c.bridge_incarnations, c.frames_sent, c.send_stalls, c.alloc_failures, c.recv_failures);
  out += fmt::format(
      "bridge: starts={} crashes={} records_scored={} duplicates_skipped={} model_errors={} verdict_frames={} hellos={} "
      "send_waits={}\n",
      bridge.starts, bridge.crashes, bridge.records_scored, bridge.duplicates_skipped, bridge.model_errors,
      bridge.verdict_frames_sent, bridge.hellos_sent, bridge.send_waits);
  out += fmt::format(
      "load: resent={} resent_allowed={} resent_in_steady={} deaths={} backlog_at_heal={} steady_in_flight={} "
      "recovered_after={} recovery_bound={} goodput_after_recovery={}\n",
      load.resent, load.resent_allowed, load.resent_in_steady, load.deaths, load.backlog_at_heal, load_steady_level,
      load.recovered_after_ns < 0 ? std::string("-") : format_duration(load.recovered_after_ns),
      load.recovery_bound_ns < 0 ? std::string("-") : format_duration(load.recovery_bound_ns),
      load.goodput_ratio < 0 ? std::string("-") : fmt::format("{:.3f}", load.goodput_ratio));
  out += fmt::format("network: sent={} received={} would_block={} lost={} connections={}\n", network.sent,
                     network.received, network.would_block, network.lost, network.connections);
  if (epochs.size() > 1) {
    for (std::size_t i = 0; i < epochs.size(); ++i) {
      const core_epoch_report& e = epochs[i];
      out += fmt::format(
          "core epoch {} ({:x}): started={} died={} offered={} accepted={} verdicts={} expired={} dropped={} "
          "died_with_core={} died_in_offload={} old_epoch_frames={} wrong_epoch_rejects={}\n",
          i, e.epoch, format_duration(e.started_ns), e.died_ns < 0 ? std::string("-") : format_duration(e.died_ns),
          e.workload.offered, e.workload.accepted, e.workload.verdicts, e.workload.expired,
          e.workload.dropped_ring_full + e.workload.dropped_timeout + e.workload.dropped_closed, e.died_with_core,
          e.died_in_offload, e.old_epoch_frames, e.wrong_epoch_rejects);
    }
  }
  std::string sites;
  for (const auto& [name, st] : fault_sites) {
    sites += fmt::format(" {}:{}{}", name, st.active ? "active" : "dormant", st.active ? fmt::format("/fired={}", st.fired) : "");
  }
  out += fmt::format("fault_sites:{}\n", sites.empty() ? " none" : sites);
  out += fmt::format("scheduler: preempt_ppm={} pct={}\n", preempt_ppm, pct_guarantee);
  if (exit_code != exit_pass) out += fmt::format("FAILURE ({}): {}\n", exit_code, failure);
  out += fmt::format("trace_hash={:016x}\n", trace_hash);
  return out;
}

}  // namespace aegis::sim
