"""What does moving dead 64 KiB units' pages to the bump frontier save (the experiment of
experiments/recycle.patch), with and without the prefault thread?

    python scripts/perf_recycle.py [--python PY | --interpreter PY] [--work DIR]
        [--no-install] [--jobs pyflakes,docutils,json_tool] [--rounds 5] [--warmup 1]
        [--seed N] [--quick]

Builds two copies of this checkout's engine (scripts/harness/builds.py): as shipped,
and with experiments/recycle.patch applied and ``-DBUMP_GLOBAL_RECYCLE`` (per 64 KiB
unit of the small area, the live blocks that start there; when a unit's last block
dies, its physical pages move to the next chunk the arena takes, with one
``mremap(MREMAP_DONTUNMAP)``, instead of that chunk faulting fresh pages; addresses
are still never reused).  Each build runs pure bump through ``BUMP_GLOBAL=1`` (huge
pages off, ``gc="relaxed"``), with and without the prefault thread, beside pymalloc
with the same GC policy, in the harness's shuffled rounds; every run's output is
checked against pymalloc+gc's.  Printed per job and variant: median wall and CPU
(user + sys), the medians of the per-round ratios to pymalloc+gc, minor faults, and
the units moved (the patched core's ``recycle_counts()`` at exit).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Optional, Sequence

from harness import venv
from harness.builds import EXPERIMENTS, build_engine
from harness.runner import Runner, check_outputs, cpu, run_rounds
from harness.stats import ratios
from harness.variants import GC_PEER, Variant, bump_env, parse_variant

from bump_global._launch import find_preload_libraries

WHO = "perf_recycle"
PATCH = EXPERIMENTS / "recycle.patch"
ENGINE = bump_env(huge_pages="0")
VARIANTS = (
    parse_variant(GC_PEER),
    Variant("bump", "pure bump, prefault on (the default)", ENGINE, build="plain"),
    Variant("bump-noprefault", "pure bump, no prefault", {**ENGINE, **bump_env(prefault="0")},
            build="plain"),
    Variant("recycle", "recycling, prefault on", ENGINE, build="recycle"),
    Variant("recycle-noprefault", "recycling, no prefault",
            {**ENGINE, **bump_env(prefault="0")}, build="recycle"),
)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    venv.add_arguments(ap)
    ap.add_argument("--jobs", default="pyflakes,docutils,json_tool",
                    help="comma-separated real programs or workload scripts")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="workload scripts at tiny sizes")
    ns = ap.parse_args(argv)
    if ns.rounds < 1 or ns.warmup < 0:
        ap.error("--rounds must be 1 or more and --warmup 0 or more")
    workloads = venv.workloads_named([j.strip() for j in ns.jobs.split(",") if j.strip()],
                                     WHO)
    setup, jobs, notes = venv.setup_jobs(ns, workloads, (), ns.quick, WHO)
    for note in notes:
        print(f"{WHO}: {note}", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        builds = {"plain": build_engine(Path(tmp) / "plain", setup.python),
                  "recycle": build_engine(Path(tmp) / "recycle", setup.python, PATCH,
                                          "-DBUMP_GLOBAL_RECYCLE")}
        runner = Runner(setup.python, setup.work, find_preload_libraries(), builds,
                        counters=True)
        result = {"orders": [], "raw": []}  # type: ignore[var-annotated]
        run_rounds(runner, jobs, VARIANTS, ns.rounds, ns.warmup, ns.seed, result)
    problems = check_outputs(result["raw"], GC_PEER) + [
        f"{r['workload']} round {r['round']} {r['variant']}: {r['error']}"
        for r in result["raw"] if not r["ok"]]
    med = statistics.median
    print(f"{ns.rounds} rounds after {ns.warmup} warm-up; ratios: medians of the per-round "
          f"ratios to {GC_PEER}")
    print(f"{'job':<14}{'variant':<20}{'wall s':>8}{'cpu s':>8}{'wall x':>8}{'cpu x':>8}"
          f"{'faults':>9}{'moved':>8}")
    for job in jobs:
        runs = [r for r in result["raw"] if r["workload"] == job.name and r["round"] >= 0
                and r["ok"]]
        refs = {r["round"]: r for r in runs if r["variant"] == GC_PEER}
        for v in VARIANTS:
            m = [r for r in runs if r["variant"] == v.name]
            if not m:
                continue
            moved = [(r.get("counters") or {}).get("recycle_counts", [0])[0] for r in m]
            print(f"{job.name:<14}{v.name:<20}{med(r['wall_s'] for r in m):>8.3f}"
                  f"{med(cpu(r) for r in m):>8.3f}{med(ratios(m, refs, 'wall') or [0]):>8.2f}"
                  f"{med(ratios(m, refs, 'cpu') or [0]):>8.2f}"
                  f"{med(r['minor_faults'] for r in m) / 1000:>8.0f}k{med(moved):>8.0f}")
    for problem in problems:
        print(f"{WHO}: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
