// The socket contract suite: the same cases run against real libzmq over ipc
// (the production socket layer, aegis::zmq_env) and against the simulator's
// sockets (aegis::sim::sim_env), so the model stays honest wherever libzmq is
// itself deterministic: FIFO per pipe, EAGAIN with no peer and at the
// high-water mark, messages queued toward a peer lost when it goes away,
// connect-before-bind reconnecting, a connecting PUSH keeping its pipe (and
// queueing) across a restart of its bound peer, ZMQ_MAXMSGSIZE dropping the
// connection, and the doorbell/deadline wake-ups.
//
// Each case is a template over the environment; a harness runs it on a real
// thread (zmq) or inside a fiber of a seeded world (sim, several seeds).
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "aegis/zmq_env.hpp"
#include "sim/sim_env.hpp"

namespace {

using aegis::ns_t;
using aegis::recv_result;
using aegis::send_result;
using aegis::socket_kind;
using aegis::socket_options;
using aegis::wake_reason;

std::span<const std::byte> bytes_of(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}
std::string string_of(const std::vector<std::byte>& b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

constexpr ns_t second = 1'000'000'000;
constexpr ns_t milli = 1'000'000;

/// Waits for one message on `s` until `deadline`; nullopt on timeout.
template <class Env>
std::optional<std::string> recv_one(Env& env, typename Env::socket& s, ns_t deadline) {
  auto bell = env.make_doorbell();
  std::vector<std::byte> buf;
  for (;;) {
    if (s.recv(buf) == recv_result::ok) return string_of(buf);
    if (env.now_ns() >= deadline) return std::nullopt;
    env.wait(s, bell, deadline);
  }
}

// ---------------------------------------------------------------- cases

template <class Env>
void fifo_per_pipe(Env& env, const std::string& ep) {
  auto pull = env.make_socket(socket_kind::pull, socket_options{});
  pull.bind(ep);
  auto push = env.make_socket(socket_kind::push, socket_options{});
  push.connect(ep);
  // A connecting PUSH owns its pipe from connect() on: sends queue at once.
  for (int i = 0; i < 200; ++i) ASSERT_EQ(push.send(bytes_of(std::to_string(i))), send_result::ok) << i;
  const ns_t deadline = env.now_ns() + 5 * second;
  for (int i = 0; i < 200; ++i) {
    auto m = recv_one(env, pull, deadline);
    ASSERT_TRUE(m.has_value()) << "message " << i << " never arrived";
    EXPECT_EQ(*m, std::to_string(i)) << "FIFO broken";
  }
}

template <class Env>
void bound_push_without_peer_would_block(Env& env, const std::string& ep) {
  auto push = env.make_socket(socket_kind::push, socket_options{});
  push.bind(ep);
  EXPECT_EQ(push.send(bytes_of("x")), send_result::would_block) << "a bound PUSH with no peer has no pipe";
}

template <class Env>
void would_block_at_hwm(Env& env, const std::string& ep) {
  socket_options small;
  small.send_hwm = 10;
  small.recv_hwm = 10;
  auto push = env.make_socket(socket_kind::push, small);
  push.bind(ep);
  auto pull = env.make_socket(socket_kind::pull, small);
  pull.connect(ep);
  // Establish the pipe: retry one probe until it gets through.
  const ns_t deadline = env.now_ns() + 5 * second;
  std::optional<std::string> got;
  while (!got && env.now_ns() < deadline) {
    (void)push.send(bytes_of("probe"));
    got = recv_one(env, pull, env.now_ns() + 10 * milli);
  }
  ASSERT_TRUE(got.has_value()) << "never connected";
  while (recv_one(env, pull, env.now_ns() + 10 * milli)) {
  }  // Drain leftover probes.
  // Nobody reads now: sends succeed about SNDHWM times, then EAGAIN. libzmq's
  // writer learns of reads only every half HWM (its low-water mark), so the
  // lower bound is half the HWM, not the HWM: that part is not deterministic.
  int sent = 0;
  while (sent < 1'000'000 && push.send(bytes_of("fill")) == send_result::ok) ++sent;
  EXPECT_GE(sent, 5) << "at least half the send HWM fits";
  EXPECT_LT(sent, 1'000'000) << "a reader that does not read must push back";
  EXPECT_EQ(push.send(bytes_of("more")), send_result::would_block);
}

template <class Env>
void messages_to_a_dead_peer_are_lost(Env& env, const std::string& ep) {
  auto push = env.make_socket(socket_kind::push, socket_options{});
  push.bind(ep);
  std::optional<typename Env::socket> old_peer{env.make_socket(socket_kind::pull, socket_options{})};
  old_peer->connect(ep);
  const ns_t deadline = env.now_ns() + 5 * second;
  std::optional<std::string> got;
  while (!got && env.now_ns() < deadline) {
    (void)push.send(bytes_of("old-probe"));
    got = recv_one(env, *old_peer, env.now_ns() + 10 * milli);
  }
  ASSERT_TRUE(got.has_value()) << "never connected";
  for (int i = 0; i < 10; ++i) (void)push.send(bytes_of("old-" + std::to_string(i)));
  old_peer.reset();  // The peer goes away with whatever it had queued or received.
  auto new_peer = env.make_socket(socket_kind::pull, socket_options{});
  new_peer.connect(ep);
  int received = 0;
  while (received < 5 && env.now_ns() < deadline) {
    (void)push.send(bytes_of("new"));
    if (auto m = recv_one(env, new_peer, env.now_ns() + 10 * milli)) {
      EXPECT_EQ(m->substr(0, 3), "new") << "a message for the dead peer reached its successor: " << *m;
      ++received;
    }
  }
  EXPECT_EQ(received, 5) << "the new peer was never served";
}

template <class Env>
void connect_before_bind_reconnects(Env& env, const std::string& ep) {
  socket_options fast;
  fast.reconnect_ivl_ms = 10;
  auto push = env.make_socket(socket_kind::push, fast);
  push.connect(ep);  // Nobody there yet: libzmq retries every reconnect_ivl.
  for (int i = 0; i < 5; ++i) ASSERT_EQ(push.send(bytes_of("m" + std::to_string(i))), send_result::ok);
  auto pull = env.make_socket(socket_kind::pull, fast);
  pull.bind(ep);
  const ns_t deadline = env.now_ns() + 5 * second;
  for (int i = 0; i < 5; ++i) {
    auto m = recv_one(env, pull, deadline);
    ASSERT_TRUE(m.has_value()) << "queued message " << i << " not delivered after the bind";
    EXPECT_EQ(*m, "m" + std::to_string(i));
  }
}

template <class Env>
void doorbell_and_deadline(Env& env, const std::string& ep) {
  auto pull = env.make_socket(socket_kind::pull, socket_options{});
  pull.bind(ep);
  auto bell = env.make_doorbell();
  const ns_t t0 = env.now_ns();
  EXPECT_EQ(env.wait(pull, bell, t0 + 20 * milli), wake_reason::deadline);
  EXPECT_GE(env.now_ns(), t0 + 20 * milli) << "a deadline wake-up never comes early";
  bell.ring();
  EXPECT_EQ(env.wait(pull, bell, env.now_ns() + 5 * second), wake_reason::doorbell);
  // The wake-up reset the bell.
  EXPECT_EQ(env.wait(pull, bell, env.now_ns() + 5 * milli), wake_reason::deadline);
}

// wait() after a receive: whether the last receive came back empty (the
// production layer then skips ZMQ_EVENTS before sleeping) or returned a
// message with another still queued, a queued message must wake it as
// `readable`, never let it sleep to the deadline.
template <class Env>
void wait_after_a_receive_sees_queued_messages(Env& env, const std::string& ep) {
  auto pull = env.make_socket(socket_kind::pull, socket_options{});
  pull.bind(ep);
  auto push = env.make_socket(socket_kind::push, socket_options{});
  push.connect(ep);
  ASSERT_EQ(push.send(bytes_of("probe")), send_result::ok);
  ASSERT_EQ(recv_one(env, pull, env.now_ns() + 5 * second), std::optional<std::string>{"probe"});
  auto bell = env.make_doorbell();
  std::vector<std::byte> buf;
  for (int i = 0; i < 20; ++i) {
    SCOPED_TRACE("round " + std::to_string(i));
    // An empty receive, then a message sent while (or before) the pump sleeps.
    ASSERT_EQ(pull.recv(buf), recv_result::would_block);
    ASSERT_EQ(push.send(bytes_of("a" + std::to_string(i))), send_result::ok);
    ASSERT_EQ(push.send(bytes_of("b" + std::to_string(i))), send_result::ok);
    ASSERT_EQ(env.wait(pull, bell, env.now_ns() + 2 * second), wake_reason::readable);
    ASSERT_EQ(pull.recv(buf), recv_result::ok);
    EXPECT_EQ(string_of(buf), "a" + std::to_string(i));
    // A receive that returned a message: the second one may already be
    // queued, with ZMQ_FD's signal spent; wait() must still see it.
    if (pull.recv(buf) != recv_result::ok) {
      ASSERT_EQ(env.wait(pull, bell, env.now_ns() + 2 * second), wake_reason::readable);
      ASSERT_EQ(pull.recv(buf), recv_result::ok);
    }
    EXPECT_EQ(string_of(buf), "b" + std::to_string(i));
    ASSERT_EQ(push.send(bytes_of("c" + std::to_string(i))), send_result::ok);
    ASSERT_EQ(push.send(bytes_of("d" + std::to_string(i))), send_result::ok);
    ASSERT_EQ(env.wait(pull, bell, env.now_ns() + 2 * second), wake_reason::readable);
    ASSERT_EQ(pull.recv(buf), recv_result::ok);
    EXPECT_EQ(string_of(buf), "c" + std::to_string(i));
    ASSERT_EQ(env.wait(pull, bell, env.now_ns() + 2 * second), wake_reason::readable) << "d was queued";
    ASSERT_EQ(pull.recv(buf), recv_result::ok);
    EXPECT_EQ(string_of(buf), "d" + std::to_string(i));
  }
}

/// Lets `d` of the environment's time pass (libzmq's I/O thread runs meanwhile).
template <class Env>
void pause_for(Env& env, ns_t d) {
  auto idle = env.make_socket(socket_kind::pull, socket_options{});
  auto bell = env.make_doorbell();
  const ns_t until = env.now_ns() + d;
  while (env.now_ns() < until) (void)env.wait(idle, bell, until);
}

/// Every message that arrives on `s` until `quiet` passes without one.
template <class Env>
std::vector<std::string> recv_until_quiet(Env& env, typename Env::socket& s, ns_t first_within, ns_t quiet) {
  std::vector<std::string> got;
  ns_t deadline = env.now_ns() + first_within;
  while (auto m = recv_one(env, s, deadline)) {
    got.push_back(std::move(*m));
    deadline = env.now_ns() + quiet;
  }
  return got;
}

socket_options small_pipes() {
  socket_options o;
  o.send_hwm = 10;
  o.recv_hwm = 10;
  o.reconnect_ivl_ms = 10;
  return o;
}

// A connecting PUSH whose bound peer goes away keeps its pipe (libzmq's
// session keeps it unless ZMQ_IMMEDIATE is set): sends while nobody is bound
// are accepted up to SNDHWM (libzmq's writer learns of reads only every half
// HWM, so at least half of it), and all of them reach the next socket that
// binds the endpoint, in order.
template <class Env>
void connecting_push_queues_while_no_binder(Env& env, const std::string& ep) {
  auto push = env.make_socket(socket_kind::push, small_pipes());
  push.connect(ep);
  std::optional<typename Env::socket> binder{env.make_socket(socket_kind::pull, small_pipes())};
  binder->bind(ep);
  ASSERT_EQ(push.send(bytes_of("probe")), send_result::ok);
  ASSERT_EQ(recv_one(env, *binder, env.now_ns() + 5 * second), std::optional<std::string>{"probe"}) << "never connected";
  binder.reset();                 // The bound peer's process dies.
  pause_for(env, 100 * milli);    // libzmq's I/O thread sees the connection end.
  int accepted = 0;
  while (accepted < 1000 && push.send(bytes_of("d" + std::to_string(accepted))) == send_result::ok) ++accepted;
  EXPECT_GE(accepted, 5) << "a connecting PUSH without a peer still queues (at least half its SNDHWM)";
  EXPECT_LE(accepted, 10) << "up to its SNDHWM";
  auto successor = env.make_socket(socket_kind::pull, small_pipes());
  successor.bind(ep);
  const std::vector<std::string> got = recv_until_quiet(env, successor, 5 * second, 200 * milli);
  ASSERT_EQ(got.size(), static_cast<std::size_t>(accepted)) << "every send accepted while no peer was bound arrives";
  for (int i = 0; i < accepted; ++i) EXPECT_EQ(got[static_cast<std::size_t>(i)], "d" + std::to_string(i)) << "FIFO";
}

// What a connecting PUSH's pipe still held when its bound peer died (the
// peer had stopped reading and every buffer between them was full) goes to
// the next binder: a run of the latest messages sent before the death, then
// the sends made while nobody was bound, in order; together at most SNDHWM.
// Messages the dead peer had taken (its RCVHWM queue, the kernel buffers,
// libzmq's encoder) are lost with it. How many the pipe held is libzmq's
// business (its reads are batched), so the case checks the shape, not the
// count. Big messages, so that the kernel's socket buffers fill quickly.
template <class Env>
void connecting_pipe_survives_a_binder_restart(Env& env, const std::string& ep) {
  auto push = env.make_socket(socket_kind::push, small_pipes());
  push.connect(ep);
  std::optional<typename Env::socket> binder{env.make_socket(socket_kind::pull, small_pipes())};
  binder->bind(ep);
  ASSERT_EQ(push.send(bytes_of("probe")), send_result::ok);
  ASSERT_EQ(recv_one(env, *binder, env.now_ns() + 5 * second), std::optional<std::string>{"probe"}) << "never connected";
  const std::string padding(64 * 1024, '.');
  auto message = [&](char kind, int i) { return kind + std::to_string(i) + ":" + padding; };
  // The peer stops reading: fill until back-pressure holds even after
  // libzmq's I/O thread has had time to move what it can.
  int before = 0;
  for (int refused = 0; refused < 3 && before < 100'000;) {
    if (push.send(bytes_of(message('p', before))) == send_result::ok) {
      ++before;
      refused = 0;
    } else {
      ++refused;
      pause_for(env, 20 * milli);
    }
  }
  ASSERT_LT(before, 100'000) << "a reader that does not read must push back";
  binder.reset();
  pause_for(env, 100 * milli);
  int during = 0;
  while (during < 1000 && push.send(bytes_of(message('n', during))) == send_result::ok) ++during;
  auto successor = env.make_socket(socket_kind::pull, small_pipes());
  successor.bind(ep);
  const std::vector<std::string> got = recv_until_quiet(env, successor, 5 * second, 200 * milli);
  auto label = [](const std::string& m) { return m.substr(0, m.find(':')); };
  ASSERT_FALSE(got.empty()) << "what the pipe held reaches the new binder";
  ASSERT_EQ(got.front()[0], 'p') << "the pipe's oldest message comes first: " << label(got.front());
  const int first = std::stoi(label(got.front()).substr(1));
  const int held = before - first;
  ASSERT_GE(held, 1);
  ASSERT_EQ(got.size(), static_cast<std::size_t>(held + during)) << "held " << held << ", sent while unbound " << during;
  for (int i = 0; i < held; ++i) EXPECT_EQ(label(got[static_cast<std::size_t>(i)]), "p" + std::to_string(first + i));
  for (int i = 0; i < during; ++i) EXPECT_EQ(label(got[static_cast<std::size_t>(held + i)]), "n" + std::to_string(i));
  EXPECT_LE(held + during, 10) << "a connecting pipe without a peer holds at most SNDHWM";
}

// ZMQ_MAXMSGSIZE on a bound PULL: a bigger message is a protocol error; the
// receiver drops that connection and never sees the message. The connecting
// PUSH reconnects (keeping its pipe), so later messages arrive; those that
// were in flight with the oversized one may go with its connection.
template <class Env>
void oversized_message_drops_the_connection(Env& env, const std::string& ep) {
  socket_options limited = small_pipes();
  limited.max_msg_bytes = 64;
  auto pull = env.make_socket(socket_kind::pull, limited);
  pull.bind(ep);
  auto push = env.make_socket(socket_kind::push, small_pipes());
  push.connect(ep);
  ASSERT_EQ(push.send(bytes_of("before")), send_result::ok);
  ASSERT_EQ(recv_one(env, pull, env.now_ns() + 5 * second), std::optional<std::string>{"before"}) << "never connected";
  ASSERT_EQ(push.send(bytes_of(std::string(100, 'x'))), send_result::ok) << "the sender does not know the receiver's limit";
  const ns_t deadline = env.now_ns() + 5 * second;
  int after = 0;
  for (int i = 0; after < 3 && env.now_ns() < deadline; ++i) {
    (void)push.send(bytes_of("after-" + std::to_string(i)));
    if (auto m = recv_one(env, pull, env.now_ns() + 20 * milli)) {
      ASSERT_LE(m->size(), 64u) << "an oversized message was received";
      EXPECT_EQ(m->substr(0, 6), "after-");
      ++after;
    }
  }
  EXPECT_EQ(after, 3) << "after the connection was dropped the sender reconnects and its messages arrive";
}

// ---------------------------------------------------------------- harnesses

using case_fn_zmq = void (*)(aegis::zmq_env&, const std::string&);
using case_fn_sim = void (*)(aegis::sim::sim_env&, const std::string&);

void run_zmq(case_fn_zmq fn, const std::string& name) {
  // A fresh private directory per case, removed afterwards: libzmq leaves the
  // socket file behind when a bound socket is closed with messages queued.
  char dir[] = "/tmp/aegis-contract-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr) << std::strerror(errno);
  {
    aegis::zmq_env env;
    std::string endpoint = "ipc://";
    endpoint.append(dir).append("/").append(name).append(".sock");
    fn(env, endpoint);
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

void run_sim(case_fn_sim fn, std::uint64_t seed) {
  aegis::sim::world w{seed, {}};
  aegis::sim::network net{w, {}};
  auto p = w.add_process("test");
  aegis::sim::sim_env env{w, net, p};
  w.spawn(p, "case", [&] { fn(env, "ipc://sim/contract.sock"); });
  const auto r = w.run();
  ASSERT_EQ(r.outcome, aegis::sim::run_outcome::finished) << r.reason;
}

#define CONTRACT_CASE(name)                                              \
  TEST(SocketContractZmq, name) { run_zmq(&name<aegis::zmq_env>, #name); } \
  TEST(SocketContractSim, name) {                                          \
    for (std::uint64_t seed = 1; seed <= 5; ++seed) {                      \
      SCOPED_TRACE("seed " + std::to_string(seed));                        \
      run_sim(&name<aegis::sim::sim_env>, seed);                           \
    }                                                                      \
  }

CONTRACT_CASE(fifo_per_pipe)
CONTRACT_CASE(bound_push_without_peer_would_block)
CONTRACT_CASE(would_block_at_hwm)
CONTRACT_CASE(messages_to_a_dead_peer_are_lost)
CONTRACT_CASE(connect_before_bind_reconnects)
CONTRACT_CASE(doorbell_and_deadline)
CONTRACT_CASE(wait_after_a_receive_sees_queued_messages)
CONTRACT_CASE(connecting_push_queues_while_no_binder)
CONTRACT_CASE(connecting_pipe_survives_a_binder_restart)
CONTRACT_CASE(oversized_message_drops_the_connection)

}  // namespace
