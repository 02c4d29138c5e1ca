// Chunked, lock-free fate ledger.
#include "core/ledger.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>
#include <stdexcept>
#include <system_error>

#include "aegis/assert.hpp"

namespace aegis::core {

const char* to_string(ledger_state s) noexcept {
  switch (s) {
    case ledger_state::none: return "none";
    case ledger_state::in_flight: return "in_flight";
    case ledger_state::verdict: return "verdict";
    case ledger_state::expired: return "expired";
    case ledger_state::dropped_ring_full: return "dropped_ring_full";
    case ledger_state::dropped_timeout: return "dropped_timeout";
    case ledger_state::dropped_closed: return "dropped_closed";
    case ledger_state::abandoned: return "abandoned";
  }
  return "?";
}

ledger::ledger() : chunks_(std::make_unique<std::atomic<std::uint8_t*>[]>(max_chunks)) {
  for (std::size_t i = 0; i < max_chunks; ++i) chunks_[i].store(nullptr, std::memory_order_relaxed);
}

ledger::~ledger() {
  for (std::size_t i = 0; i < max_chunks; ++i) std::free(chunks_[i].load(std::memory_order_relaxed));
}

std::uint8_t* ledger::slot(std::uint64_t id, bool create) {
  AEGIS_ASSERT(id >= 1, "transaction ids start at 1");
  const std::uint64_t c = (id - 1) / chunk_ids;
  if (c >= max_chunks) throw std::length_error("ledger: transaction id beyond capacity");
  auto* chunk = chunks_[c].load(std::memory_order_acquire);
  if (chunk == nullptr && create) {
    // calloc, not new[](): a chunk is 1 MiB, which glibc maps fresh from
    // the kernel already zeroed, so its pages fault in one at a time as ids
    // reach them (~10 us per 4 KiB here). Zeroing it here took a producer
    // ~3 ms, and it happened at the first payment and then every 2^20 ids.
    auto* fresh = static_cast<std::uint8_t*>(std::calloc(chunk_ids, 1));
    if (fresh == nullptr) throw std::bad_alloc();
    if (chunks_[c].compare_exchange_strong(chunk, fresh, std::memory_order_acq_rel)) {
      chunk = fresh;
    } else {
      std::free(fresh);  // Another producer won; `chunk` now holds its chunk.
    }
  }
  return chunk == nullptr ? nullptr : chunk + (id - 1) % chunk_ids;
}

std::uint8_t* ledger::slot(std::uint64_t id) const noexcept {
  const std::uint64_t c = (id - 1) / chunk_ids;
  if (id == 0 || c >= max_chunks) return nullptr;
  auto* chunk = chunks_[c].load(std::memory_order_acquire);
  return chunk == nullptr ? nullptr : chunk + (id - 1) % chunk_ids;
}

void ledger::offered(std::uint64_t id) {
  std::atomic_ref<std::uint8_t> s(*slot(id, true));
  AEGIS_ASSERT(s.load(std::memory_order_relaxed) == 0, "an id is offered once");
  s.store(static_cast<std::uint8_t>(ledger_state::in_flight), std::memory_order_release);
}

void ledger::dropped(std::uint64_t id, offload_status why) noexcept {
  ledger_state st = ledger_state::dropped_closed;
  switch (why) {
    case offload_status::accepted: AEGIS_ASSERT(false, "an accepted id is not dropped"); break;
    case offload_status::dropped_ring_full: st = ledger_state::dropped_ring_full; break;
    case offload_status::dropped_timeout: st = ledger_state::dropped_timeout; break;
    case offload_status::dropped_closed: st = ledger_state::dropped_closed; break;
  }
  std::uint8_t* s = slot(id);
  AEGIS_ASSERT(s != nullptr, "offered() ran before dropped()");
  std::atomic_ref<std::uint8_t>(*s).store(static_cast<std::uint8_t>(st), std::memory_order_release);
}

bool ledger::terminal(std::uint64_t id, fate f) noexcept {
  std::uint8_t* s = slot(id);
  std::uint8_t expected = static_cast<std::uint8_t>(ledger_state::in_flight);
  const auto st = static_cast<std::uint8_t>(f == fate::verdict   ? ledger_state::verdict
                                            : f == fate::expired ? ledger_state::expired
                                                                 : ledger_state::abandoned);
  if (s == nullptr || !std::atomic_ref<std::uint8_t>(*s).compare_exchange_strong(expected, st, std::memory_order_acq_rel)) {
    conflicts_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

ledger_state ledger::state(std::uint64_t id) const noexcept {
  std::uint8_t* s = slot(id);
  return s == nullptr ? ledger_state::none
                      : static_cast<ledger_state>(std::atomic_ref<std::uint8_t>(*s).load(std::memory_order_acquire));
}

ledger_tally ledger::tally(std::uint64_t max_id) const noexcept {
  ledger_tally t;
  for (std::uint64_t id = 1; id <= max_id; ++id) {
    const auto st = static_cast<std::size_t>(state(id));
    AEGIS_ASSERT(st < ledger_state_count, "ledger bytes hold ledger states");
    ++t.by_state[st];
  }
  t.conflicts = conflicts_.load(std::memory_order_relaxed);
  return t;
}

void ledger::write(const std::string& path, std::uint64_t max_id) const {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "w"), &std::fclose);
  if (!f) throw std::system_error(errno, std::generic_category(), "cannot write ledger " + path);
  for (std::uint64_t id = 1; id <= max_id; ++id) {
    const auto st = state(id);
    if (st == ledger_state::none) continue;
    std::fprintf(f.get(), "%llu %s\n", static_cast<unsigned long long>(id), to_string(st));
  }
  if (std::fflush(f.get()) != 0 || std::ferror(f.get())) throw std::system_error(errno, std::generic_category(), "ledger " + path);
}

}  // namespace aegis::core
