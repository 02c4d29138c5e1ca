// The simulated world: clock, timers, fibers, scheduler, faults; see world.hpp.
#include "sim/world.hpp"

#include <boost/context/protected_fixedsize_stack.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>

#if defined(AEGIS_SIM_ASAN_FIBERS)
#include <sanitizer/lsan_interface.h>
#endif

namespace aegis::sim {

const char* to_string(schedule_strategy s) noexcept {
  switch (s) {
    case schedule_strategy::random: return "random";
    case schedule_strategy::pct: return "pct";
  }
  return "?";
}

std::optional<schedule_strategy> parse_strategy(std::string_view s) noexcept {
  if (s == "random") return schedule_strategy::random;
  if (s == "pct") return schedule_strategy::pct;
  return std::nullopt;
}

const char* to_string(run_outcome o) noexcept {
  switch (o) {
    case run_outcome::finished: return "finished";
    case run_outcome::failed: return "failed";
    case run_outcome::deadlock: return "deadlock";
    case run_outcome::time_limit: return "time_limit";
    case run_outcome::step_limit: return "step_limit";
  }
  return "?";
}

namespace {
/// A guarded stack allocator that tells the world where each stack lives, so
/// the stack of an abandoned (never resumed again) fiber can still be freed.
struct recording_stack {
  boost::context::protected_fixedsize_stack inner;
  boost::context::stack_context* out;
  boost::context::stack_context allocate() {
    boost::context::stack_context sc = inner.allocate();
    *out = sc;
    return sc;
  }
  void deallocate(boost::context::stack_context& sc) noexcept {
    detail::stack_released(sc);
    inner.deallocate(sc);
    out->sp = nullptr;
  }
};
}  // namespace

world::world(std::uint64_t seed, world_options options)
    : seed_(seed),
      options_(options),
      sched_rng_(prng::derive(seed, "scheduler")),
      fault_rng_(prng::derive(seed, "faults.sites")),
      trace_(options.keep_trace) {
  AEGIS_ASSERT(options_.step_cost_ns >= 0, "a step costs no negative time");
  AEGIS_ASSERT(options_.stack_bytes >= 16 * 1024, "fiber stacks below 16 KiB overflow in libstdc++ calls");
  if (options_.preempt_ppm == 0) {
    // Swarm-style: each seed explores at its own preemption density, from
    // long uninterrupted runs to a switch at almost every atomic operation.
    static constexpr std::uint32_t densities[] = {2'000, 20'000, 100'000, 300'000, 600'000};
    prng p = prng::derive(seed, "scheduler.preempt");
    options_.preempt_ppm = densities[p.below(std::size(densities))];
  }
  AEGIS_ASSERT(options_.preempt_ppm <= 1'000'000, "a preemption chance is at most 1e6 ppm");
  if (options_.preempt_ppm == 1'000'000) {
    preempt_scale_ = prng::geometric_scale(0);  // Heads at every yield point.
  } else {
    // One libm call per world, on a value that does not depend on the build:
    // every later draw is integer arithmetic.
    const double q = 1.0 - static_cast<double>(options_.preempt_ppm) / 1e6;
    preempt_scale_ = prng::geometric_scale(
        std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::llround(-std::log2(q) * 4294967296.0))));
  }
  preempt_step_ = options_.strategy == schedule_strategy::random ? 1 + preempt_gap() : UINT64_MAX;
  if (options_.strategy == schedule_strategy::pct) {
    AEGIS_ASSERT(options_.pct_depth >= 1, "PCT depth d is at least 1");
    pct_k_ = options_.pct_steps_estimate != 0 ? options_.pct_steps_estimate : options_.max_steps;
    prng p = prng::derive(seed, "scheduler.pct");
    for (std::uint32_t i = 0; i + 1 < options_.pct_depth; ++i) pct_change_points_.push_back(1 + p.below(pct_k_));
    std::sort(pct_change_points_.begin(), pct_change_points_.end());
  }
  processes_.push_back(process_rec{"world", true, 0, 0, 0, {}});  // Process 0: the world itself.
}

