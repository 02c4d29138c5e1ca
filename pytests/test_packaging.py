"""Proves the bridge installs with pip from the repository, as its docs promise, and that tox tests that copy.

The package (pyproject.toml, src/aegis_bridge) is copied to a scratch
directory, so the build leaves nothing in the checkout, and installed into a
fresh virtualenv that sees Debian's packages (numpy, pyzmq, ...). PyPI is
not reachable here, hence --no-index, --no-deps and --no-build-isolation
(setuptools comes from Debian). From a directory outside the repository and
without PYTHONPATH, the installed `aegis-bridge` entry point must run, the
package must find its shipped model weights and its py.typed (package
data), and the example scorer package (examples/scorer), installed the same
way, must be found by its entry point: `aegis-bridge --model ep:mymodel`.

Under tox (AEGIS_BRIDGE_INSTALLED=1) the suite itself must be testing the
installed package: aegis_bridge imported from the tox env, src/ nowhere on
sys.path or PYTHONPATH, fixtures/ on both, and bridge processes started
through the env's `aegis-bridge` script. Outside tox, without an installed
script, the suite tests the checkout's src/ instead, and says so.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aegis_fixtures.bridge_cli import INSTALLED_SCRIPT, REQUIRE_INSTALLED, SRC, bridge_argv, bridge_env
from aegis_fixtures.harness import PYTHON, REPO


def test_pip_install_from_the_repository_gives_a_working_aegis_bridge(tmp_path):
    pkg = tmp_path / "pkg"
    shutil.copytree(REPO / "src" / "aegis_bridge", pkg / "src" / "aegis_bridge",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(REPO / "pyproject.toml", pkg)
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}

    def run(*argv, timeout=120):
        return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout,
                              cwd=tmp_path, env=env)

    r = run(PYTHON, "-m", "venv", "--system-site-packages", venv)
    if r.returncode != 0 and "ensurepip" in r.stdout + r.stderr:
        pytest.skip("python3-venv is not installed (scripts/bootstrap.sh installs it)")
    assert r.returncode == 0, r.stdout + r.stderr
    r = run(venv / "bin" / "python", "-m", "pip", "install", "--no-index", "--no-deps", "--no-build-isolation",
            "--quiet", pkg)
    assert r.returncode == 0, r.stdout + r.stderr

    r = run(venv / "bin" / "aegis-bridge", "--help", timeout=30)
    assert r.returncode == 0 and "--offload" in r.stdout, r.stderr
    r = run(venv / "bin" / "python", "-c",
            "import pathlib, aegis_bridge, aegis_bridge.model as m; print(aegis_bridge.__file__); "
            "print(m.load_model().info.name); print((pathlib.Path(aegis_bridge.__file__).parent / 'py.typed').is_file())",
            timeout=30)
    assert r.returncode == 0, r.stderr
    installed_at, model, typed = r.stdout.split()
    assert installed_at.startswith(str(venv)), f"imported from {installed_at}, not the virtualenv"
    assert model == "aegis-fraud-logreg", "the shipped weights are package data"
    assert typed == "True", "py.typed is package data: users' type checkers see the Scorer protocol"

    # The example scorer as a package of its own, found by its entry point.
    example = tmp_path / "example"
    shutil.copytree(REPO / "examples" / "scorer", example, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    r = run(venv / "bin" / "python", "-m", "pip", "install", "--no-index", "--no-deps", "--no-build-isolation",
            "--quiet", example)
    assert r.returncode == 0, r.stdout + r.stderr
    r = run(venv / "bin" / "aegis-bridge", "--model", "ep:mymodel", "--check-model", timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("aegis-bridge: model mymodel version 0.1.0 (entrypoint) from ep:mymodel: "), r.stdout


def _under(path, root) -> bool:
    return Path(path).resolve().is_relative_to(Path(root).resolve())


@pytest.mark.skipif(not REQUIRE_INSTALLED, reason="tox sets AEGIS_BRIDGE_INSTALLED=1; this run tests src/")
def test_under_tox_the_suite_tests_the_installed_package_not_src():
    import aegis_bridge

    assert _under(aegis_bridge.__file__, sys.prefix), f"aegis_bridge from {aegis_bridge.__file__}, not {sys.prefix}"
    assert not _under(aegis_bridge.__file__, SRC), "the tests must not import the checkout's src/"
    assert not any(p and _under(p, SRC) for p in sys.path), f"src/ is on sys.path: {sys.path}"
    python_path = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    assert not any(p and _under(p, SRC) for p in python_path), f"src/ is on PYTHONPATH: {python_path}"
    assert any(p and _under(p, REPO / "fixtures") and _under(REPO / "fixtures", p) for p in python_path), \
        "fixtures/ stays on PYTHONPATH"
    assert bridge_argv() == [str(INSTALLED_SCRIPT)] and INSTALLED_SCRIPT.is_file()
    # What a bridge process imports: the same installed copy.
    r = subprocess.run([sys.executable, "-c", "import aegis_bridge; print(aegis_bridge.__file__)"],
                       capture_output=True, text=True, timeout=30, env=bridge_env(), cwd="/")
    assert r.returncode == 0 and _under(r.stdout.strip(), sys.prefix), r.stdout + r.stderr


@pytest.mark.skipif(REQUIRE_INSTALLED or INSTALLED_SCRIPT.is_file(), reason="the installed package is under test")
def test_outside_tox_the_suite_tests_the_checkout():
    import aegis_bridge

    assert _under(aegis_bridge.__file__, SRC), aegis_bridge.__file__
    assert bridge_argv() == [PYTHON, "-m", "aegis_bridge"] and bridge_env()["PYTHONPATH"].split(os.pathsep)[0] == \
        str(SRC)
