"""Does ``bump-global run --report --json`` report both workers of the Pool idiom, with
their own figures, in every run, and do the totals of repeated runs agree?

    python scripts/pool_endings.py [--runs 20] [--python PYTHON ...] [--idiom pool|executor]

Runs the idiom (``with mp.Pool(2) as p: print(p.map(w, [10**5, 2*10**5, 3*10**5,
4*10**5]))``, w building a list of n strings; or the same four tasks through
``concurrent.futures.ProcessPoolExecutor(2)``) `runs` times under each PYTHON (each
with bump_global installed; default: this one), and prints per interpreter: the
runs whose JSON lists every worker the program started (their pids, which the
program writes to a file) as an installed record, how those workers ended, and the
spread of the totals (bytes handed out and allocations of the whole program) over
the runs: min, median, max and (max - min) / median.  A run passes when every
worker is there and the workers' allocations add up to at least the million
strings the tasks build.  Exit status 1 if a run failed or a spread exceeds
--tolerance (default 5%).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from collections import Counter
from typing import Any, Dict, List, Sequence, Tuple

IDIOMS = {
    "pool": textwrap.dedent("""\
        import json, multiprocessing as mp, sys

        def w(n):
            keep = [str(i) for i in range(n)]
            return len(keep)

        if __name__ == "__main__":
            with mp.Pool(2) as p:
                with open(sys.argv[1], "w") as out:
                    json.dump([q.pid for q in p._pool], out)
                print(p.map(w, [10**5, 2*10**5, 3*10**5, 4*10**5]))
        """),
    "executor": textwrap.dedent("""\
        import json, sys
        from concurrent.futures import ProcessPoolExecutor

        def w(n):
            keep = [str(i) for i in range(n)]
            return len(keep)

        if __name__ == "__main__":
            with ProcessPoolExecutor(2) as ex:
                print(list(ex.map(w, [10**5, 2*10**5, 3*10**5, 4*10**5])))
                with open(sys.argv[1], "w") as out:
                    json.dump(list(ex._processes), out)
        """),
}

#: The strings the four tasks build together.
STRINGS = 10**6


def one_run(python: str, script: str, directory: str, k: int) -> Dict[str, Any]:
    """One run's outcome: ok, why not, the totals and the workers' endings."""
    report = os.path.join(directory, f"r{k}.json")
    pids_file = os.path.join(directory, f"pids{k}.json")
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("BUMP_GLOBAL", "PYTHON"))}
    proc = subprocess.run([python, "-m", "bump_global", "run", "--report", "--json", report,
                           script, pids_file], capture_output=True, text=True, env=env,
                          timeout=120)
    outcome: Dict[str, Any] = {"ok": False, "why": "", "used": None, "allocations": None,
                               "endings": []}
    if proc.returncode != 0 or "[100000, 200000, 300000, 400000]" not in proc.stdout:
        outcome["why"] = f"status {proc.returncode}: {proc.stderr.strip()[-300:]}"
        return outcome
    try:
        with open(report, encoding="utf-8") as src:
            data = json.load(src)
        with open(pids_file, encoding="utf-8") as src:
            workers = set(json.load(src))
    except (OSError, ValueError) as exc:
        outcome["why"] = f"no report: {exc}"
        return outcome
    by_pid = {record["pid"]: record for record in data["processes"]}
    outcome["used"] = data["total"]["used"]
    outcome["processes"] = [(r["role"], r["region"]["used"] if r["installed"] else None)
                            for r in data["processes"]]
    outcome["allocations"] = data["total"]["allocations"]
    absent = sorted(pid for pid in workers
                    if pid not in by_pid or not by_pid[pid]["installed"])
    if absent:
        outcome["why"] = f"workers {absent} not reported (missing: {data['missing']})"
        return outcome
    found = [by_pid[pid] for pid in sorted(workers)]
    outcome["endings"] = [record.get("signal") or record["exit"] for record in found]
    allocations = sum(record["counters"]["allocations"] for record in found)
    if allocations < STRINGS:
        outcome["why"] = f"the workers' allocations add up to {allocations:,} only"
        return outcome
    outcome["ok"] = True
    return outcome


def spread(values: Sequence[int]) -> Tuple[int, float, int, float]:
    middle = statistics.median(values)
    return min(values), middle, max(values), (max(values) - min(values)) / middle


def measure(python: str, idiom: str, runs: int, verbose: bool = False) -> Dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="pool-endings-") as directory:
        script = os.path.join(directory, f"{idiom}.py")
        with open(script, "w", encoding="utf-8") as out:
            out.write(IDIOMS[idiom])
        outcomes = []
        for k in range(runs):
            outcomes.append(one_run(python, script, directory, k))
            if verbose:
                print(f"    run {k}: {outcomes[-1]['used']} {outcomes[-1].get('processes')}",
                      flush=True)
    version = subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                             capture_output=True, text=True).stdout.strip()
    good = [o for o in outcomes if o["ok"]]
    result: Dict[str, Any] = {"python": version, "runs": runs, "complete": len(good),
                              "failures": [o["why"] for o in outcomes if not o["ok"]],
                              "endings": Counter(e for o in good for e in o["endings"])}
    if good:
        result["used"] = spread([o["used"] for o in good])
        result["allocations"] = spread([o["allocations"] for o in good])
    return result


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--python", nargs="+", default=[sys.executable])
    parser.add_argument("--idiom", choices=sorted(IDIOMS), default="pool")
    parser.add_argument("--tolerance", type=float, default=0.05)
    parser.add_argument("--verbose", action="store_true",
                        help="print each run's processes: (role, bytes used)")
    ns = parser.parse_args(argv)
    status = 0
    print(f"{'python':<8} {'complete':>9}  {'total used: min / median / max (spread)':<46} "
          f"{'allocations: min / median / max (spread)':<44} workers ended")
    for python in ns.python:
        r = measure(python, ns.idiom, ns.runs, ns.verbose)
        line = f"{r['python']:<8} {r['complete']:>4} / {r['runs']:<3} "
        for key in ("used", "allocations"):
            if key in r:
                low, middle, high, ratio = r[key]
                line += f" {low:>11,} / {middle:>11,.0f} / {high:>11,} ({100 * ratio:4.1f}%)"
                if ratio > ns.tolerance:
                    status = 1
        line += "  " + ", ".join(f"{name} {count}" for name, count in
                                 sorted(r["endings"].items()))
        print(line, flush=True)
        for why in r["failures"]:
            print(f"    failed: {why}")
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