world::~world() {
  // Fibers still suspended here belong to a run that stopped early (failure,
  // deadlock, bound). Their stacks may sit inside noexcept production code, so
  // they are abandoned, not unwound: the stack memory is freed, objects on it
  // are not destroyed (what they own on the heap leaks; the run is over).
  for (auto& f : fibers_) {
    if (f->context.engaged()) release_abandoned(*f);
    detail::fiber_destroyed(f->san);
  }
}

void world::release_abandoned(fiber_rec& f) noexcept {
  AEGIS_ASSERT(f.context.engaged(), "only a suspended fiber is abandoned");
  AEGIS_ASSERT(&f != current_, "the running fiber is not abandoned");
  f.context.abandon();
  if (f.stack.sp == nullptr) return;
#if defined(AEGIS_SIM_ASAN_FIBERS)
  if (f.started) {
    // Under ASan's leak check, the stack of an abandoned fiber that ran stays
    // mapped and is scanned as a root: what its frames own on the heap is
    // kept on purpose (unwinding it is unsafe, see ~world), not a leak. The
    // cost is one stack of address space per fiber of a failed run, in
    // sanitizer builds only.
    __lsan_register_root_region(static_cast<char*>(f.stack.sp) - f.stack.size, f.stack.size);
    f.stack.sp = nullptr;
    return;
  }
#endif
  detail::stack_released(f.stack);
  boost::context::protected_fixedsize_stack{options_.stack_bytes}.deallocate(f.stack);
  f.stack.sp = nullptr;
}

ns_t world::now_ns(process_id process) const noexcept {
  const process_rec& p = processes_[process];
  if (now_ns_ < p.clock_frozen_until_ns) return p.clock_frozen_at_ns;
  return now_ns_;
}

void world::stall_clock(process_id process, ns_t until_ns) {
  process_rec& p = processes_.at(process);
  AEGIS_ASSERT(until_ns >= now_ns_, "a clock stall ends in the future");
  if (now_ns_ >= p.clock_frozen_until_ns) p.clock_frozen_at_ns = now_ns_;
  p.clock_frozen_until_ns = std::max(p.clock_frozen_until_ns, until_ns);
  record_for(process, event_kind::fault, 0, until_ns - now_ns_, "clock_stall");
}

std::uint64_t world::at(ns_t at_ns, std::function<void()> fn) {
  AEGIS_ASSERT(at_ns >= now_ns_, "timers are never set in the past");
  const std::uint64_t seq = ++timer_seq_;
  timers_.push_callback(at_ns, seq, std::move(fn));
  // Set from a fiber, it may come due before the running slice ends.
  if (at_ns < attention_ns_) attention_ns_ = at_ns;
  return seq;
}

process_id world::add_process(std::string name) {
  processes_.push_back(process_rec{std::move(name), true, 0, 0, 0, {}});
  const auto id = static_cast<process_id>(processes_.size() - 1);
  record_for(id, event_kind::start, id, 0);
  return id;
}

void world::kill(process_id p) {
  process_rec& proc = processes_.at(p);
  AEGIS_ASSERT(proc.alive, "a process dies once per life");
  AEGIS_ASSERT(current_ == nullptr || current_->process != p, "a process cannot kill itself from inside");
  proc.alive = false;
  proc.stalled_until_ns = 0;
  record_for(p, event_kind::kill, p, 0, proc.name.c_str());
  for (fiber_id id : proc.fibers) {
    fiber_rec& f = rec(id);
    if (f.state != fiber_state::done) unwind_fiber(f);
  }
  for (auto& hook : kill_hooks_) hook(p);
}

void world::crash(process_id p) {
  process_rec& proc = processes_.at(p);
  AEGIS_ASSERT(proc.alive, "a process dies once per life");
  AEGIS_ASSERT(current_ == nullptr, "a process is crashed from scheduler context");
  proc.alive = false;
  proc.stalled_until_ns = 0;
  record_for(p, event_kind::kill, p, 1, proc.name.c_str());
  for (fiber_id id : proc.fibers) {
    fiber_rec& f = rec(id);
    if (f.state == fiber_state::done) continue;
    remove_runnable(f.id);
    timers_.cancel_wake(f.id);
    f.state = fiber_state::done;
    --live_fibers_;
    trace_.record(event{now_ns_, f.process, f.id + 1, event_kind::exit, f.id, 2, nullptr});
    if (f.context.engaged()) release_abandoned(f);
    AEGIS_ASSERT(!f.context.engaged(), "a crashed fiber leaves no continuation");
    wake_all(f.joiners);
  }
  for (auto& hook : kill_hooks_) hook(p);
}

