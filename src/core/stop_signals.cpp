// Stop signals and the watcher thread; see stop_signals.hpp.
#include "core/stop_signals.hpp"

#include <signal.h>

#include <fmt/core.h>

#include "aegis/assert.hpp"

namespace aegis::core {

namespace {
sigset_t stop_signal_set() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}
}  // namespace

void block_stop_signals() {
  const sigset_t set = stop_signal_set();
  const int rc = pthread_sigmask(SIG_BLOCK, &set, nullptr);
  AEGIS_ASSERT(rc == 0, "blocking two valid signals cannot fail");
  sigset_t now;
  AEGIS_ASSERT(pthread_sigmask(SIG_BLOCK, nullptr, &now) == 0, "reading the signal mask cannot fail");
  AEGIS_ASSERT(sigismember(&now, SIGTERM) == 1, "SIGTERM is blocked: only the watcher takes it");
}

watcher::watcher(zmq_env& env, os_offloader& off, const offloader_config& cfg, const options& o, stop_signals& stop)
    : env_(env), off_(off), cfg_(cfg), o_(o), stop_(stop) {
  AEGIS_ASSERT(!cfg_.offload_endpoint.empty(), "the wait report names the endpoints a bridge needs");
  AEGIS_ASSERT(o_.bridge_wait_report_ns >= 0, "0 (never) or a positive report interval");
  thread_ = std::thread([this] { run(); });
  AEGIS_ASSERT(thread_.joinable(), "the watcher runs until finish()");
}

void watcher::finish() {
  finished_.store(true);
  if (thread_.joinable()) thread_.join();
  AEGIS_ASSERT(!thread_.joinable(), "after finish() no signal is taken any more");
}

void watcher::run() {
  const sigset_t set = stop_signal_set();
  const timespec tick{0, 50'000'000};
  const ns_t start_wait_ns = env_.now_ns();
  // Also says on stderr, every --bridge-wait-report, that no bridge has said
  // HELLO yet (block mode: producers wait; drop mode: full-ring drops are
  // counted), and when frames of another protocol version arrive.
  const std::string& offload_endpoint = cfg_.offload_endpoint;
  const std::string& verdict_endpoint = cfg_.verdict_endpoint;
  ns_t next_wait_report_ns = aegis::deadline_after(env_.now_ns(), o_.bridge_wait_report_ns);
  std::uint64_t bad_version_seen = 0;
  while (!finished_.load()) {
    const aegis::offloader_counters wc = off_.counters();
    if (wc.hellos == 0 && o_.bridge_wait_report_ns > 0 && env_.now_ns() >= next_wait_report_ns) {
      fmt::print(stderr,
                 "aegis-core: waiting for a bridge on {}: no HELLO after {} s ({} mode; offered {}, dropped {}, "
                 "in_flight {}); a bridge needs --offload {} --verdicts {}\n",
                 offload_endpoint, (env_.now_ns() - start_wait_ns) / 1'000'000'000, o_.mode, wc.offered, wc.dropped(),
                 wc.in_flight, offload_endpoint, verdict_endpoint);
      next_wait_report_ns = aegis::deadline_after(env_.now_ns(), o_.bridge_wait_report_ns);
    }
    if (wc.rejected(aegis::reject_reason::bad_version) > bad_version_seen) {
      bad_version_seen = wc.rejected(aegis::reject_reason::bad_version);
      fmt::print(stderr, "aegis-core: rejected {} frame(s) of another protocol version (this core speaks v{}); is the bridge up to date?\n",
                 bad_version_seen, aegis::protocol_version);
    }
    const int sig = sigtimedwait(&set, nullptr, &tick);
    if (sig > 0) {
      AEGIS_ASSERT(sig == SIGINT || sig == SIGTERM, "the watcher waits for the stop signals only");
      stop_.last_signal.store(sig);
      stop_.received.fetch_add(1);
      stop_.stop_requested.store(true);
      off_.close_admission();
    }
  }
}

}  // namespace aegis::core
