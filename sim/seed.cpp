// Seed parsing and duration printing; see seed.hpp.
#include "sim/seed.hpp"

#include "aegis/assert.hpp"

#include <xxhash.h>

#include <array>
#include <cctype>
#include <string>

namespace aegis::sim {

namespace {
int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::uint64_t> parse_decimal(std::string_view text) noexcept {
  if (text.empty()) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    const std::uint64_t d = static_cast<std::uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}
}  // namespace

std::optional<std::uint64_t> parse_seed(std::string_view text) noexcept {
  if (text.size() == 40) {
    std::array<char, 40> lower{};
    for (std::size_t i = 0; i < 40; ++i) {
      if (hex_value(text[i]) < 0) return std::nullopt;
      lower[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[i])));
    }
    return XXH64(lower.data(), lower.size(), 0);
  }
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    const std::string_view digits = text.substr(2);
    if (digits.size() > 16) return std::nullopt;
    std::uint64_t v = 0;
    for (char c : digits) {
      const int h = hex_value(c);
      if (h < 0) return std::nullopt;
      v = (v << 4) | static_cast<std::uint64_t>(h);
    }
    return v;
  }
  return parse_decimal(text);
}

std::string format_duration(ns_t ns) {
  AEGIS_ASSERT(ns >= 0, "durations are not negative");
  struct unit { std::int64_t scale; const char* name; };
  static constexpr unit units[] = {{3'600'000'000'000, "h"}, {60'000'000'000, "m"}, {1'000'000'000, "s"},
                                   {1'000'000, "ms"},        {1'000, "us"},          {1, "ns"}};
  if (ns == 0) return "0s";
  for (const unit& u : units) {
    if (ns % u.scale == 0) return std::to_string(ns / u.scale) + u.name;
  }
  return std::to_string(ns) + "ns";
}

}  // namespace aegis::sim