void world::revive(process_id p) {
  process_rec& proc = processes_.at(p);
  AEGIS_ASSERT(!proc.alive, "only a dead process restarts");
  proc.alive = true;
  proc.stalled_until_ns = 0;
  record_for(p, event_kind::start, p, 1);
}

void world::stall(process_id p, ns_t until_ns) {
  process_rec& proc = processes_.at(p);
  AEGIS_ASSERT(proc.alive, "only a live process stalls");
  AEGIS_ASSERT(current_ == nullptr || current_->process != p, "a stall is imposed from outside the process");
  if (until_ns <= now_ns_) return;
  const bool extending = proc.stalled_until_ns > now_ns_;
  proc.stalled_until_ns = std::max(proc.stalled_until_ns, until_ns);
  record_for(p, event_kind::stall, p, proc.stalled_until_ns);
  if (!extending) {
    for (fiber_id id : proc.fibers) {
      fiber_rec& f = rec(id);
      if (f.state == fiber_state::runnable) {
        remove_runnable(id);
        f.state = fiber_state::frozen;
      }
    }
  }
  at(proc.stalled_until_ns, [this, p] {
    process_rec& pr = processes_[p];
    if (!pr.alive || pr.stalled_until_ns > now_ns_) return;  // Died, or the stall was extended.
    record_for(p, event_kind::resume, p, 0);
    for (fiber_id id : pr.fibers) {
      fiber_rec& f = rec(id);
      if (f.state == fiber_state::frozen) make_runnable(f);
    }
  });
}

fiber_id world::spawn(process_id process, std::string name, std::function<void()> fn) {
  AEGIS_ASSERT(processes_.at(process).alive, "fibers are spawned only in live processes");
  auto f = std::make_unique<fiber_rec>();
  f->id = static_cast<fiber_id>(fibers_.size());
  f->process = process;
  f->name = std::move(name);
  f->body = std::move(fn);
  f->priority = options_.pct_depth + ((sched_rng_.below(1ULL << 30) << 24) | f->id);
  fiber_rec* rp = f.get();
  detail::fiber_created(rp->san);
  // Constructing a Boost fiber already jumps onto its new stack and back once
  // (to park it at its entry point): TSan is told, ASan needs no annotation.
  {
    detail::entering_fiber construction{rp->san, nullptr};
    f->context.set(boost::context::fiber(
        std::allocator_arg, recording_stack{boost::context::protected_fixedsize_stack{options_.stack_bytes}, &rp->stack},
        [this, rp](boost::context::fiber&& sched) -> boost::context::fiber {
          detail::fiber_started(rp->san);
          rp->started = true;
          rp->scheduler = std::move(sched);
          try {
            rp->body();
          } catch (const boost::context::detail::forced_unwind&) {
            // A kill unwinding this fiber: let Boost.Context finish it, which
            // jumps straight back to the killer once the exception leaves here.
            detail::fiber_ending(rp->san);
            throw;
          } catch (const std::exception& e) {
            // An exception escaping a thread terminates a real process: a crash.
            std::fprintf(stderr, "aegis-sim: uncaught exception in fiber %s: %s\n", rp->name.c_str(), e.what());
            std::fflush(stderr);
            std::abort();
          }
          finish_fiber(*rp);
          detail::fiber_ending(rp->san);
          return std::move(rp->scheduler);
        }));
  }
  fibers_.push_back(std::move(f));
  processes_[process].fibers.push_back(rp->id);
  ++live_fibers_;
  trace_.record(event{now_ns_, process, rp->id + 1, event_kind::spawn, rp->id, 0, nullptr});
  rp->state = fiber_state::blocked;  // make_runnable expects a non-runnable fiber.
  make_runnable(*rp);
  return rp->id;
}

