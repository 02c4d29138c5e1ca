"""Proves `--model` finds your own scorer: MODULE:FACTORY on the path, or ep:NAME registered by another package.

- MODULE:FACTORY imports a module the bridge does not ship (written to a
  temporary directory put on sys.path, as PYTHONPATH would), calls the
  factory once with no arguments, and serves what it returns; a dotted
  module and a dotted attribute (a class's method) work too.
- ep:NAME finds a factory another installed distribution registered in
  the `aegis_bridge.scorers` entry-point group (a dist-info directory on
  the path, which is what pip installs).
- Every mistake is one ModelError line naming the spec and the reason: no
  such module, a module that raises on import, no such attribute, not
  callable, a factory that raises, a factory returning something that is
  not a Scorer, no such entry point (listing the installed ones), and an
  entry point registered twice for different factories.
- The same through the real process: `aegis-bridge --model M:F
  --check-model` with the module on PYTHONPATH and `--model ep:NAME`
  print the model line and exit 0; a bad spec exits 2 with that line; a
  scorer that raises on the synthetic records, or returns NaN, a score
  above 1, a decision of 3 or the wrong number of results, exits 1 with
  one line saying which (a serving bridge would answer those unscored).
"""

import subprocess
import textwrap
import uuid

import numpy as np
import pytest

from aegis_bridge import ENTRY_POINT_GROUP, Scorer
from aegis_bridge.loading import load_scorer
from aegis_bridge.scoring import ModelError
from aegis_bridge.synthetic import make_txns
from aegis_fixtures.bridge_cli import bridge_argv, bridge_env

SCORER_SOURCE = '''
import numpy as np
from aegis_bridge import FEATURE_NAMES, ModelInfo, decide, features

CALLS = []


class HalfScorer:
    """Scores e-commerce records 0.95 (decline) and the others 0.25 (approve): easy to tell apart."""

    info = ModelInfo(name="{name}", version="7.1", features=FEATURE_NAMES, review=0.5, decline=0.9)

    def score(self, txns):
        scores = (0.25 + 0.7 * features(txns)[:, 1]).astype(np.float32)
        return scores, decide(scores, 0.5, 0.9)

    @classmethod
    def create(cls):
        return cls()


def make_scorer():
    CALLS.append(1)
    return HalfScorer()
'''


