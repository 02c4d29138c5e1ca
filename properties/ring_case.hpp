// Model-based test of the production ring buffer under the simulator's
// interleavings: rapidcheck generates a command sequence (rc::state commands:
// push, try_push, read, release, rewind); producer commands run on a producer
// fiber, consumer commands on a consumer fiber of one simulated world, and
// the seeded scheduler interleaves them at every atomic operation of the
// ring. A std::deque model is updated when each operation completes (one fiber
// runs at a time, so that moment is atomic) and checked on every step:
// - every value the consumer reads at position p is the p-th accepted value
//   (a value whose push has not returned yet may be read only if it is the
//   one being pushed right now);
// - the read and release cursors are exactly the consumer's model;
// - the ring never holds more than its capacity;
// - at the end, every counter equals the model's.
//
// Usage:
//   aegis::props::ring_case c = *aegis::props::gen_ring_case();
//   std::string why = aegis::props::run_ring_case(c);     // empty when it held
#pragma once

#include <rapidcheck.h>
#include <rapidcheck/state.h>

#include <fmt/format.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "aegis/ring_buffer.hpp"
#include "sim/network.hpp"
#include "sim/sim_env.hpp"
#include "sim/world.hpp"

namespace aegis::props {

/// The model: what a correct ring holds, updated as operations complete.
struct ring_model_state {
  std::size_t capacity = 8;
  admission mode = admission::drop;
  std::deque<std::uint64_t> entries;  ///< Values at positions [release, write).
  std::uint64_t release = 0, read = 0;
  std::uint64_t offered = 0, accepted = 0, dropped_full = 0, timed_out = 0;
  std::optional<std::uint64_t> pushing;  ///< Value of the push in progress.
  bool pushing_seen = false;             ///< The consumer already read (and the model took) it.
  std::string failure;                   ///< First discrepancy.

