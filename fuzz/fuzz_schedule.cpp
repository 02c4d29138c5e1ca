// libFuzzer target: the schedule parser of `aegis-sim replay --schedule`
// (sim/schedule: JSON text -> derived scenario).
//
// What it proves, for every input text:
//  - parse_schedule either returns a scenario or throws std::invalid_argument
//    with a reason; no other exception escapes, nothing crashes (the JSON
//    library's own errors are turned into invalid_argument);
//  - a parsed schedule prints (schedule_json) and re-parses to a scenario
//    that prints identically, so the replay line a failing run prints reruns
//    exactly that case.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "aegis/assert.hpp"
#include "sim/schedule.hpp"

using namespace aegis::sim;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 8192) return -1;  // Schedules are one short line.
  const std::string text(reinterpret_cast<const char*>(data), size);
  scenario s;
  try {
    s = parse_schedule(text);
  } catch (const std::invalid_argument& e) {
    AEGIS_ASSERT(e.what()[0] != '\0', "a rejected schedule says why");
    return 0;
  }
  const std::string printed = schedule_json(s);
  scenario back;
  try {
    back = parse_schedule(printed);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "printed schedule %s does not parse: %s\n", printed.c_str(), e.what());
    AEGIS_ASSERT(false, "a printed schedule parses");
  }
  const std::string again = schedule_json(back);
  if (again != printed) std::fprintf(stderr, "schedule %s\nreprints as %s\n", printed.c_str(), again.c_str());
  AEGIS_ASSERT(again == printed, "schedule_json(parse(schedule_json(s))) == schedule_json(s)");
  AEGIS_ASSERT(back.seed == s.seed && back.plan == s.plan, "seed and plan survive the round trip");
  return 0;
}
