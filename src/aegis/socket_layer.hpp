// Socket layer: the part of the environment policy the transport uses to talk
// to the bridge. Production implements it with cppzmq (zmq_env.hpp); the
// simulator with in-memory PUSH/PULL pipes whose loss, HWM and reconnect
// behaviour models libzmq's.
//
// Usage (inside a component templated on Env):
//   auto push = env.make_socket(aegis::socket_kind::push, aegis::socket_options{});
//   push.bind("ipc:///run/aegis/offload.sock");
//   auto bell = env.make_doorbell();
//   switch (env.wait(pull, bell, deadline_ns)) { ... }
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "aegis/env.hpp"

namespace aegis {

/// ZeroMQ pattern of a socket. Only the two the protocol uses.
enum class socket_kind : std::uint8_t { push, pull };

/// Options applied before bind/connect. Mirrors the libzmq options we rely on.
struct socket_options {
  int send_hwm = 1000;               ///< ZMQ_SNDHWM, messages.
  int recv_hwm = 1000;               ///< ZMQ_RCVHWM, messages.
  std::int64_t max_msg_bytes = -1;   ///< ZMQ_MAXMSGSIZE; -1 unlimited.
  int linger_ms = 0;                 ///< ZMQ_LINGER.
  bool immediate = false;            ///< ZMQ_IMMEDIATE.
  int reconnect_ivl_ms = 100;        ///< ZMQ_RECONNECT_IVL.
};

/// Result of a send.
enum class send_result : std::uint8_t {
  ok,           ///< Queued to a pipe (not delivered: ZeroMQ never acknowledges).
  would_block,  ///< No pipe ready (no peer, or at the high-water mark): EAGAIN.
  failed,       ///< Any other error; the message was not queued.
};

/// Result of a receive.
enum class recv_result : std::uint8_t {
  ok,           ///< One whole message was copied into the buffer.
  would_block,  ///< Nothing to receive: EAGAIN.
  failed,       ///< Any other error.
};

/// Why `wait` returned.
enum class wake_reason : std::uint8_t {
  readable,   ///< The socket has a message to receive.
  doorbell,   ///< The doorbell was rung (the bell is reset by this wake-up).
  deadline,   ///< `deadline_ns` passed.
};

/// Socket layer contract:
/// - `make_socket(kind, options)` returns a movable socket owned by the caller.
/// - `socket.bind(ep)` / `socket.connect(ep)` throw `std::system_error` on failure.
/// - `socket.send(bytes)` never blocks; it queues one message or reports why not.
/// - `socket.recv(buffer)` never blocks; on `ok` the buffer holds exactly one message.
/// - `make_doorbell()` returns a doorbell; `bell.ring()` is callable from any
///   thread, is async-signal-safe in production, and wakes a pending `wait`.
/// - `wait(socket, bell, deadline)` blocks the calling thread (fiber) until the
///   socket is readable, the bell rings, or the deadline passes.
template <class E>
concept socket_layer = requires(E& e, typename E::socket& s, typename E::doorbell& bell,
                                std::span<const std::byte> bytes, std::vector<std::byte>& buffer, ns_t t) {
  { e.make_socket(socket_kind::push, socket_options{}) } -> std::same_as<typename E::socket>;
  { e.make_doorbell() } -> std::same_as<typename E::doorbell>;
  s.bind(std::string_view{});
  s.connect(std::string_view{});
  { s.send(bytes) } -> std::same_as<send_result>;
  { s.recv(buffer) } -> std::same_as<recv_result>;
  { bell.ring() } -> std::same_as<void>;
  { e.wait(s, bell, t) } -> std::same_as<wake_reason>;
};

}  // namespace aegis
