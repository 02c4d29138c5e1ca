// The one duration grammar of Aegis, shared by aegis-core, aegis-sim and the
// bridge (fixtures/durations/grammar.json holds the vectors every side checks).
//
// Usage:
//   std::optional<aegis::ns_t> d = aegis::parse_duration("250ms");  // 250'000'000
//   aegis::parse_duration("2m");    // 120'000'000'000
//   aegis::parse_duration("0");     // 0: the one string without a unit
//   aegis::parse_duration("5");     // nullopt: a unit is required
//   aegis::parse_duration("1.5s");  // nullopt: no fractions
//
// A duration is a non-negative decimal integer followed by one unit of ns, us,
// ms, s, m or h; leading zeros are allowed ("007ms"). The bare string "0" is
// the only one without a unit. No fractions, signs, whitespace, exponents or
// compound forms ("1s1ms"), and the value must fit int64 nanoseconds. Whether
// 0 is allowed (it usually means "off") is the option's choice, not the
// grammar's: callers reject it where it makes no sense.
//
// A bare number is refused, not read as seconds or nanoseconds, because the
// tools used to disagree on what it meant (the simulator read `60` as 60 s,
// the core refused it), and a unit-less budget is a silent factor of 10^9.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>

#include "aegis/assert.hpp"
#include "aegis/env.hpp"

namespace aegis {

namespace detail {

/// One unit of the duration grammar: its suffix and its length in nanoseconds.
struct duration_unit {
  std::string_view suffix;
  ns_t scale_ns;
};

/// Every unit the grammar accepts, shortest first.
inline constexpr duration_unit duration_units[] = {
    {"ns", 1},
    {"us", 1'000},
    {"ms", 1'000'000},
    {"s", 1'000'000'000},
    {"m", 60'000'000'000},
    {"h", 3'600'000'000'000},
};

/// The nanoseconds in one `suffix`, or 0 when it is not a unit of the grammar.
constexpr ns_t duration_unit_scale_ns(std::string_view suffix) noexcept {
  for (const duration_unit& u : duration_units) {
    if (u.suffix == suffix) {
      AEGIS_ASSERT(u.scale_ns > 0, "every unit is a positive number of nanoseconds");
      return u.scale_ns;
    }
  }
  return 0;
}

}  // namespace detail

/// Parses `text` as a duration of the grammar above. nullopt when it is not
/// one (malformed, no unit, or more than int64 nanoseconds); never throws and
/// never reads outside the view.
[[nodiscard]] constexpr std::optional<ns_t> parse_duration(std::string_view text) noexcept {
  constexpr auto ns_max = static_cast<std::uint64_t>(std::numeric_limits<ns_t>::max());
  std::size_t digits = 0;
  std::uint64_t number = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') {
    const auto digit = static_cast<std::uint64_t>(text[digits] - '0');
    // The number alone must fit int64 nanoseconds (the unit only scales it up).
    if (number > (ns_max - digit) / 10) return std::nullopt;
    number = number * 10 + digit;
    ++digits;
  }
  if (digits == 0) return std::nullopt;
  AEGIS_ASSERT(number <= ns_max, "the digits read so far fit int64 nanoseconds");
  const std::string_view suffix = text.substr(digits);
  if (suffix.empty()) {
    // "0" is the one unit-less duration; "00" and "5" are not.
    if (text == "0") return ns_t{0};
    return std::nullopt;
  }
  const ns_t scale_ns = detail::duration_unit_scale_ns(suffix);
  if (scale_ns == 0) return std::nullopt;
  if (number > ns_max / static_cast<std::uint64_t>(scale_ns)) return std::nullopt;
  const ns_t duration_ns = static_cast<ns_t>(number) * scale_ns;
  AEGIS_ASSERT(duration_ns >= 0, "a parsed duration is never negative");
  AEGIS_ASSERT(duration_ns / scale_ns == static_cast<ns_t>(number), "scaling by the unit did not overflow");
  return duration_ns;
}

static_assert(parse_duration("0") == 0, "a bare 0 is a duration");
static_assert(parse_duration("250ms") == 250'000'000, "ms are 10^6 ns");
static_assert(parse_duration("2m") == 120'000'000'000, "m are minutes");
static_assert(!parse_duration("5").has_value(), "a bare number other than 0 has no unit and is refused");
static_assert(!parse_duration("9223372036854775808ns").has_value(), "int64 nanoseconds bound every duration");

}  // namespace aegis
