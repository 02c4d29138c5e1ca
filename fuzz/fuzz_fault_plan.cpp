// libFuzzer target: the fault-plan parser (sim/scenario: `--faults SPEC`, and
// the "faults" field of an `aegis-sim replay` schedule).
//
// What it proves, for every input text:
//  - parse_fault_plan never crashes; it returns a plan, or nullopt with a
//    non-empty reason;
//  - a parsed plan prints (fault_plan::to_string) and re-parses to an equal
//    plan, and the printed text is a fixed point: the reproduce line a failing
//    run prints replays exactly that plan;
//  - events come out sorted by time.
#include <cstddef>
#include <cstdint>
#include <string>

#include "aegis/assert.hpp"
#include "sim/scenario.hpp"

using namespace aegis::sim;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 4096) return -1;  // Plans are short; long inputs only slow the search.
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::string error;
  const auto plan = parse_fault_plan(text, &error);
  if (!plan) {
    AEGIS_ASSERT(!error.empty(), "a rejected plan says why");
    return 0;
  }
  for (std::size_t i = 1; i < plan->events.size(); ++i) {
    AEGIS_ASSERT(plan->events[i - 1].at_ns <= plan->events[i].at_ns, "events are sorted by time");
  }
  const std::string printed = plan->to_string();
  std::string error2;
  const auto back = parse_fault_plan(printed, &error2);
  if (!back) std::fprintf(stderr, "printed plan '%s' does not parse: %s\n", printed.c_str(), error2.c_str());
  AEGIS_ASSERT(back.has_value(), "a printed plan parses");
  if (!(*back == *plan)) std::fprintf(stderr, "printed plan '%s' parses to '%s'\n", printed.c_str(), back->to_string().c_str());
  AEGIS_ASSERT(*back == *plan, "parse(print(plan)) == plan");
  AEGIS_ASSERT(back->to_string() == printed, "the printed plan is a fixed point");
  return 0;
}
