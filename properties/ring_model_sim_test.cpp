// Proves that the production ring buffer behaves like a bounded deque with
// three cursors when a producer fiber and a consumer fiber run concurrently
// in the simulator and the seeded scheduler (random or PCT) interleaves them
// at every atomic operation: rapidcheck generates rc::state command sequences
// (push, try_push, read, release, rewind), the ring's shape and the
// scheduler; properties/ring_case.hpp holds the model and its checks.
// A failure shrinks to a minimal command sequence; replay it with
//   RC_PARAMS="reproduce=..." build/release/properties/ring_model_sim_test
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include "properties/ring_case.hpp"

namespace aegis::props {
// rapidcheck prints a failing case with this.
inline void showValue(const ring_case& c, std::ostream& os) {
  os << "world_seed=" << c.world_seed << " capacity=" << c.capacity
     << " mode=" << (c.mode == admission::drop ? "drop" : "block") << " producers="
     << (c.multi_producer ? "multi" : "single") << " scheduler=" << sim::to_string(c.strategy)
     << " preempt_ppm=" << c.preempt_ppm << " commands=";
  rc::show(c.commands, os);
}
}  // namespace aegis::props

namespace {

RC_GTEST_PROP(RingModelSim, InterleavedProducerAndConsumerMatchTheDequeModel, ()) {
  const aegis::props::ring_case c = *aegis::props::gen_ring_case();
  const aegis::props::ring_case_result r = aegis::props::run_ring_case(c);
  if (!r.failure.empty()) RC_FAIL(r.failure);
}

}  // namespace
