"""How many instructions does a run execute under each variant (and engine build)?
Counts that repeat on a shared machine where times do not (callgrind).

    python scripts/perf_instructions.py [--python PY | --interpreter PY] [--work DIR]
        [--no-install] [--job 'deltablue 10'] ... [--variants pymalloc+gc,bump,...]
        [--build NAME=DIR] ... [--fast-exit]

Each job is a workload of scripts/workloads/ with its arguments (``--job 'startup'`` is
the start-up alone, ``python startup.py``; ``--job 'tuples_list 500000'``), or a real
program; it runs once per variant under ``valgrind --tool=callgrind`` (children not
followed, PYTHONHASHSEED=0 so that dict layouts are the same in every run) through the
harness (scripts/harness/), and its output and exit status are checked against the
first variant's.  Prints the instruction count per job and variant and the ratio to the
first variant.  ``--build NAME=DIR`` runs every bump variant once per engine build
(``bump@old``, ``bump@new``); the peers do not load the engine.  ``--fast-exit`` ends
every run at exit with ``os._exit(0)`` after flushing (an upper bound of what skipping
the interpreter's teardown saves).  Threads are serialised by callgrind and page faults
are not instructions: use bump_global's variants without prefault (``bump-noprefault``)
for engine work, and scripts/perf_firsttouch.py for the kernel's side.  For start-up
times, paired and shuffled: ``scripts/bench.py --families startup``.  Use a regular (not
editable) install in the interpreter: an editable one adds its import hook to every
start-up.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from harness import venv
from harness.builds import parse_builds
from harness.runner import Runner, check_outputs, run_rounds
from harness.variants import parse_variants, select_variants, with_builds

from bump_global._launch import find_preload_libraries

WHO = "perf_instructions"
PREFIX = ["valgrind", "--tool=callgrind", "--callgrind-out-file={out}"]


def inspect(run_dir: Path, rec: Dict[str, Any]) -> None:
    """The run's instruction count from callgrind's output (the record's
    ``instructions``)."""
    out = run_dir / "prefix.out"
    match = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.M) if out.exists() \
        else None
    if match is None:
        rec.update(ok=False, error="callgrind wrote no total")
    else:
        rec["instructions"] = int(match.group(1))


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    venv.add_arguments(ap)
    ap.add_argument("--job", action="append", default=[], metavar="'NAME ARGS'",
                    help="a workload and its arguments, or a real program (repeat; "
                         "default: 'tuples_list 500000', 'deltablue 10')")
    ap.add_argument("--variants", default="pymalloc+gc,bump-noprefault",
                    help="comma-separated names or NAME=VAR=VALUE[+...]; the first is the "
                         "reference")
    ap.add_argument("--build", action="append", default=[], metavar="NAME=DIR",
                    help="run every bump variant with this engine build (repeat)")
    ap.add_argument("--fast-exit", action="store_true",
                    help="os._exit(0) at exit, after flushing stdout and stderr")
    ns = ap.parse_args(argv)
    wanted = parse_variants(ns.variants, WHO) or []
    if not wanted:
        ap.error("--variants must name one or more")
    specs = [shlex.split(j) for j in ns.job or ["tuples_list 500000", "deltablue 10"]]
    workloads = venv.workloads_named([s[0] for s in specs], WHO)
    # A job's own arguments replace the workload's.
    workloads = [replace(w, args=tuple(s[1:])) if len(s) > 1 else w
                 for w, s in zip(workloads, specs)]
    builds = parse_builds(ns.build, WHO)
    setup, jobs, notes = venv.setup_jobs(ns, workloads, sorted(
        {r for v in wanted for r in v.requires}), False, WHO)
    libraries = find_preload_libraries()
    reference = wanted[0].name
    variants, skipped = select_variants(wanted, setup.pyversion, libraries, setup.python,
                                        reference=reference)
    variants = with_builds(variants, list(builds))
    for note in notes + skipped:
        print(f"{WHO}: {note}", file=sys.stderr, flush=True)
    runner = Runner(setup.python, setup.work, libraries, builds, prefix=PREFIX,
                    fast_exit=ns.fast_exit, inspect=inspect)
    result: Dict[str, List[Any]] = {"orders": [], "raw": []}
    run_rounds(runner, jobs, variants, 1, 0, 0, result)
    problems = check_outputs(result["raw"], reference) + [
        f"{r['workload']} {r['variant']}: {r['error']}" for r in result["raw"] if not r["ok"]]
    counts = {(r["workload"], r["variant"]): r["instructions"] for r in result["raw"]
              if "instructions" in r}
    for job in jobs:
        ref = counts.get((job.name, reference))
        print(f"{job.name} {' '.join(job.argv(setup.work)[2:])}".rstrip() + ":")
        for v in variants:
            n = counts.get((job.name, v.name))
            if n is not None:
                print(f"  {v.name:<24}{n:>16,}" + (f"  {n / ref:.3f}x" if ref else ""))
    for problem in problems:
        print(f"{WHO}: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
