// Simulated PUSH/PULL sockets; see network.hpp for the model.
#include "sim/network.hpp"

#include <algorithm>
#include <system_error>

namespace aegis::sim {

network::network(sim::world& w, network_options options)
    : world_(w), options_(options), rng_(w.stream("network")) {
  AEGIS_ASSERT(options_.latency_min_ns >= 0 && options_.latency_min_ns <= options_.latency_max_ns,
               "latency bounds are ordered and non-negative");
  world_.on_kill([this](process_id p) { on_kill(p); });
}

socket_id network::open(process_id process, socket_kind kind, const socket_options& options) {
  AEGIS_ASSERT(world_.alive(process), "a dead process opens no sockets");
  socket_rec s;
  s.process = process;
  s.kind = kind;
  s.options = options;
  sockets_.push_back(std::move(s));
  return static_cast<socket_id>(sockets_.size() - 1);
}

void network::close(socket_id id) {
  socket_rec& s = sockets_.at(id);
  if (!s.open) return;
  s.open = false;
  if (!s.bound.empty()) {
    auto it = bound_.find(s.bound);
    if (it != bound_.end() && it->second == id) bound_.erase(it);
  }
  const std::vector<std::uint32_t> pipes = s.pipes;
  for (std::uint32_t p : pipes) kill_pipe(p, id);
  s.pipes.clear();
  world_.wake_all(s.readers);
}

void network::bind(socket_id id, std::string_view endpoint) {
  socket_rec& s = sockets_.at(id);
  AEGIS_ASSERT(s.open, "bind on a closed socket");
  if (auto it = bound_.find(endpoint); it != bound_.end() && sockets_[it->second].open) {
    throw std::system_error(std::make_error_code(std::errc::address_in_use), std::string(endpoint));
  }
  s.bound = std::string(endpoint);
  bound_[s.bound] = id;
}

void network::connect(socket_id id, std::string_view endpoint) {
  socket_rec& s = sockets_.at(id);
  AEGIS_ASSERT(s.open, "connect on a closed socket");
  s.connected = std::string(endpoint);
  pipe p;
  p.endpoint = s.connected;
  (s.kind == socket_kind::push ? p.push : p.pull) = id;
  pipes_.push_back(std::move(p));
  const auto pid = static_cast<std::uint32_t>(pipes_.size() - 1);
  s.pipes.push_back(pid);
  try_attach(id, pid);
}

void network::try_attach(socket_id connecting, std::uint32_t pid) {
  const socket_rec& s = sockets_[connecting];
  if (!s.open || pipes_[pid].dead) return;
  auto it = bound_.find(s.connected);
  const bool peer_ready = it != bound_.end() && sockets_[it->second].open && sockets_[it->second].kind != s.kind &&
                          world_.alive(sockets_[it->second].process);
  if (!peer_ready) {
    // libzmq retries a refused connection every ZMQ_RECONNECT_IVL.
    const ns_t retry = static_cast<ns_t>(s.options.reconnect_ivl_ms) * 1'000'000;
    world_.at(world_.now_ns() + (retry > 0 ? retry : 1'000'000), [this, connecting, pid] { try_attach(connecting, pid); });
    return;
  }
  const socket_id bound = it->second;
  world_.at(world_.now_ns() + options_.handshake_ns, [this, connecting, pid, bound] {
    pipe& p = pipes_[pid];
    const socket_rec& c = sockets_[connecting];
    const socket_rec& b = sockets_[bound];
    if (!c.open || p.dead) return;
    if (!b.open || !world_.alive(b.process)) {
      try_attach(connecting, pid);  // The peer went away during the handshake: retry.
      return;
    }
    p.attached = true;
    (c.kind == socket_kind::push ? p.pull : p.push) = bound;
    sockets_[bound].pipes.push_back(pid);
    ++counters_.connections;
    world_.record_for(c.process, event_kind::connect, pid, bound);
    notify_monitor(connecting);
    notify_monitor(bound);
    // Messages queued before the connection leave now, in order.
    ns_t t = world_.now_ns();
    for (message& m : p.queue) {
      t = std::max(t + latency(p.endpoint) / 8, m.deliver_at_ns);
      m.deliver_at_ns = t;
    }
    p.last_deliver_ns = std::max(p.last_deliver_ns, t);
    if (!p.queue.empty()) schedule_delivery(pid, p.queue.front().deliver_at_ns);
  });
}

void network::kill_pipe(std::uint32_t pid, socket_id closed) {
  pipe& p = pipes_[pid];
  if (p.dead) return;
  if (p.attached && p.pull == closed && p.push != no_socket && sockets_[p.push].open &&
      !sockets_[p.push].connected.empty()) {
    // libzmq: a connecting socket's session keeps its pipe when the
    // connection ends (ZMQ_IMMEDIATE off); what is still in it goes to the
    // next peer that binds the endpoint.
    keep_for_reconnect(pid);
    return;
  }
  p.dead = true;
  const process_id dead_process = sockets_[closed].process;
  const bool pull_dead = p.pull == no_socket || p.pull == closed || !sockets_[p.pull].open;
  const ns_t now = world_.now_ns();
  std::size_t lost = 0;
  if (pull_dead || !p.attached) {
    lost = p.queue.size();
    p.queue.clear();
  } else {
    // Messages still in the dead sender's process are lost; those already
    // handed over to the live receiver stay readable.
    while (!p.queue.empty() && p.queue.back().deliver_at_ns > now) {
      p.queue.pop_back();
      ++lost;
    }
  }
  counters_.lost += lost;
  world_.record_for(dead_process, event_kind::disconnect, pid, static_cast<std::int64_t>(lost));
  if (lost != 0) world_.record_for(dead_process, event_kind::lost, pid, static_cast<std::int64_t>(lost));
  // A connecting socket that survives its bound peer reconnects on a new pipe.
  for (socket_id side : {p.push, p.pull}) {
    if (side == no_socket) continue;
    socket_rec& s = sockets_[side];
    if (side == closed || !s.open || s.connected.empty()) continue;
    if (auto it = std::find(no_reconnect_.begin(), no_reconnect_.end(), side); it != no_reconnect_.end()) {
      no_reconnect_.erase(it);
      continue;
    }
    const ns_t retry = static_cast<ns_t>(s.options.reconnect_ivl_ms) * 1'000'000;
    world_.at(now + (retry > 0 ? retry : 1'000'000), [this, side] {
      socket_rec& c = sockets_[side];
      if (!c.open) return;
      pipe fresh;
      fresh.endpoint = c.connected;
      (c.kind == socket_kind::push ? fresh.push : fresh.pull) = side;
      pipes_.push_back(std::move(fresh));
      const auto fresh_id = static_cast<std::uint32_t>(pipes_.size() - 1);
      c.pipes.push_back(fresh_id);
      try_attach(side, fresh_id);
    });
  }
  if (p.queue.empty()) detach(pid);
  if (p.pull != no_socket) world_.wake_all(sockets_[p.pull].readers);
  for (socket_id side : {p.push, p.pull}) {
    if (side != no_socket && side != closed) notify_monitor(side);
  }
}

void network::keep_for_reconnect(std::uint32_t pid) {
  pipe& p = pipes_[pid];
  AEGIS_ASSERT(p.attached && !p.dead && p.push != no_socket && p.pull != no_socket,
               "only an established pipe of a connecting PUSH is kept for a reconnect");
  const socket_id sender = p.push;
  const socket_id receiver = p.pull;
  AEGIS_ASSERT(!sockets_[sender].connected.empty(), "the kept side is the connecting one");
  const ns_t now = world_.now_ns();
  // What the receiver had taken is lost with its side of the connection:
  // the messages delivered to it, up to its RCVHWM (a receiver that stopped
  // reading takes no more; the rest waits on the sender's side). The
  // sender's own pipe keeps at most SNDHWM of the rest (the kernel buffers
  // and libzmq's encoder go with the connection too).
  auto hwm = [](int v) { return v <= 0 ? SIZE_MAX : static_cast<std::size_t>(v); };
  const std::size_t keep_max = hwm(sockets_[sender].options.send_hwm);
  const std::size_t taken_max = hwm(sockets_[receiver].options.recv_hwm);
  std::size_t lost = 0;
  while (!p.queue.empty() && lost < taken_max && p.queue.front().deliver_at_ns <= now) {
    p.queue.pop_front();
    ++lost;
  }
  while (p.queue.size() > keep_max) {
    p.queue.pop_front();
    ++lost;
  }
  counters_.lost += lost;
  world_.record_for(sockets_[sender].process, event_kind::disconnect, pid, static_cast<std::int64_t>(lost));
  if (lost != 0) world_.record_for(sockets_[sender].process, event_kind::lost, pid, static_cast<std::int64_t>(lost));
  auto& v = sockets_[receiver].pipes;
  v.erase(std::remove(v.begin(), v.end(), pid), v.end());
  world_.wake_all(sockets_[receiver].readers);
  p.pull = no_socket;
  p.attached = false;
  AEGIS_ASSERT(p.queue.size() <= keep_max, "a detached pipe holds at most SNDHWM messages");
  notify_monitor(sender);
  const ns_t retry = static_cast<ns_t>(sockets_[sender].options.reconnect_ivl_ms) * 1'000'000;
  world_.at(now + (retry > 0 ? retry : 1'000'000), [this, sender, pid] { try_attach(sender, pid); });
}

void network::drop_connection(std::uint32_t pid) {
  pipe& p = pipes_[pid];
  AEGIS_ASSERT(!p.dead && p.pull != no_socket, "a receiver drops a live connection");
  const socket_id receiver = p.pull;
  if (p.attached && p.push != no_socket && sockets_[p.push].open && !sockets_[p.push].connected.empty()) {
    // The receiver is the bound side: its session ends; the connecting
    // sender reconnects and keeps what it had not handed over.
    keep_for_reconnect(pid);
    return;
  }
  // The receiver connected: libzmq 4.3 ends a connecting session for good on
  // a protocol error (no reconnect), and the pipe goes with what it holds.
  no_reconnect_.push_back(receiver);
  kill_pipe(pid, p.push);
  p.queue.clear();
  detach(pid);
}

void network::notify_monitor(socket_id s) {
  const socket_rec& r = sockets_[s];
  if (r.monitor != no_doorbell && r.open) ring_bell(r.monitor);
}

bool network::connected(socket_id id) const {
  const socket_rec& s = sockets_.at(id);
  if (!s.open) return false;
  return std::any_of(s.pipes.begin(), s.pipes.end(), [&](std::uint32_t pid) {
    const pipe& p = pipes_[pid];
    return p.attached && !p.dead;
  });
}

void network::monitor(socket_id id, doorbell_id d) {
  AEGIS_ASSERT(d < doorbells_.size(), "monitor with a doorbell of this network");
  sockets_.at(id).monitor = d;
}

void network::detach(std::uint32_t pid) {
  pipe& p = pipes_[pid];
  for (socket_id side : {p.push, p.pull}) {
    if (side == no_socket) continue;
    auto& v = sockets_[side].pipes;
    v.erase(std::remove(v.begin(), v.end(), pid), v.end());
  }
}

std::size_t network::pipe_capacity(const pipe& p) const {
  auto hwm = [](int v) { return v <= 0 ? std::size_t{1} << 40 : static_cast<std::size_t>(v); };
  std::size_t cap = hwm(sockets_[p.push].options.send_hwm);
  if (p.attached && p.pull != no_socket) cap += hwm(sockets_[p.pull].options.recv_hwm);
  return cap;
}

ns_t network::latency(const std::string& endpoint) {
  ns_t l = rng_.range(options_.latency_min_ns, options_.latency_max_ns);
  if (options_.spike_ppm != 0 && rng_.chance_ppm(options_.spike_ppm)) l += options_.spike_ns;
  if (auto it = clogs_.find(endpoint); it != clogs_.end() && it->second.until_ns > world_.now_ns()) {
    l += it->second.extra_ns;
  }
  return l;
}

void network::schedule_delivery(std::uint32_t pid, ns_t at_ns) {
  world_.at(std::max(at_ns, world_.now_ns()), [this, pid] {
    const pipe& p = pipes_[pid];
    if (p.pull != no_socket) world_.wake_all(sockets_[p.pull].readers);
  });
}

send_result network::send(socket_id id, std::span<const std::byte> bytes) {
  world_.yield_point();
  socket_rec& s = sockets_.at(id);
  AEGIS_ASSERT(s.kind == socket_kind::push, "only PUSH sockets send");
  if (!s.open) return send_result::failed;
  const std::size_t n = s.pipes.size();
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t idx = (s.round_robin + k) % n;
    const std::uint32_t pid = s.pipes[idx];
    pipe& p = pipes_[pid];
    if (p.dead || p.queue.size() >= pipe_capacity(p)) continue;
    s.round_robin = idx + 1;
    const ns_t at = std::max(world_.now_ns() + latency(p.endpoint), p.last_deliver_ns);
    p.last_deliver_ns = at;
    std::vector<std::byte> copy;
    if (!spare_buffers_.empty()) {
      copy = std::move(spare_buffers_.back());
      spare_buffers_.pop_back();
    }
    copy.assign(bytes.begin(), bytes.end());
    p.queue.push_back(message{std::move(copy), at});
    ++counters_.sent;
    world_.record(event_kind::send, pid, static_cast<std::int64_t>(bytes.size()));
    if (p.attached) schedule_delivery(pid, at);
    return send_result::ok;
  }
  ++counters_.would_block;
  world_.record(event_kind::send_blocked, id, static_cast<std::int64_t>(n));
  return send_result::would_block;
}

