// libFuzzer target: the seed and duration parsers (sim/seed).
//
// What it proves, for every input text:
//  - parse_seed and parse_duration never crash or read past the view (ASan);
//  - a parsed seed prints back: its decimal and 0x-hex spellings parse to the
//    same value; a 40-hex git hash parses the same in upper and lower case;
//  - a parsed duration prints (format_duration) and re-parses to the same
//    number of nanoseconds, and the printed form is a fixed point;
//  - decimal text of only digits parses exactly as std::stoull would.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "aegis/assert.hpp"
#include "sim/seed.hpp"

using namespace aegis::sim;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // An exactly-sized heap copy: ASan sees a read past the end of the view.
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::string_view view(text);

  if (const auto seed = parse_seed(view)) {
    AEGIS_ASSERT(parse_seed(std::to_string(*seed)) == seed, "a seed's decimal spelling parses back");
    AEGIS_ASSERT(parse_seed(fmt::format("0x{:x}", *seed)) == seed, "a seed's hex spelling parses back");
    AEGIS_ASSERT(parse_seed(fmt::format("0X{:016X}", *seed)) == seed, "upper-case padded hex parses back");
    if (size == 40) {
      std::string flipped = text;
      for (char& c : flipped) c = (c >= 'a' && c <= 'f') ? static_cast<char>(c - 32) : c;
      AEGIS_ASSERT(parse_seed(flipped) == seed, "a git hash is case-insensitive");
    }
    bool all_digits = size > 0 && size != 40;
    for (char c : view) all_digits = all_digits && c >= '0' && c <= '9';
    if (all_digits) AEGIS_ASSERT(*seed == std::stoull(text), "decimal seeds are exact");
  }

  if (const auto d = parse_duration(view)) {
    AEGIS_ASSERT(*d >= 0, "durations are not negative");
    const std::string printed = format_duration(*d);
    const auto back = parse_duration(printed);
    AEGIS_ASSERT(back.has_value() && *back == *d, "format_duration prints what parse_duration reads back");
    AEGIS_ASSERT(format_duration(*back) == printed, "the printed form is a fixed point");
  }
  return 0;
}
