#!/usr/bin/python3
"""Installs the bridge package from this checkout into the running Python's environment, offline.

    .tox/py/bin/python scripts/install_bridge.py        (tox -e py runs this in commands_pre)
    /opt/aegis-bridge/bin/python scripts/install_bridge.py

pip builds in the source tree (a build/ and an .egg-info beside the code),
and build/ here is CMake's, so the package (pyproject.toml and
src/aegis_bridge) is copied to a scratch directory and installed from
there: nothing is written in the checkout. PyPI is not reachable on these
machines, hence --no-index --no-deps --no-build-isolation: the dependencies
(numpy, pyzmq, ...) and setuptools come from the system's site-packages,
which the environment must see (a virtualenv made with
--system-site-packages, or tox's sitepackages = true). --force-reinstall,
because the version number does not change when the code does.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="aegis-install-") as tmp:
        pkg = Path(tmp) / "pkg"
        shutil.copytree(REPO / "src" / "aegis_bridge", pkg / "src" / "aegis_bridge",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        shutil.copy(REPO / "pyproject.toml", pkg)
        argv = [sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--no-build-isolation",
                "--force-reinstall", "--quiet", str(pkg)]
        r = subprocess.run(argv)
        if r.returncode != 0:
            print(f"install_bridge: {' '.join(argv)} failed (exit {r.returncode})", file=sys.stderr)
            return r.returncode
    script = Path(sys.executable).parent / "aegis-bridge"
    if not script.is_file():
        print(f"install_bridge: pip succeeded but {script} is missing", file=sys.stderr)
        return 1
    print(f"install_bridge: installed aegis-bridge into {sys.prefix}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
