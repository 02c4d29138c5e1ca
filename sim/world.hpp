// The simulated world: one seed, a virtual clock, an event queue, processes
// made of fibers, and a seeded scheduler that picks which fiber runs at every
// yield point. Everything a simulated run does is a function of the seed.
//
// Usage:
//   aegis::sim::world w{seed, aegis::sim::world_options{}};
//   auto core = w.add_process("core");
//   w.spawn(core, "main", [&] {
//     w.sleep_until(w.now_ns() + 1'000'000);   // yields; other fibers run meanwhile
//   });
//   aegis::sim::run_result r = w.run();        // until every fiber is done or a bound hits
//
// Time: int64 ns that never ticks on its own. It jumps to the next timer when
// no fiber can run, and each scheduler step (a fiber running from one yield
// point to the next) costs `step_cost_ns` of virtual CPU time, so spin loops
// make progress in time and timers interleave with busy fibers.
//
// Not a global: several worlds can exist in one process (the determinism
// check runs two in turn), and every component receives its world by reference.
#pragma once

#include <boost/context/fiber.hpp>

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "aegis/assert.hpp"
#include "aegis/env.hpp"
#include "sim/fiber_sanitizer.hpp"
#include "sim/prng.hpp"
#include "sim/timer_queue.hpp"
#include "sim/trace.hpp"

namespace aegis::sim {

using fiber_id = std::uint32_t;
using process_id = std::uint32_t;
inline constexpr fiber_id no_fiber = UINT32_MAX;

/// How the scheduler chooses among runnable fibers.
enum class schedule_strategy : std::uint8_t {
  random,  ///< At each yield point, preempt with a seeded probability; pick uniformly.
  pct,     ///< PCT: random priorities, d-1 priority change points over k steps.
};
const char* to_string(schedule_strategy s) noexcept;
std::optional<schedule_strategy> parse_strategy(std::string_view s) noexcept;

/// Everything that bounds and shapes a run except the seed.
struct world_options {
  schedule_strategy strategy = schedule_strategy::random;  ///< Scheduling strategy.
  ns_t step_cost_ns = 20;              ///< Virtual CPU time one yield point costs.
  std::uint32_t preempt_ppm = 0;       ///< random: preemption chance per yield point; 0 = derive from seed.
  std::uint32_t pct_depth = 3;         ///< pct: bug depth d (d-1 change points).
  std::uint64_t pct_steps_estimate = 0;///< pct: k, the estimated steps of a run; 0 = max_steps.
  ns_t max_time_ns = 3'600'000'000'000;///< The run stops (time_limit) past this virtual time.
  std::uint64_t max_steps = 2'000'000'000;  ///< The run stops (step_limit) past this many yield points.
  std::size_t stack_bytes = 256 * 1024;///< Stack of each fiber (guard page below it).
  bool keep_trace = false;             ///< Keep every event for a trace file.
};

/// Why `run` returned.
enum class run_outcome : std::uint8_t {
  finished,    ///< The stop condition held (or every fiber finished).
  failed,      ///< `fail()` was called: an invariant broke (correctness).
  deadlock,    ///< Fibers are blocked, none runnable, no timer pending (liveness).
  time_limit,  ///< max_time_ns passed.
  step_limit,  ///< max_steps yield points passed (livelock: liveness).
};
const char* to_string(run_outcome o) noexcept;

/// Result of a run.
struct run_result {
  run_outcome outcome = run_outcome::finished;  ///< Why it stopped.
  std::string reason;                           ///< Words for a failure.
  ns_t end_ns = 0;                              ///< Virtual time at the end.
  std::uint64_t steps = 0;                      ///< Yield points executed.
};

/// A list of fibers waiting for something (a socket, a doorbell, a word).
/// Entries carry the fiber's wait generation, so an entry left behind by a
/// fiber that was woken for another reason is skipped, never acted upon.
struct wait_queue {
  std::vector<std::pair<fiber_id, std::uint64_t>> waiters;  ///< (fiber, generation).
};

/// Counts per fault site; two-level randomness (FDB's BUGGIFY): a site is
/// activated once per run with `activation_ppm`, then fires at `rate_ppm`.
struct fault_site_config {
  std::uint32_t activation_ppm = 0;  ///< Chance the site is active in this run.
  std::uint32_t rate_ppm = 0;        ///< Chance an active site fires per query.
};

/// What the world knows about one fault site after a run.
struct fault_site_stats {
  bool decided = false;       ///< Activation was decided (the site was queried).
  bool active = false;        ///< Activated for this run.
  std::uint64_t queries = 0;  ///< Times production asked.
  std::uint64_t fired = 0;    ///< Times it fired.
};

namespace detail {
/// Holds a suspended fiber so the world can either destroy it (which unwinds
/// its stack: used when a process is killed, our own code on the stack) or
/// abandon it (no unwinding: used for fibers still suspended when a failed run
/// ends, whose stacks may sit inside `noexcept` production functions where an
/// unwinding exception would call std::terminate).
class fiber_slot {
 public:
  fiber_slot() = default;
  fiber_slot(const fiber_slot&) = delete;
  fiber_slot& operator=(const fiber_slot&) = delete;
  ~fiber_slot() { reset(); }
  /// The held continuation (must be engaged).
  boost::context::fiber& get() noexcept { return *std::launder(reinterpret_cast<boost::context::fiber*>(buf_)); }
  /// Stores a continuation (an empty one disengages).
  void set(boost::context::fiber&& f) {
    reset();
    if (f) {
      new (buf_) boost::context::fiber(std::move(f));
      engaged_ = true;
    }
  }
  /// Takes the continuation out.
  boost::context::fiber take() {
    AEGIS_ASSERT(engaged_, "take() on an empty fiber slot");
    boost::context::fiber f = std::move(get());
    reset();
    return f;
  }
  /// True while a continuation is held.
  bool engaged() const noexcept { return engaged_; }
  /// Destroys the continuation (unwinding the fiber if it is suspended).
  void reset() noexcept {
    if (engaged_) {
      engaged_ = false;
      get().~fiber();
    }
  }
  /// Forgets the continuation without destroying it: the fiber never runs again.
  void abandon() noexcept { engaged_ = false; }

