// Parsing of seeds given on the command line, and printing of durations.
//
// Usage:
//   std::optional<std::uint64_t> s = aegis::sim::parse_seed("0x2a");   // 42
//   aegis::sim::parse_seed("42");                                      // 42
//   aegis::sim::parse_seed("9fceb02d0ae598e95dc970b74767f19372d61af8"); // a git commit, hashed
//   std::optional<aegis::ns_t> d = aegis::sim::parse_duration("250ms");
//   std::string s = aegis::sim::format_duration(250'000'000);         // "250ms"
//
// Kept in its own small file because a fuzzer targets it: every input either
// parses or returns nullopt; nothing throws, nothing reads past the view.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "aegis/duration.hpp"
#include "aegis/env.hpp"

namespace aegis::sim {

/// A seed written as decimal (`42`), hex with `0x` (`0x2a`, at most 16 digits),
/// or a 40-hex-digit git commit hash, which is hashed to 64 bits with XXH64
/// (seed 0) over its lower-case text so that `git rev-parse HEAD` is a seed.
/// Returns nullopt for anything else (empty, overflow, stray characters).
std::optional<std::uint64_t> parse_seed(std::string_view text) noexcept;

/// A duration in the one grammar of aegis/duration.hpp (`30s`, `250ms`,
/// `1500us`, `2m`, a bare `0`); the simulator has no grammar of its own.
using aegis::parse_duration;

/// The shortest exact spelling of `ns` that parse_duration reads back
/// (`30s`, `250ms`, `1500us`, `7ns`).
std::string format_duration(ns_t ns);

}  // namespace aegis::sim
