"""Proves the bridge installs with pip from the repository, as its docs promise.

The package (pyproject.toml, src/aegis_bridge) is copied to a scratch
directory, so the build leaves nothing in the checkout, and installed into a
fresh virtualenv that sees Debian's packages (numpy, pyzmq, ...). PyPI is
not reachable here, hence --no-index, --no-deps and --no-build-isolation
(setuptools comes from Debian). From a directory outside the repository and
without PYTHONPATH, the installed `aegis-bridge` entry point must run and
the package must find its shipped model weights (package data).
"""

import os
import shutil
import subprocess

import pytest

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
            "import aegis_bridge, aegis_bridge.model as m; print(aegis_bridge.__file__); print(m.load_model().name)",
            timeout=30)
    assert r.returncode == 0, r.stderr
    installed_at, model = r.stdout.split()
    assert installed_at.startswith(str(venv)), f"imported from {installed_at}, not the virtualenv"
    assert model == "numpy-logreg", "the shipped weights are package data"
