#!/usr/bin/python3
"""Proves that scripts/check_layers.py fails on a layering violation.

Each case builds a small tree in a temporary directory (the repository's
shape in miniature), plants one include or one CMake line, runs the checker
on it as a process, and asserts on its exit status and on the line it
prints. A checker that passes everything would pass the real tree too, so
the real tree's clean run (ctest `check_layers`) means something only
because these cases fail.

Run with: /usr/bin/python3 scripts/check_layers_test.py -v
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
import unittest
from pathlib import Path

CHECKER = Path(__file__).resolve().parent / "check_layers.py"


class CheckLayersTest(unittest.TestCase):
    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="check_layers_")
        self.root = Path(self._tmp.name)
        # A clean miniature tree: production, a fault site, the simulator,
        # a test-side catalogue, a property and a benchmark writer.
        self.write("src/aegis/ring.hpp", '#include "aegis/fault.hpp"\n#include <atomic>\n')
        self.write("src/aegis/ring_test.cpp", '#include "aegis/ring.hpp"\n#include "aegis/tracker.hpp"\n')
        self.write("fixtures/aegis/tracker.hpp", "#include <atomic>\n")
        self.write("faults/aegis/fault.hpp", "#pragma once\n")
        self.write("testing/aegis/catalogue.hpp", '#include "aegis/fault.hpp"\n')
        self.write("tools/aegis/results.hpp", "#include <nlohmann/json.hpp>\n")
        self.write("sim/world.hpp", '#include "aegis/ring.hpp"\n#include "aegis/catalogue.hpp"\n')
        self.write("sim/world.cpp", '#include "sim/world.hpp"\n#include "aegis/results.hpp"\n')
        self.write("properties/case.hpp", '#include "sim/world.hpp"\n')
        self.write("properties/case_test.cpp", '#include "properties/case.hpp"\n#include "case.hpp"\n')
        self.write("bench/bench.cpp", '#include "aegis/results.hpp"\n#include "aegis/ring.hpp"\n')
        self.write("sim/CMakeLists.txt", "target_include_directories(aegis_sim PUBLIC ${CMAKE_CURRENT_BINARY_DIR}/include)\n")

    def tearDown(self) -> None:
        self._tmp.cleanup()

    def write(self, rel: str, text: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def run_checker(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(CHECKER), "--root", str(self.root)],
                              capture_output=True, text=True, timeout=60)

    def assert_violation(self, expected: str) -> None:
        r = self.run_checker()
        self.assertEqual(r.returncode, 1, f"checker passed a planted violation:\n{r.stdout}{r.stderr}")
        self.assertIn(expected, r.stdout)

    def test_clean_tree_passes(self) -> None:
        r = self.run_checker()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("every include points the allowed way", r.stdout)

    def test_production_including_the_simulator_fails(self) -> None:
        self.write("src/aegis/ring.hpp", '#include "aegis/fault.hpp"\n#include "sim/world.hpp"\n')
        self.assert_violation("src/aegis/ring.hpp:2: src may not include sim/world.hpp (layer sim)")

    def test_production_including_a_test_catalogue_fails(self) -> None:
        self.write("src/aegis/ring.hpp", '#include "aegis/catalogue.hpp"\n')
        self.assert_violation("src/aegis/ring.hpp:1: src may not include testing/aegis/catalogue.hpp")

    def test_production_including_fixtures_fails_though_its_tests_may(self) -> None:
        self.write("src/aegis/ring.hpp", '#include "aegis/tracker.hpp"\n')
        self.assert_violation("src/aegis/ring.hpp:1: src may not include fixtures/aegis/tracker.hpp")

    def test_fault_sites_including_the_simulator_fails(self) -> None:
        self.write("faults/aegis/fault.hpp", "#pragma once\n#include <sim/world.hpp>\n")
        self.assert_violation("faults/aegis/fault.hpp:2: faults may not include sim/world.hpp")

    def test_simulator_including_properties_or_bench_fails(self) -> None:
        self.write("bench/bench_support.hpp", "#pragma once\n")
        self.write("sim/world.cpp", '#include "properties/case.hpp"\n#include "bench/bench_support.hpp"\n')
        r = self.run_checker()
        self.assertEqual(r.returncode, 1)
        self.assertIn("sim/world.cpp:1: sim may not include properties/case.hpp", r.stdout)
        self.assertIn("sim/world.cpp:2: sim may not include bench/bench_support.hpp", r.stdout)

    def test_a_name_shadowed_by_a_forbidden_layer_fails(self) -> None:
        # The same include line could mean either file; which one the
        # compiler takes depends on flags the checker does not see.
        self.write("testing/aegis/ring.hpp", "#pragma once\n")
        self.assert_violation("src/aegis/ring_test.cpp:1: src_tests may not include testing/aegis/ring.hpp")

    def test_repository_root_as_include_directory_fails(self) -> None:
        self.write("properties/CMakeLists.txt", textwrap.dedent("""\
            function(p name)
              target_include_directories(${name} PRIVATE
                                         ${PROJECT_SOURCE_DIR})
            endfunction()
            """))
        self.assert_violation("properties/CMakeLists.txt:3: adds the repository root as an include directory")

    def test_a_directory_under_the_root_is_not_the_root(self) -> None:
        self.write("src/CMakeLists.txt", "target_include_directories(t PRIVATE ${PROJECT_SOURCE_DIR}/fixtures)\n")
        r = self.run_checker()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
