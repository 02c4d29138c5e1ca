// Whether an output file can be written, found out before a long run starts.
//
// Usage:
//   if (std::string why = aegis::why_unwritable(path); !why.empty())
//     fail("cannot write " + path + ": " + why);
//
// Tools that write a report, ledger or trace at the end of a run check the
// path first, so a whole run never ends in "cannot write". The check tries
// the real thing instead of asking access(2), which answers yes to root for
// any mode and knows nothing of read-only mounts:
// - an existing path must be openable for writing (without truncating it);
//   a directory is refused;
// - a regular file, or one not there yet, also needs its directory to take
//   a new file: writers create it there, or write a temporary beside it and
//   rename it over the old one. A probe file is created and removed.
#pragma once

#include <string>

namespace aegis {

/// Why `path` cannot be written now (one phrase, e.g. "No such file or
/// directory"), or an empty string if it can. Leaves the file system as it was.
std::string why_unwritable(const std::string& path);

}  // namespace aegis
