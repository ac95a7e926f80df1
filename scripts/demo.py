"""Demo: one build-and-exit script, run under pymalloc and under bump_global.

    python scripts/demo.py [--n 5000000] [--size 4G] [--runs 1]

Each run is a fresh interpreter (A, B, A, B...).  For each allocator it prints
the median wall time and peak RSS, and for bump_global the report of what the
allocator did (region used and resident, allocations, reallocs).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

WORKLOAD = """
import sys
n = int(sys.argv[1])
data = [(i, 2 * i) for i in range(n)]   # n small tuples in one growing list
assert data[-1] == (n - 1, 2 * (n - 1))
"""

# Runs the workload as a script; reports to stdout as one JSON line at exit.
RUNNER = """
import json, os, resource, runpy, sys, time
use_bump = sys.argv.pop(1) == "bump"
if use_bump:
    import bump_global
    bump_global.install(sys.argv.pop(1))
script = sys.argv[1]
sys.argv = sys.argv[1:]
start = time.perf_counter()
runpy.run_path(script, run_name="__main__")
wall = time.perf_counter() - start
result = {"wall": wall, "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
if use_bump:
    import dataclasses
    result["stats"] = dataclasses.asdict(bump_global.stats())
    result["report"] = bump_global.report()
print(json.dumps(result))
"""


def run_once(kind: str, workload: Path, n: int, size: str, cwd: str) -> dict:
    args = [sys.executable, "-c", RUNNER, kind] + ([size] if kind == "bump" else [])
    proc = subprocess.run(args + [str(workload), str(n)], capture_output=True, text=True,
                          cwd=cwd, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"demo: the {kind} run failed:\n{proc.stderr}")
    return json.loads(proc.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5_000_000, help="tuples to build")
    parser.add_argument("--size", default="4G", help="bump_global region size")
    parser.add_argument("--runs", type=int, default=1, help="paired runs per allocator")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workload = Path(tmp, "tuples.py")
        workload.write_text(textwrap.dedent(WORKLOAD))
        results: dict[str, list[dict]] = {"pymalloc": [], "bump": []}
        t0 = time.perf_counter()
        for _ in range(opts.runs):
            for kind in results:
                results[kind].append(run_once(kind, workload, opts.n, opts.size, tmp))
    print(f"workload: list of {opts.n:,} tuples (i, 2*i), then exit; "
          f"{opts.runs} paired run(s) in {time.perf_counter() - t0:.1f} s; "
          f"Python {sys.version.split()[0]}")
    medians = {k: (statistics.median(r["wall"] for r in v),
                   statistics.median(r["peak_rss"] for r in v)) for k, v in results.items()}
    base_wall = medians["pymalloc"][0]
    for kind, (wall, peak) in medians.items():
        print(f"  {kind:9s} wall {wall:6.3f} s (x{wall / base_wall:.2f})   "
              f"peak RSS {peak / 2**20:7.1f} MiB")
    last = results["bump"][-1]
    s = last["stats"]
    print(f"bump_global: {s['used'] / 2**20:.1f} MiB bumped, {s['reallocs_in_place']:,} "
          f"reallocs in place, {s['reallocs_moved']:,} moved ({s['bytes_copied'] / 2**20:.1f} "
          "MiB copied)")
    print(textwrap.indent(last["report"], "  "))


if __name__ == "__main__":
    main()