void world::join(fiber_id f) {
  AEGIS_ASSERT(current_ != nullptr, "join() is called from a fiber");
  AEGIS_ASSERT(f != current_->id, "a fiber cannot join itself");
  while (!done(f)) {
    if (unwinding_) return;
    enqueue_current(rec(f).joiners);
    block(no_deadline);
  }
}

void world::yield_now() {
  if (current_ == nullptr || unwinding_) return;
  ++steps_;
  now_ns_ += options_.step_cost_ns;
  switch_to_scheduler();
}

bool world::should_switch() noexcept {
  bool due = !timers_.empty() && timers_.top().at_ns <= now_ns_;
  due |= steps_ >= options_.max_steps || now_ns_ > options_.max_time_ns;
  if (options_.strategy == schedule_strategy::random) {
    if (steps_ >= preempt_step_) {
      // Heads: preempt if another fiber can run. Alone, the fiber cannot be
      // preempted until another becomes runnable, so the coin is put away
      // (the coins are memoryless: drawing afresh then is the same process).
      if (runnable_.size() > 1) {
        preempt_step_ = steps_ + 1 + preempt_gap();
        due = true;
      } else {
        preempt_step_ = UINT64_MAX;
      }
    }
    return due;
  }
  // PCT: at a change point the running fiber drops below every initial
  // priority; otherwise switch only when a higher-priority fiber is runnable.
  if (pct_next_change_ < pct_change_points_.size() && steps_ >= pct_change_points_[pct_next_change_]) {
    current_->priority = options_.pct_depth - 1 - pct_next_change_;
    ++pct_next_change_;
    return true;
  }
  if (due) return true;
  for (fiber_id id : runnable_) {
    if (fibers_[id]->priority > current_->priority) return true;
  }
  return false;
}

void world::yield_slow() {
  if (should_switch()) {
    switch_to_scheduler();  // resume() sets the attention marks for the slice that follows.
  } else {
    refresh_attention();
  }
}

void world::refresh_attention() noexcept {
  std::uint64_t step = options_.max_steps;
  if (options_.strategy == schedule_strategy::random) {
    step = std::min(step, preempt_step_);
  } else if (pct_next_change_ < pct_change_points_.size()) {
    step = std::min(step, pct_change_points_[pct_next_change_]);
  }
  attention_step_ = step;
  ns_t t = options_.max_time_ns < INT64_MAX ? options_.max_time_ns + 1 : INT64_MAX;
  if (!timers_.empty()) t = std::min(t, timers_.top().at_ns);
  attention_ns_ = t;
}

std::uint64_t world::preempt_gap() noexcept { return sched_rng_.geometric(preempt_scale_); }

void world::switch_to_scheduler() {
  fiber_rec* self = current_;
  AEGIS_ASSERT(self != nullptr, "only a fiber can switch to the scheduler");
  detail::leaving_fiber switching{self->san};
  self->scheduler = std::move(self->scheduler).resume();
  AEGIS_ASSERT(current_ == self, "the scheduler resumes the fiber it picked");
}

void world::make_runnable(fiber_rec& f) {
  AEGIS_ASSERT(f.state != fiber_state::runnable && f.state != fiber_state::done, "only a waiting fiber becomes runnable");
  if (processes_[f.process].stalled_until_ns > now_ns_) {
    f.state = fiber_state::frozen;
    return;
  }
  f.state = fiber_state::runnable;
  runnable_.push_back(f.id);
  if (current_ == nullptr) return;  // resume() sets the marks before the next slice.
  if (options_.strategy == schedule_strategy::random) {
    // A second runnable fiber: from the next yield point on the running one
    // can be preempted again.
    if (preempt_step_ == UINT64_MAX && runnable_.size() > 1) {
      preempt_step_ = steps_ + 1 + preempt_gap();
      attention_step_ = std::min(attention_step_, preempt_step_);
    }
  } else if (f.priority > current_->priority) {
    attention_step_ = 0;  // PCT: a fiber above the running one makes it look at its next yield point.
  }
}

