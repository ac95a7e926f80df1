"""Engine builds: copies of this checkout's bump_global with the C core built in place.

A variant with ``build=NAME`` runs with that build's folder first on ``PYTHONPATH``
(the interpreter's installed bump_global still provides ``bump_global_activate.pth``,
which then imports the build: ``BUMP_GLOBAL=1`` works as for any user).  Builds come
from :func:`build_engine` (optionally with a patch of ``experiments/`` and C flags)
or from ``--build NAME=DIR`` (:func:`parse_builds`: DIR holds a ``bump_global``
package with its built core, e.g. another checkout after
``setup.py build_ext --inplace``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Dict, Optional, Sequence

REPO = Path(__file__).resolve().parents[2]
EXPERIMENTS = REPO / "experiments"


def build_engine(dest: Path, python: str, patch: Optional[Path] = None,
                 cflags: str = "") -> Path:
    """A copy of this checkout in `dest` with `patch` applied (``git apply``) and its C
    core built in place with `cflags`; the folder to put on PYTHONPATH."""
    dest.mkdir(parents=True)
    for name in ("setup.py", "pyproject.toml", "MANIFEST.in", "README.md",
                 "bump_global_activate.pth"):
        shutil.copy2(REPO / name, dest / name)
    shutil.copytree(REPO / "bump_global", dest / "bump_global",
                    ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    if patch is not None:
        subprocess.run(["git", "apply", str(patch)], cwd=dest, check=True)
    subprocess.run([python, "setup.py", "-q", "build_ext", "--inplace"], cwd=dest,
                   env=dict(os.environ, CFLAGS=cflags), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return dest


def parse_builds(specs: Sequence[str], who: str) -> Dict[str, Path]:
    """NAME -> folder of each ``--build NAME=DIR``; one line for a bad one."""
    builds: Dict[str, Path] = {}
    for spec in specs:
        name, sep, folder = spec.partition("=")
        path = Path(folder).resolve()
        if not sep or not name or not (path / "bump_global").is_dir():
            raise SystemExit(f"{who}: --build {spec!r}: expected NAME=DIR where DIR holds a "
                             "bump_global package with its built core")
        builds[name] = path
    return builds
