"""Paired, shuffled runs of workloads and real programs under allocator variants.

    python scripts/perf_variants.py --venv VENV [--work DIR] [--rounds 5]
        [--jobs compileall,pyflakes,docutils,json_tool,tuples_list,...]
        [--variant NAME=VAR=VALUE[+VAR=VALUE...]] ...

A quick harness for deciding the engine's levers (scripts/bench.py is the suite
that publishes figures).  Every variant runs every job once per round, in an order
shuffled every round, after one warm-up round.  Every variant has the same
sitecustomize folder on PYTHONPATH (GCX=1 multiplies the GC thresholds by ten, as
bump_global's gc="relaxed" does: shared/reference/measuring.md).  Reported per job
and variant: median wall and CPU (user + sys of the process tree, os.wait4), the
median of the per-round ratios to the first variant, minor faults and peak RSS
(ru_maxrss; at least the launcher's own RSS, about 10 MiB).  A variant whose
output differs from the first variant's is flagged.

Real programs (compileall, pyflakes, docutils, json_tool, black) are set up with
scripts/real_programs.py's own steps, in VENV (which needs bump_global installed,
and pyflakes, docutils, black for those).  Workloads are scripts/workloads/*.py.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import real_programs as rp  # noqa: E402
from perf_startup import parse_variant  # noqa: E402

GCX_SITE = rp.GCX_SITE

DEFAULT_VARIANTS = [
    "gcx=GCX=1",
    "bump=BUMP_GLOBAL=1",
    "classes=BUMP_GLOBAL=1+BUMP_GLOBAL_RECLAIM=classes",
]
WORKLOAD_ARGS = {"tuples_list": [], "build_tuples": [], "dict_str": [], "ast_compile": [],
                 "json_loads_big": [], "nested_serialise": [], "temporaries": [],
                 "deltablue": [], "richards": [], "raytrace": [], "go": [],
                 "json_loads_small": []}



def jobs_for(names: Sequence[str], venv: Path, work: Path) -> Dict[str, Tuple[List[str], Path]]:
    """name -> (argv, cwd)."""
    python = str(venv / "bin" / "python")
    out: Dict[str, Tuple[List[str], Path]] = {}
    programs = {p.name: p for p in rp.PROGRAMS}
    stdlib = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                                  "['stdlib'])"], capture_output=True, text=True,
                                 check=True).stdout.strip())
    for name in names:
        if name in WORKLOAD_ARGS:
            out[name] = ([python, str(HERE / "workloads" / f"{name}.py"), *WORKLOAD_ARGS[name]],
                         work)
            continue
        program = programs[name]
        inputs = work / "inputs" / name
        run = work / "runs" / name
        ctx = rp.Ctx(work=work, venv=venv, python=python, inputs=inputs, stdlib=stdlib,
                     index=work / "index", pyversion=sys.version_info[:2])
        if not inputs.exists():
            inputs.mkdir(parents=True)
            if program.setup:
                program.setup(ctx)
        if not run.exists():
            run.mkdir(parents=True)
            if program.prepare:
                program.prepare(ctx, run)
        cwd = inputs / program.cwd if program.cwd else run
        out[name] = (program.command(ctx, run), cwd)
    return out


def run_once(argv: List[str], cwd: Path, env: Dict[str, str]) -> Tuple[float, float, int, int, str]:
    """(wall s, cpu s, minor faults, peak RSS KiB, sha256 of stdout)."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        out.seek(0)
        digest = hashlib.sha256(out.read()).hexdigest()[:12]
    code = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_minflt, usage.ru_maxrss, \
        f"{code}:{digest}"


def gmean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--venv", type=Path, required=True)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "perf-variants")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--jobs", default="compileall,pyflakes,docutils,json_tool")
    ap.add_argument("--variant", action="append", default=[])
    ap.add_argument("--seed", type=int, default=1)
    ns = ap.parse_args(argv)
    ns.work.mkdir(parents=True, exist_ok=True)
    site_dir = ns.work / "gcx-site"
    site_dir.mkdir(exist_ok=True)
    (site_dir / "sitecustomize.py").write_text(GCX_SITE)
    base = rp.base_env()
    base["PYTHONPATH"] = str(site_dir)
    variants = [parse_variant(s) for s in (ns.variant or DEFAULT_VARIANTS)]
    jobs = jobs_for(ns.jobs.split(","), ns.venv.resolve(), ns.work)
    rng = random.Random(ns.seed)
    results: Dict[Tuple[str, str], List[Tuple[float, float, int, int, str]]] = {}
    for rnd in range(ns.rounds + 1):
        for job, (cmd, cwd) in jobs.items():
            order = list(variants)
            rng.shuffle(order)
            for name, env in order:
                res = run_once(cmd, cwd, {**base, **env})
                if rnd:
                    results.setdefault((job, name), []).append(res)
        print(f"round {rnd} done", file=sys.stderr, flush=True)
    ref = variants[0][0]
    print(f"{ns.rounds} rounds (+1 warm-up), order shuffled per job and round; medians; "
          f"ratios: median of per-round ratios to {ref}")
    print(f"{'job':<14}{'variant':<12}{'wall s':>8}{'ratio':>7}{'cpu s':>8}{'ratio':>7}"
          f"{'faults':>9}{'peak MiB':>10}  same")
    per_variant: Dict[str, List[float]] = {}
    per_variant_cpu: Dict[str, List[float]] = {}
    for job in jobs:
        r0 = results[(job, ref)]
        for name, _ in variants:
            rs = results[(job, name)]
            wall_ratio = statistics.median(a[0] / b[0] for a, b in zip(rs, r0))
            cpu_ratio = statistics.median(a[1] / b[1] for a, b in zip(rs, r0))
            per_variant.setdefault(name, []).append(wall_ratio)
            per_variant_cpu.setdefault(name, []).append(cpu_ratio)
            same = "yes" if {r[4] for r in rs} == {r[4] for r in r0} else "NO"
            print(f"{job:<14}{name:<12}{statistics.median(r[0] for r in rs):8.3f}"
                  f"{wall_ratio:7.3f}{statistics.median(r[1] for r in rs):8.3f}{cpu_ratio:7.3f}"
                  f"{statistics.median(r[2] for r in rs):9.0f}"
                  f"{statistics.median(r[3] for r in rs) / 1024:10.1f}  {same}")
    print("geometric mean of the ratios over the jobs:")
    for name, _ in variants:
        print(f"  {name:<12} wall {gmean(per_variant[name]):.3f}   "
              f"cpu {gmean(per_variant_cpu[name]):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