 private:
  alignas(boost::context::fiber) unsigned char buf_[sizeof(boost::context::fiber)];
  bool engaged_ = false;
};
}  // namespace detail

class world {
 public:
  /// A world determined by `seed`; `options` bound and shape the run.
  world(std::uint64_t seed, world_options options);
  ~world();
  world(const world&) = delete;
  world& operator=(const world&) = delete;

  // ------------------------------------------------------------ identity

  /// The run's seed.
  std::uint64_t seed() const noexcept { return seed_; }
  /// The options the world was made with (preempt_ppm resolved).
  const world_options& options() const noexcept { return options_; }
  /// A PRNG stream for the component `name`, derived from the seed.
  prng stream(std::string_view name) const noexcept { return prng::derive(seed_, name); }

  // ------------------------------------------------------------ time

  /// Virtual now.
  ns_t now_ns() const noexcept { return now_ns_; }
  /// Virtual now as `process` sees it: frozen during a clock stall of that process.
  ns_t now_ns(process_id process) const noexcept;
  /// Freezes `process`'s clock at now until `until_ns` (then it jumps forward).
  void stall_clock(process_id process, ns_t until_ns);

  /// Runs `fn` in scheduler context at `at_ns` (>= now). Callbacks must not block.
  /// Returns the timer's sequence number. Timers fire in (deadline, sequence) order.
  std::uint64_t at(ns_t at_ns, std::function<void()> fn);

  // ------------------------------------------------------------ processes and fibers

  /// Creates a live process; its id is used in traces and to kill it.
  process_id add_process(std::string name);
  /// Name of a process.
  const std::string& process_name(process_id p) const { return processes_.at(p).name; }
  /// True while the process is alive (not killed).
  bool alive(process_id p) const { return processes_.at(p).alive; }
  /// Kills a process: its fibers are unwound and removed, and every
  /// `on_kill` hook runs (the network discards its queues). Scheduler context
  /// or a fiber of another process only.
  void kill(process_id p);
  /// Crashes a process (SIGKILL): like kill(), but its fibers are abandoned,
  /// not unwound. Nothing on their stacks runs again, not even a destructor
  /// (they may sit inside noexcept production code, where an unwinding
  /// exception would call std::terminate); what they own on the heap is
  /// gone with the process. Scheduler context only.
  void crash(process_id p);
  /// Brings a killed process back to life (with no fibers) for a restart.
  void revive(process_id p);
  /// Freezes every fiber of `p` until `until_ns` (SIGSTOP-like stall).
  void stall(process_id p, ns_t until_ns);
  /// True while `p` is stalled.
  bool stalled(process_id p) const { return processes_.at(p).stalled_until_ns > now_ns_; }
  /// Registers a hook that runs when any process is killed.
  void on_kill(std::function<void(process_id)> hook) { kill_hooks_.push_back(std::move(hook)); }

  /// Starts a fiber in `process` running `fn`. It first runs when the scheduler picks it.
  fiber_id spawn(process_id process, std::string name, std::function<void()> fn);
  /// True once the fiber returned or was killed.
  bool done(fiber_id f) const { return fibers_.at(f)->state == fiber_state::done; }
  /// The running fiber, or no_fiber in scheduler context.
  fiber_id current() const noexcept { return current_ == nullptr ? no_fiber : current_->id; }
  /// The running fiber's process (0 in scheduler context).
  process_id current_process() const noexcept { return current_ == nullptr ? 0 : current_->process; }
  /// Blocks the running fiber until `f` is done.
  void join(fiber_id f);

