// Simulated ZeroMQ PUSH/PULL sockets between simulated processes.
//
// Usage (through sim_env, which implements aegis::socket_layer):
//   aegis::sim::network net{world, aegis::sim::network_options{}};
//   auto id = net.open(core_process, aegis::socket_kind::push, aegis::socket_options{});
//   net.bind(id, "ipc:///sim/offload.sock");
//   net.send(id, bytes);          // ok, or would_block at the HWM / with no peer
//
// The model keeps the libzmq 4.3.4 behaviour that decides loss and
// back-pressure; sim/socket_contract_test.cpp runs the same cases against
// real libzmq over ipc:// and against this model:
// - One pipe per (bound socket, connecting socket) pair; FIFO per pipe.
// - A pipe holds at most SNDHWM + RCVHWM messages (SNDHWM only while the
//   connection is not established); a PUSH send that finds no pipe with
//   room returns would_block (EAGAIN). PUSH round-robins over its pipes, PULL
//   fair-queues over its pipes.
// - A binding PUSH with no peer has no pipe: would_block. A connecting PUSH has
//   its pipe from connect() on and queues into it before the peer exists.
// - Each message is delivered after a seeded latency (never reordered within
//   a pipe). Until then it sits in the sender's process.
// - When a process dies, every message it had not yet handed over and every
//   message in its receive queues is lost; messages already delivered to a
//   live receiver stay readable.
// - A binding socket discards a dead peer's pipe with its queue. A
//   connecting socket keeps its pipe when the bound peer goes away (libzmq's
//   session keeps it unless ZMQ_IMMEDIATE): a connecting PUSH keeps what the
//   dead peer had not taken (delivered messages up to the peer's RCVHWM are
//   lost with it; the pipe keeps at most SNDHWM of the rest), goes on
//   accepting sends up to SNDHWM, and hands all of it, in order, to the next
//   socket that binds the endpoint. A connecting PULL reconnects on a new
//   pipe; what it had received stays readable.
// - A connecting socket whose endpoint is not bound retries every
//   reconnect_ivl; a connection is established after a seeded handshake delay.
// - ZMQ_MAXMSGSIZE: a message above the receiver's max_msg_bytes is a
//   protocol error; the receiver drops the connection and never sees the
//   message. A connecting sender reconnects and keeps what it had not handed
//   over; a connecting receiver does not reconnect (libzmq 4.3 ends a
//   connecting session for good on a protocol error).
// - connected() and monitor() stand for a socket monitor
//   (HANDSHAKE_SUCCEEDED / DISCONNECTED).
// - Channel clogs add a delay to every message sent on an endpoint for a while.
//
// Intended differences, each a matter of timing, not of outcome: the model
// finds an oversized message when the receiver reaches it, libzmq when its
// I/O thread decodes it, so messages handed over in between are lost with
// the connection in the model and may be in libzmq; how many messages a
// connecting pipe still holds when its peer dies is exact in the model
// (the oldest delivered up to RCVHWM are the dead peer's), batched and
// timing-dependent in libzmq (its reads move messages into kernel buffers);
// and libzmq's writer learns of reads only every half HWM, so it may refuse
// a send up to half an HWM earlier than the model.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "aegis/socket_layer.hpp"
#include "sim/world.hpp"

namespace aegis::sim {

/// Latency model of the simulated transport; derived from the seed unless set.
struct network_options {
  ns_t latency_min_ns = 5'000;        ///< Minimum one-way latency of a message.
  ns_t latency_max_ns = 60'000;       ///< Maximum one-way latency (uniform in between).
  std::uint32_t spike_ppm = 2'000;    ///< Chance of a latency spike per message.
  ns_t spike_ns = 2'000'000;          ///< Extra latency of a spike.
  ns_t handshake_ns = 200'000;        ///< Time from connect to an established pipe.
};

using socket_id = std::uint32_t;
using doorbell_id = std::uint32_t;
inline constexpr socket_id no_socket = UINT32_MAX;
inline constexpr doorbell_id no_doorbell = UINT32_MAX;

/// Counters of the simulated transport.
struct network_counters {
  std::uint64_t sent = 0;              ///< Messages queued.
  std::uint64_t would_block = 0;       ///< Sends refused at the HWM or with no pipe.
  std::uint64_t received = 0;          ///< Messages received.
  std::uint64_t lost = 0;              ///< Messages discarded with a dead process or pipe.
  std::uint64_t oversized = 0;         ///< Messages above the receiver's max_msg_bytes (each dropped its connection).
  std::uint64_t connections = 0;       ///< Pipes established.
};

class network {
 public:
  /// A network living in `w`; registers a kill hook on the world.
  network(sim::world& w, network_options options);
  network(const network&) = delete;
  network& operator=(const network&) = delete;

