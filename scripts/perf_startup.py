"""Start-up cost of ``BUMP_GLOBAL=1``: instruction counts, page faults and paired times.

    python scripts/perf_startup.py [--python PY] [--rounds N] [--no-callgrind]
                                   [--code 'pass'] [--variant NAME=VAR=VALUE[+VAR=VALUE]]

For each variant (default: ``off`` = BUMP_GLOBAL=0 and ``on`` = BUMP_GLOBAL=1), runs
``PY -c CODE``:
- under ``valgrind --tool=callgrind`` once: the instructions executed (repeatable to
  a few hundred thousand on this machine, whatever else runs on it);
- N rounds in alternating, per round shuffled order: wall time, CPU (user + sys from
  os.wait4) and minor page faults; the median of each and the median of the
  per-round ratios to the first variant.

Use a regular (not editable) install of bump_global in PY's environment: an editable
install adds its own import hook to every start-up.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Sequence, Tuple


def parse_variant(spec: str) -> Tuple[str, Dict[str, str]]:
    name, _, rest = spec.partition("=")
    env: Dict[str, str] = {}
    for item in rest.split("+") if rest else []:
        key, _, value = item.partition("=")
        env[key] = value
    return name, env


def instructions(cmd: Sequence[str], env: Dict[str, str]) -> int:
    """Instructions executed by `cmd` (callgrind's total, children not followed)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *cmd],
                       env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=True)
        with open(out) as src:
            match = re.search(r"^(?:summary|totals): (\d+)", src.read(), re.M)
    assert match, "callgrind wrote no total"
    return int(match.group(1))


def timed(cmd: Sequence[str], env: Dict[str, str]) -> Tuple[float, float, int]:
    """(wall s, user + sys s, minor faults) of one run."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, f"{cmd} exited with {proc.returncode}"
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_minflt


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--code", default="pass")
    ap.add_argument("--no-callgrind", action="store_true")
    ap.add_argument("--variant", action="append", default=[],
                    help="NAME=VAR=VALUE[+VAR=VALUE...] (default: off and on)")
    ap.add_argument("--seed", type=int, default=1)
    ns = ap.parse_args(argv)
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("BUMP_GLOBAL", "PYTHON", "GCX"))}
    specs = ns.variant or ["off=BUMP_GLOBAL=0", "on=BUMP_GLOBAL=1"]
    variants = [parse_variant(s) for s in specs]
    cmd = [ns.python, "-c", ns.code]
    print(f"python: {ns.python}\ncode: {ns.code!r}")
    if not ns.no_callgrind and shutil.which("valgrind"):
        counts = {name: instructions(cmd, {**base, **env}) for name, env in variants}
        first = counts[variants[0][0]]
        for name, count in counts.items():
            print(f"instructions {name:>10}: {count:>12,}  ({count / first:.3f}x)")
    rng = random.Random(ns.seed)
    results: Dict[str, List[Tuple[float, float, int]]] = {name: [] for name, _ in variants}
    for _ in range(3):  # warm-up
        for _name, env in variants:
            timed(cmd, {**base, **env})
    for _ in range(ns.rounds):
        order = list(variants)
        rng.shuffle(order)
        for name, env in order:
            results[name].append(timed(cmd, {**base, **env}))
    ref = results[variants[0][0]]
    print(f"{ns.rounds} rounds, shuffled; medians (ratio: median of per-round ratios)")
    for name, runs in results.items():
        wall = statistics.median(r[0] for r in runs) * 1e3
        cpu = statistics.median(r[1] for r in runs) * 1e3
        faults = statistics.median(r[2] for r in runs)
        wall_ratio = statistics.median(r[0] / b[0] for r, b in zip(runs, ref))
        cpu_ratio = statistics.median(r[1] / b[1] if b[1] else 1.0 for r, b in zip(runs, ref))
        print(f"{name:>10}: wall {wall:6.2f} ms ({wall_ratio:.3f}x)  cpu {cpu:6.2f} ms "
              f"({cpu_ratio:.3f}x)  minor faults {faults:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
