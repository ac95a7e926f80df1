"""Experiment: give dead 64 KiB units' pages to the bump frontier (core/recycle.c).

    python scripts/perf_recycle.py --venv VENV [--work DIR] [--rounds 5]
        [--jobs pyflakes,docutils,json_tool]

Builds two copies of this checkout's C core: as shipped, and with
experiments/recycle.patch applied and ``-DBUMP_GLOBAL_RECYCLE`` (core/recycle.c:
per 64 KiB unit of the small area,
the live blocks that start there; when a unit's last block dies, its physical
pages move to the next chunk the arena takes, with one
``mremap(MREMAP_DONTUNMAP)``, instead of that chunk faulting fresh pages;
addresses are still never reused).  Each copy is installed by a sitecustomize
(pure bump, ``gc="relaxed"``, huge pages off), with and without the prefault
thread, beside pymalloc with the same GC policy (GCX=1), in shuffled rounds
after one warm-up; every run's output is checked against pymalloc's.  Printed
per job and variant: median wall and CPU (user + sys), the medians of the
per-round ratios to pymalloc + GC, minor faults, and the units moved.
Jobs as in scripts/perf_variants.py (real programs set up in VENV).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
import perf_variants  # noqa: E402

SITE = """\
import atexit, json, os
import bump_global
bump_global.install(prefault=os.environ["RECYCLE_PREFAULT"] == "1", huge_pages=False,
                    gc="relaxed")
from bump_global import _core

def _counts():
    moves = _core.recycle_counts()[0] if hasattr(_core, "recycle_counts") else 0
    with open(os.environ["RECYCLE_OUT"], "w") as out:
        json.dump({"moves": moves}, out)

atexit.register(_counts)
"""

PATCH = REPO / "experiments" / "recycle.patch"


def build(dest: Path, python: str, cflags: str = "") -> Path:
    """A copy of this checkout in dest/src with its C core built in place with cflags;
    with -DBUMP_GLOBAL_RECYCLE, experiments/recycle.patch is applied to the copy first."""
    src = dest / "src"
    src.mkdir(parents=True)
    for name in ("setup.py", "pyproject.toml", "MANIFEST.in", "README.md",
                 "bump_global_activate.pth"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "bump_global", src / "bump_global",
                    ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    if "BUMP_GLOBAL_RECYCLE" in cflags:
        subprocess.run(["git", "apply", str(PATCH)], cwd=src, check=True)
    env = dict(os.environ, CFLAGS=cflags)
    subprocess.run([python, "setup.py", "-q", "build_ext", "--inplace"], cwd=src, env=env,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return src


VARIANTS = ("pymalloc+gc", "bump", "bump-noprefault", "recycle", "recycle-noprefault")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--venv", type=Path, required=True)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "perf-variants")
    ap.add_argument("--jobs", default="pyflakes,docutils,json_tool")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=None)
    ns = ap.parse_args(argv)
    python = str(ns.venv.resolve() / "bin" / "python")
    jobs = perf_variants.jobs_for(ns.jobs.split(","), ns.venv.resolve(), ns.work)
    rng = random.Random(ns.seed)
    base = perf_variants.rp.base_env()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        plain = build(root / "plain", python, "")
        recycle = build(root / "recycle", python, "-DBUMP_GLOBAL_RECYCLE")
        site, gcx = root / "site", root / "gcx"
        site.mkdir()
        gcx.mkdir()
        (site / "sitecustomize.py").write_text(SITE)
        (gcx / "sitecustomize.py").write_text(perf_variants.GCX_SITE)
        out = root / "counts.json"

        def env_for(variant: str) -> Dict[str, str]:
            if variant == "pymalloc+gc":
                return dict(base, PYTHONPATH=str(gcx), GCX="1")
            src = recycle if variant.startswith("recycle") else plain
            return dict(base, PYTHONPATH=f"{site}{os.pathsep}{src}", RECYCLE_OUT=str(out),
                        RECYCLE_PREFAULT="0" if variant.endswith("noprefault") else "1")

        runs: Dict[Tuple[str, str], List[Tuple[float, float, int, int]]] = {}
        ratios: Dict[Tuple[str, str], List[Tuple[float, float]]] = {}
        for r in range(ns.rounds + 1):
            for job, (cmd, cwd) in jobs.items():
                order = list(VARIANTS)
                rng.shuffle(order)
                got: Dict[str, Tuple[float, float, int, int]] = {}
                outputs: Dict[str, str] = {}
                for variant in order:
                    out.unlink(missing_ok=True)
                    wall, cpu, faults, _, digest = perf_variants.run_once(cmd, cwd,
                                                                        env_for(variant))
                    moves = json.loads(out.read_text())["moves"] if out.exists() else 0
                    got[variant] = (wall, cpu, faults, moves)
                    outputs[variant] = digest
                bad = [v for v in VARIANTS if outputs[v] != outputs["pymalloc+gc"]]
                if bad:
                    print(f"{job}: output differs from pymalloc's under {', '.join(bad)}",
                          file=sys.stderr)
                    return 1
                if r == 0:
                    continue  # the warm-up round
                ref = got["pymalloc+gc"]
                for variant, m in got.items():
                    runs.setdefault((job, variant), []).append(m)
                    ratios.setdefault((job, variant), []).append((m[0] / ref[0], m[1] / ref[1]))
    med = statistics.median
    print(f"{'job':<11}{'variant':<20}{'wall s':>8}{'cpu s':>8}{'wall x':>8}{'cpu x':>8}"
          f"{'faults':>9}{'moved':>8}")
    for job in jobs:
        for variant in VARIANTS:
            m = runs[(job, variant)]
            q = ratios[(job, variant)]
            print(f"{job:<11}{variant:<20}{med(x[0] for x in m):>8.3f}{med(x[1] for x in m):>8.3f}"
                  f"{med(x[0] for x in q):>8.2f}{med(x[1] for x in q):>8.2f}"
                  f"{med(x[2] for x in m) / 1000:>8.0f}k{med(x[3] for x in m):>8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
