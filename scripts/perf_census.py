"""How many 64 KiB chunks of the small area die entirely, on real programs.

    python scripts/perf_census.py --venv VENV [--work DIR]
        [--jobs compileall,pyflakes,docutils,json_tool,tuples_list]

Builds a copy of this checkout's C core with ``-DBUMP_GLOBAL_CENSUS`` (the engine
then counts, per 64 KiB of the small area, the blocks that start there and were
neither freed nor moved; normal builds compile that to nothing), runs each job
with that copy installed by a sitecustomize (pure bump, the default policy, no
prefault, no huge pages) and, from an atexit handler registered first (so it runs
after the program's own, before the interpreter's teardown), prints: chunks
handed out, chunks with no block left (dead: their pages could move to the bump
frontier with mremap instead of fresh pages being faulted), and chunks with at
most four (at exit most things are dead); and "recyclable": from a thread
sampling the census every 20 ms, the chunks a recycler could have served from
dead chunks while the program still allocated (in each interval, the growth, up
to the chunks dead at its start and not yet reused): the first touches that
moving dead chunks' pages to the frontier could have saved.  Jobs come from
scripts/perf_variants.py (real programs set up with scripts/real_programs.py's
steps in VENV).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
import perf_variants  # noqa: E402

SITE = """\
import atexit, json, os, threading, time
import bump_global
bump_global.install(prefault=False, huge_pages=False)
from bump_global import _core

_samples = []

def _sampler():
    while True:
        time.sleep(0.02)
        _samples.append(_core.census())

threading.Thread(target=_sampler, daemon=True).start()

def _census():
    chunks, dead, few, size = _core.census()
    # A recycler that gave dead chunks' pages to the frontier: in each 20 ms
    # interval, growth is served from chunks dead at its start, not yet reused.
    recycled, prev = 0, None
    for s in _samples + [(chunks, dead, few, size)]:
        if prev is not None:
            recycled += max(0, min(s[0] - prev[0], prev[1] - recycled))
        prev = s
    with open(os.environ["CENSUS_OUT"], "w") as out:
        json.dump({"chunks": chunks, "dead": dead, "few": few, "chunk": size,
                   "recycled": recycled}, out)

atexit.register(_census)
"""


def build(dest: Path, python: str, cflags: str = "-DBUMP_GLOBAL_CENSUS") -> Path:
    """A copy of this checkout in dest/src with its C core built in place with cflags."""
    src = dest / "src"
    src.mkdir(parents=True)
    for name in ("setup.py", "pyproject.toml", "MANIFEST.in", "README.md",
                 "bump_global_activate.pth"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "bump_global", src / "bump_global",
                    ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    env = dict(os.environ, CFLAGS=cflags)
    subprocess.run([python, "setup.py", "-q", "build_ext", "--inplace"], cwd=src, env=env,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return src


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--venv", type=Path, required=True)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "perf-variants")
    ap.add_argument("--jobs", default="compileall,pyflakes,docutils,json_tool,tuples_list")
    ns = ap.parse_args(argv)
    python = str(ns.venv.resolve() / "bin" / "python")
    jobs = perf_variants.jobs_for(ns.jobs.split(","), ns.venv.resolve(), ns.work)
    with tempfile.TemporaryDirectory() as tmp:
        src = build(Path(tmp), python)
        site = Path(tmp) / "site"
        site.mkdir()
        (site / "sitecustomize.py").write_text(SITE)
        print(f"{'job':<14}{'chunks':>9}{'dead':>9}{'dead %':>8}{'<=4 live':>10}{'%':>6}"
              f"{'recyclable':>12}{'%':>7}")
        for job, (cmd, cwd) in jobs.items():
            out = Path(tmp) / f"{job}.json"
            env = {k: v for k, v in os.environ.items()
                   if not k.startswith(("BUMP_GLOBAL", "PYTHON"))}
            env.update(PYTHONPATH=f"{site}{os.pathsep}{src}", CENSUS_OUT=str(out))
            subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False)
            data = json.loads(out.read_text())
            chunks = max(data["chunks"], 1)
            print(f"{job:<14}{data['chunks']:>9}{data['dead']:>9}"
                  f"{100 * data['dead'] / chunks:>7.1f}%{data['few']:>10}"
                  f"{100 * data['few'] / chunks:>5.1f}%{data['recycled']:>12}"
                  f"{100 * data['recycled'] / chunks:>6.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