bool network::readable(socket_id id) const {
  const socket_rec& s = sockets_.at(id);
  if (!s.open || s.kind != socket_kind::pull) return false;
  const ns_t now = world_.now_ns();
  for (std::uint32_t pid : s.pipes) {
    const pipe& p = pipes_[pid];
    if ((p.attached || p.dead) && !p.queue.empty() && p.queue.front().deliver_at_ns <= now) return true;
  }
  return false;
}

recv_result network::recv(socket_id id, std::vector<std::byte>& buffer) {
  world_.yield_point();
  socket_rec& s = sockets_.at(id);
  AEGIS_ASSERT(s.kind == socket_kind::pull, "only PULL sockets receive");
  if (!s.open) return recv_result::failed;
  const ns_t now = world_.now_ns();
  for (;;) {
    const std::size_t n = s.pipes.size();
    bool got = false;
    for (std::size_t k = 0; k < n && !got; ++k) {
      const std::size_t idx = (s.round_robin + k) % n;
      const std::uint32_t pid = s.pipes[idx];
      pipe& p = pipes_[pid];
      if (!(p.attached || p.dead) || p.queue.empty() || p.queue.front().deliver_at_ns > now) continue;
      s.round_robin = idx + 1;
      buffer.swap(p.queue.front().bytes);
      if (spare_buffers_.size() < max_spare_buffers && p.queue.front().bytes.capacity() != 0) {
        spare_buffers_.push_back(std::move(p.queue.front().bytes));
      }
      p.queue.pop_front();
      if (p.dead && p.queue.empty()) detach(pid);
      got = true;
      const auto max = s.options.max_msg_bytes;
      if (max >= 0 && static_cast<std::int64_t>(buffer.size()) > max) {
        // libzmq: a message above ZMQ_MAXMSGSIZE is a protocol error; the
        // receiver drops the connection and never sees the message.
        ++counters_.oversized;
        world_.record(event_kind::lost, pid, 1, "oversized");
        if (!p.dead) drop_connection(pid);
        got = false;
        break;
      }
      ++counters_.received;
      world_.record(event_kind::recv, pid, static_cast<std::int64_t>(buffer.size()));
      if (on_receive_) on_receive_(s.process, id, buffer);
    }
    if (got) return recv_result::ok;
    if (!readable(id)) return recv_result::would_block;
  }
}

