// The simulator's environment policy: the same production templates
// (ring_buffer, offloader) instantiated with it run as fibers of a seeded,
// single-threaded world.
//
// Usage:
//   aegis::sim::world w{seed, {}};
//   aegis::sim::network net{w, {}};
//   auto core = w.add_process("core");
//   aegis::sim::sim_env env{w, net, core};
//   aegis::ring_buffer<int, aegis::sim::sim_env, aegis::multi_producer> ring{env, 64, aegis::admission::block};
//   env.spawn("producer", [&] { (void)ring.push(1); });
//   w.run();
//
// Every atomic operation, spin_pause, park, unpark, socket call and doorbell
// ring is a yield point: the scheduler may switch fibers there, which is how
// interleavings of producers and the pump are explored. Underneath, atomics
// are plain values (one thread runs at a time), so the model is sequentially
// consistent: reorderings allowed by relaxed orders are not explored.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "aegis/env.hpp"
#include "aegis/socket_layer.hpp"
#include "sim/network.hpp"
#include "sim/world.hpp"

namespace aegis::sim {

class sim_env;

namespace detail {
/// `std::atomic<T>`-shaped value whose every operation is a yield point.
template <class T>
class sim_atomic {
 public:
  sim_atomic(sim_env& env, T initial) noexcept;
  sim_atomic(const sim_atomic&) = delete;
  sim_atomic& operator=(const sim_atomic&) = delete;

  /// Reads the value (a yield point).
  T load(std::memory_order = std::memory_order_seq_cst) const noexcept {
    world_->yield_point();
    return value_;
  }
  /// Writes the value (a yield point).
  void store(T v, std::memory_order = std::memory_order_seq_cst) noexcept {
    world_->yield_point();
    value_ = v;
  }
  /// Returns the old value and adds.
  T fetch_add(T d, std::memory_order = std::memory_order_seq_cst) noexcept {
    world_->yield_point();
    T old = value_;
    value_ = static_cast<T>(value_ + d);
    return old;
  }
  /// Returns the old value and subtracts.
  T fetch_sub(T d, std::memory_order = std::memory_order_seq_cst) noexcept {
    world_->yield_point();
    T old = value_;
    value_ = static_cast<T>(value_ - d);
    return old;
  }
  /// Returns the old value and ors.
  T fetch_or(T d, std::memory_order = std::memory_order_seq_cst) noexcept {
    world_->yield_point();
    T old = value_;
    value_ = static_cast<T>(value_ | d);
    return old;
  }
  /// Returns the old value and ands.
  T fetch_and(T d, std::memory_order = std::memory_order_seq_cst) noexcept {
    world_->yield_point();
    T old = value_;
    value_ = static_cast<T>(value_ & d);
    return old;
  }
  /// Returns the old value and stores `v`.
  T exchange(T v, std::memory_order = std::memory_order_seq_cst) noexcept {
    world_->yield_point();
    T old = value_;
    value_ = v;
    return old;
  }
  /// CAS; the weak form never fails spuriously in the simulator.
  bool compare_exchange_strong(T& expected, T desired, std::memory_order = std::memory_order_seq_cst,
                               std::memory_order = std::memory_order_seq_cst) noexcept {
    world_->yield_point();
    if (value_ == expected) {
      value_ = desired;
      return true;
    }
    expected = value_;
    return false;
  }
  /// CAS (weak).
  bool compare_exchange_weak(T& expected, T desired, std::memory_order s = std::memory_order_seq_cst,
                             std::memory_order f = std::memory_order_seq_cst) noexcept {
    return compare_exchange_strong(expected, desired, s, f);
  }
  /// `load()`.
  operator T() const noexcept { return load(); }
  /// `store(v)`.
  T operator=(T v) noexcept {
    store(v);
    return v;
  }
  /// `fetch_add(1) + 1`.
  T operator++() noexcept { return static_cast<T>(fetch_add(1) + 1); }
  /// `fetch_sub(1) - 1`.
  T operator--() noexcept { return static_cast<T>(fetch_sub(1) - 1); }
  /// `fetch_add(d) + d`.
  T operator+=(T d) noexcept { return static_cast<T>(fetch_add(d) + d); }
  /// `fetch_sub(d) - d`.
  T operator-=(T d) noexcept { return static_cast<T>(fetch_sub(d) - d); }

  /// The value without a yield point: for invariant checks in scheduler context.
  T peek() const noexcept { return value_; }

 private:
  sim::world* world_;
  T value_;
};
}  // namespace detail

/// The environment policy of one simulated process. Cheap to copy around by
/// reference; components hold `sim_env&`.
class sim_env {
 public:
  template <class T>
  using atomic = detail::sim_atomic<T>;

  /// Handle of a spawned fiber; `join()` blocks the calling fiber until it ends.
  class thread {
   public:
    thread() = default;
    thread(sim::world* w, fiber_id f) noexcept : world_(w), fiber_(f) {}
    thread(thread&& o) noexcept : world_(std::exchange(o.world_, nullptr)), fiber_(o.fiber_) {}
    thread& operator=(thread&& o) noexcept {
      world_ = std::exchange(o.world_, nullptr);
      fiber_ = o.fiber_;
      return *this;
    }
    /// True until joined (like std::thread).
    bool joinable() const noexcept { return world_ != nullptr; }
    /// Waits for the fiber to finish.
    void join() {
      AEGIS_ASSERT(world_ != nullptr, "join() on a thread that is not joinable");
      world_->join(fiber_);
      world_ = nullptr;
    }
    /// Forgets the fiber (it keeps running).
    void detach() noexcept { world_ = nullptr; }
    /// The fiber id.
    fiber_id id() const noexcept { return fiber_; }

