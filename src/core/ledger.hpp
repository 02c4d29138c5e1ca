// The fate of every offered transaction id, for the --ledger file and for
// cross-checking the offloader's counters.
//
// Usage:
//   aegis::core::ledger l;
//   l.offered(id);                                  // producer, before offload()
//   l.dropped(id, aegis::offload_status::dropped_ring_full);   // producer, on a drop
//   l.terminal(id, aegis::fate::verdict);           // pump (fate callback)
//   l.write("ledger.txt");                          // after stop(): "<id> <fate>" per line
//
// Storage is chunked and allocated on first touch, so --duration runs need no
// size up front (one byte per id). Writers race only in ways the offloader
// orders: a producer marks an id offered before offload() publishes it, and the
// pump marks it terminal after reading it from the ring.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "aegis/offloader.hpp"

namespace aegis::core {

/// One id's state. `none` ids (never offered: low-risk, or not generated) are not written.
enum class ledger_state : std::uint8_t {
  none = 0,
  in_flight,          ///< Accepted, no terminal state (yet).
  verdict,
  expired,
  dropped_ring_full,
  dropped_timeout,
  dropped_closed,
  abandoned,          ///< Sent max_sends times without a verdict.
};
/// Number of states.
inline constexpr std::size_t ledger_state_count = 8;
/// Name written in the ledger file.
const char* to_string(ledger_state s) noexcept;

/// Per-state totals.
struct ledger_tally {
  std::array<std::uint64_t, ledger_state_count> by_state{};  ///< Indexed by ledger_state.
  std::uint64_t conflicts = 0;  ///< Terminal transitions from a state other than in_flight.
  /// Count in state `s`.
  std::uint64_t operator[](ledger_state s) const noexcept { return by_state[static_cast<std::size_t>(s)]; }
};

/// The ledger.
class ledger {
 public:
  /// Ids per chunk, and chunks (ids up to chunk_ids * max_chunks).
  static constexpr std::uint64_t chunk_ids = 1u << 20;
  static constexpr std::size_t max_chunks = 1u << 14;

  ledger();
  ~ledger();
  ledger(const ledger&) = delete;
  ledger& operator=(const ledger&) = delete;

  /// Marks `id` (>= 1) offered, before offload(). Producer threads.
  void offered(std::uint64_t id);
  /// Records why an offered `id` was not admitted. Producer threads.
  void dropped(std::uint64_t id, offload_status why) noexcept;
  /// Records the terminal state of an accepted `id`. Pump thread. Returns
  /// false (and counts a conflict) if `id` was not in flight.
  bool terminal(std::uint64_t id, fate f) noexcept;
  /// The state of `id`.
  ledger_state state(std::uint64_t id) const noexcept;
  /// Totals over ids 1..=max_id.
  ledger_tally tally(std::uint64_t max_id) const noexcept;
  /// Writes "<id> <state>\n" for every offered id in 1..=max_id. Throws on I/O error.
  void write(const std::string& path, std::uint64_t max_id) const;

 private:
  // Chunks are plain bytes (from calloc) accessed through std::atomic_ref.
  std::uint8_t* slot(std::uint64_t id, bool create);
  std::uint8_t* slot(std::uint64_t id) const noexcept;

  std::unique_ptr<std::atomic<std::uint8_t*>[]> chunks_;
  std::atomic<std::uint64_t> conflicts_{0};
};

}  // namespace aegis::core
