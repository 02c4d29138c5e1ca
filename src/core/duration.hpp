// Parsing of command-line durations ("200ms", "10s", "500us", "750ns", "0").
//
// Usage:
//   std::optional<aegis::ns_t> d = aegis::core::parse_duration("200ms");
#pragma once

#include <charconv>
#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>

#include "aegis/env.hpp"

namespace aegis::core {

/// Integer with a unit suffix (ns, us, ms, s); a bare "0" is allowed. No
/// fractions, no negatives, no overflow. nullopt when malformed.
inline std::optional<ns_t> parse_duration(std::string_view s) noexcept {
  std::uint64_t n = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc{} || end == s.data()) return std::nullopt;
  const std::string_view unit(end, static_cast<std::size_t>(s.data() + s.size() - end));
  std::uint64_t scale = 0;
  if (unit == "ns") scale = 1;
  else if (unit == "us") scale = 1'000;
  else if (unit == "ms") scale = 1'000'000;
  else if (unit == "s") scale = 1'000'000'000;
  else if (unit.empty() && n == 0) scale = 1;
  else return std::nullopt;
  if (n > static_cast<std::uint64_t>(std::numeric_limits<ns_t>::max()) / scale) return std::nullopt;
  return static_cast<ns_t>(n * scale);
}

}  // namespace aegis::core