  // ------------------------------------------------------------ yield points (fiber context)

  /// A scheduling point: costs one step of virtual time, may switch to another
  /// fiber. No-op in scheduler context. The common case is two compares: the
  /// step and the time at which the scheduler next needs to look (a timer
  /// due, the next random preemption or PCT change point, a bound) are kept
  /// up to date by whatever changes them, so nothing is drawn or scanned here.
  void yield_point() {
    if (current_ == nullptr || unwinding_) return;
    ++steps_;
    now_ns_ += options_.step_cost_ns;
    if (steps_ >= attention_step_ || now_ns_ >= attention_ns_) [[unlikely]] yield_slow();
  }
  /// Unconditionally gives the CPU back to the scheduler (which may pick the same fiber).
  void yield_now();

  /// The running fiber's wait generation, to put into wait queues before `block`.
  std::uint64_t wait_token() const noexcept { return current_->generation; }
  /// Adds the running fiber to `q` for its next `block`.
  void enqueue_current(wait_queue& q);
  /// Blocks the running fiber until woken or `deadline_ns`. Returns true if
  /// woken before the deadline, false on timeout.
  bool block(ns_t deadline_ns);
  /// Sleeps until virtual time `t` (a yield point even if t <= now).
  void sleep_until(ns_t t);
  /// Wakes one fiber if it still waits with `generation`.
  void wake(fiber_id f, std::uint64_t generation);
  /// Wakes every waiter of `q` and empties it.
  void wake_all(wait_queue& q);
  /// Blocks on the address `key` (a park word): woken by `wake_key(key)`.
  bool block_on_key(const void* key, ns_t deadline_ns);
  /// Wakes every fiber blocked on `key`.
  void wake_key(const void* key);

  // ------------------------------------------------------------ running

  /// Runs until `stop` returns true (checked after every event), every fiber
  /// finished, a failure, a deadlock, or a bound. `after_event` runs after
  /// every scheduler step and timer, in scheduler context: invariant checks go there.
  run_result run(std::function<bool()> stop = {}, std::function<void()> after_event = {});
  /// Stops the run at once with a correctness failure. From a fiber, the
  /// fiber is suspended for good; from scheduler context, the loop stops.
  void fail(std::string reason);
  /// True once fail() was called.
  bool failed() const noexcept { return failed_; }
  /// Yield points executed so far.
  std::uint64_t steps() const noexcept { return steps_; }

  // ------------------------------------------------------------ faults

  /// Sets the two-level randomness of a fault site (before it is first queried).
  void configure_fault_site(std::string name, fault_site_config config);
  /// Default for sites not configured explicitly.
  void configure_fault_default(fault_site_config config) { fault_default_ = config; }
  /// Switches every fault site off for the rest of the run (the heal phase).
  void disable_fault_sites() noexcept { fault_sites_disabled_ = true; }
  /// The seeded, recorded decision for the site `name`.
  bool fault_fires(const char* name);
  /// Per-site statistics (sorted by name).
  std::vector<std::pair<std::string, fault_site_stats>> fault_stats() const;

  // ------------------------------------------------------------ mutants and coverage

  /// Switches on the mutant `name` (faults/aegis/mutant.hpp) for this run; empty = none.
  void set_mutant(std::string name) { mutant_ = std::move(name); }
  /// True when `name` is this run's mutant: what AEGIS_MUTANT asks through sim_env.
  bool mutant(std::string_view name) const noexcept { return !mutant_.empty() && mutant_ == name; }
  /// Records that the rare state `name` (faults/aegis/coverage.hpp) was reached.
  /// Counted only, not traced: observing coverage must not change a run.
  void reached(std::string_view name) {
    if (auto it = coverage_.find(name); it != coverage_.end()) {
      ++it->second;
    } else {
      coverage_.emplace(std::string(name), 1);
    }
  }
  /// Rare states reached so far and how often (sorted by name).
  std::vector<std::pair<std::string, std::uint64_t>> coverage() const { return {coverage_.begin(), coverage_.end()}; }

  // ------------------------------------------------------------ trace

  /// Records an event stamped with now, the current process and fiber.
  void record(event_kind kind, std::uint64_t seq = 0, std::int64_t detail = 0, const char* name = nullptr) {
    trace_.record(event{now_ns_, current_ == nullptr ? 0 : current_->process,
                        current_ == nullptr ? 0 : current_->id + 1, kind, seq, detail, name});
  }
  /// Records an event for `process` in scheduler context.
  void record_for(process_id process, event_kind kind, std::uint64_t seq = 0, std::int64_t detail = 0,
                  const char* name = nullptr) {
    trace_.record(event{now_ns_, process, 0, kind, seq, detail, name});
  }
  /// The trace (hash, kept events).
  sim::trace& trace() noexcept { return trace_; }
  /// Writes the kept trace as Chrome trace-event JSON.
  void write_chrome_json(std::ostream& out) const;

