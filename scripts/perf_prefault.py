"""The prefault thread against none, in shuffled paired rounds, on this machine as it is.

    python scripts/perf_prefault.py --build old=DIR --build new=DIR [--rounds 9]
        [--count 3000000]

Each DIR holds a ``bump_global`` package with its built C core.  Each run builds
a list of `count` two-int tuples after ``bump_global.install("8G", prefault=P,
huge_pages=False)`` and prints its CPU time (user + sys of the process, both
threads), wall time from install to the end, and the C core's prefault counts
(bytes faulted ahead, bytes left to the program because no core was idle) where
the build has them.  Variants: every build with prefault on, the first build
with prefault off.  The load of the machine is reported (/proc/loadavg) before
each round: the point is what the thread does when the cores are busy.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
from typing import Dict, List, Sequence, Tuple

CHILD = r'''
import json, os, resource, sys, time
import bump_global
from bump_global import _core
prefault = sys.argv[1] == "1"
bump_global.install("8G", prefault=prefault, huge_pages=False)
t0 = time.perf_counter()
data = [(i, 2 * i) for i in range(int(sys.argv[2]))]
wall = time.perf_counter() - t0
u = resource.getrusage(resource.RUSAGE_SELF)
counts = _core.prefault_counts() if hasattr(_core, "prefault_counts") else None
print(json.dumps([wall, u.ru_utime + u.ru_stime, u.ru_minflt, counts]))
'''


def run(python: str, pkg: str, prefault: bool, count: int) -> Tuple[float, float, int, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BUMP_GLOBAL", "PYTHON"))}
    env["PYTHONPATH"] = pkg
    out = subprocess.run([python, "-c", CHILD, "1" if prefault else "0", str(count)], env=env,
                         capture_output=True, text=True, check=True).stdout
    wall, cpu, faults, counts = json.loads(out)
    return wall, cpu, faults, counts


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--build", action="append", required=True, help="NAME=DIR")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--count", type=int, default=3_000_000)
    ns = ap.parse_args(argv)
    builds = [tuple(b.split("=", 1)) for b in ns.build]
    variants: List[Tuple[str, str, bool]] = [(f"{b}:prefault", d, True) for b, d in builds]
    variants.append((f"{builds[0][0]}:no-prefault", builds[0][1], False))
    rng = random.Random(3)
    results: Dict[str, List[Tuple[float, float, int, object]]] = {v[0]: [] for v in variants}
    loads = []
    for rnd in range(ns.rounds + 1):
        with open("/proc/loadavg") as src:
            loads.append(src.read().split()[3])
        order = list(variants)
        rng.shuffle(order)
        for name, pkg, prefault in order:
            res = run(ns.python, pkg, prefault, ns.count)
            if rnd:
                results[name].append(res)
    print(f"{ns.rounds} shuffled rounds (+1 warm-up), {ns.count:,} tuples; runnable/total "
          f"tasks before each round: {' '.join(loads)}")
    ref = results[variants[-1][0]]
    for name, runs in results.items():
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        cpu_ratio = statistics.median(a[1] / b[1] for a, b in zip(runs, ref))
        wall_ratio = statistics.median(a[0] / b[0] for a, b in zip(runs, ref))
        counts = runs[-1][3]
        print(f"  {name:<22} wall {wall:6.3f} s ({wall_ratio:.3f}x)  cpu {cpu:6.3f} s "
              f"({cpu_ratio:.3f}x)  faults {statistics.median(r[2] for r in runs):>8.0f}"
              f"  prefault counts (last run) {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
