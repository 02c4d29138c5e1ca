// Production socket layer on libzmq (through cppzmq) and eventfd.
#include "aegis/zmq_env.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>

#include "aegis/assert.hpp"

namespace aegis {

namespace {
// system_error's what() appends ": <strerror>" to the message itself.
[[noreturn]] void throw_zmq(const char* what, std::string_view endpoint) {
  const int e = zmq_errno();
  std::string message = std::string(what) + " " + std::string(endpoint);
  if (e == ENAMETOOLONG && endpoint.starts_with("ipc://")) {
    message += " (an ipc:// path may have at most 107 bytes, the size of sockaddr_un's sun_path less its NUL)";
  }
  throw std::system_error(e, std::generic_category(), message);
}
}  // namespace

void zmq_env::socket::bind(std::string_view endpoint) {
  const std::string ep(endpoint);
  if (zmq_bind(s_.handle(), ep.c_str()) != 0) throw_zmq("cannot bind", endpoint);
}

void zmq_env::socket::connect(std::string_view endpoint) {
  const std::string ep(endpoint);
  if (zmq_connect(s_.handle(), ep.c_str()) != 0) throw_zmq("cannot connect", endpoint);
}

send_result zmq_env::socket::send(std::span<const std::byte> bytes) noexcept {
  // zmq_send copies the bytes into a message, so the caller may reuse its buffer at once.
  const int rc = zmq_send(s_.handle(), bytes.data(), bytes.size(), ZMQ_DONTWAIT);
  if (rc >= 0) {
    AEGIS_ASSERT(static_cast<std::size_t>(rc) == bytes.size(), "zmq_send queues whole messages");
    return send_result::ok;
  }
  return zmq_errno() == EAGAIN ? send_result::would_block : send_result::failed;
}

recv_result zmq_env::socket::recv(std::vector<std::byte>& buffer) noexcept {
  zmq_msg_t msg;
  zmq_msg_init(&msg);
  const int rc = zmq_msg_recv(&msg, s_.handle(), ZMQ_DONTWAIT);
  if (rc < 0) {
    const int e = zmq_errno();
    zmq_msg_close(&msg);
    drained_ = e == EAGAIN;
    return e == EAGAIN ? recv_result::would_block : recv_result::failed;
  }
  drained_ = false;
  const auto n = zmq_msg_size(&msg);
  recv_result result = recv_result::ok;
  try {
    buffer.resize(n);  // Only grows the first few times: the pump reuses one buffer.
    if (n != 0) std::memcpy(buffer.data(), zmq_msg_data(&msg), n);
  } catch (const std::bad_alloc&) {
    // The message is lost, which the protocol tolerates (retransmit); the caller counts it.
    result = recv_result::failed;
  }
  zmq_msg_close(&msg);
  return result;
}

zmq_env::doorbell::doorbell() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
}

zmq_env::doorbell::~doorbell() {
  if (fd_ >= 0) ::close(fd_);
}

zmq_env::doorbell::doorbell(doorbell&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }

zmq_env::doorbell& zmq_env::doorbell::operator=(doorbell&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

void zmq_env::doorbell::ring() noexcept {
  AEGIS_ASSERT(fd_ >= 0, "ring a live doorbell");
  const std::uint64_t one = 1;
  // EAGAIN means the counter is saturated: the bell is already ringing.
  [[maybe_unused]] const auto n = ::write(fd_, &one, sizeof one);
}

bool zmq_env::doorbell::reset() noexcept {
  std::uint64_t v = 0;
  return ::read(fd_, &v, sizeof v) == static_cast<ssize_t>(sizeof v);
}

zmq_env::zmq_env(int io_threads) : ctx_(io_threads) {
  AEGIS_ASSERT(io_threads >= 1, "libzmq needs at least one I/O thread for ipc");
}

zmq_env::socket zmq_env::make_socket(socket_kind kind, const socket_options& o) {
  zmq::socket_t s(ctx_, kind == socket_kind::push ? zmq::socket_type::push : zmq::socket_type::pull);
  s.set(zmq::sockopt::sndhwm, o.send_hwm);
  s.set(zmq::sockopt::rcvhwm, o.recv_hwm);
  s.set(zmq::sockopt::maxmsgsize, o.max_msg_bytes);
  s.set(zmq::sockopt::linger, o.linger_ms);
  s.set(zmq::sockopt::immediate, o.immediate ? 1 : 0);
  s.set(zmq::sockopt::reconnect_ivl, o.reconnect_ivl_ms);
  return socket{std::move(s)};
}

wake_reason zmq_env::wait(socket& s, doorbell& bell, ns_t deadline_ns) {
  // zmq_poll only knows milliseconds; the pump naps for tens of microseconds.
  // So we poll the socket's ZMQ_FD (an edge-triggered "look at ZMQ_EVENTS"
  // signal) and the doorbell with ppoll, and ask ZMQ_EVENTS before every
  // sleep and after every wake-up, as libzmq documents for ZMQ_FD, except
  // before the first sleep when the caller's last receive on `s` came back
  // empty: that receive processed the socket's commands just as ZMQ_EVENTS
  // would have, so the next message will signal ZMQ_FD. On this VM every
  // ZMQ_EVENTS is two system calls (getpid and a poll of the mailbox).
  const int zfd = s.raw().get(zmq::sockopt::fd);
  bool ask = !s.drained();
  for (;;) {
    if (ask && (s.raw().get(zmq::sockopt::events) & ZMQ_POLLIN) != 0) return wake_reason::readable;
    ask = true;
    timespec ts{};
    timespec* timeout = nullptr;
    if (deadline_ns != no_deadline) {
      const ns_t left = deadline_ns - now_ns();
      if (left <= 0) return wake_reason::deadline;
      ts.tv_sec = static_cast<time_t>(left / 1'000'000'000);
      ts.tv_nsec = static_cast<long>(left % 1'000'000'000);
      timeout = &ts;
    }
    pollfd fds[2] = {{zfd, POLLIN, 0}, {bell.fd(), POLLIN, 0}};
    const int rc = ::ppoll(fds, 2, timeout, nullptr);
    if (rc < 0) {
      if (errno == EINTR) continue;
      return wake_reason::deadline;  // Nothing sensible to wait on; the caller re-checks its state.
    }
    if ((fds[1].revents & POLLIN) != 0 && bell.reset()) return wake_reason::doorbell;
    if (rc == 0 && deadline_ns != no_deadline && now_ns() >= deadline_ns) return wake_reason::deadline;
    // ZMQ_FD fired (or a spurious wake-up): loop to ask ZMQ_EVENTS.
  }
}

}  // namespace aegis