  /// Opens a socket owned by `process`.
  socket_id open(process_id process, socket_kind kind, const socket_options& options);
  /// Closes a socket (linger 0: everything it holds is discarded). Idempotent.
  void close(socket_id s);
  /// Binds; throws std::system_error(EADDRINUSE) if the endpoint is bound.
  void bind(socket_id s, std::string_view endpoint);
  /// Connects (asynchronously, like libzmq).
  void connect(socket_id s, std::string_view endpoint);
  /// Non-blocking send of one message. A yield point.
  send_result send(socket_id s, std::span<const std::byte> bytes);
  /// Non-blocking receive of one message. A yield point.
  recv_result recv(socket_id s, std::vector<std::byte>& buffer);
  /// True if a message is ready to receive.
  bool readable(socket_id s) const;

  /// Creates a doorbell.
  doorbell_id make_doorbell();
  /// Rings it: wakes a fiber waiting on it. A yield point.
  void ring(doorbell_id d);
  /// Blocks the running fiber until `s` is readable, `d` rang (resetting it)
  /// or `deadline_ns` passes.
  wake_reason wait(socket_id s, doorbell_id d, ns_t deadline_ns);

  /// True while `s` has an established connection (libzmq's monitor:
  /// HANDSHAKE_SUCCEEDED seen, DISCONNECTED not yet).
  bool connected(socket_id s) const;
  /// Rings `d` whenever a connection of `s` is established or ends (a
  /// socket monitor; one doorbell per socket).
  void monitor(socket_id s, doorbell_id d);

  /// Observer of every message received: (receiving process, socket, bytes).
  using receive_observer = std::function<void(process_id, socket_id, std::span<const std::byte>)>;
  /// Installs the observer (the runner counts what reaches the core with it).
  void observe_receive(receive_observer o) { on_receive_ = std::move(o); }

  /// Adds `extra_ns` to every message sent on `endpoint` until `until_ns`.
  void clog(std::string endpoint, ns_t extra_ns, ns_t until_ns);
  /// Counters so far.
  const network_counters& counters() const noexcept { return counters_; }
  /// The options in force (for printing derived parameters).
  const network_options& options() const noexcept { return options_; }
  /// The world.
  sim::world& world() noexcept { return world_; }

 private:
  struct message {
    std::vector<std::byte> bytes;
    ns_t deliver_at_ns;
  };
  struct pipe {
    socket_id push = no_socket;
    socket_id pull = no_socket;
    bool attached = false;    // Connection established.
    bool dead = false;        // One side gone; only delivered messages remain readable.
    std::string endpoint;
    ns_t last_deliver_ns = 0; // FIFO: a message is never delivered before its predecessor.
    std::deque<message> queue;
  };
  struct socket_rec {
    process_id process = 0;
    socket_kind kind = socket_kind::push;
    socket_options options;
    bool open = true;
    std::string bound;        // Endpoint bound, if any.
    std::string connected;    // Endpoint connected, if any.
    std::vector<std::uint32_t> pipes;
    std::size_t round_robin = 0;
    wait_queue readers;
    doorbell_id monitor = no_doorbell;  // Rung on connection up and down.
  };
  struct doorbell_rec {
    bool rung = false;
    wait_queue waiters;
  };
  struct clog_rec {
    ns_t extra_ns = 0;
    ns_t until_ns = 0;
  };

  void try_attach(socket_id connecting, std::uint32_t pipe_id);
  void kill_pipe(std::uint32_t pipe_id, socket_id closed);
  void keep_for_reconnect(std::uint32_t pipe_id);
  void drop_connection(std::uint32_t pipe_id);
  void notify_monitor(socket_id s);
  void ring_bell(doorbell_id d);
  void detach(std::uint32_t pipe_id);
  void schedule_delivery(std::uint32_t pipe_id, ns_t at_ns);
  std::size_t pipe_capacity(const pipe& p) const;
  ns_t latency(const std::string& endpoint);
  void on_kill(process_id p);

  sim::world& world_;
  network_options options_;
  prng rng_;
  std::vector<socket_rec> sockets_;
  std::vector<pipe> pipes_;
  std::vector<doorbell_rec> doorbells_;
  std::map<std::string, socket_id, std::less<>> bound_;
  std::map<std::string, clog_rec, std::less<>> clogs_;
  network_counters counters_;
  receive_observer on_receive_;
  std::vector<socket_id> no_reconnect_;  // Connecting receivers whose session ended on a protocol error.
  // Message buffers handed back by recv (the receiver's previous buffer),
  // reused by send: in steady state no message allocates.
  std::vector<std::vector<std::byte>> spare_buffers_;
  static constexpr std::size_t max_spare_buffers = 64;
};

}  // namespace aegis::sim