void world::remove_runnable(fiber_id f) {
  auto it = std::find(runnable_.begin(), runnable_.end(), f);
  if (it == runnable_.end()) return;
  // Order-preserving erase keeps the scheduler's index space a pure function
  // of the history (a swap would too, but this reads better in traces).
  runnable_.erase(it);
}

fiber_id world::pick() {
  AEGIS_ASSERT(!runnable_.empty(), "pick() needs a runnable fiber");
  if (options_.strategy == schedule_strategy::random) return runnable_[sched_rng_.below(runnable_.size())];
  fiber_id best = runnable_.front();
  for (fiber_id id : runnable_) {
    if (rec(id).priority > rec(best).priority) best = id;
  }
  return best;
}

void world::resume(fiber_rec& f) {
  AEGIS_ASSERT(current_ == nullptr, "resume() runs in scheduler context");
  AEGIS_ASSERT(f.state == fiber_state::runnable, "only a runnable fiber is resumed");
  current_ = &f;
  if (options_.strategy == schedule_strategy::random && preempt_step_ == UINT64_MAX && runnable_.size() > 1) {
    preempt_step_ = steps_ + 1 + preempt_gap();
  }
  refresh_attention();
  boost::context::fiber next;
  {
    detail::entering_fiber switching{f.san, &f.stack};
    next = std::move(f.context.take()).resume();
  }
  current_ = nullptr;
  f.context.set(std::move(next));
  if (f.state == fiber_state::done) {
    AEGIS_ASSERT(!f.context.engaged(), "a finished fiber leaves no continuation");
    detail::fiber_destroyed(f.san);
  }
}

void world::finish_fiber(fiber_rec& f) {
  remove_runnable(f.id);
  f.state = fiber_state::done;
  --live_fibers_;
  trace_.record(event{now_ns_, f.process, f.id + 1, event_kind::exit, f.id, 0, nullptr});
  wake_all(f.joiners);
}

void world::unwind_fiber(fiber_rec& f) {
  remove_runnable(f.id);
  timers_.cancel_wake(f.id);  // A killed fiber's wait deadline never fires.
  f.state = fiber_state::done;
  --live_fibers_;
  trace_.record(event{now_ns_, f.process, f.id + 1, event_kind::exit, f.id, 1, nullptr});
  if (!f.started) {
    // Never ran: its stack holds only Boost's entry frame and the captures of
    // the body lambda (two pointers), nothing to destroy. Freeing the stack
    // without a jump spares the sanitizers a switch into a fiber that would
    // leave again without ever reaching our code (fiber_started/fiber_ending).
    release_abandoned(f);
  } else {
    fiber_rec* saved = current_;
    const bool was_unwinding = unwinding_;
    current_ = &f;
    unwinding_ = true;
    {
      detail::entering_fiber switching{f.san, &f.stack};
      f.context.reset();  // Destroying a suspended continuation unwinds its stack.
    }
    unwinding_ = was_unwinding;
    current_ = saved;
  }
  AEGIS_ASSERT(!f.context.engaged(), "a killed fiber leaves no continuation");
  detail::fiber_destroyed(f.san);
  wake_all(f.joiners);
}

bool world::block(ns_t deadline_ns) {
  AEGIS_ASSERT(current_ != nullptr, "block() is called from a fiber");
  if (unwinding_) return false;
  fiber_rec& f = *current_;
  if (deadline_ns <= now_ns_) {
    yield_point();
    return false;
  }
  ++steps_;
  f.timed_out = false;
  f.state = fiber_state::blocked;
  remove_runnable(f.id);
  if (deadline_ns != no_deadline) timers_.push_wake(deadline_ns, ++timer_seq_, f.id, f.generation);
  switch_to_scheduler();
  return !f.timed_out;
}

void world::sleep_until(ns_t t) {
  AEGIS_ASSERT(current_ != nullptr, "sleep_until() is called from a fiber");
  if (t <= now_ns_) {
    yield_point();
    return;
  }
  while (now_ns_ < t && !unwinding_) block(t);
}