doorbell_id network::make_doorbell() {
  doorbells_.emplace_back();
  return static_cast<doorbell_id>(doorbells_.size() - 1);
}

void network::ring(doorbell_id d) {
  world_.yield_point();
  ring_bell(d);
}

void network::ring_bell(doorbell_id d) {
  doorbell_rec& b = doorbells_.at(d);
  b.rung = true;
  world_.wake_all(b.waiters);
}

wake_reason network::wait(socket_id id, doorbell_id d, ns_t deadline_ns) {
  for (;;) {
    world_.yield_point();
    if (readable(id)) return wake_reason::readable;
    doorbell_rec& b = doorbells_.at(d);
    if (b.rung) {
      b.rung = false;
      return wake_reason::doorbell;
    }
    if (world_.now_ns() >= deadline_ns) return wake_reason::deadline;
    world_.enqueue_current(sockets_.at(id).readers);
    world_.enqueue_current(b.waiters);
    world_.block(deadline_ns);
  }
}

void network::clog(std::string endpoint, ns_t extra_ns, ns_t until_ns) {
  clog_rec& c = clogs_[std::move(endpoint)];
  c.extra_ns = extra_ns;
  c.until_ns = until_ns;
}

void network::on_kill(process_id p) {
  for (socket_id id = 0; id < sockets_.size(); ++id) {
    if (sockets_[id].open && sockets_[id].process == p) close(id);
  }
}

}  // namespace aegis::sim