def unique(prefix: str) -> str:
    """A module name no other test (or earlier import) used: imported modules stay in sys.modules."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def write_module(directory, name: str, source: str = SCORER_SOURCE) -> None:
    (directory / f"{name}.py").write_text(textwrap.dedent(source).replace("{name}", name))


def write_distribution(directory, dist: str, entry_points: dict[str, str]) -> None:
    """What pip leaves in site-packages for a distribution registering scorers: METADATA and entry_points.txt."""
    info = directory / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = [f"[{ENTRY_POINT_GROUP}]"] + [f"{k} = {v}" for k, v in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


def test_module_factory_from_outside_the_tree(tmp_path, monkeypatch):
    name = unique("mymodel")
    write_module(tmp_path, name)
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded = load_scorer(f"{name}:make_scorer")
    assert loaded.runtime == "module" and loaded.source == f"{name}:make_scorer"
    assert isinstance(loaded.scorer, Scorer) and loaded.info.name == name and loaded.info.version == "7.1"
    assert __import__(name).CALLS == [1], "the factory is called once"
    txns = make_txns(np.random.default_rng(1), 100)
    scores, decisions = loaded.scorer.score(txns)
    ecommerce = txns["channel"] == 1
    assert np.array_equal(scores, np.where(ecommerce, np.float32(0.25) + np.float32(0.7), np.float32(0.25)))
    assert np.array_equal(decisions, np.where(ecommerce, 2, 0))


def test_dotted_module_and_dotted_attribute(tmp_path, monkeypatch):
    package = unique("team")
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("")
    write_module(tmp_path / package, "fraud")
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded = load_scorer(f"{package}.fraud:HalfScorer.create")
    assert loaded.runtime == "module" and loaded.info.version == "7.1"


def test_entry_point_registered_by_another_package(tmp_path, monkeypatch):
    name = unique("fraudnet")
    write_module(tmp_path, name)
    write_distribution(tmp_path, f"{name}_dist", {name: f"{name}:make_scorer"})
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded = load_scorer(f"ep:{name}")
    assert loaded.runtime == "entrypoint" and loaded.source == f"ep:{name}" and loaded.info.name == name


def test_an_entry_point_registered_twice_is_refused(tmp_path, monkeypatch):
    name = unique("twice")
    write_module(tmp_path, name)
    write_distribution(tmp_path, f"{name}_a", {name: f"{name}:make_scorer"})
    write_distribution(tmp_path, f"{name}_b", {name: f"{name}:HalfScorer"})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModelError, match=f"entry point '{name}' is registered more than once in "
                                         f"{ENTRY_POINT_GROUP}, for {name}:HalfScorer, {name}:make_scorer"):
        load_scorer(f"ep:{name}")


@pytest.mark.parametrize("source, spec_attr, words", [
    (None, "make_scorer", "no module named '{name}' (is its directory on PYTHONPATH, or its package installed?)"),
    ("import no_such_dependency_xyz\n", "make_scorer",
     "importing {name} failed: ModuleNotFoundError: No module named 'no_such_dependency_xyz'"),
    ("raise RuntimeError('no GPU here')\n", "make_scorer", "importing {name} failed: RuntimeError: no GPU here"),
    ("x = 1\n", "make_scorer", "{name} has no attribute 'make_scorer'"),
    ("make_scorer = 42\n", "make_scorer", "int object is not callable"),
    ("def make_scorer():\n    raise ValueError('weights not found')\n", "make_scorer",
     "the factory raised ValueError: weights not found"),
    ("def make_scorer():\n    return 'model'\n", "make_scorer", "the factory returned a str, not a Scorer"),
    ("class S:\n    def score(self, t): pass\ndef make_scorer():\n    return S()\n", "make_scorer",
     "the factory returned a S, not a Scorer (needs score(txns) and info)"),
    ("class S:\n    info = None\n    def score(self, t): pass\ndef make_scorer():\n    return S()\n", "make_scorer",
     "info must be an aegis_bridge.ModelInfo, got NoneType"),
])
def test_factory_mistakes_are_one_clear_line(tmp_path, monkeypatch, source, spec_attr, words):
    name = unique("broken")
    if source is not None:
        (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModelError) as e:
        load_scorer(f"{name}:{spec_attr}")
    assert words.replace("{name}", name) in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_an_unknown_entry_point_lists_the_installed_ones(tmp_path, monkeypatch):
    name = unique("present")
    write_module(tmp_path, name)
    write_distribution(tmp_path, f"{name}_dist", {name: f"{name}:make_scorer"})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModelError, match=rf"no entry point 'absent' in group {ENTRY_POINT_GROUP} \(installed: .*{name}"):
        load_scorer("ep:absent")


def run_bridge_cli(*args, python_path=()):
    return subprocess.run([*bridge_argv(), *args], capture_output=True, text=True, timeout=60,
                          env=bridge_env(python_path))


def test_the_bridge_process_loads_a_module_factory_and_an_entry_point(tmp_path):
    name = unique("cli_model")
    write_module(tmp_path, name)
    write_distribution(tmp_path, f"{name}_dist", {"cli-scorer": f"{name}:make_scorer"})
    for spec, runtime in ((f"{name}:make_scorer", "module"), ("ep:cli-scorer", "entrypoint")):
        r = run_bridge_cli("--model", spec, "--check-model", python_path=[tmp_path])
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith(f"aegis-bridge: model {name} version 7.1 ({runtime}) from {spec}: 9 features, "
                                   f"thresholds review 0.5 decline 0.9; scored 2048 synthetic records"), r.stdout
    r = run_bridge_cli("--model", f"{name}:nope", "--check-model", python_path=[tmp_path])
    assert r.returncode == 2 and r.stderr == f"aegis-bridge: error: --model {name}:nope: {name} has no attribute " \
                                             f"'nope'\n"


BROKEN_OUTPUT = '''
import numpy as np
from aegis_bridge import ModelInfo


class Broken:
    info = ModelInfo(name="broken", version="1")

    def __init__(self, how):
        self.how = how

    def score(self, txns):
        n = len(txns)
        scores, decisions = np.full(n, 0.5, dtype=np.float32), np.zeros(n, dtype=np.uint8)
        if self.how == "raises":
            raise ZeroDivisionError("division by zero in feature 7")
        if self.how == "nan":
            scores[5] = np.nan
        if self.how == "above_one":
            scores[:3] = 1.5
        if self.how == "decision_3":
            decisions[-1] = 3
        if self.how == "short":
            return scores[:-1], decisions[:-1]
        return scores, decisions


def raises():
    return Broken("raises")


def nan():
    return Broken("nan")


def above_one():
    return Broken("above_one")


def decision_3():
    return Broken("decision_3")


def short():
    return Broken("short")
'''


@pytest.mark.parametrize("factory, words", [
    ("raises", "score() raised on synthetic records: ZeroDivisionError: division by zero in feature 7"),
    ("nan", "1 scores are NaN or outside [0, 1] (first: nan)"),
    ("above_one", "3 scores are NaN or outside [0, 1] (first: 1.5)"),
    ("decision_3", "1 decisions are not 0, 1 or 2 (first: 3)"),
    ("short", "2047 scores for 2048 records"),
])
def test_check_model_reports_a_scorer_that_breaks_the_contract(tmp_path, factory, words):
    name = unique("brokenout")
    write_module(tmp_path, name, BROKEN_OUTPUT)
    r = run_bridge_cli("--model", f"{name}:{factory}", "--check-model", python_path=[tmp_path])
    assert r.returncode == 1 and r.stdout == "", r.stdout + r.stderr
    assert r.stderr.startswith(f"aegis-bridge: error: model {name}:{factory}: {words}") and r.stderr.count("\n") == 1, \
        r.stderr
