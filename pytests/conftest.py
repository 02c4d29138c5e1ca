"""Fixtures for the bridge's unit tests and the real-process tests.

Which bridge is tested: the installed package (tox installs it and sets
AEGIS_BRIDGE_INSTALLED=1; src/ is then never on sys.path), or, where no
`aegis-bridge` is installed next to this Python, the checkout's src/
(aegis_fixtures.bridge_cli).

What a test gets:
- `endpoint_dir`: a short, fresh directory for ipc:// endpoints (removed after).
- `fake_core`: aegis_fixtures.fake_core.FakeCore bound in `endpoint_dir`.
- `trained_models`: {runtime: path} of small models scripts/train_model.py
  trained for this session; `runtime_model`: (runtime, path), once per
  built-in runtime.
- `run_bridge(model=None, **config)`: starts a Bridge loop on a thread against
  `fake_core` (aegis_fixtures.bridge_thread.RunningBridge); every one is
  stopped at teardown.
- `harness`: aegis_fixtures.harness.Harness for real bridge processes (and a
  core, if one is built); teardown kills every process it started.
- `core_harness`: the same, but the test is skipped with the reason when
  aegis-core is not built (AEGIS_CORE_BIN, build/release, build/*), or fails
  instead when AEGIS_REQUIRE_CORE=1 (set by ctest when it built the core).
- Every summary a harness reads is checked for rejections: an honest bridge
  is never rejected, so each reason the core refuses a verdict for must be 0
  unless the test named it (`h.expect_rejections(...)`); the failure names
  the reasons and counts and the command that reruns the test
  (aegis_fixtures.observe.assert_no_rejections, Harness.summary).

Guarantees:
- When a test fails, the logs of every process it started are attached to
  its report ("aegis process logs" section).
- Teardown kills and reaps every process and removes every socket file, even
  when the test failed; a test whose processes were still alive at teardown
  is fine (tests may leave cleanup to the harness).
- At the end of the session, a check fails the run if any process started
  with this session's marker in its command line is still alive, or if any
  file is left in the session's directory.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO / "fixtures") not in sys.path:
    sys.path.insert(0, str(REPO / "fixtures"))

from aegis_fixtures.bridge_cli import uses_installed_bridge  # noqa: E402

# The package under test: the installed copy (tox), or the checkout's src/
# when none is installed (aegis_fixtures.bridge_cli says which, and bridge
# processes follow the same answer).
if not uses_installed_bridge() and str(REPO / "src") not in sys.path:
    sys.path.insert(0, str(REPO / "src"))

from aegis_fixtures.bridge_thread import RunningBridge  # noqa: E402
from aegis_fixtures.fake_core import FakeCore  # noqa: E402
from aegis_fixtures.harness import Harness, SessionRoot, find_core_binary, replay_of_test  # noqa: E402
from aegis_fixtures.processes import REGISTRY, orphans, reap_all  # noqa: E402

_SESSION_ROOT: SessionRoot | None = None


def pytest_addoption(parser):
    group = parser.getgroup("aegis")
    group.addoption("--budget", default=None,
                    help="time budget for chaos tests, e.g. 2m or 90s (tox -e chaos -- --budget 2m)")
    group.addoption("--chaos-seed", default=None, type=int, help="replay a chaos run with this seed")


def pytest_configure(config):
    global _SESSION_ROOT
    config.addinivalue_line("markers", "real: starts real aegis-core and/or bridge processes")
    config.addinivalue_line("markers", "chaos: long randomized real-process runs (tox -e chaos)")
    _SESSION_ROOT = SessionRoot()


def session_root() -> SessionRoot:
    assert _SESSION_ROOT is not None
    return _SESSION_ROOT


@pytest.fixture(scope="session", autouse=True)
def no_orphans_at_session_end():
    """Session-level check: nothing this session started survives it, and no socket file is left."""
    yield
    root = session_root()
    stragglers = reap_all(REGISTRY)
    leftover = orphans(root.marker)
    files = root.leftovers()
    root.remove()
    assert not stragglers, f"processes still alive at session end (tests or harness leaked them): {stragglers}"
    assert not leftover, f"orphan processes outlived the session: {leftover}"
    assert not files, f"files left in the session directory: {files}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        harness = item.funcargs.get("harness") or item.funcargs.get("core_harness")
        if harness is not None:
            for title, text in harness.logs():
                report.sections.append((f"aegis process log: {title}", text or "(empty)"))


@pytest.fixture
def endpoint_dir():
    path = session_root().new_test_dir()
    yield path
    import shutil

    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def fake_core(endpoint_dir):
    core = FakeCore(endpoint_dir)
    yield core
    core.close()


@pytest.fixture
def run_bridge(fake_core):
    started = []

    def start(model=None, **config):
        r = RunningBridge(fake_core, model=model, **config)
        started.append(r)
        return r

    yield start
    for r in started:
        if not r.bridge._closed:
            r.stop()


@pytest.fixture(scope="session")
def trained_models(tmp_path_factory):
    """{runtime: model path}: one small model per built-in runtime installed here (scripts/train_model.py)."""
    from aegis_fixtures.trained_models import train_models

    return train_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(params=["numpy", "sklearn", "xgboost"])
def runtime_model(request, trained_models):
    """(runtime, model path) for each built-in runtime; skipped with the reason where its library is absent."""
    runtime = request.param
    if runtime not in trained_models:
        pytest.skip(f"the {runtime} runtime's library is not installed (scripts/bootstrap.sh installs it)")
    return runtime, trained_models[runtime]


@pytest.fixture(scope="session")
def core_binary():
    """(path or None, reason)."""
    return find_core_binary()


@pytest.fixture
def harness(core_binary, request):
    h = Harness(session_root().new_test_dir(), *core_binary, replay=replay_of_test(request.node.nodeid))
    yield h
    h.teardown()


@pytest.fixture
def core_path(core_binary):
    """The aegis-core binary; a test that needs it is skipped without it."""
    path, reason = core_binary
    if path is None:
        # Where the build says the core exists (ctest, make test), a missing
        # binary is a failure, never a silent skip.
        if os.environ.get("AEGIS_REQUIRE_CORE") == "1":
            pytest.fail(f"AEGIS_REQUIRE_CORE=1 but {reason}")
        pytest.skip(reason)
    return path


@pytest.fixture
def core_harness(core_path, core_binary, request):
    h = Harness(session_root().new_test_dir(), core_path, core_binary[1], replay=replay_of_test(request.node.nodeid))
    yield h
    h.teardown()
