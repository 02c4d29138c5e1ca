// SIGINT/SIGTERM for aegis-core: blocked in every thread and taken
// synchronously by one watcher thread, which also reports a missing bridge
// and frames of another protocol version on stderr.
//
// Usage:
//   aegis::core::block_stop_signals();        // in main, before any thread starts
//   aegis::core::stop_signals stop;
//   aegis::core::watcher w{env, off, cfg, o, stop};  // signals now stop the run
//   if (stop.requested()) ...;                 // producers poll this
//   w.finish();                                // joins the thread
//
// A first signal stops the producers and closes admission, so producers
// blocked on a full ring return (dropped_closed) instead of hanging; the
// drain counts signals to let a second one cut it short.
#pragma once

#include <atomic>
#include <thread>

#include "aegis/os_offloader.hpp"
#include "core/cli.hpp"

namespace aegis::core {

/// Blocks SIGINT and SIGTERM in the calling thread (and every thread it starts later).
void block_stop_signals();

/// What the watcher learned; read by the producers and the drain.
struct stop_signals {
  std::atomic<bool> stop_requested{false};  ///< A stop signal arrived: producers return.
  std::atomic<int> last_signal{0};          ///< The last signal taken, 0 = none.
  std::atomic<int> received{0};             ///< Stop signals taken so far.

  /// True once a stop signal arrived.
  bool requested() const noexcept { return stop_requested.load(std::memory_order_relaxed); }
};

/// The watcher thread; see the file comment. Joined by finish() or the destructor.
class watcher {
 public:
  /// Starts the thread; `off` (built from `cfg`), `cfg`, `o` and `stop` must outlive it.
  watcher(zmq_env& env, os_offloader& off, const offloader_config& cfg, const options& o, stop_signals& stop);
  watcher(const watcher&) = delete;
  watcher& operator=(const watcher&) = delete;
  /// Joins the thread if finish() did not.
  ~watcher() { finish(); }
  /// Stops and joins the thread (at most one 50 ms wait later). Idempotent.
  void finish();

 private:
  void run();

  zmq_env& env_;
  os_offloader& off_;
  const offloader_config& cfg_;
  const options& o_;
  stop_signals& stop_;
  std::atomic<bool> finished_{false};
  std::thread thread_;
};

}  // namespace aegis::core
