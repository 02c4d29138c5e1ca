// Production environment: the parts of os_env that make system calls.
#include "aegis/env.hpp"

#include <linux/futex.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <string>

namespace aegis {

namespace {
long futex(void* addr, int op, std::uint32_t val, const timespec* ts) noexcept {
  return syscall(SYS_futex, addr, op, val, ts, nullptr, 0);
}
}  // namespace

bool os_env::park(atomic<std::uint32_t>& word, std::uint32_t expected, ns_t deadline_ns) const noexcept {
  static_assert(sizeof(word) == sizeof(std::uint32_t), "futex needs a plain 32-bit word");
  for (;;) {
    if (word.load(std::memory_order_acquire) != expected) return true;
    if (deadline_ns == no_deadline) {
      futex(&word, FUTEX_WAIT_PRIVATE, expected, nullptr);
      return true;  // Woken (or spurious): the caller re-checks its condition.
    }
    const ns_t now = now_ns();
    if (now >= deadline_ns) return false;
    const ns_t left = deadline_ns - now;
    timespec ts{static_cast<time_t>(left / 1'000'000'000), static_cast<long>(left % 1'000'000'000)};
    const long rc = futex(&word, FUTEX_WAIT_PRIVATE, expected, &ts);
    if (rc == 0) return true;
    if (errno == ETIMEDOUT) return now_ns() < deadline_ns;
    if (errno == EAGAIN) return true;  // The word already changed.
    // EINTR: loop and re-check.
  }
}

void os_env::unpark_all(atomic<std::uint32_t>& word) const noexcept {
  futex(&word, FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr);
}

std::thread os_env::spawn(std::string_view name, std::function<void()> fn) const {
  std::string thread_name(name.substr(0, 15));
  return std::thread([thread_name = std::move(thread_name), fn = std::move(fn)] {
    pthread_setname_np(pthread_self(), thread_name.c_str());
    // 1 us timer slack instead of 50 us: the pump naps for tens of
    // microseconds between bursts, and the default slack would double each nap
    // (and the latency of whatever arrives during it).
    ::prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL);
    fn();
  });
}

}  // namespace aegis
