// aegis-core's exit codes: the contract of docs/SUMMARY.md, one name each.
//
// Usage:
//   if (!identity_ok) return aegis::core::exit_identity;
#pragma once

namespace aegis::core {

/// The run finished: identity held, nothing lost, drained.
inline constexpr int exit_ok = 0;
/// An unexpected error (an exception, or the ledger could not be written).
inline constexpr int exit_error = 1;
/// A bad flag: one line on stderr, nothing started.
inline constexpr int exit_usage = 2;
/// Start-up failed (endpoint directory, lock, output paths, sockets, metrics, scheduling).
inline constexpr int exit_startup = 3;
/// The accounting identity or the ledger cross-check broke.
inline constexpr int exit_identity = 4;
/// Block mode lost transactions: accepted and never terminal.
inline constexpr int exit_lost = 5;
/// The drain timed out.
inline constexpr int exit_undrained = 6;
/// The run was fine but --summary-json could not be written (the JSON went to stderr).
inline constexpr int exit_summary = 7;

}  // namespace aegis::core