void world::wake(fiber_id id, std::uint64_t generation) {
  fiber_rec& f = rec(id);
  if (f.state != fiber_state::blocked || f.generation != generation) return;
  ++f.generation;
  // The wait is over: a deadline it set would fire as a no-op, so it goes now
  // (it must neither preempt a running fiber nor move virtual time).
  timers_.cancel_wake(id);
  make_runnable(f);
}

void world::wake_all(wait_queue& q) {
  if (q.waiters.empty()) return;
  std::vector<std::pair<fiber_id, std::uint64_t>> waiters;
  waiters.swap(q.waiters);
  for (auto [id, gen] : waiters) wake(id, gen);
}

void world::enqueue_current(wait_queue& q) {
  AEGIS_ASSERT(current_ != nullptr, "only a fiber waits");
  if (q.waiters.size() >= 32) {
    // Drop entries of fibers that were woken for another reason (timeouts),
    // so a queue nobody signals does not grow without bound.
    std::erase_if(q.waiters, [this](const auto& w) {
      const fiber_rec& f = rec(w.first);
      return f.state != fiber_state::blocked || f.generation != w.second;
    });
  }
  q.waiters.emplace_back(current_->id, current_->generation);
}

bool world::block_on_key(const void* key, ns_t deadline_ns) {
  AEGIS_ASSERT(current_ != nullptr, "block_on_key() is called from a fiber");
  key_waiters_[key].waiters.emplace_back(current_->id, current_->generation);
  return block(deadline_ns);
}

void world::wake_key(const void* key) {
  auto it = key_waiters_.find(key);
  if (it == key_waiters_.end()) return;
  wait_queue q = std::move(it->second);
  key_waiters_.erase(it);
  wake_all(q);
}

run_result world::run(std::function<bool()> stop, std::function<void()> after_event) {
  AEGIS_ASSERT(current_ == nullptr, "run() is called from outside every fiber");
  auto result = [&](run_outcome o, std::string reason) {
    if (o != run_outcome::finished) record(event_kind::failure, static_cast<std::uint64_t>(o), 0, to_string(o));
    return run_result{o, std::move(reason), now_ns_, steps_};
  };
  for (;;) {
    if (failed_) return result(run_outcome::failed, failure_);
    if (stop && stop()) return result(run_outcome::finished, {});
    if (now_ns_ > options_.max_time_ns) {
      return result(run_outcome::time_limit, fmt::format("virtual time passed {} ns", options_.max_time_ns));
    }
    if (!timers_.empty() && timers_.top().at_ns <= now_ns_) {
      // Pop before running: the callback may add timers.
      timer_queue::fired t = timers_.pop();
      trace_.record(event{now_ns_, 0, 0, event_kind::timer, t.e.seq, t.e.at_ns, nullptr});
      if (t.fn) {
        t.fn();
      } else {
        fiber_rec& r = rec(t.e.fiber);
        AEGIS_ASSERT(r.state == fiber_state::blocked && r.generation == t.e.generation,
                     "a wait deadline that fires finds its fiber still waiting (an ended wait cancels it)");
        r.timed_out = true;
        wake(t.e.fiber, t.e.generation);
      }
      if (after_event) after_event();
      continue;
    }
    if (steps_ >= options_.max_steps) {
      return result(run_outcome::step_limit, fmt::format("{} yield points without finishing (livelock?)", steps_));
    }
    if (!runnable_.empty()) {
      fiber_rec& f = rec(pick());
      const ns_t start = now_ns_;
      resume(f);
      trace_.record(event{start, f.process, f.id + 1, event_kind::slice, steps_, now_ns_ - start, nullptr});
      if (after_event) after_event();
      continue;
    }
    if (timers_.empty()) {
      if (live_fibers_ == 0) return result(run_outcome::finished, {});
      std::string blocked;
      for (const auto& f : fibers_) {
        if (f->state == fiber_state::blocked) {
          blocked += fmt::format("{}{}/{}", blocked.empty() ? "" : ", ", processes_[f->process].name, f->name);
        }
      }
      return result(run_outcome::deadlock,
                    fmt::format("deadlock: no runnable fiber and no timer pending; blocked: {}", blocked));
    }
    now_ns_ = std::max(now_ns_, timers_.top().at_ns);
  }
}

