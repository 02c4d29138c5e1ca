"""The shared bridge vectors are what BridgeCore answers today.

What it proves: fixtures/bridge_vectors/generate.py, run now against the
installed bridge's BridgeCore, writes exactly the checked-in
fixtures/bridge_vectors/*.json, byte for byte. The C++ side
(sim/bridge_vectors_test.cpp) checks the simulator's bridge model against
the same files, so a change to either side's frame rules fails one of the
two until the vectors are regenerated and both agree again.

How: imports the generator from its file, renders every case and compares
the text with the file's.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

VECTORS = Path(__file__).resolve().parent.parent / "fixtures" / "bridge_vectors"


def _generator():
    spec = importlib.util.spec_from_file_location("bridge_vectors_generate", VECTORS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN = _generator()


@pytest.mark.parametrize("name", sorted(GEN.CASES))
def test_the_generator_reproduces_the_checked_in_vectors(name):
    path = VECTORS / f"{name}.json"
    assert path.is_file(), f"{path} is missing: run fixtures/bridge_vectors/generate.py"
    assert GEN.render(GEN.generate(name)) == path.read_text(), \
        f"{path.name} is stale: PYTHONPATH=src:fixtures /usr/bin/python3 fixtures/bridge_vectors/generate.py"


def test_every_checked_in_vector_has_a_case():
    assert sorted(p.stem for p in VECTORS.glob("*.json")) == sorted(GEN.CASES)