   private:
    sim::world* world_ = nullptr;
    fiber_id fiber_ = no_fiber;
  };

  /// A simulated PUSH or PULL socket; closes on destruction (linger 0).
  class socket {
   public:
    socket() = default;
    socket(network* n, socket_id id) noexcept : net_(n), id_(id) {}
    socket(socket&& o) noexcept : net_(std::exchange(o.net_, nullptr)), id_(o.id_) {}
    socket& operator=(socket&& o) noexcept {
      if (this != &o) {
        close();
        net_ = std::exchange(o.net_, nullptr);
        id_ = o.id_;
      }
      return *this;
    }
    ~socket() { close(); }
    /// Binds; throws std::system_error when the endpoint is taken.
    void bind(std::string_view endpoint) { net_->bind(id_, endpoint); }
    /// Connects asynchronously.
    void connect(std::string_view endpoint) { net_->connect(id_, endpoint); }
    /// Non-blocking send.
    send_result send(std::span<const std::byte> bytes) { return net_->send(id_, bytes); }
    /// Non-blocking receive.
    recv_result recv(std::vector<std::byte>& buffer) { return net_->recv(id_, buffer); }
    /// Closes now (idempotent).
    void close() noexcept {
      if (net_ != nullptr) net_->close(id_);
      net_ = nullptr;
    }
    /// The network-wide id.
    socket_id id() const noexcept { return id_; }
    /// Simulator only (the bridge model's socket monitor): true while a
    /// connection is established.
    bool connected() const { return net_ != nullptr && net_->connected(id_); }

   private:
    network* net_ = nullptr;
    socket_id id_ = no_socket;
  };

  /// A simulated doorbell.
  class doorbell {
   public:
    doorbell() = default;
    doorbell(network* n, doorbell_id id) noexcept : net_(n), id_(id) {}
    /// Wakes a pending wait (a yield point).
    void ring() const { net_->ring(id_); }
    /// The network-wide id.
    doorbell_id id() const noexcept { return id_; }

   private:
    network* net_ = nullptr;
    doorbell_id id_ = 0;
  };

  /// The environment of `process` in world `w`, with sockets on `net`.
  sim_env(sim::world& w, network& net, process_id process) noexcept : world_(w), net_(net), process_(process) {}
  sim_env(const sim_env&) = delete;
  sim_env& operator=(const sim_env&) = delete;

  // ------------------------------------------------------------ clock
  /// Virtual time as this process sees it (frozen during its clock stalls).
  ns_t now_ns() const noexcept { return world_.now_ns(process_); }
  /// Blocks the fiber until virtual time `deadline_ns`.
  void sleep_until_ns(ns_t deadline_ns) { world_.sleep_until(deadline_ns); }

  // ------------------------------------------------------------ scheduler
  /// A yield point.
  void spin_pause() noexcept { world_.yield_point(); }
  /// Gives the CPU to the scheduler.
  void yield() noexcept { world_.yield_now(); }
  /// Blocks while `word == expected` until unparked or `deadline_ns`.
  bool park(atomic<std::uint32_t>& word, std::uint32_t expected, ns_t deadline_ns) noexcept {
    if (word.load() != expected) return true;
    if (deadline_ns <= world_.now_ns()) return false;
    return world_.block_on_key(&word, deadline_ns);
  }
  /// Wakes every fiber parked on `word`.
  void unpark_all(atomic<std::uint32_t>& word) noexcept {
    world_.yield_point();
    world_.wake_key(&word);
  }
  /// Starts a fiber in this process.
  thread spawn(std::string_view name, std::function<void()> fn) {
    return thread{&world_, world_.spawn(process_, std::string(name), std::move(fn))};
  }

  // ------------------------------------------------------------ sockets
  /// Opens a simulated socket owned by this process.
  socket make_socket(socket_kind kind, const socket_options& options) {
    return socket{&net_, net_.open(process_, kind, options)};
  }
  /// A new doorbell.
  doorbell make_doorbell() { return doorbell{&net_, net_.make_doorbell()}; }
  /// Blocks until `s` is readable, `bell` rang or `deadline_ns`.
  wake_reason wait(socket& s, doorbell& bell, ns_t deadline_ns) { return net_.wait(s.id(), bell.id(), deadline_ns); }

  // ------------------------------------------------------------ faults
  /// The world's seeded, recorded decision for fault site `name`.
  bool fault_fires(const char* name) { return world_.fault_fires(name); }
  /// True when `name` is the run's mutant (faults/aegis/mutant.hpp).
  bool mutant(std::string_view name) const noexcept { return world_.mutant(name); }
  /// Records a rare state reached (faults/aegis/coverage.hpp).
  void reached(const char* name) { world_.reached(name); }

  // ------------------------------------------------------------ simulator access
  /// The world.
  sim::world& world() noexcept { return world_; }
  /// The network.
  network& net() noexcept { return net_; }
  /// This environment's process.
  process_id process() const noexcept { return process_; }

 private:
  sim::world& world_;
  network& net_;
  process_id process_;
};

template <class T>
detail::sim_atomic<T>::sim_atomic(sim_env& env, T initial) noexcept : world_(&env.world()), value_(initial) {}

static_assert(environment<sim_env>, "sim_env must model the full environment policy");
static_assert(socket_layer<sim_env>, "sim_env must model the socket layer");

}  // namespace aegis::sim