void world::fail(std::string reason) {
  if (failed_) return;
  failed_ = true;
  failure_ = std::move(reason);
  record(event_kind::failure, 0, 0, trace_.intern(failure_));
  if (current_ != nullptr && !unwinding_) {
    // Suspend this fiber for good: the run loop sees failed_ and stops.
    fiber_rec& f = *current_;
    remove_runnable(f.id);
    f.state = fiber_state::blocked;
    switch_to_scheduler();
    AEGIS_ASSERT(false, "a failed fiber is never resumed");
  }
}

void world::configure_fault_site(std::string name, fault_site_config config) {
  AEGIS_ASSERT(config.activation_ppm <= 1'000'000 && config.rate_ppm <= 1'000'000, "fault chances are ppm");
  fault_config_[std::move(name)] = config;
}

bool world::fault_fires(const char* name) {
  site_state* s;
  // Production passes string literals: a direct-mapped cache on the pointer
  // answers almost every query without hashing (lookup only, never iterated).
  auto& fast = fault_fast_[(reinterpret_cast<std::uintptr_t>(name) >> 3) % fault_fast_.size()];
  if (fast.first == name) {
    s = fast.second;
  } else if (auto it = fault_cache_.find(name); it != fault_cache_.end()) {
    s = it->second;
    fast = {name, s};
  } else {
    std::string key(name);
    auto [sit, inserted] = fault_sites_.try_emplace(key);
    s = &sit->second;
    if (inserted) {
      // Activation is decided from the seed and the site's name alone, so it
      // does not depend on which site production happens to query first.
      auto cit = fault_config_.find(key);
      s->config = cit != fault_config_.end() ? cit->second : fault_default_;
      s->rng = prng::derive(seed_, "fault.site:" + key);
      s->stats.decided = true;
      s->stats.active = s->rng.chance_ppm(s->config.activation_ppm);
      s->name = sit->first.c_str();
    }
    fault_cache_.emplace(name, s);
  }
  ++s->stats.queries;
  if (fault_sites_disabled_) return false;
  if (!s->stats.active || s->config.rate_ppm == 0) return false;
  if (!s->rng.chance_ppm(s->config.rate_ppm)) return false;
  ++s->stats.fired;
  record(event_kind::fault, s->stats.fired, 0, s->name);
  return true;
}

std::vector<std::pair<std::string, fault_site_stats>> world::fault_stats() const {
  std::vector<std::pair<std::string, fault_site_stats>> out;
  for (const auto& [name, s] : fault_sites_) out.emplace_back(name, s.stats);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

void world::write_chrome_json(std::ostream& out) const {
  std::vector<std::string> names;
  for (const auto& p : processes_) names.push_back(p.name);
  std::vector<std::pair<std::uint32_t, std::string>> fibers;
  for (const auto& f : fibers_) fibers.emplace_back((f->process << 24) | (f->id + 1), f->name);
  trace_.write_chrome_json(out, names, fibers);
}

std::string world::describe(const event& e) const {
  const std::string proc = e.process < processes_.size() ? processes_[e.process].name : "?";
  const std::string fib = e.fiber == 0 ? "scheduler" : e.fiber - 1 < fibers_.size() ? fibers_[e.fiber - 1]->name : "?";
  return fmt::format("t={}ns process={} fiber={} kind={} seq={} detail={}{}", e.time_ns, proc, fib, to_string(e.kind),
                     e.seq, e.detail, e.name != nullptr ? fmt::format(" name={}", e.name) : "");
}

std::string world::pct_guarantee() const {
  if (options_.strategy != schedule_strategy::pct) return "n/a (random strategy)";
  const double n = static_cast<double>(fibers_.size());
  const double k = static_cast<double>(pct_k_);
  const double d = static_cast<double>(options_.pct_depth);
  const double p = 1.0 / (n * std::pow(k, d - 1));
  return fmt::format("P(find a depth-{} bug) >= 1/(n*k^(d-1)) = 1/({}*{}^{}) = {:.3g}", options_.pct_depth,
                     fibers_.size(), pct_k_, options_.pct_depth - 1, p);
}

}  // namespace aegis::sim
