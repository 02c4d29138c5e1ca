#!/usr/bin/python3
"""Checks that every #include in the C++ tree points the allowed way.

Usage:
    /usr/bin/python3 scripts/check_layers.py [--root DIR]

Each C++ file belongs to a layer by where it lives (LAYERS below). Each
#include it makes is resolved the way the compiler would find it: beside
the including file first (quoted includes only), then under every include
root of the repository (ROOTS). An include that names no file in the
repository (a system or third-party header) is not ours to check. One that
can name a file in a layer the includer may not use (ALLOWED) is a
violation, even when another layer holds a file of the same name: two
headers that one include line could mean are a trap of their own.

It also fails when a CMakeLists.txt (or .cmake file) adds the repository
root itself as an include directory, which would let any target include
any file and so hide a violation from the compiler.

Exit status: 0 when the tree is clean, 1 on any violation (each printed as
`path:line: ...`), 2 on bad usage. docs/LAYERS.md explains the table.
CMake runs it at configure time and ctest runs it as `check_layers`.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

# Layer of a file: the first matching (directory, filename pattern) wins.
# Tests in src/ sit beside the code they test but are test code: they may
# use the shared fixtures, which production may not.
LAYERS: list[tuple[str, str, str]] = [
    ("src", r".*_test\.cpp", "src_tests"),
    ("src", r".*", "src"),
    ("faults", r".*", "faults"),
    ("testing", r".*", "testing"),
    ("tools", r".*", "tools"),
    ("fixtures", r".*", "fixtures"),
    ("sim", r".*", "sim"),
    ("properties", r".*", "properties"),
    ("bench", r".*", "bench"),
    ("fuzz", r".*", "fuzz"),
    ("examples", r".*", "examples"),
]

# Which layers a layer may include (itself always included).
ALLOWED: dict[str, set[str]] = {
    "src": {"faults"},
    "faults": set(),
    "src_tests": {"src", "faults", "fixtures"},
    "fixtures": {"src", "faults"},
    "testing": {"src", "faults"},
    "tools": set(),
    "sim": {"src", "faults", "testing", "tools"},
    "properties": {"sim", "src", "faults", "testing", "fixtures"},
    "bench": {"src", "faults", "tools", "fixtures"},
    "fuzz": {"sim", "src", "faults", "testing"},
    "examples": {"src", "faults"},
}

# Directories an include line may be written relative to: the include roots
# the build gives targets (src/, faults/, ...) and the repository root, which
# stands for the prefixed roots of sim/ and properties/ ("sim/world.hpp").
ROOTS = ["", "src", "faults", "testing", "tools", "fixtures", "bench"]

CXX_SUFFIXES = {".hpp", ".cpp", ".h", ".cc", ".hh", ".ipp"}
INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^">]+)[">]')
# target_include_directories(... ${PROJECT_SOURCE_DIR}) with nothing after the
# variable but a separator: the repository root itself, not a directory in it.
ROOT_INCLUDE_RE = re.compile(
    r"target_include_directories\s*\([^)]*\$\{(?:PROJECT|CMAKE)_SOURCE_DIR\}(?=[\s)])", re.S)


def layer_of(root: Path, path: Path) -> str | None:
    rel = path.relative_to(root)
    if len(rel.parts) < 2:
        return None
    for top, pattern, layer in LAYERS:
        if rel.parts[0] == top and re.fullmatch(pattern, rel.name):
            return layer
    return None


def candidates(root: Path, including: Path, name: str, quoted: bool) -> list[Path]:
    """Every repository file `#include name` in `including` could mean."""
    if quoted:
        beside = including.parent / name
        if beside.is_file():
            return [beside.resolve()]  # the compiler stops here
    found: list[Path] = []
    for r in ROOTS:
        p = (root / r / name) if r else (root / name)
        if p.is_file() and p.resolve() not in found:
            found.append(p.resolve())
    return found


def check_includes(root: Path) -> list[str]:
    errors: list[str] = []
    for top in sorted({t for t, _, _ in LAYERS}):
        base = root / top
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if path.suffix not in CXX_SUFFIXES or not path.is_file():
                continue
            layer = layer_of(root, path)
            if layer is None:
                continue
            may_use = ALLOWED[layer] | {layer}
            rel = path.relative_to(root)
            for lineno, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                m = INCLUDE_RE.match(line)
                if not m:
                    continue
                name = m.group(2).strip()
                for target in candidates(root, path, name, m.group(1) == '"'):
                    target_layer = layer_of(root, target) if target.is_relative_to(root) else None
                    if target_layer is None or target_layer in may_use:
                        continue
                    errors.append(
                        f"{rel}:{lineno}: {layer} may not include {target.relative_to(root)} "
                        f"(layer {target_layer}); {layer} may use: {', '.join(sorted(may_use))}")
    return errors


def check_cmake(root: Path) -> list[str]:
    errors: list[str] = []
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        # Build trees and git metadata hold generated CMake files, not ours.
        dirnames[:] = sorted(d for d in dirnames if d not in {"build", ".git"} and not d.startswith("build-"))
        files += [Path(dirpath) / f for f in sorted(filenames) if f == "CMakeLists.txt" or f.endswith(".cmake")]
    for path in files:
        rel = path.relative_to(root)
        text = path.read_text(errors="replace")
        for m in ROOT_INCLUDE_RE.finditer(text):
            lineno = text.count("\n", 0, m.end()) + 1
            errors.append(f"{rel}:{lineno}: adds the repository root as an include directory; "
                          f"link the target that owns the headers instead")
    return errors


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Check the include layering (docs/LAYERS.md).")
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="repository root (default: this script's repository)")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    if not (root / "src").is_dir():
        print(f"check_layers: {root} has no src/ directory", file=sys.stderr)
        return 2
    errors = check_includes(root) + check_cmake(root)
    for e in errors:
        print(e)
    if errors:
        print(f"check_layers: {len(errors)} layering violation(s); docs/LAYERS.md has the allowed table")
        return 1
    print("check_layers: every include points the allowed way")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
