// Production socket layer: os_env plus real ZeroMQ sockets and an eventfd doorbell.
//
// Usage:
//   aegis::zmq_env env;                                    // owns one zmq::context_t
//   auto pull = env.make_socket(aegis::socket_kind::pull, {.max_msg_bytes = 65568});
//   pull.bind("ipc:///run/aegis/verdicts.sock");
//   auto bell = env.make_doorbell();
//   std::thread([&] { bell.ring(); }).detach();           // any thread, async-signal-safe
//   if (env.wait(pull, bell, env.now_ns() + 1'000'000) == aegis::wake_reason::readable) {
//     std::vector<std::byte> buf;
//     if (pull.recv(buf) == aegis::recv_result::ok) use(buf);
//   }
//
// `wait` polls the socket (through its ZMQ_FD) and the doorbell's eventfd
// together with ppoll, so the pump sleeps in one system call, with nanosecond
// deadlines, whether it waits for verdicts, for producers or for a timer. ZeroMQ sockets are not thread-safe: a socket is
// used by one thread at a time (the pump); only the doorbell is shared.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

#include <zmq.hpp>

#include "aegis/env.hpp"
#include "aegis/socket_layer.hpp"

namespace aegis {

/// The production environment: os_env's clock, threads and atomics plus cppzmq sockets.
struct zmq_env : os_env {
  /// A ZeroMQ socket with the non-blocking operations the socket layer promises.
  class socket {
   public:
    /// Wraps a configured cppzmq socket.
    explicit socket(zmq::socket_t s) noexcept : s_(std::move(s)) {}
    /// Binds; throws std::system_error (zmq::error_t derives from std::exception) on failure.
    void bind(std::string_view endpoint);
    /// Connects; throws on failure.
    void connect(std::string_view endpoint);
    /// Queues one message without blocking.
    send_result send(std::span<const std::byte> bytes) noexcept;
    /// Receives one message without blocking; on ok, `buffer` holds exactly it.
    recv_result recv(std::vector<std::byte>& buffer) noexcept;
    /// The underlying socket, for zmq_poll.
    zmq::socket_t& raw() noexcept { return s_; }
    /// True while the last receive found nothing (see wait()).
    bool drained() const noexcept { return drained_; }

   private:
    zmq::socket_t s_;
    // Set when recv() returned EAGAIN, cleared when it returns a message.
    // libzmq processed the socket's commands on that EAGAIN, and nothing was
    // queued, so the next message will make ZMQ_FD readable: wait() need not
    // ask ZMQ_EVENTS before sleeping (two system calls saved per sleep).
    bool drained_ = false;
  };

  /// An eventfd: ring() from any thread (or a signal handler) wakes wait().
  class doorbell {
   public:
    /// Creates a non-blocking eventfd; throws std::system_error on failure.
    doorbell();
    ~doorbell();
    doorbell(doorbell&& other) noexcept;
    doorbell& operator=(doorbell&& other) noexcept;
    doorbell(const doorbell&) = delete;
    doorbell& operator=(const doorbell&) = delete;
    /// Wakes a pending (or the next) wait(); write(2) only, so async-signal-safe.
    void ring() noexcept;
    /// Consumes pending rings. Returns true if there were any.
    bool reset() noexcept;
    /// The file descriptor, for zmq_poll.
    int fd() const noexcept { return fd_; }

   private:
    int fd_ = -1;
  };

  /// Creates the context with `io_threads` libzmq I/O threads.
  explicit zmq_env(int io_threads = 1);

  /// A socket of `kind` with `options` applied (before bind/connect, as libzmq requires).
  socket make_socket(socket_kind kind, const socket_options& options);
  /// A fresh doorbell.
  doorbell make_doorbell() { return doorbell{}; }
  /// Blocks until `s` is readable, `bell` rang (the bell is then reset) or `deadline_ns` passed.
  wake_reason wait(socket& s, doorbell& bell, ns_t deadline_ns);

  /// The shared context, for peer sockets in the same process (inproc endpoints).
  zmq::context_t& context() noexcept { return ctx_; }

 private:
  zmq::context_t ctx_;
};

static_assert(environment<zmq_env>, "zmq_env keeps the full environment policy");
static_assert(socket_layer<zmq_env>, "zmq_env implements the socket layer");

}  // namespace aegis