  /// PCT's guarantee for this run: probability >= 1/(n k^(d-1)) of hitting any
  /// bug of depth d, with n fibers created and k the estimated steps.
  std::string pct_guarantee() const;
  /// Describes an event for a failure message (process and fiber by name).
  std::string describe(const event& e) const;
  /// Number of fibers ever created.
  std::size_t fiber_count() const noexcept { return fibers_.size(); }

 private:
  enum class fiber_state : std::uint8_t { runnable, blocked, frozen, done };

  struct fiber_rec {
    fiber_id id = 0;
    process_id process = 0;
    std::string name;
    fiber_state state = fiber_state::runnable;
    std::uint64_t generation = 0;   // Bumped on every wake: stale wait entries are ignored.
    bool timed_out = false;
    bool started = false;           // Its body began (so its stack holds our frames).
    std::uint64_t priority = 0;     // PCT priority (higher runs first).
    std::function<void()> body;
    detail::fiber_slot context;             // The fiber's own continuation while suspended.
    boost::context::stack_context stack{};  // Its stack, so an abandoned fiber's stack can be freed.
    boost::context::fiber scheduler;// The scheduler's continuation while the fiber runs.
    wait_queue joiners;
    detail::fiber_sanitizer_state san;  // ASan/TSan switch bookkeeping; empty without them.
  };

  struct process_rec {
    std::string name;
    bool alive = true;
    ns_t stalled_until_ns = 0;
    ns_t clock_frozen_at_ns = 0;
    ns_t clock_frozen_until_ns = 0;
    std::vector<fiber_id> fibers;   // Every fiber ever spawned in it (done ones included).
  };

  bool should_switch() noexcept;
  void yield_slow();
  void refresh_attention() noexcept;
  std::uint64_t preempt_gap() noexcept;
  void switch_to_scheduler();
  void make_runnable(fiber_rec& f);
  void remove_runnable(fiber_id f);
  fiber_id pick();
  void resume(fiber_rec& f);
  void finish_fiber(fiber_rec& f);
  void unwind_fiber(fiber_rec& f);
  void release_abandoned(fiber_rec& f) noexcept;
  fiber_rec& rec(fiber_id f) { return *fibers_.at(f); }

  std::uint64_t seed_;
  world_options options_;
  prng sched_rng_;
  prng fault_rng_;
  sim::trace trace_;
  ns_t now_ns_ = 0;
  std::uint64_t steps_ = 0;
  std::uint64_t timer_seq_ = 0;
  timer_queue timers_;
  // yield_point() calls yield_slow() once steps_ or now_ns_ reaches these.
  std::uint64_t attention_step_ = 0;
  ns_t attention_ns_ = 0;
  // random: step of the next preemption coin that comes up heads. Per-yield
  // coins are independent, so the gap between heads is geometric: drawn once
  // per head instead of one draw per yield point.
  std::uint64_t preempt_step_ = 0;
  std::uint64_t preempt_scale_ = 0;  // prng::geometric_scale of 1 - preempt_ppm/1e6.
  std::vector<std::unique_ptr<fiber_rec>> fibers_;
  std::vector<process_rec> processes_;
  std::vector<fiber_id> runnable_;
  std::unordered_map<const void*, wait_queue> key_waiters_;
  std::vector<std::function<void(process_id)>> kill_hooks_;
  fiber_rec* current_ = nullptr;
  bool unwinding_ = false;
  bool failed_ = false;
  std::string failure_;
  std::size_t live_fibers_ = 0;
  // PCT.
  std::vector<std::uint64_t> pct_change_points_;  // Sorted step numbers.
  std::size_t pct_next_change_ = 0;
  std::uint64_t pct_k_ = 0;
  // Faults.
  fault_site_config fault_default_{};
  bool fault_sites_disabled_ = false;
  std::unordered_map<std::string, fault_site_config> fault_config_;
  struct site_state {
    fault_site_stats stats;
    fault_site_config config;
    prng rng{0};
    const char* name = nullptr;
  };
  std::unordered_map<std::string, site_state> fault_sites_;
  std::unordered_map<const char*, site_state*> fault_cache_;  // Lookup only, never iterated.
  std::array<std::pair<const char*, site_state*>, 16> fault_fast_{};  // Direct-mapped on the pointer; lookup only.
  // Mutants and coverage.
  std::string mutant_;
  std::map<std::string, std::uint64_t, std::less<>> coverage_;
};

}  // namespace aegis::sim