  std::uint64_t write() const { return release + entries.size(); }
  void fail(std::string why) {
    if (failure.empty()) failure = std::move(why);
  }
};

/// What commands act on: the ring, the model and the coverage flags.
struct ring_sut {
  virtual ~ring_sut() = default;
  virtual push_status push(std::uint64_t v, bool try_only) = 0;
  virtual std::vector<std::pair<std::uint64_t, std::uint64_t>> read(std::size_t n) = 0;
  virtual void release(std::uint64_t upto) = 0;
  virtual void rewind() = 0;
  virtual std::uint64_t read_position() = 0;
  virtual std::uint64_t release_position() = 0;
  virtual std::uint64_t unreleased() = 0;
  ring_model_state model;
  sim::world* world = nullptr;
};

/// Generation-time model (rc::state needs one; the interleaved outcome is
/// checked against ring_model_state while running).
struct ring_gen_model {
  std::uint64_t next_value = 1;
};

/// A command and the fiber it runs on.
struct ring_command : rc::state::Command<ring_gen_model, ring_sut> {
  virtual bool on_producer() const = 0;
  virtual void exec(ring_sut& sut) const = 0;
  void run(const ring_gen_model&, ring_sut& sut) const override { exec(sut); }
};

struct push_cmd : ring_command {
  std::uint64_t value = 0;
  bool try_only = false;
  explicit push_cmd(const ring_gen_model& m) : value(m.next_value), try_only(*rc::gen::arbitrary<bool>()) {}
  void apply(ring_gen_model& m) const override { ++m.next_value; }
  bool on_producer() const override { return true; }
  void exec(ring_sut& sut) const override {
    ring_model_state& m = sut.model;
    m.pushing = value;
    m.pushing_seen = false;
    const push_status st = sut.push(value, try_only);
    m.pushing.reset();
    ++m.offered;
    if (m.pushing_seen && st != push_status::accepted) m.fail(fmt::format("value {} was read but its push returned {}", value, to_string(st)));
    switch (st) {
      case push_status::accepted:
        if (m.pushing_seen) break;  // The model took it when the consumer read it.
        m.entries.push_back(value);
        ++m.accepted;
        if (m.entries.size() > m.capacity) {
          m.fail(fmt::format("push of {} accepted with {} entries unreleased: more than capacity {}", value,
                             m.entries.size() - 1, m.capacity));
        }
        break;
      case push_status::dropped_full: ++m.dropped_full; break;
      case push_status::timed_out: ++m.timed_out; break;
      case push_status::closed: m.fail("push returned closed on an open ring"); break;
    }
    // A rejected push is not checked against the model's fill level: the
    // consumer may have released space after the ring found itself full.
  }
  void show(std::ostream& os) const override { os << (try_only ? "try_push(" : "push(") << value << ")"; }
};

struct read_cmd : ring_command {
  std::size_t n = 1;
  explicit read_cmd(const ring_gen_model&) : n(*rc::gen::inRange<std::size_t>(1, 9)) {}
  bool on_producer() const override { return false; }
  void exec(ring_sut& sut) const override {
    ring_model_state& m = sut.model;
    for (const auto& [pos, value] : sut.read(n)) {
      if (pos != m.read) m.fail(fmt::format("read handed out position {} where the model's read cursor is {}", pos, m.read));
      const std::uint64_t w = m.write();
      if (pos < w) {
        const std::uint64_t want = m.entries[pos - m.release];
        if (value != want) m.fail(fmt::format("read position {}: value {} but {} was accepted there", pos, value, want));
      } else if (pos == w && m.pushing && *m.pushing == value && !m.pushing_seen) {
        // Published before its push returned: it is accepted from now on.
        m.pushing_seen = true;
        m.entries.push_back(value);
        ++m.accepted;
      } else {
        m.fail(fmt::format("read position {} (value {}) beyond every accepted push (write {})", pos, value, w));
      }
      ++m.read;
    }
    if (sut.read_position() != m.read) m.fail("read cursor differs from the model");
  }
  void show(std::ostream& os) const override { os << "read(" << n << ")"; }
};

struct release_cmd : ring_command {
  std::uint64_t k = 1;
  explicit release_cmd(const ring_gen_model&) : k(*rc::gen::inRange<std::uint64_t>(1, 9)) {}
  bool on_producer() const override { return false; }
  void exec(ring_sut& sut) const override {
    ring_model_state& m = sut.model;
    const std::uint64_t upto = std::min(m.read, m.release + k);
    // The model frees the entries first: once the ring's store publishes the
    // release (inside the call, at a yield point) the producer may refill.
    while (m.release < upto && !m.entries.empty()) {
      m.entries.pop_front();
      ++m.release;
    }
    sut.release(upto);
    if (sut.release_position() != m.release) m.fail("release cursor differs from the model");
  }
  void show(std::ostream& os) const override { os << "release(+" << k << ")"; }
};

struct rewind_cmd : ring_command {
  explicit rewind_cmd(const ring_gen_model&) {}
  bool on_producer() const override { return false; }
  void exec(ring_sut& sut) const override {
    ring_model_state& m = sut.model;
    // Coverage: the span moved back over crosses a multiple of the capacity.
    if (m.read > m.release && m.release / m.capacity != (m.read - 1) / m.capacity && sut.world != nullptr) {
      sut.world->reached("ring_rewind_across_wrap");
    }
    sut.rewind();
    m.read = m.release;
    if (sut.read_position() != m.read) m.fail("rewind did not move the read cursor to the release cursor");
  }
  void show(std::ostream& os) const override { os << "rewind"; }
};

/// One generated case: ring shape, scheduler and commands.
struct ring_case {
  std::uint64_t world_seed = 0;
  std::size_t capacity = 8;
  admission mode = admission::drop;
  bool multi_producer = true;
  sim::schedule_strategy strategy = sim::schedule_strategy::random;
  std::uint32_t preempt_ppm = 0;
  rc::state::Commands<rc::state::Command<ring_gen_model, ring_sut>> commands;
};

inline rc::Gen<ring_case> gen_ring_case() {
  return rc::gen::exec([] {
    ring_case c;
    c.world_seed = *rc::gen::arbitrary<std::uint64_t>();
    c.capacity = std::size_t{1} << *rc::gen::inRange(1, 4);
    c.mode = *rc::gen::element(admission::drop, admission::block);
    c.multi_producer = *rc::gen::arbitrary<bool>();
    c.strategy = *rc::gen::element(sim::schedule_strategy::random, sim::schedule_strategy::pct);
    c.preempt_ppm = *rc::gen::element(std::uint32_t{50'000}, std::uint32_t{300'000}, std::uint32_t{900'000});
    // Pushes twice as likely as each consumer command, so the ring fills.
    c.commands = *rc::state::gen::commands(ring_gen_model{}, [](const ring_gen_model& m) {
      return rc::state::gen::execOneOfWithArgs<push_cmd, push_cmd, read_cmd, release_cmd, rewind_cmd>()(m);
    });
    return c;
  });
}

namespace detail {
template <class Producers>
struct ring_sut_impl final : ring_sut {
  ring_buffer<std::uint64_t, sim::sim_env, Producers> ring;
  sim::sim_env& env;
  ring_sut_impl(sim::sim_env& e, std::size_t cap, admission mode) : ring(e, cap, mode), env(e) {}
  push_status push(std::uint64_t v, bool try_only) override {
    if (try_only) return ring.try_push(v);
    return ring.push(v, deadline_after(env.now_ns(), 1'000'000));
  }
  std::vector<std::pair<std::uint64_t, std::uint64_t>> read(std::size_t n) override {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
    ring.read(n, [&](std::uint64_t p, std::uint64_t& v) { out.emplace_back(p, v); });
    return out;
  }
  void release(std::uint64_t upto) override { ring.release(upto); }
  void rewind() override { ring.rewind(); }
  std::uint64_t read_position() override { return ring.read_position(); }
  std::uint64_t release_position() override { return ring.release_position(); }
  std::uint64_t unreleased() override { return ring.write_position() - ring.release_position(); }
};
}  // namespace detail

/// What a ring case run produced.
struct ring_case_result {
  std::string failure;  ///< Empty when every check held.
  std::vector<std::pair<std::string, std::uint64_t>> coverage;  ///< Rare states reached.
};

/// Runs `c` in a fresh world with `mutant` switched on (empty = none).
inline ring_case_result run_ring_case(const ring_case& c, const std::string& mutant = {}) {
  sim::world_options wo;
  wo.strategy = c.strategy;
  wo.preempt_ppm = c.preempt_ppm;
  wo.max_time_ns = 60'000'000'000;
  wo.max_steps = 5'000'000;
  sim::world w{c.world_seed, wo};
  w.set_mutant(mutant);
  sim::network net{w, {}};
  const sim::process_id p = w.add_process("ring");
  sim::sim_env env{w, net, p};
  std::unique_ptr<ring_sut> sut;
  if (c.multi_producer) {
    sut = std::make_unique<detail::ring_sut_impl<multi_producer>>(env, c.capacity, c.mode);
  } else {
    sut = std::make_unique<detail::ring_sut_impl<single_producer>>(env, c.capacity, c.mode);
  }
  sut->world = &w;
  sut->model.capacity = c.capacity;
  sut->model.mode = c.mode;
  auto run_side = [&](bool producer) {
    for (const auto& any : c.commands) {
      const auto* cmd = dynamic_cast<const ring_command*>(any.get());
      AEGIS_ASSERT(cmd != nullptr, "every ring case command is a ring_command");
      if (cmd->on_producer() != producer) continue;
      cmd->exec(*sut);
      if (!sut->model.failure.empty()) return;
    }
  };
  w.spawn(p, "producer", [&] { run_side(true); });
  w.spawn(p, "consumer", [&] { run_side(false); });
  const sim::run_result r = w.run({}, [&] {
    if (sut->unreleased() > c.capacity) sut->model.fail("the ring holds more entries than its capacity");
  });
  ring_case_result out;
  out.coverage = w.coverage();
  ring_model_state& m = sut->model;
  if (!m.failure.empty()) {
    out.failure = m.failure;
  } else if (r.outcome != sim::run_outcome::finished) {
    out.failure = fmt::format("world ended with {}: {}", sim::to_string(r.outcome), r.reason);
  }
  if (out.failure.empty()) {
    // Counters at quiescence (scheduler context: loads are not yield points).
    ring_counters rc;
    if (c.multi_producer) {
      rc = static_cast<detail::ring_sut_impl<multi_producer>&>(*sut).ring.counters();
    } else {
      rc = static_cast<detail::ring_sut_impl<single_producer>&>(*sut).ring.counters();
    }
    if (rc.offered != m.offered || rc.accepted != m.accepted || rc.dropped_full != m.dropped_full ||
        rc.timed_out != m.timed_out || rc.unreleased != m.entries.size()) {
      out.failure = fmt::format(
          "counters: ring offered {} accepted {} dropped_full {} timed_out {} unreleased {}; model {} {} {} {} {}",
          rc.offered, rc.accepted, rc.dropped_full, rc.timed_out, rc.unreleased, m.offered, m.accepted,
          m.dropped_full, m.timed_out, m.entries.size());
    }
  }
  return out;
}

}  // namespace aegis::props
